"""The devnet's chain: block production on the best head, finality, reorgs and fault switches.

Synchronous and single-threaded on purpose: the websocket server calls it from its event loop, so there is
one writer and no locks. Everything a client sees (headers, extrinsics, System.Events, storage values) is
SCALE-encoded with the shipped substrate-contracts-node metadata (see meta.py). The pool (pool.py), dispatch
(dispatch.py), fees (fees.py) and the storage encoding (storage.py) are their own modules.
Not a real trie: state and extrinsics roots are blake2b-256 digests of the sorted storage / extrinsic hashes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from substrateinterface import Keypair

from ami_node.devnet.dispatch import BlockBuilder
from ami_node.devnet.extrinsic import Extrinsic, encode_compact, parse_extrinsic
from ami_node.devnet.meta import Runtime, blake2_256, hexstr, runtime
from ami_node.devnet.pool import TxPool
from ami_node.devnet.state import (
    DEV_BALANCE,
    DEV_SEEDS,
    STORAGE_HISTORY,
    ArchivedState,
    Block,
    ContractRecord,
    DispatchFailure,
    Faults,
    Listener,
    PoolTx,
    RpcError,
    WorldState,
)
from ami_node.devnet.storage import archived, materialize

__all__ = ["Block", "ContractRecord", "Devnet", "Faults", "RpcError", "WorldState"]


class Devnet:
    """One chain. Call `submit`, `produce_block`, `finalize`, `reorg`; subscribe with `listeners`."""

    def __init__(
        self,
        *,
        finality_lag: int = 0,
        store: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rt: Runtime = runtime()
        self.listeners: list[Listener] = []
        self.faults = Faults(finality_lag=finality_lag)
        self.clock = clock
        self.time_offset_ms = 0
        self.txpool = TxPool(self)
        self.fork_counter = 0
        self.store = store
        self.blocks: list[Block] = []  # canonical chain by number
        self.by_hash: dict[bytes, Block] = {}  # every block ever built, retracted forks included
        self.snapshots: dict[
            bytes, WorldState
        ] = {}  # post-state of unfinalized blocks and the finalized head
        self.finalized_number = 0
        loaded = store.load() if store is not None else None
        if loaded is not None:
            self.state, blocks, self.finalized_number = loaded
            for b in blocks:
                self.blocks.append(b)
                self.by_hash[b.hash] = b
            # the persisted head's storage is rebuilt; older states are gone (like a pruned node)
            self.blocks[-1].storage = self._materialize(self.blocks[-1].number, self.blocks[-1].events)
            self.finalized_number = len(self.blocks) - 1
        else:
            self.state = self._genesis_state()
            self._genesis_block()

    # -- genesis
    def _genesis_state(self) -> WorldState:
        st = WorldState()
        for name in DEV_SEEDS:
            for suri in (f"//{name}", f"//{name}//stash"):
                who = Keypair.create_from_uri(suri).public_key
                st.accounts[who] = (0, DEV_BALANCE, 0)
                st.total_issuance += DEV_BALANCE
        st.sudo_key = Keypair.create_from_uri("//Alice").public_key
        return st

    def _genesis_block(self) -> None:
        storage = self._materialize(0, self.rt.encode_events([]))
        block = self._seal(0, b"\x00" * 32, [], storage, self.rt.encode_events([]), 0, [])
        self._append(block)
        if self.store is not None:
            self.store.save(self, [block])

    @property
    def genesis_hash(self) -> bytes:
        return self.blocks[0].hash

    @property
    def best(self) -> Block:
        return self.blocks[-1]

    @property
    def finalized(self) -> Block:
        return self.blocks[self.finalized_number]

    def block_by_number(self, n: int) -> Block | None:
        return self.blocks[n] if 0 <= n < len(self.blocks) else None

    def emit(self, kind: str, payload: Any) -> None:
        """Tell every listener (the server's subscriptions): "new_head", "finalized", "tx" (hash, status)."""
        for listener in list(self.listeners):
            listener(kind, payload)

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.time_offset_ms

    def advance_time(self, ms: int) -> None:
        self.time_offset_ms += ms

    # -- storage
    def _materialize(self, number: int, events: bytes) -> dict[bytes, bytes]:
        return materialize(self.rt, self.state, self.blocks, number, events)

    def storage_at(self, block_hash: bytes | None) -> dict[bytes, bytes]:
        block = self.best if block_hash is None else self.by_hash.get(block_hash)
        if block is None:
            raise RpcError(
                4003,
                "Client error: UnknownBlock",
                f"Header was not found in the database: {hexstr(block_hash or b'')}",
            )
        if block.storage is None:
            return ArchivedState(archived(self.rt, block), block.hash)
        return block.storage

    # -- blocks
    def _seal(
        self,
        number: int,
        parent: bytes,
        extrinsics: list[bytes],
        storage: dict[bytes, bytes],
        events: bytes,
        timestamp: int,
        digest: list[bytes],
    ) -> Block:
        state_root = blake2_256(b"".join(k + blake2_256(v) for k, v in sorted(storage.items())))
        ext_root = blake2_256(b"".join(blake2_256(x) for x in extrinsics))
        header = (
            parent
            + encode_compact(number)
            + state_root
            + ext_root
            + encode_compact(len(digest))
            + b"".join(digest)
        )
        return Block(
            number,
            blake2_256(header),
            parent,
            header,
            state_root,
            ext_root,
            digest,
            extrinsics,
            events,
            timestamp,
            storage,
            self.clock(),
        )

    def _append(self, block: Block) -> None:
        self.blocks.append(block)
        self.by_hash[block.hash] = block
        stale = block.number - STORAGE_HISTORY
        if stale > 0 and self.blocks[stale].storage is not None:
            self.blocks[stale].storage = None

    # -- pool (see TxPool)
    @property
    def pool(self) -> dict[bytes, dict[int, PoolTx]]:
        """Pooled transactions by signer, then nonce."""
        return self.txpool.by_signer

    @property
    def pool_by_hash(self) -> dict[bytes, PoolTx]:
        return self.txpool.by_hash

    def submit(self, raw: bytes) -> bytes:
        """Validate and pool an extrinsic; returns its hash or raises RpcError with substrate's codes."""
        return self.txpool.submit(raw)

    def has_ready(self) -> bool:
        return self.txpool.has_ready()

    def next_index(self, who: bytes) -> int:
        return self.txpool.next_index(who)

    def pending(self) -> list[bytes]:
        return self.txpool.pending()

    # -- blocks
    def produce_block(self, *, fork_marker: int | None = None) -> Block:
        """Build one block on the best head from the pool's ready transactions (possibly empty)."""
        parent = self.best
        if self._needs_snapshots() and parent.hash not in self.snapshots:
            self.snapshots[parent.hash] = self.state.copy()
        number = parent.number + 1
        ts = max(self.now_ms(), self.state.timestamp + 1)
        builder = BlockBuilder(self, number)
        builder.apply_inherent(ts)
        included = self._fill(builder, number)
        digest = []
        if fork_marker is not None:
            digest.append(
                b"\x00"
                + encode_compact(len(b"ami-fork") + 4)
                + b"ami-fork"
                + fork_marker.to_bytes(4, "little")
            )
        events = encode_compact(len(builder.encoded)) + b"".join(builder.encoded)
        extrinsics = builder.extrinsics
        # System.BlockHash(n-1) etc. must see the parent; the block itself is appended after sealing
        storage = self._materialize(number, events)
        block = self._seal(number, parent.hash, extrinsics, storage, events, ts, digest)
        self._append(block)
        self.txpool.included(included)
        stale = self.txpool.purge_stale(block.number)
        if self._needs_snapshots():
            self.snapshots[block.hash] = self.state.copy()
        self.emit("new_head", block)
        for tx in included:
            self.emit("tx", (tx.ext.hash, {"inBlock": hexstr(block.hash)}))
        for tx in stale:
            self.emit("tx", (tx.ext.hash, "invalid"))
        self._advance_finality(persist=False)  # saved just below, with the block
        if self.store is not None:
            self.store.save(self, [block])
        return block

    def _fill(self, builder: BlockBuilder, number: int) -> list[PoolTx]:
        """Apply the pool's ready transactions while the block has room; returns those included. Senders go
        in order of their oldest pooled transaction; each contributes its consecutive nonces."""
        included: list[PoolTx] = []
        for who in self.txpool.senders():
            for tx in self.txpool.ready_chain(who):
                if not builder.fits(tx):
                    return included
                reason = self.txpool.revalidate(tx, number)
                if reason is not None:
                    self.txpool.remove(tx)
                    self.emit("tx", (tx.ext.hash, "invalid"))
                    break
                builder.apply(tx)
                included.append(tx)
        return included

    def _needs_snapshots(self) -> bool:
        f = self.faults
        return f.finality_lag > 0 or f.hold_finality or f.finality_delay_ms > 0

    def _advance_finality(self, *, persist: bool = True) -> None:
        if self.faults.hold_finality:
            return
        target = max(self.best.number - self.faults.finality_lag, self.finalized_number)
        if self.faults.finality_delay_ms > 0:
            ripe = self.clock() - self.faults.finality_delay_ms / 1000
            while target > self.finalized_number and self.blocks[target].built_at > ripe:
                target -= 1
        self.finalize(target, persist=persist)

    def advance_finality(self) -> None:
        """Finalize what the switches allow now (the server calls it when a finality delay has passed)."""
        self._advance_finality()

    def finalize(self, target: int, *, persist: bool = True) -> None:
        target = min(target, self.best.number)
        if target <= self.finalized_number:
            return
        newly = self.blocks[self.finalized_number + 1 : target + 1]
        self.finalized_number = target
        for h in [h for h, s in self.snapshots.items() if self.by_hash[h].number < target]:
            del self.snapshots[h]
        for b in newly:
            for x in b.extrinsics:
                h = blake2_256(x)
                self.emit("tx", (h, {"finalized": hexstr(b.hash)}))
        if self.faults.skip_finalized_notices > 0:
            self.faults.skip_finalized_notices -= 1
        else:
            self.emit("finalized", self.finalized)
        if self.store is not None and persist:
            self.store.save(self, [])

    def reorg(self, depth: int, *, new_blocks: int | None = None) -> list[Block]:
        """Replace the last `depth` unfinalized blocks by `new_blocks` (default depth) new ones; their
        transactions go back to the pool and are re-included (watchers see retracted, then inBlock)."""
        if depth < 1:
            raise ValueError("reorg depth must be at least 1")
        if self.best.number - depth < self.finalized_number:
            raise ValueError(
                f"cannot reorg {depth} blocks: {self.best.number - self.finalized_number} are unfinalized"
            )
        target = self.blocks[self.best.number - depth]
        snap = self.snapshots.get(target.hash)
        if snap is None:
            raise ValueError(
                "no state snapshot for the fork point (set a finality lag or hold finality first)"
            )
        removed = self.blocks[target.number + 1 :]
        del self.blocks[target.number + 1 :]
        self.state = snap.copy()
        for b in removed:
            self.snapshots.pop(b.hash, None)
        target.storage = self._materialize(target.number, target.events)
        requeue: list[Extrinsic] = []
        for b in removed:
            for x in b.extrinsics[1:]:
                ext = parse_extrinsic(x)
                self.txpool.banned.pop(ext.hash, None)
                self.emit("tx", (ext.hash, {"retracted": hexstr(b.hash)}))
                requeue.append(ext)
        for ext in requeue:
            try:
                self.txpool.insert(ext, notify=False)
            except RpcError:
                self.emit("tx", (ext.hash, "dropped"))
        self.fork_counter += 1
        out = []
        saved_lag = self.faults.finality_lag
        for _ in range(new_blocks if new_blocks is not None else depth):
            out.append(self.produce_block(fork_marker=self.fork_counter))
        self.faults.finality_lag = saved_lag
        return out

    def module_error(self, pallet: str, name: str) -> DispatchFailure:
        e = self.rt.module_error(pallet, name)
        return DispatchFailure(
            {"Module": {"index": e.pallet_index, "error": "0x" + bytes([e.error_index, 0, 0, 0]).hex()}},
            f"{pallet}.{name}",
        )

    # -- faults
    def set_faults(self, **changes: Any) -> Faults:
        """Change some switches at once; raises ValueError (pydantic's, naming the bad switch) and then
        changes nothing."""
        try:
            faults = Faults.model_validate({**self.faults.model_dump(), **changes})
        except ValidationError as exc:
            raise ValueError(f"bad fault switches: {exc.errors(include_url=False)}") from None
        self.faults = faults
        if not self.faults.hold_finality:
            self._advance_finality()
        return self.faults
