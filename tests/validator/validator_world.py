"""A small AMI world for validator tests: the in-memory chain running the real contract models, an in-memory
IPFS, a deterministic stand-in scorer, and a scripted worker that can be told to cheat in one way.

`HashRescorer` is a FAKE of the scoring engine (clearly not music scoring): scores come from hashes of the
audio, duplicates are byte-identical audio, the commitment covers the PCM hash, the catalogue root and the
scores (as ami-agreement/1's does: no features hash). It follows the `offchain.audit.rescore.Rescorer` port,
so the worker and the validator here run the very same scoring rules, as they would with the real engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ami_node.abi import ContractAbi
from ami_node.events import decode_block
from ami_node.follower import FollowedBlock
from ami_node.keys import Keypair, load_keypair
from ami_node.memory import MemoryChainPort
from ami_node.tx import contract_tx
from offchain.audit.auditor import AuditOptions, Auditor
from offchain.audit.db import ValidatorDb
from offchain.audit.rescore import Rescored
from offchain.audit.validator import ContractChallenger, Validator
from offchain.economics import EpochInput, PolicyParams, SettledPayout, settle_epoch
from offchain.ipfs.store import MemoryContentStore
from offchain.pipeline.adapters import to_block_data
from offchain.store import WorkerStore
from pallets_spec.vocabulary import PayoutKind
from scoring.agreement import NOVELTY_TOLERANCE_BP

MODEL_VERSION = 7
EPOCH_BLOCKS = 20
BUDGETS = {PayoutKind.CREATE: 40_000, PayoutKind.LISTEN: 30_000, PayoutKind.DISCOVERY: 10_000,
           PayoutKind.ENGAGEMENT: 10_000, PayoutKind.ROYALTY: 10_000}
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
class Tamper:
    """How the scripted worker cheats (all None: honest)."""

    score: Callable[[int, Rescored], Rescored] | None = None  # change a score before publishing
    publish_rejected: bool = False  # publish scores for tracks the policy rejects (duplicates) as originals
    epoch_input: Callable[[EpochInput], EpochInput] | None = None  # corrupt the settlement's inputs
    payouts: Callable[[int, list[SettledPayout]], list[SettledPayout]] | None = None  # change what is paid


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


class ScriptedWorker:
    """The worker's rules, step by step: ingest finalized blocks into a WorkerStore, score new mints in token
    order against the accepted catalogue, publish scores, settle finished epochs with `settle_epoch`, pay."""

    def __init__(self, world: World, store: WorkerStore, tamper: Tamper | None = None) -> None:
        self.w = world
        self.store = store
        self.tamper = tamper or Tamper()
        self.scorer = HashRescorer()
        self.handled: set[int] = set()
        self.settled: set[int] = set()

    @classmethod
    async def open(cls, world: World, tamper: Tamper | None = None) -> ScriptedWorker:
        store = await WorkerStore.open(world.tmp / "worker.sqlite")
        world.stores.append(store)
        return cls(world, store, tamper)

    async def _ingest(self) -> None:
        cp = await self.store.checkpoint()
        start = cp[0] + 1 if cp else 1
        blocks = []
        for n in range(start, self.w.port.finalized + 1):
            b = self.w.port.blocks[n]
            blocks.append(to_block_data(FollowedBlock(b.ref, decode_block(b, self.w.contracts), b)))
        await self.store.ingest(blocks)

    async def step(self) -> None:
        await self._ingest()
        for t in await self.store.tracks():
            if t.token_id in self.handled:
                continue
            self.handled.add(t.token_id)
            audio = await self.w.ipfs.cat(t.audio_cid, max_bytes=1 << 20)
            r = self.scorer.rescore(t.token_id, audio, None)
            if r.accepted:
                assert r.entry is not None
                self.scorer.accept(t.token_id, r.entry)
            elif self.tamper.publish_rejected and r.reason and r.reason.startswith("duplicate"):
                # Scored as if the catalogue did not hold the original.
                r = HashRescorer().rescore(t.token_id, audio, None)
            else:
                continue
            if self.tamper.score is not None:
                r = self.tamper.score(t.token_id, r)
            await self.w.submit_score(t.token_id, r)
        await self._ingest()
        cp = await self.store.checkpoint()
        assert cp is not None
        epoch = 0
        while (epoch + 1) * EPOCH_BLOCKS - 1 <= cp[0]:
            if epoch not in self.settled:
                self.settled.add(epoch)
                await self._settle(epoch)
            epoch += 1

    async def _settle(self, epoch: int) -> None:
        inp = await self.store.epoch_input(epoch, EPOCH_BLOCKS)
        if self.tamper.epoch_input is not None:
            inp = self.tamper.epoch_input(inp)
        payouts = list(settle_epoch(inp, POLICY).payouts)
        if self.tamper.payouts is not None:
            payouts = self.tamper.payouts(epoch, payouts)
        for batch, i in enumerate(range(0, len(payouts), 7)):
            items = [p.on_chain().abi_fields() for p in payouts[i : i + 7]]
            await self.w.call(self.w.oracle, "rewards", "distribute", epoch=epoch, batch=batch, payouts=items)


AUDIO = {name: f"RIFF {name} ".encode() * 40 for name in ("a", "b", "c", "d")}


class Stepper(Protocol):
    async def step(self) -> None: ...


async def run_scenario(world: World, worker: Stepper) -> None:
    """Three epochs of activity plus a grace epoch: four originals, one duplicate, listens, tags, splits."""
    w = world
    t1 = await w.mint("C1", AUDIO["a"], [("C1", 7_000), ("P1", 3_000)])
    t2 = await w.mint("C2", AUDIO["b"])
    await w.mint("C1", AUDIO["c"])
    await worker.step()
    for who in ("L1", "L2", "L3"):
        await w.listen(who, t1)
    await w.listen("L1", t2, 45)
    await w.listen("L4", t2, 10)  # too short to count
    await w.tag("L2", t2, "ambient")
    w.advance_to(EPOCH_BLOCKS)  # epoch 0 ends
    await worker.step()
    t4 = await w.mint("C3", AUDIO["d"])
    dup = await w.mint("C4", AUDIO["a"])  # byte-identical copy of token 1
    await worker.step()
    for who in ("L1", "L2", "L3", "L5"):
        await w.listen(who, t2)
    await w.listen("L5", t1)
    await w.listen("L1", t4)
    await w.listen("L2", dup)
    w.advance_to(2 * EPOCH_BLOCKS)
    await worker.step()
    for who in ("L3", "L4", "L5"):
        await w.listen(who, t4)
    await w.listen("L1", t1, 90)
    await w.listen("L1", t1, 90)
    w.advance_to(3 * EPOCH_BLOCKS)
    await worker.step()
    w.advance_to(4 * EPOCH_BLOCKS + 2)  # past the last epoch's grace period
    await worker.step()


def nudge(
    token: int, by: int = NOVELTY_TOLERANCE_BP + 1, quality_by: int = 0, recommit: bool = True
) -> Callable[[int, Rescored], Rescored]:
    """Publish token `token`'s scores moved by `by` (novelty) and `quality_by` (quality) basis points; with
    `recommit` the worker also commits to the moved scores (the cleverer cheat: only the scores differ)."""

    def f(tok: int, r: Rescored) -> Rescored:
        if tok != token:
            return r
        n, q = (r.novelty_bp or 0) + by, (r.quality_bp or 0) + quality_by
        com = HashRescorer().commit(r.inputs, n, q) if recommit else r.commitment
        return replace(r, novelty_bp=n, quality_bp=q, commitment=com)

    return f
