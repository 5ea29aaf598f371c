"""An in-memory chain for the submitter's tests (`FakeChain`, with `FakeCodec` and the `Crash` it can raise
at any call) and the payouts, submitter and expected balances those tests build on."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ami_node.keys import Keypair, load_keypair
from ami_node.port import (
    Block,
    BlockRef,
    ChainUnavailable,
    DryRun,
    PoolRejected,
    RawEvent,
    SignedTx,
)
from ami_node.submitter import Payout, Submitter

REWARDS = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"  # //Bob's address stands in for the contract
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
CHARLIE = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"
NFT = "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy"


class Crash(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler in the submitter catches it."""


class FakeCodec:
    def encode_distribute(self, epoch: int, batch: int, payouts: Sequence[Payout]) -> bytes:
        body = {
            "m": "distribute",
            "epoch": epoch,
            "batch": batch,
            "payouts": [[p.id.hex(), p.to, p.amount, p.kind] for p in payouts],
        }
        return json.dumps(body).encode()

    def revert_reason(self, abi: str, message: str, dry: DryRun) -> str:
        return dry.error or "trapped"

    def paid_ids(self, block: Block, rewards: str) -> Iterable[bytes]:
        for e in block.events:
            if e.name == "ContractEmitted" and e.contract == rewards and e.data:
                body = json.loads(e.data)
                if body.get("event") == "Paid":
                    yield bytes.fromhex(body["id"])


