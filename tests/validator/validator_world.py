"""A small AMI world for validator tests: the in-memory chain running the real contract models, an in-memory
IPFS and a deterministic stand-in scorer (the worker that publishes in it: scripted_worker.py).

`HashRescorer` is a FAKE of the scoring engine (clearly not music scoring): scores come from hashes of the
audio, duplicates are byte-identical audio, the commitment covers the PCM hash, the catalogue root and the
scores (as ami-agreement/1's does: no features hash). It follows the `offchain.audit.rescore.Rescorer` port,
so the worker and the validator here run the very same scoring rules, as they would with the real engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ami_node.abi import ContractAbi
from ami_node.events import decode_block
from ami_node.keys import Keypair, load_keypair
from ami_node.memory import MemoryChainPort
from ami_node.tx import contract_tx
from offchain.audit.auditor import AuditOptions, Auditor
from offchain.audit.db import ValidatorDb
from offchain.audit.rescore import Rescored
from offchain.audit.validator import ContractChallenger, Validator
from offchain.economics import PolicyParams
from offchain.ipfs.store import MemoryContentStore
from offchain.store import WorkerStore
from pallets_spec.vocabulary import PayoutKind

MODEL_VERSION = 7
EPOCH_BLOCKS = 20
BUDGETS = {
    PayoutKind.CREATE: 40_000,
    PayoutKind.LISTEN: 30_000,
    PayoutKind.DISCOVERY: 10_000,
    PayoutKind.ENGAGEMENT: 10_000,
    PayoutKind.ROYALTY: 10_000,
}
POLICY = PolicyParams(budgets=BUDGETS, listen_reward_per_wallet=9_000, min_listen_seconds=30)


def _key(name: str) -> Keypair:
    return load_keypair(f"//{name}")


class HashRescorer:
    """FAKE scoring engine (see the module docstring); deterministic and catalogue-aware."""

    model_version = MODEL_VERSION

    def __init__(self) -> None:
        self.catalogue: list[tuple[int, bytes]] = []

    def root(self) -> bytes:
        h = hashlib.blake2b(b"catalogue", digest_size=32)
        for tok, entry in self.catalogue:
            h.update(tok.to_bytes(8, "little") + entry)
        return h.digest()

    def rescore(self, token_id: int, audio: bytes, genre: str | None) -> Rescored:
        if audio.startswith(b"corrupt"):
            return Rescored(accepted=False, reason="undecodable: not audio")
        pcm = hashlib.sha256(audio).digest()
        for tok, entry in self.catalogue:
            if entry == pcm:
                return Rescored(
                    accepted=False,
                    reason=f"duplicate_of:{tok}",
                    inputs={
                        "pcm_sha256": "0x" + pcm.hex(),
                        "catalogue_root": "0x" + self.root().hex(),
                        "duplicate_of": tok,
                    },
                )
        feats = hashlib.sha256(b"features" + audio).digest()
        novelty = int.from_bytes(feats[:4], "little") % 9001 + 500
        quality = int.from_bytes(feats[4:8], "little") % 8001 + 2000
        root = self.root()
        return Rescored(
            accepted=True,
            novelty_bp=novelty,
            quality_bp=quality,
            commitment=commit(pcm, root, novelty, quality),
            inputs={
                "pcm_sha256": "0x" + pcm.hex(),
                "features_sha256": "0x" + feats.hex(),
                "catalogue_root": "0x" + root.hex(),
                "catalogue_size": len(self.catalogue),
            },
            entry=pcm,
        )

    def commit(self, inputs: dict[str, Any], novelty_bp: int, quality_bp: int) -> bytes | None:
        if not (0 <= novelty_bp <= 10000 and 0 <= quality_bp <= 10000):
            return None
        pcm = bytes.fromhex(inputs["pcm_sha256"][2:])
        return commit(pcm, bytes.fromhex(inputs["catalogue_root"][2:]), novelty_bp, quality_bp)

    def accept(self, token_id: int, entry: bytes) -> None:
        self.catalogue.append((token_id, entry))

    def restore(self, entries: Iterable[tuple[int, bytes]]) -> None:
        self.catalogue = list(entries)


def commit(pcm: bytes, root: bytes, novelty: int, quality: int) -> bytes:
    body = pcm + root + novelty.to_bytes(2, "little") + quality.to_bytes(2, "little")
    return hashlib.blake2b(body + MODEL_VERSION.to_bytes(4, "little"), digest_size=32).digest()


@dataclass
class World:
    port: MemoryChainPort
    nft: str
    rewards: str
    abis: dict[str, ContractAbi]
    ipfs: MemoryContentStore
    oracle: Keypair
    validator_key: Keypair
    tmp: Path
    keys: dict[str, Keypair] = field(default_factory=dict)
    stores: list[Any] = field(default_factory=list)  # closed by `close()`

    @classmethod
    async def create(cls, tmp: Path) -> World:
        port = MemoryChainPort()
        alice, charlie = _key("Alice"), _key("Charlie")
        nft = port.deploy("ami_nft", alice.address)
        rewards = port.deploy("ami_rewards", alice.address)
        abis = {"nft": ContractAbi.load("ami_nft"), "rewards": ContractAbi.load("ami_rewards")}
        w = cls(port, nft, rewards, abis, MemoryContentStore(), alice, charlie, tmp)
        await w.call(alice, "rewards", "add_oracle", account=alice.address)
        await w.call(alice, "rewards", "add_validator", account=charlie.address)
        return w

    async def close(self) -> None:
        for s in self.stores:
            await s.close()
        self.stores.clear()

    @property
    def contracts(self) -> dict[str, ContractAbi]:
        return {self.nft: self.abis["nft"], self.rewards: self.abis["rewards"]}

    def key(self, name: str) -> Keypair:
        if name not in self.keys:
            self.keys[name] = _key(name)
        return self.keys[name]

    async def call(self, kp: Keypair, contract: str, message: str, **args: Any) -> Any:
        address = self.nft if contract == "nft" else self.rewards
        res = await contract_tx(self.port, kp, self.abis[contract], address, message, args)
        return res.value

    async def mint(self, creator: str, audio: bytes, splits: list[tuple[str, int]] | None = None) -> int:
        cid = await self.ipfs.add(audio)
        meta = await self.ipfs.add(b'{"title": "t"}')
        kp = self.key(creator)
        royalty = [(self.key(a).address, bp) for a, bp in (splits or [(creator, 10_000)])]
        token = await self.call(kp, "nft", "mint", audio_cid=cid, metadata_cid=meta, royalty_splits=royalty)
        return int(token)

    async def submit_score(self, token_id: int, r: Rescored) -> None:
        """The oracle publishes `r` as the score of `token_id` under MODEL_VERSION."""
        await self.call(
            self.oracle,
            "rewards",
            "submit_score",
            token_id=token_id,
            novelty_bp=r.novelty_bp,
            quality_bp=r.quality_bp,
            model_version=MODEL_VERSION,
            commitment=r.commitment,
        )

    async def listen(self, who: str, token: int, seconds: int = 60) -> None:
        await self.call(self.key(who), "nft", "listen", token_id=token, seconds=seconds)

    async def tag(self, who: str, token: int, tag: str) -> None:
        await self.call(self.key(who), "nft", "tag", token_id=token, tag=tag)

    @property
    def head(self) -> int:
        return self.port.blocks[-1].ref.number

    def advance_to(self, number: int) -> None:
        while self.head < number:
            self.port.produce_block()

    async def open_validator(self, name: str = "v") -> Validator:
        db = await ValidatorDb.open(self.tmp / f"{name}.sqlite")
        ledger = await WorkerStore.open(self.tmp / f"{name}-ledger.sqlite")
        self.stores += [db, ledger]
        auditor = Auditor(
            db,
            ledger,
            self.ipfs,
            {MODEL_VERSION: HashRescorer()},
            AuditOptions(epoch_blocks=EPOCH_BLOCKS, policy=POLICY),
        )
        challenger = ContractChallenger(self.port, self.validator_key, self.rewards, self.abis["rewards"])
        return Validator(self.port, self.contracts, auditor, challenger, retry_delay_s=0.01)

    def challenges_on_chain(self) -> list[tuple[int, str]]:
        out = []
        for b in self.port.blocks:
            for ev in decode_block(b, self.contracts):
                if ev.label == "Challenged":
                    out.append((ev.token_id, ev.evidence))  # type: ignore[attr-defined]
        return out


async def close_validator(v: Validator, world: World) -> None:
    """Close a validator's databases (as a process exit would)."""
    for s in (v.auditor.db, v.auditor.ledger):
        world.stores.remove(s)
        await s.close()
