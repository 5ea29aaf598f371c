"""An in-memory ChainPort for tests: blocks, finality, a nonce-checking pool and the AMI contract models.

Not a Substrate emulator (that is `ami_node.devnet`): calls are plain `MemoryCall` objects, signed
transactions are JSON. What it keeps faithful is what callers of the port rely on: block numbers and parent
hashes, finality notices that may skip numbers, pool-aware nonces and pool errors (1010 stale, 1014
priority), Contracts.call / Utility.batch_all (all or nothing) executed by `pallets_spec.runtime` with real
ink! ABI bytes, Contracts.ContractEmitted events with signature topics, and System.ExtrinsicSuccess /
ExtrinsicFailed.

Test helpers: `deploy(name, owner)`, `produce_block()`, `finalize(n)`, `emit(contract, topics, data)`,
`fund(address, amount)`, `skip_notices` (numbers whose finality notice is never sent), `down` (every
call but the finality notices raises ChainUnavailable), `rewrite_from(n)` (the node now serves another chain
from block n).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from scalecodec.utils.ss58 import ss58_decode, ss58_encode

from ami_node.keys import Keypair, load_keypair
from ami_node.port import (
    Block,
    BlockRef,
    CallError,
    ChainError,
    ChainUnavailable,
    DryRun,
    PoolRejected,
    RawEvent,
    SignedTx,
)
from pallets_spec import runtime
from pallets_spec.abi import SpecAbi

__all__ = ["DEV_BALANCE", "MemoryCall", "MemoryChainPort"]

DEV_BALANCE = 10**21
# The calls this fake executes, with their parameter names (as in substrate-contracts-node's metadata).
_SUPPORTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("Balances", "transfer_keep_alive"): ("dest", "value"),
    ("Balances", "transfer_allow_death"): ("dest", "value"),
    ("Contracts", "call"): ("dest", "value", "gas_limit", "storage_deposit_limit", "data"),
    ("Utility", "batch_all"): ("calls",),
}
CALL_WEIGHT = (500_000_000, 50_000)
WEIGHT_PER_BYTE = (1_000_000, 100)
MAX_EXTRINSIC_WEIGHT = (1_500_000_000_000, 3_932_160)


def _h(*parts: bytes) -> str:
    return "0x" + blake2b(b"".join(parts), digest_size=32).hexdigest()


def _account(address: str) -> bytes:
    try:
        return bytes.fromhex(ss58_decode(address))
    except Exception:
        raise CallError(f"not an SS58 address: {address!r}") from None


@dataclass(frozen=True)
class MemoryCall:
    """An opaque call of the memory chain."""

    pallet: str
    function: str
    params: dict[str, Any] = field(hash=False)


class _Failure(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class MemoryChainPort:
    """See the module docstring. `instant=True` seals a block on every accepted submit;
    `auto_finalize=True` finalizes each block as soon as it is produced."""

    def __init__(self, *, instant: bool = True, auto_finalize: bool = True) -> None:
        self.instant = instant
        self.auto_finalize = auto_finalize
        genesis = Block(BlockRef(0, _h(b"genesis")), "0x" + "00" * 32, (), ())
        self.blocks: list[Block] = [genesis]
        self.finalized = 0
        self.balances: dict[str, int] = {}
        self.nonces: dict[str, int] = {}
        self.pool: list[tuple[SignedTx, MemoryCall]] = []
        self.contracts: dict[str, Any] = {}
        self.skip_notices: set[int] = set()
        self.down = False
        self._pending_events: list[tuple[str, str, Any, tuple[bytes, ...], str | None, bytes | None]] = []
        self._signed: dict[str, MemoryCall] = {}
        self._waiters: list[asyncio.Event] = []
        self._salt = b""
        self._notified = 0  # the finalized number of the latest notice sent
        self._nonces_at: dict[str, dict[str, int]] = {genesis.ref.hash: {}}  # block hash -> nonces after it
        for name in ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"):
            self.fund(load_keypair(f"//{name}").address, DEV_BALANCE)

    # ------------------------------------------------------------------ test helpers

    def fund(self, address: str, amount: int) -> None:
        self.balances[address] = self.balances.get(address, 0) + amount

    def deploy(self, name: str, owner: str) -> str:
        """Instantiate model `name` ("ami_nft", "ami_rewards") owned by `owner`; returns its address."""
        ctor = SpecAbi(name).encode_constructor("new")
        state, outcome = runtime.instantiate(name, ctor, _account(owner))
        if state is None:
            raise ChainError(f"instantiating {name} failed: {outcome.error}")
        address = ss58_encode(blake2b(f"{name}/{len(self.contracts)}".encode(), digest_size=32).digest(), 42)
        self.contracts[address] = state
        return address

    def emit(self, contract: str, topics: Sequence[bytes], data: bytes) -> None:
        """Queue a raw Contracts.ContractEmitted for the next block (phase: initialization)."""
        self._pending_events.append(("Contracts", "ContractEmitted", {"contract": contract},
                                     tuple(topics), contract, bytes(data)))

    def produce_block(self) -> BlockRef:
        """Seal the next block: apply pooled transactions in order, then queued raw events."""
        parent = self.blocks[-1]
        number = parent.ref.number + 1
        events: list[RawEvent] = []
        ext_hashes: list[str] = []

        def add(pallet: str, name: str, attrs: Any, topics: tuple[bytes, ...] = (),
                xt: int | None = None, contract: str | None = None, data: bytes | None = None) -> None:
            events.append(RawEvent(len(events), pallet, name, attrs, topics, xt, contract, data))

        for pallet, name, attrs, topics, contract, data in self._pending_events:
            add(pallet, name, attrs, topics, None, contract, data)
        self._pending_events.clear()
        ready = sorted(self.pool, key=lambda p: (p[0].signer, p[0].nonce))
        self.pool = []
        for tx, call in ready:
            if tx.nonce > self.nonces.get(tx.signer, 0):
                self.pool.append((tx, call))  # future: waits for the gap to fill, as in a real pool
                continue
            if tx.nonce < self.nonces.get(tx.signer, 0) or not tx.era_birth <= number < tx.era_death:
                continue  # stale or expired: dropped from the pool, never included
            xt = len(ext_hashes)
            ext_hashes.append(tx.hash)
            self.nonces[tx.signer] = tx.nonce + 1
            snapshot = (copy.deepcopy(self.contracts), dict(self.balances))
            emitted: list[tuple[str, bytes, tuple[bytes, ...]]] = []
            try:
                self._execute(call, tx.signer, number, emitted)
            except _Failure as exc:
                self.contracts, self.balances = snapshot
                add("System", "ExtrinsicFailed", {"dispatch_error": exc.error}, (), xt)
                continue
            for contract, data, topics in emitted:
                add("Contracts", "ContractEmitted", {"contract": contract, "data": "0x" + data.hex()},
                    topics, xt, contract, data)
            add("System", "ExtrinsicSuccess", {}, (), xt)
        body = json.dumps([ext_hashes, [(e.name, e.data.hex() if e.data else "") for e in events]]).encode()
        ref = BlockRef(number, _h(parent.ref.hash.encode(), number.to_bytes(8, "little"), self._salt, body))
        self.blocks.append(Block(ref, parent.ref.hash, tuple(ext_hashes), tuple(events)))
        self._nonces_at[ref.hash] = dict(self.nonces)
        if self.auto_finalize:
            self.finalize(number)
        return ref

    def finalize(self, number: int | None = None) -> None:
        target = self.blocks[-1].ref.number if number is None else number
        if target > self.blocks[-1].ref.number:
            raise ValueError(f"cannot finalize #{target}: best block is #{self.blocks[-1].ref.number}")
        self.finalized = max(self.finalized, target)
        if self.finalized not in self.skip_notices:
            self._notified = self.finalized
            for waiter in self._waiters:
                waiter.set()

    def rewrite_from(self, number: int) -> None:
        """Replace blocks >= `number` with same-numbered blocks of different hashes (another chain)."""
        self._salt += b"x"
        old = self.blocks[number:]
        self.blocks = self.blocks[:number]
        for b in old:
            parent = self.blocks[-1].ref.hash
            ref = BlockRef(b.ref.number, _h(parent.encode(), self._salt, b.ref.hash.encode()))
            self._nonces_at[ref.hash] = self._nonces_at.get(b.ref.hash, {})
            self.blocks.append(Block(ref, parent, b.extrinsic_hashes, b.events))

    # ------------------------------------------------------------------ execution

    def _execute(self, call: MemoryCall, signer: str, number: int,
                 emitted: list[tuple[str, bytes, tuple[bytes, ...]]]) -> None:
        p = call.params
        if call.pallet == "Balances":
            amount = int(p["value"])
            if self.balances.get(signer, 0) < amount:
                raise _Failure("Module(Balances::InsufficientBalance)")
            self.balances[signer] -= amount
            self.fund(str(p["dest"]), amount)
        elif call.pallet == "Contracts":
            state = self.contracts.get(str(p["dest"]))
            if state is None:
                raise _Failure("Module(Contracts::ContractNotFound)")
            ctx = runtime.ExecContext(block_number=number, address=_account(str(p["dest"])))
            out = runtime.call(state, bytes(p["data"]), _account(signer), int(p.get("value", 0)), ctx)
            if out.trapped:
                raise _Failure("Module(Contracts::ContractTrapped)")
            if out.reverted:
                raise _Failure("Module(Contracts::ContractReverted)")
            emitted.extend((str(p["dest"]), e.data, tuple(e.topics)) for e in out.events)
        else:  # Utility.batch_all: the caller's snapshot makes it all or nothing
            for inner in p["calls"]:
                self._execute(inner, signer, number, emitted)

    # ------------------------------------------------------------------ ChainPort

    def _check(self) -> None:
        if self.down:
            raise ChainUnavailable("memory chain is down (test switch)")

    async def finalized_head(self) -> BlockRef:
        self._check()
        return self.blocks[self.finalized].ref

    async def best_head(self) -> BlockRef:
        self._check()
        return self.blocks[-1].ref

    async def block_hash(self, number: int) -> str | None:
        self._check()
        return self.blocks[number].ref.hash if 0 <= number < len(self.blocks) else None

    async def block(self, number: int) -> Block:
        self._check()
        if not 0 <= number < len(self.blocks):
            raise ChainError(f"block #{number} does not exist yet")
        return self.blocks[number]

    async def finalized_heads(self) -> AsyncIterator[BlockRef]:
        waiter = asyncio.Event()
        self._waiters.append(waiter)
        last = -1
        try:
            while True:
                waiter.clear()  # before the check, so a notice sent after it still wakes the wait
                if self._notified > last:
                    last = self._notified
                    yield self.blocks[last].ref
                    continue
                await waiter.wait()
        finally:
            self._waiters.remove(waiter)

    async def account_next_index(self, address: str) -> int:
        self._check()
        n = self.nonces.get(address, 0)
        pooled = {tx.nonce for tx, _ in self.pool if tx.signer == address}
        while n in pooled:
            n += 1
        return n

    async def account_nonce(self, address: str, at: str) -> int:
        self._check()
        if at not in self._nonces_at:
            raise ChainError(f"unknown block {at}")
        return self._nonces_at[at].get(address, 0)

    async def free_balance(self, address: str) -> int:
        self._check()
        _account(address)
        return self.balances.get(address, 0)

    async def compose_call(self, pallet: str, function: str, params: dict[str, Any]) -> Any:
        self._check()
        names = _SUPPORTED.get((pallet, function))
        if names is None:
            known = ", ".join(f"{p}.{f}" for p, f in sorted(_SUPPORTED))
            raise CallError(f"memory chain has no call {pallet}.{function}; it supports {known}")
        if set(params) != set(names):
            raise CallError(
                f"bad arguments for {pallet}.{function}: got {sorted(params)}, expected {list(names)}"
            )
        if "dest" in params:
            _account(str(params["dest"]))
        if "value" in params and (not isinstance(params["value"], int) or params["value"] < 0):
            raise CallError(f"bad arguments for {pallet}.{function}: value must be a non-negative int")
        if "calls" in params and not all(isinstance(c, MemoryCall) for c in params["calls"]):
            raise CallError("Utility.batch_all takes calls composed by this memory chain")
        return MemoryCall(pallet, function, dict(params))

    async def contract_dry_run(self, contract: str, data: bytes, origin: str, value: int = 0) -> DryRun:
        self._check()
        state = self.contracts.get(contract)
        if state is None:
            return DryRun(False, b"", "Module(Contracts::ContractNotFound)", (0, 0), 0)
        out = runtime.dry_run(state, bytes(data), _account(origin), value)
        weight = await self.call_weight(MemoryCall("Contracts", "call", {"data": data}), origin)
        if out.trapped:
            return DryRun(False, b"", "Module(Contracts::ContractTrapped)", weight, 0)
        return DryRun(not out.reverted, out.output, "reverted" if out.reverted else None, weight, 0)

    async def contract_call(self, contract: str, data: bytes, gas_limit: tuple[int, int], value: int = 0,
                            storage_deposit_limit: int | None = None) -> Any:
        return await self.compose_call("Contracts", "call", {
            "dest": contract, "value": value, "gas_limit": gas_limit,
            "storage_deposit_limit": storage_deposit_limit, "data": bytes(data)})

    async def batch_all(self, calls: Sequence[Any]) -> Any:
        if not calls:
            raise CallError("Utility.batch_all needs at least one call")
        return await self.compose_call("Utility", "batch_all", {"calls": list(calls)})

    async def call_weight(self, call: Any, signer: str) -> tuple[int, int]:
        self._check()
        if call.pallet == "Utility":
            parts = [await self.call_weight(c, signer) for c in call.params["calls"]]
            return sum(p[0] for p in parts), sum(p[1] for p in parts)
        size = len(call.params.get("data", b""))
        return CALL_WEIGHT[0] + WEIGHT_PER_BYTE[0] * size, CALL_WEIGHT[1] + WEIGHT_PER_BYTE[1] * size

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        self._check()
        return MAX_EXTRINSIC_WEIGHT

    async def sign(self, call: Any, keypair: Keypair, nonce: int, era_period: int = 64) -> SignedTx:
        self._check()
        birth = self.finalized
        body = json.dumps({"call": repr(call), "signer": keypair.address, "nonce": nonce, "era": birth})
        body_bytes = body.encode()
        data = body_bytes + keypair.sign(body_bytes)
        tx = SignedTx(_h(data), data, keypair.address, nonce, birth, birth + era_period)
        self._signed[tx.hash] = call
        return tx

    async def submit(self, tx: SignedTx) -> str:
        self._check()
        call = self._signed.get(tx.hash)
        if call is None:
            raise PoolRejected(1010, "Invalid Transaction: bad signature (not signed here)", False)
        if any(p[0].hash == tx.hash for p in self.pool):
            return tx.hash
        if tx.nonce < self.nonces.get(tx.signer, 0):
            raise PoolRejected(1010, "Invalid Transaction: Transaction is outdated", True)
        if tx.era_death <= self.blocks[-1].ref.number + 1:
            raise PoolRejected(1010, "Invalid Transaction: Transaction has an ancient birth block", False)
        if any(p[0].signer == tx.signer and p[0].nonce == tx.nonce for p in self.pool):
            raise PoolRejected(1014, "Priority is too low", True)
        self.pool.append((tx, call))
        if self.instant:
            self.produce_block()
        return tx.hash

    async def close(self) -> None:
        return None