@dataclass
class FakeChain:
    """A tiny chain: one signer's nonce, a pool, instant blocks, a toy rewards contract (JSON calls)."""

    auto_block: bool = True
    blocks: list[Block] = field(default_factory=list)
    nonce: int = 0
    pool: dict[int, tuple[SignedTx, Any]] = field(default_factory=dict)
    paid: dict[bytes, int] = field(default_factory=dict)  # id -> amount
    batches: set[tuple[int, int]] = field(default_factory=set)
    balances: dict[str, int] = field(default_factory=dict)
    oracle_ok: bool = True
    reject_next: list[int] = field(default_factory=list)
    unavailable_after_accept: int = 0
    crash_on: dict[str, int] = field(default_factory=dict)  # method -> countdown
    submits: int = 0
    collisions: int = 0
    max_calls_that_fit: int = 1_000_000
    fail_on_chain: set[int] = field(default_factory=set)
    max_weight: tuple[int, int] = (2_000_000, 500_000)
    extrinsic_sizes: list[int] = field(default_factory=list)
    calls_log: list[str] = field(default_factory=list)
    nonce_at: dict[str, int] = field(default_factory=dict)  # block hash -> nonce after it

    def __post_init__(self) -> None:
        self._produce([])

    # ---- helpers
    def _maybe_crash(self, method: str) -> None:
        if method in self.crash_on:
            self.crash_on[method] -= 1
            if self.crash_on[method] <= 0:
                del self.crash_on[method]
                raise Crash(method)

    def _execute(self, call: Any, events: list[RawEvent], ext_index: int) -> bool:
        kind = call[0]
        if kind == "batch":
            if len(call[1]) > self.max_calls_that_fit:
                return False  # like a batch whose later calls run out of the gas their dry runs promised
            snapshot = (dict(self.paid), set(self.batches), dict(self.balances))
            for sub in call[1]:
                if not self._execute(sub, events, ext_index):
                    self.paid, self.batches, self.balances = snapshot
                    return False
            return True
        if kind == "call":  # a runtime call: Balances.transfer_keep_alive only
            _, pallet, function, params = call
            if params["value"] <= 0:
                return False
            self.balances[params["dest"]] = self.balances.get(params["dest"], 0) + params["value"]
            events.append(RawEvent(len(events), pallet, "Transfer", params, (), ext_index))
            return True
        _, contract, data, gas = call
        if json.loads(data).get("token") in self.fail_on_chain:
            return False  # passes its dry run, fails when dispatched
        ok, out_events = self._run_contract(contract, data, mutate=True)
        if ok:
            for body in out_events:
                events.append(
                    RawEvent(
                        len(events),
                        "Contracts",
                        "ContractEmitted",
                        {},
                        (),
                        ext_index,
                        contract=contract,
                        data=json.dumps(body).encode(),
                    )
                )
        return ok

    def _run_contract(self, contract: str, data: bytes, mutate: bool) -> tuple[bool, Any]:
        body = json.loads(data)
        if body["m"] == "distribute":
            if not self.oracle_ok:
                return False, "NotOracle"
            if (body["epoch"], body["batch"]) in self.batches:
                return False, "BatchAlreadyPaid"
            ids = [bytes.fromhex(p[0]) for p in body["payouts"]]
            if any(i in self.paid for i in ids):
                return False, "PayoutAlreadyPaid"
            if mutate:
                self.batches.add((body["epoch"], body["batch"]))
                for pid, to, amount, _kind in body["payouts"]:
                    self.paid[bytes.fromhex(pid)] = amount
                    self.balances[to] = self.balances.get(to, 0) + amount
            return True, [{"event": "Paid", "id": p[0]} for p in body["payouts"]]
        if body["m"] == "listen":
            if body["token"] == 0:
                return False, "TokenNotFound"
            return True, [{"event": "Listened", "token": body["token"]}]
        raise AssertionError(body)

    def _produce(self, txs: list[tuple[SignedTx, Any]]) -> None:
        number = len(self.blocks)
        events: list[RawEvent] = []
        hashes = []
        for i, (tx, call) in enumerate(txs):
            hashes.append(tx.hash)
            ok = self._execute(call, events, i)
            events.append(
                RawEvent(
                    len(events),
                    "System",
                    "ExtrinsicSuccess" if ok else "ExtrinsicFailed",
                    {} if ok else {"dispatch_error": {"Module": {"error": "ContractReverted"}}},
                    (),
                    i,
                )
            )
        h = "0x" + hashlib.blake2b(f"{number}:{hashes}".encode(), digest_size=32).hexdigest()
        parent = self.blocks[-1].ref.hash if self.blocks else "0x" + "00" * 32
        self.blocks.append(Block(BlockRef(number, h), parent, tuple(hashes), tuple(events)))
        self.nonce_at[h] = self.nonce  # the signer's nonce in this block's state

    def new_block(self) -> None:
        """Include every ready transaction (consecutive nonces), drop expired ones."""
        ready = []
        number = len(self.blocks)
        for n in sorted(self.pool):
            tx, call = self.pool[n]
            if number >= tx.era_death:
                del self.pool[n]
                continue
            if n == self.nonce:
                ready.append((tx, call))
                del self.pool[n]
                self.nonce += 1
        self._produce(ready)

    def lose_pool(self) -> None:
        self.pool.clear()

    # ---- ChainPort
    async def finalized_head(self) -> BlockRef:
        if self.auto_block and self.nonce in self.pool:
            self.new_block()  # a real node keeps authoring blocks from what its pool holds
        return self.blocks[-1].ref

    async def best_head(self) -> BlockRef:
        return self.blocks[-1].ref

    async def block_hash(self, number: int) -> str | None:
        return self.blocks[number].ref.hash if number < len(self.blocks) else None

    async def block(self, number: int) -> Block:
        self._maybe_crash("block")
        return self.blocks[number]

    async def finalized_heads(self) -> AsyncIterator[BlockRef]:  # pragma: no cover - unused here
        yield self.blocks[-1].ref

    async def account_nonce(self, address: str, at: str) -> int:
        return self.nonce_at[at]

    async def account_next_index(self, address: str) -> int:
        n = self.nonce
        while n in self.pool:
            n += 1
        return n

    async def free_balance(self, address: str) -> int:
        return self.balances.get(address, 0)

    async def compose_call(self, pallet: str, function: str, params: dict[str, Any]) -> Any:
        return ("call", pallet, function, params)

    async def contract_dry_run(self, contract: str, data: bytes, origin: str, value: int = 0) -> DryRun:
        self._maybe_crash("dry_run")
        ok, out = self._run_contract(contract, data, mutate=False)
        n = len(json.loads(data).get("payouts", [1]))
        return DryRun(ok, b"", None if ok else out, (1000 * n + 5000, 100 * n + 500), 0)

    async def contract_call(
        self, contract: str, data: bytes, gas_limit: tuple[int, int], value: int = 0, **_: Any
    ) -> Any:
        return ("contract", contract, data, gas_limit)  # a storage_deposit_limit changes nothing here

    async def batch_all(self, calls: Sequence[Any]) -> Any:
        return ("batch", list(calls))

    async def call_weight(self, call: Any, signer: str) -> tuple[int, int]:
        def one(c: Any) -> tuple[int, int]:
            return (1000, 10) if c[0] == "call" else c[3]

        if call[0] == "batch":
            return (sum(one(c)[0] for c in call[1]), sum(one(c)[1] for c in call[1]))
        return one(call)

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        return self.max_weight

    async def sign(self, call: Any, keypair: Keypair, nonce: int, era_period: int = 64) -> SignedTx:
        self._maybe_crash("sign")
        await asyncio.sleep(0)  # let concurrent signers interleave between reading the nonce and submitting
        birth = self.blocks[-1].ref.number
        data = json.dumps([nonce, birth, repr(call)]).encode()
        h = "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()
        tx = SignedTx(h, data, keypair.address, nonce, birth, birth + era_period)
        self._calls[h] = call
        return tx

    @property
    def _calls(self) -> dict[str, Any]:
        if not hasattr(self, "_call_store"):
            self._call_store: dict[str, Any] = {}
        return self._call_store

    async def submit(self, tx: SignedTx) -> str:
        self._maybe_crash("submit")
        self.submits += 1
        if self.reject_next:
            code = self.reject_next.pop(0)
            raise PoolRejected(
                code, "Priority is too low" if code == 1014 else "Transaction is outdated", True
            )
        if tx.nonce < self.nonce:
            raise PoolRejected(1010, "Transaction is outdated", True)
        if tx.nonce in self.pool:
            if self.pool[tx.nonce][0].hash == tx.hash:
                raise PoolRejected(1013, "Transaction Already Imported", True)
            self.collisions += 1
            raise PoolRejected(1014, "Priority is too low", True)
        self.pool[tx.nonce] = (tx, self._calls[tx.hash])
        self.calls_log.append(tx.hash)
        if self.unavailable_after_accept:
            self.unavailable_after_accept -= 1
            raise ChainUnavailable("connection dropped")
        self._maybe_crash("after_submit")
        if self.auto_block:
            self.new_block()
        return tx.hash

    async def close(self) -> None:
        pass


ALICE = load_keypair("//Alice")


def payouts(n: int, epoch: int = 1, amount: int = 10) -> list[Payout]:
    return [
        Payout(
            id=hashlib.sha256(f"{epoch}:{i}".encode()).digest(),
            to=BOB if i % 2 else CHARLIE,
            amount=amount + i,
            kind=i % 5,
        )
        for i in range(n)
    ]


def submitter(chain: FakeChain, db: Path, **kw: Any) -> Submitter:
    return Submitter(chain, ALICE, db, rewards=REWARDS, codec=FakeCodec(), poll_s=0.0, **kw)


def expected_balances(ps: list[Payout]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in ps:
        out[p.to] = out.get(p.to, 0) + p.amount
    return out
