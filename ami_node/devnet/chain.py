"""The devnet's chain core: accounts, transaction pool, block production, dispatch, finality, forks, faults.

Synchronous and single-threaded on purpose: the websocket server calls it from its event loop, so there is
one writer and no locks. Everything a client sees (headers, extrinsics, System.Events, storage values) is
SCALE-encoded with the shipped substrate-contracts-node metadata (see meta.py).
Not a real trie: state and extrinsics roots are blake2b-256 digests of the sorted storage / extrinsic hashes.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ami_node.devnet import contracts as cx
from ami_node.devnet.extrinsic import (
    Extrinsic,
    MalformedExtrinsic,
    encode_compact,
    encode_unsigned,
    parse_extrinsic,
)
from ami_node.devnet.meta import Runtime, account_bytes, blake2_256, hexstr, runtime

DEV_SEEDS = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
DEV_BALANCE = 1 << 60  # what substrate-contracts-node --dev endows
FEE_WEIGHT_DIVISOR = 1_000  # fee = (base + call weight).ref_time / 1000 + LEN_FEE * length + tip
LEN_FEE = 1_000
BASE_EXTRINSIC = 124_414_000  # from the metadata's BlockWeights
MAX_EXTRINSIC = (1_299_875_586_000, 11_990_383_647_911_208_550)
MAX_NORMAL_TOTAL = (1_500_000_000_000, 13_835_058_055_282_163_711)
BLOCK_HASH_COUNT = 2400
BLOCK_HASH_KEPT = 256
STORAGE_HISTORY = 256  # blocks whose full storage stays queryable
BAN_SECONDS = 1800.0
POOL_LIMIT = 8192
CONTRACT_BASE_DEPOSIT = 100_000_000_000  # DepositPerItem: held from the deployer per contract
CODE_DEPOSIT_PER_BYTE = 5_000_000  # DepositPerByte

Weight = tuple[int, int]
log = logging.getLogger("ami.devnet")


class RpcError(Exception):
    """A JSON-RPC error with substrate's codes (1010 invalid, 1012 banned, 1013 known, 1014 priority)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({data})" if data else ""))
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def invalid_tx(reason: str) -> RpcError:
    return RpcError(1010, "Invalid Transaction", reason)


BAD_SIGNATURE = "Transaction has a bad signature"
CANNOT_PAY = "Inability to pay some fees (e.g. account balance too low)"
OUTDATED = "Transaction is outdated"
ANCIENT_BIRTH = "Transaction has an ancient birth block"
EXHAUSTS = "Transaction would exhaust the block limits"
BAD_CALL = "Transaction call is not expected"
TOO_LOW_PRIORITY = "The transaction has too low priority to replace another transaction already in the pool."


class DispatchFailure(Exception):
    """A dispatch error; `error` is the DispatchError value as scalecodec encodes it."""

    def __init__(self, error: Any, name: str) -> None:
        super().__init__(name)
        self.error = error
        self.name = name


@dataclass
class ContractRecord:
    code_hash: bytes
    model: str
    state: Any
    deployer: bytes
    gen: int = -1  # the WorldState generation that owns (may mutate) `state`; see WorldState.own_contract


_generations = itertools.count()


@dataclass
class WorldState:
    """Chain state. `copy()` is cheap: contract model states are shared copy-on-write (generations)."""

    accounts: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)  # nonce, free, reserved
    codes: dict[bytes, bytes] = field(default_factory=dict)
    code_owner: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    contracts: dict[bytes, ContractRecord] = field(default_factory=dict)
    timestamp: int = 0
    total_issuance: int = 0
    sudo_key: bytes = b""
    gen: int = field(default_factory=lambda: next(_generations))

    def copy(self) -> WorldState:
        # after a copy neither side owns the shared records: the first in-place change copies them
        self.gen = next(_generations)
        return WorldState(
            dict(self.accounts),
            dict(self.codes),
            dict(self.code_owner),
            dict(self.contracts),
            self.timestamp,
            self.total_issuance,
            self.sudo_key,
        )

    def own_contract(self, address: bytes) -> ContractRecord:
        """The contract's record, deep-copied first if another state (a snapshot) may share it."""
        rec = self.contracts[address]
        if rec.gen != self.gen:
            rec = ContractRecord(rec.code_hash, rec.model, cx.copy_state(rec.state), rec.deployer, self.gen)
            self.contracts[address] = rec
        return rec

    def account(self, who: bytes) -> tuple[int, int, int]:
        return self.accounts.get(who, (0, 0, 0))


class ArchivedState(dict[bytes, bytes]):
    """The kept part of a pruned block's state; reading anything else is the node's "state discarded"."""

    def __init__(self, kept: dict[bytes, bytes], block_hash: bytes) -> None:
        super().__init__(kept)
        self.block_hash = block_hash

    def _discarded(self) -> RpcError:
        return RpcError(
            4003, "Client error: UnknownBlock", f"State already discarded for {hexstr(self.block_hash)}"
        )

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            return self[key]
        raise self._discarded()

    def __iter__(self) -> Any:
        raise self._discarded()


@dataclass
class Block:
    number: int
    hash: bytes
    parent_hash: bytes
    header: bytes
    state_root: bytes
    extrinsics_root: bytes
    digest: list[bytes]
    extrinsics: list[bytes]
    events: bytes
    timestamp: int
    storage: dict[bytes, bytes] | None = None
    built_at: float = 0.0  # wall clock (s) when it was built; 0 for blocks loaded from disk

    def header_json(self) -> dict[str, Any]:
        return {
            "parentHash": hexstr(self.parent_hash),
            "number": hex(self.number),
            "stateRoot": hexstr(self.state_root),
            "extrinsicsRoot": hexstr(self.extrinsics_root),
            "digest": {"logs": [hexstr(d) for d in self.digest]},
        }

    def block_json(self) -> dict[str, Any]:
        return {
            "block": {"header": self.header_json(), "extrinsics": [hexstr(x) for x in self.extrinsics]},
            "justifications": None,
        }


@dataclass
class PoolTx:
    ext: Extrinsic
    seq: int
    weight: Weight
    fee: int
    valid_till: int = 2**64 - 1  # the era's death block, fixed when pooled (substrate's `valid_till`)


Count = Annotated[int, Field(ge=0)]


class Faults(BaseModel):
    """Fault switches; changed through `Devnet.set_faults` (RPC `devnet_setFaults`). Mutated in place by the
    chain (counters count down), hence not frozen; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    drop_every_n_messages: Count = 0  # the server closes a connection after every N sent messages
    skip_finalized_notices: Count = 0  # suppress this many upcoming chain_finalizedHead notices
    hold_finality: bool = False  # finality does not advance while set
    finality_lag: Count = 0  # finalize best - lag
    finality_delay_ms: Count = 0  # ...and only blocks built at least this long ago
    reject_next: Count = 0  # reject this many upcoming submissions...
    reject_code: Literal[1010, 1012, 1014] = 1014  # ...with 1014 (priority), 1010 (outdated), 1012 (banned)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


Listener = Callable[[str, Any], None]


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
        self.pool: dict[bytes, dict[int, PoolTx]] = {}
        self.pool_by_hash: dict[bytes, PoolTx] = {}
        self.banned: dict[bytes, float] = {}
        self.seq = 0
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
        from substrateinterface import Keypair

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

    def _emit(self, kind: str, payload: Any) -> None:
        for listener in list(self.listeners):
            listener(kind, payload)

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.time_offset_ms

    def advance_time(self, ms: int) -> None:
        self.time_offset_ms += ms

    # -- storage
    def _materialize(self, number: int, events: bytes) -> dict[bytes, bytes]:
        rt, st = self.rt, self.state
        out: dict[bytes, bytes] = {}
        for who, (nonce, free, reserved) in st.accounts.items():
            out[rt.account_key(who)] = _account_value(nonce, free, reserved)
        out[rt.storage_key("System", "Events")] = events
        out[rt.storage_key("System", "Number")] = number.to_bytes(4, "little")
        out[rt.storage_key("System", "EventCount")] = _event_count(events).to_bytes(4, "little")
        if self.blocks:
            out[rt.block_hash_key(0)] = self.blocks[0].hash
        # the last BLOCK_HASH_KEPT hashes (the runtime keeps 2400; enough for eras of up to 256 blocks)
        for n in range(max(1, number - BLOCK_HASH_KEPT), min(number, len(self.blocks))):
            out[rt.block_hash_key(n)] = self.blocks[n].hash
        if number > 0 and number - 1 < len(self.blocks):
            out[rt.storage_key("System", "ParentHash")] = self.blocks[number - 1].hash
        out[rt.storage_key("Timestamp", "Now")] = st.timestamp.to_bytes(8, "little")
        out[rt.storage_key("Balances", "TotalIssuance")] = st.total_issuance.to_bytes(16, "little")
        out[rt.storage_key("Sudo", "Key")] = st.sudo_key
        out[rt.storage_key("TransactionPayment", "NextFeeMultiplier")] = (10**18).to_bytes(16, "little")
        # what polkadot-js apps and contracts-ui read to show a contract (ContractInfoOf, CodeInfoOf, ...)
        refcount: dict[bytes, int] = {}
        for address, rec in st.contracts.items():
            refcount[rec.code_hash] = refcount.get(rec.code_hash, 0) + 1
            key, value = _contract_info(rt, address, rec.code_hash)
            out[key] = value
        for code_hash, code in st.codes.items():
            owner, deposit = st.code_owner.get(code_hash, (b"\x00" * 32, 0))
            pristine_key, info_key, info = _code_info(
                rt, code_hash, owner, deposit, refcount.get(code_hash, 0), len(code)
            )
            out[pristine_key] = encode_compact(len(code)) + code
            out[info_key] = info
        out[rt.storage_key("Contracts", "Nonce")] = len(st.contracts).to_bytes(8, "little")
        return out

    def storage_at(self, block_hash: bytes | None) -> dict[bytes, bytes]:
        block = self.best if block_hash is None else self.by_hash.get(block_hash)
        if block is None:
            raise RpcError(
                4003,
                "Client error: UnknownBlock",
                f"Header was not found in the database: {hexstr(block_hash or b'')}",
            )
        if block.storage is None:
            return ArchivedState(self._archived(block), block.hash)
        return block.storage

    def _archived(self, block: Block) -> dict[bytes, bytes]:
        """What stays readable after a block's full state is pruned: its events and header facts (followers
        read System.Events of old finalized blocks)."""
        rt = self.rt
        out = {
            rt.storage_key("System", "Events"): block.events,
            rt.storage_key("System", "Number"): block.number.to_bytes(4, "little"),
            rt.storage_key("System", "EventCount"): _event_count(block.events).to_bytes(4, "little"),
            rt.storage_key("System", "ParentHash"): block.parent_hash,
            rt.storage_key("Timestamp", "Now"): block.timestamp.to_bytes(8, "little"),
        }
        return out

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

    def has_ready(self) -> bool:
        return any(self._ready_chain(who) for who in self.pool)

    def _ready_chain(self, who: bytes) -> list[PoolTx]:
        txs = self.pool.get(who, {})
        nonce = self.state.account(who)[0]
        out = []
        while nonce in txs:
            out.append(txs[nonce])
            nonce += 1
        return out

    def produce_block(self, *, fork_marker: int | None = None) -> Block:
        """Build one block on the best head from the pool's ready transactions (possibly empty)."""
        parent = self.best
        if self._needs_snapshots() and parent.hash not in self.snapshots:
            self.snapshots[parent.hash] = self.state.copy()
        number = parent.number + 1
        ts = max(self.now_ms(), self.state.timestamp + 1)
        builder = _BlockBuilder(self, number)
        builder.apply_inherent(ts)
        included: list[PoolTx] = []
        # senders in order of their oldest pooled transaction; each contributes its consecutive nonces
        senders = sorted(self.pool, key=lambda w: min(t.seq for t in self.pool[w].values()))
        full = False
        for who in senders:
            for tx in self._ready_chain(who):
                if not builder.fits(tx):
                    full = True
                    break
                reason = self._revalidate(tx, number)
                if reason is not None:
                    self._remove_from_pool(tx)
                    self._emit("tx", (tx.ext.hash, "invalid"))
                    break
                builder.apply(tx)
                included.append(tx)
            if full:
                break
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
        for tx in included:
            self._remove_from_pool(tx)
            self.banned[tx.ext.hash] = self.clock() + BAN_SECONDS
        stale = self._purge_stale(block.number)
        if len(self.banned) > 4 * POOL_LIMIT:  # keep the ban list bounded: forget expired bans
            now = self.clock()
            self.banned = {h: t for h, t in self.banned.items() if t > now}
        if self._needs_snapshots():
            self.snapshots[block.hash] = self.state.copy()
        self._emit("new_head", block)
        for tx in included:
            self._emit("tx", (tx.ext.hash, {"inBlock": hexstr(block.hash)}))
        for tx in stale:
            self._emit("tx", (tx.ext.hash, "invalid"))
        self._advance_finality(persist=False)  # saved just below, with the block
        if self.store is not None:
            self.store.save(self, [block])
        return block

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
                self._emit("tx", (h, {"finalized": hexstr(b.hash)}))
        if self.faults.skip_finalized_notices > 0:
            self.faults.skip_finalized_notices -= 1
        else:
            self._emit("finalized", self.finalized)
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
                self.banned.pop(ext.hash, None)
                self._emit("tx", (ext.hash, {"retracted": hexstr(b.hash)}))
                requeue.append(ext)
        for ext in requeue:
            try:
                self._pool_insert(ext, notify=False)
            except RpcError:
                self._emit("tx", (ext.hash, "dropped"))
        self.fork_counter += 1
        out = []
        saved_lag = self.faults.finality_lag
        for _ in range(new_blocks if new_blocks is not None else depth):
            out.append(self.produce_block(fork_marker=self.fork_counter))
        self.faults.finality_lag = saved_lag
        return out

    # -- pool
    def submit(self, raw: bytes) -> bytes:
        """Validate and pool an extrinsic; returns its hash or raises RpcError with substrate's codes."""
        if self.faults.reject_next > 0:
            self.faults.reject_next -= 1
            code = self.faults.reject_code
            if code == 1014:
                raise RpcError(
                    1014,
                    "Priority is too low: (0 vs 0)",
                    TOO_LOW_PRIORITY,
                )
            if code == 1012:
                raise RpcError(1012, "Transaction is temporarily banned")
            raise invalid_tx(OUTDATED)
        try:
            ext = parse_extrinsic(raw)
        except MalformedExtrinsic as exc:
            raise RpcError(
                1002, "Verification Error: Runtime error: Could not decode extrinsic", str(exc)
            ) from exc
        if self.banned.get(ext.hash, 0.0) > self.clock():
            raise RpcError(1012, "Transaction is temporarily banned")
        if ext.hash in self.pool_by_hash:
            raise RpcError(1013, "Transaction Already Imported")
        self._pool_insert(ext, notify=True)
        return ext.hash

    def _pool_insert(self, ext: Extrinsic, *, notify: bool) -> None:
        if not ext.signed:
            raise RpcError(
                1011,
                "Unknown Transaction Validity",
                "Could not find an unsigned validator for the unsigned transaction",
            )
        assert ext.signer is not None
        number = self.best.number + 1
        self._check_signature(ext, number)
        weight = self._check_call(ext.call)
        if weight[0] > MAX_EXTRINSIC[0] or weight[1] > MAX_EXTRINSIC[1]:
            raise invalid_tx(EXHAUSTS)
        fee = fee_for(weight, len(ext.raw), ext.tip)
        nonce, free, _ = self.state.account(ext.signer)
        if ext.nonce < nonce:
            raise invalid_tx(OUTDATED)
        if free < fee + self.rt_existential_deposit():
            raise invalid_tx(CANNOT_PAY)
        slot = self.pool.setdefault(ext.signer, {})
        old = slot.get(ext.nonce)
        if old is None and len(self.pool_by_hash) >= POOL_LIMIT:
            if not slot:
                del self.pool[ext.signer]
            raise RpcError(
                1016, "Immediately Dropped", "The transaction couldn't enter the pool because of the limit"
            )
        if old is not None:
            if ext.tip <= old.ext.tip:
                raise RpcError(
                    1014,
                    f"Priority is too low: ({old.ext.tip} vs {ext.tip})",
                    TOO_LOW_PRIORITY,
                )
            self._remove_from_pool(old)
            self._emit("tx", (old.ext.hash, {"usurped": hexstr(ext.hash)}))
        self.seq += 1
        tx = PoolTx(ext, self.seq, weight, fee, ext.era.death(number))
        slot[ext.nonce] = tx
        self.pool_by_hash[ext.hash] = tx
        if notify:
            ready = tx in self._ready_chain(ext.signer)
            self._emit("tx", (ext.hash, "ready" if ready else "future"))

    def _purge_stale(self, number: int) -> list[PoolTx]:
        """Drop pooled transactions (ready or future) whose era ended by block `number`, and ban them.

        As substrate's pool does after each import (clear_stale: `valid_till <= number`): such a transaction
        can never be included, and left pooled it would hold its nonce slot (1014) and inflate
        system_accountNextIndex forever.
        """
        stale = [tx for tx in self.pool_by_hash.values() if tx.valid_till <= number]
        for tx in stale:
            self._remove_from_pool(tx)
            self.banned[tx.ext.hash] = self.clock() + BAN_SECONDS
        return stale

    def _remove_from_pool(self, tx: PoolTx) -> None:
        assert tx.ext.signer is not None
        slot = self.pool.get(tx.ext.signer, {})
        if slot.get(tx.ext.nonce) is tx:
            del slot[tx.ext.nonce]
        if not slot:
            self.pool.pop(tx.ext.signer, None)
        self.pool_by_hash.pop(tx.ext.hash, None)

    def _revalidate(self, tx: PoolTx, number: int) -> str | None:
        try:
            self._check_signature(tx.ext, number)
        except RpcError as exc:
            return str(exc.data)
        assert tx.ext.signer is not None
        if self.state.account(tx.ext.signer)[1] < tx.fee + self.rt_existential_deposit():
            return CANNOT_PAY
        return None

    def _check_signature(self, ext: Extrinsic, current: int) -> None:
        birth = ext.era.birth(current)
        if birth >= len(self.blocks) or birth < current - BLOCK_HASH_COUNT - 1:
            raise invalid_tx(ANCIENT_BIRTH)
        birth_hash = self.blocks[birth].hash
        payload = ext.signing_payload(
            self.rt.spec_version, self.rt.transaction_version, self.genesis_hash, birth_hash
        )
        if ext.verify(payload):
            return
        # An expired era moves the birth block into a later cycle: say so rather than "bad signature".
        if not ext.era.immortal:
            earlier = birth - ext.era.period
            for _ in range(64):  # bounded: a signature check costs ~50 us
                if earlier < 0:
                    break
                rt, old = self.rt, self.blocks[earlier].hash
                payload = ext.signing_payload(rt.spec_version, rt.transaction_version, self.genesis_hash, old)
                if ext.verify(payload):
                    raise invalid_tx(ANCIENT_BIRTH)
                earlier -= ext.era.period
        raise invalid_tx(BAD_SIGNATURE)

    def _check_call(self, call: bytes) -> Weight:
        try:
            decode_call(self.rt, call)
        except Exception as exc:  # scalecodec raises many types for bad bytes
            raise RpcError(
                1002, "Verification Error: Runtime error: Could not decode call", str(exc)
            ) from exc
        return call_weight(self.rt, call)

    def rt_existential_deposit(self) -> int:
        return EXISTENTIAL_DEPOSIT

    def next_index(self, who: bytes) -> int:
        nonce = self.state.account(who)[0]
        txs = self.pool.get(who, {})
        while nonce in txs:
            nonce += 1
        return nonce

    def pending(self) -> list[bytes]:
        return [t.ext.raw for t in sorted(self.pool_by_hash.values(), key=lambda t: t.seq)]

    # -- dry runs
    def dry_run_call(
        self, origin: bytes, dest: bytes, value: int, data: bytes, gas_limit: Weight | None = None
    ) -> dict[str, Any]:
        """ContractsApi_call: execute on a copy of the best state; returns the ContractExecResult value."""
        rec = self.state.contracts.get(dest)
        if rec is None:
            err = self.module_error("Contracts", "ContractNotFound")
            return _exec_result((0, 0), (0, 0), {"Error": err.error})
        gas = contract_gas(data)
        if gas_limit is not None and (gas[0] > gas_limit[0] or gas[1] > gas_limit[1]):
            return _exec_result(gas_limit, gas, {"Error": self.module_error("Contracts", "OutOfGas").error})
        ctx = cx.Ctx(self.best.number + 1, self.state.timestamp, dest)
        out = cx.dry_run(rec.state, data, origin, value, ctx)
        if out.trapped:
            return _exec_result(gas, gas, {"Error": self.module_error("Contracts", "ContractTrapped").error})
        flags = ["ForwardInput"] if out.reverted else []  # bit 0 of ReturnFlags is REVERT
        return _exec_result(gas, gas, {"Ok": {"flags": flags, "data": hexstr(out.output)}})

    def dry_run_instantiate(
        self,
        origin: bytes,
        value: int,
        code: bytes | None,
        code_hash: bytes,
        data: bytes,
        salt: bytes,
        gas_limit: Weight | None = None,
    ) -> dict[str, Any]:
        """ContractsApi_instantiate: what `instantiate[_with_code]` would do on the best state, changing
        nothing. `code` is the uploaded Wasm, or None for `CodeSource::Existing(code_hash)`. Returns the
        ContractInstantiateResultV2 value: the address and storage deposit the extrinsic will use, and the
        gas it checks against its limit."""
        gas = contract_gas(data)

        def fail(name: str, consumed: Weight = (0, 0)) -> dict[str, Any]:
            err = self.module_error("Contracts", name).error
            return _instantiate_result(consumed, gas, 0, {"Error": err})

        code_deposit = 0
        if code is None:
            code = self.state.codes.get(code_hash)
            if code is None:
                return fail("CodeNotFound")
        elif code_hash not in self.state.codes:
            code_deposit = CODE_DEPOSIT_PER_BYTE * len(code)
        address = contract_address(origin, code_hash, data, salt)
        if address in self.state.contracts:
            return fail("DuplicateContract")
        if gas_limit is not None and (gas[0] > gas_limit[0] or gas[1] > gas_limit[1]):
            return fail("OutOfGas", gas_limit)
        deposit = code_deposit + CONTRACT_BASE_DEPOSIT
        # the extrinsic holds the deposit and moves ED + value to the contract, keeping the deployer alive
        if self.state.account(origin)[1] - deposit - EXISTENTIAL_DEPOSIT - value < EXISTENTIAL_DEPOSIT:
            return fail("StorageDepositNotEnoughFunds")
        ctx = cx.Ctx(self.best.number + 1, self.state.timestamp, address)
        try:
            _, out = cx.instantiate(code, data, origin, ctx, value)
        except cx.CodeRejected:
            return fail("CodeRejected")
        if out.trapped:
            return fail("ContractTrapped", gas)
        ret = {"flags": ["Revert"] if out.reverted else [], "data": hexstr(out.output)}
        ok = {"Ok": {"result": ret, "account_id": hexstr(address)}}
        return _instantiate_result(gas, gas, 0 if out.reverted else deposit, ok)

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


EXISTENTIAL_DEPOSIT = 1_000_000_000


def _sb(data: bytes) -> Any:
    from scalecodec.base import ScaleBytes

    return ScaleBytes(data)


def _account_value(nonce: int, free: int, reserved: int) -> bytes:
    # frame_system::AccountInfo<u32, pallet_balances::AccountData<u128>>: nonce, consumers, providers,
    # sufficients, free, reserved, frozen, flags. By hand: it is on the hot path and fixed-size.
    providers = 1 if free or reserved else 0
    flags = 1 << 127  # IS_NEW_LOGIC, as upgraded accounts carry
    return (
        nonce.to_bytes(4, "little")
        + (0).to_bytes(4, "little")
        + providers.to_bytes(4, "little")
        + (0).to_bytes(4, "little")
        + free.to_bytes(16, "little")
        + reserved.to_bytes(16, "little")
        + (0).to_bytes(16, "little")
        + flags.to_bytes(16, "little")
    )


@functools.lru_cache(maxsize=4096)
def _contract_info(rt: Runtime, address: bytes, code_hash: bytes) -> tuple[bytes, bytes]:
    """Contracts.ContractInfoOf key and value (the metadata's ContractInfo); the models hold no child-trie
    items, so only the base deposit the deployer paid is non-zero. trie_id: derived from the address."""
    value = rt.encode_storage_value(
        "Contracts",
        "ContractInfoOf",
        {
            "trie_id": hexstr(blake2_256(b"ami_trie" + address)),
            "code_hash": hexstr(code_hash),
            "storage_bytes": 0,
            "storage_items": 0,
            "storage_byte_deposit": 0,
            "storage_item_deposit": 0,
            "storage_base_deposit": CONTRACT_BASE_DEPOSIT,
            "delegate_dependencies": [[]],
        },
    )
    return rt.storage_key("Contracts", "ContractInfoOf", hexstr(address)), value


@functools.lru_cache(maxsize=4096)
def _code_info(
    rt: Runtime, code_hash: bytes, owner: bytes, deposit: int, refcount: int, code_len: int
) -> tuple[bytes, bytes, bytes]:
    """Contracts.PristineCode key, Contracts.CodeInfoOf key and value (owner, deposit, refcount, ...)."""
    info = rt.encode_storage_value(
        "Contracts",
        "CodeInfoOf",
        {
            "owner": hexstr(owner),
            "deposit": deposit,
            "refcount": refcount,
            "determinism": "Enforced",
            "code_len": code_len,
        },
    )
    h = hexstr(code_hash)
    return rt.storage_key("Contracts", "PristineCode", h), rt.storage_key("Contracts", "CodeInfoOf", h), info


def _event_count(events: bytes) -> int:
    from ami_node.devnet.extrinsic import decode_compact

    return decode_compact(events, 0)[0] if events else 0


def fee_for(weight: Weight, length: int, tip: int) -> int:
    return (BASE_EXTRINSIC + weight[0]) // FEE_WEIGHT_DIVISOR + LEN_FEE * length + tip


def contract_gas(data: bytes) -> Weight:
    """Deterministic gas of a contract execution, known before running it: base + per input byte."""
    return 400_000_000 + 50_000 * len(data), 40_000 + 16 * len(data)


def contract_address(deployer: bytes, code_hash: bytes, data: bytes, salt: bytes) -> bytes:
    """pallet-contracts' DefaultAddressGenerator: blake2-256 of a prefix, deployer, code hash, input, salt."""
    return blake2_256(b"contract_addr_v1" + deployer + code_hash + data + salt)


def _instantiate_result(
    consumed: Weight, required: Weight, deposit: int, result: dict[str, Any]
) -> dict[str, Any]:
    return {
        "gas_consumed": {"ref_time": consumed[0], "proof_size": consumed[1]},
        "gas_required": {"ref_time": required[0], "proof_size": required[1]},
        "storage_deposit": {"Charge": deposit},
        "debug_message": "0x",
        "result": result,
    }


def _exec_result(consumed: Weight, required: Weight, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "gas_consumed": {"ref_time": consumed[0], "proof_size": consumed[1]},
        "gas_required": {"ref_time": required[0], "proof_size": required[1]},
        "storage_deposit": {"Charge": 0},
        "debug_message": "0x",
        "result": result,
    }


# --- calls

SUPPORTED = {
    ("System", "remark"),
    ("System", "remark_with_event"),
    ("Balances", "transfer_allow_death"),
    ("Balances", "transfer_keep_alive"),
    ("Balances", "transfer_all"),
    ("Balances", "force_transfer"),
    ("Balances", "force_set_balance"),
    ("Utility", "batch"),
    ("Utility", "batch_all"),
    ("Utility", "force_batch"),
    ("Sudo", "sudo"),
    ("Sudo", "sudo_unchecked_weight"),
    ("Contracts", "upload_code"),
    ("Contracts", "instantiate_with_code"),
    ("Contracts", "instantiate"),
    ("Contracts", "call"),
}


def decode_call(rt: Runtime, raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """(pallet, call, {arg name: ScaleType}) of one encoded RuntimeCall.

    scalecodec 1.2.12 keeps a call's argument values on the metadata's shared Field objects, so nested calls
    of the same function overwrite each other: nested calls are therefore re-decoded from their own bytes
    (see `nested_calls`) and the arguments are read right after each decode."""
    obj = rt.rc.create_scale_object("Call", data=_sb(raw), metadata=rt.metadata)
    obj.decode(check_remaining=True)
    vo = obj.value_object
    args = {a.value["name"]: a.value_object["value"] for a in vo["call_args"]}
    return vo["call_module"].name, vo["call_function"].name, args


def nested_calls(arg: Any) -> list[bytes]:
    """The encoded calls inside a `Vec<RuntimeCall>` or `Box<RuntimeCall>` argument."""
    items = arg.value_object if isinstance(arg.value_object, list) else [arg]
    return [bytes(c.get_used_bytes()) for c in items]


def raw_bytes(arg: Any) -> bytes:
    return bytes(arg.value_object)


def call_weight(rt: Runtime, raw: bytes) -> Weight:
    """The declared weight of a call (for fees and block limits); RpcError for unsupported calls."""
    pallet, function, args = decode_call(rt, raw)
    if (pallet, function) not in SUPPORTED:
        raise invalid_tx(BAD_CALL + f": {pallet}.{function} is not supported by the devnet")
    if pallet == "Utility":
        inner = [call_weight(rt, c) for c in nested_calls(args["calls"])]
        return (10_000_000 + sum(w[0] + 5_000_000 for w in inner), sum(w[1] for w in inner))
    if pallet == "Sudo":
        w = call_weight(rt, nested_calls(args["call"])[0])
        return (w[0] + 20_000_000, w[1])
    if pallet == "Contracts":
        if function == "upload_code":
            return (500_000_000 + 100 * len(raw_bytes(args["code"])), 10_000)
        gas = args["gas_limit"].value
        extra = 100 * len(raw_bytes(args["code"])) if function == "instantiate_with_code" else 0
        return (300_000_000 + extra + int(gas["ref_time"]), int(gas["proof_size"]))
    if pallet == "System":
        return (10_000_000 + len(raw_bytes(args["remark"])), 0)
    return (300_000_000, 3_593)


class _BlockBuilder:
    """Applies extrinsics to the chain's live state, collecting events and extrinsic bytes."""

    def __init__(self, chain: Devnet, number: int) -> None:
        self.chain = chain
        self.rt = chain.rt
        self.number = number
        self.events: list[dict[str, Any]] = []
        self.encoded: list[bytes] = []  # SCALE of self.events, extrinsic by extrinsic
        self.extrinsics: list[bytes] = []
        self.used: list[int] = [0, 0]
        self.phase: Any = "Initialization"

    @property
    def st(self) -> WorldState:
        return self.chain.state

    def fits(self, tx: PoolTx) -> bool:
        w = (tx.weight[0] + BASE_EXTRINSIC, tx.weight[1])
        return (
            self.used[0] + w[0] <= MAX_NORMAL_TOTAL[0] and self.used[1] + w[1] <= MAX_NORMAL_TOTAL[1]
        ) or (not self.extrinsics[1:])

    def event(self, pallet: str, name: str, attrs: Any, topics: list[bytes] | None = None) -> None:
        self.events.append(
            {
                "phase": self.phase,
                "event": {pallet: {name: attrs}},
                "topics": [hexstr(t) for t in topics or []],
            }
        )

    def apply_inherent(self, ts: int) -> None:
        call = self.rt.encode_call("Timestamp", "set", {"now": ts})
        self.extrinsics.append(encode_unsigned(call))
        self.phase = {"ApplyExtrinsic": 0}
        self.st.timestamp = ts
        self.event("System", "ExtrinsicSuccess", {"dispatch_info": _info((10_000_000, 1_493), "Mandatory")})
        self.encoded.extend(self.rt.encode_event_list(self.events))

    def apply(self, tx: PoolTx) -> None:
        ext = tx.ext
        assert ext.signer is not None
        who = ext.signer
        self.phase = {"ApplyExtrinsic": len(self.extrinsics)}
        self.extrinsics.append(ext.raw)
        self.used[0] += tx.weight[0] + BASE_EXTRINSIC
        self.used[1] += tx.weight[1]
        nonce, free, reserved = self.st.account(who)
        self.st.accounts[who] = (nonce + 1, free - tx.fee, reserved)
        self.st.total_issuance -= tx.fee
        self.event("Balances", "Withdraw", {"who": hexstr(who), "amount": tx.fee})
        info = _info(tx.weight, "Normal")
        saved = self.st.copy()  # cheap (copy-on-write contract states)
        mark = len(self.events)
        fee_paid = {"who": hexstr(who), "actual_fee": tx.fee, "tip": ext.tip}
        try:
            self.dispatch(ext.call, who)
            self.event("TransactionPayment", "TransactionFeePaid", fee_paid)
            self.event("System", "ExtrinsicSuccess", {"dispatch_info": info})
            # encode now, so that an event the metadata cannot express fails this extrinsic, not the block
            self.encoded.extend(self.rt.encode_event_list(self.events[len(self.encoded) :]))
            return
        except DispatchFailure as failure:
            error = failure.error
        except Exception:  # a devnet bug must cost one extrinsic, never the node
            log.exception("extrinsic 0x%s failed inside the devnet", ext.hash.hex())
            error = "Other"
        self.chain.state = saved
        del self.events[mark:]
        self.event("TransactionPayment", "TransactionFeePaid", fee_paid)
        self.event("System", "ExtrinsicFailed", {"dispatch_error": error, "dispatch_info": info})
        self.encoded.extend(self.rt.encode_event_list(self.events[len(self.encoded) :]))

    # -- dispatch (origin None = Root)
    def dispatch(self, raw: bytes, origin: bytes | None) -> None:
        pallet, function, args = decode_call(self.rt, raw)
        handler = getattr(self, f"_{pallet}_{function}", None)
        if handler is None:
            raise DispatchFailure("CannotLookup", f"{pallet}.{function}")
        handler(origin, args)

    def _transactional(self, fn: Callable[[], None]) -> None:
        saved = self.st.copy()
        mark = len(self.events)
        try:
            fn()
        except DispatchFailure:
            self.chain.state = saved
            del self.events[mark:]
            raise

    def _signed(self, origin: bytes | None) -> bytes:
        if origin is None:
            raise DispatchFailure("BadOrigin", "BadOrigin")
        return origin

    def _root(self, origin: bytes | None) -> None:
        if origin is not None:
            raise DispatchFailure("BadOrigin", "BadOrigin")

    def transfer(self, src: bytes, dest: bytes, amount: int, *, keep_alive: bool) -> None:
        ed = EXISTENTIAL_DEPOSIT
        s_nonce, s_free, s_res = self.st.account(src)
        if amount > s_free:
            raise DispatchFailure({"Token": "FundsUnavailable"}, "Token.FundsUnavailable")
        if keep_alive and s_free - amount < ed:
            raise DispatchFailure({"Token": "NotExpendable"}, "Token.NotExpendable")
        d_nonce, d_free, d_res = self.st.account(dest)
        new_account = dest not in self.st.accounts or (d_free == 0 and d_res == 0)
        if new_account and amount < ed:
            raise DispatchFailure({"Token": "BelowMinimum"}, "Token.BelowMinimum")
        if src == dest:
            self.event("Balances", "Transfer", {"from": hexstr(src), "to": hexstr(dest), "amount": amount})
            return
        self.st.accounts[src] = (s_nonce, s_free - amount, s_res)
        self.st.accounts[dest] = (d_nonce, d_free + amount, d_res)
        if new_account:
            self.event("System", "NewAccount", {"account": hexstr(dest)})
            self.event("Balances", "Endowed", {"account": hexstr(dest), "free_balance": amount})
        self.event("Balances", "Transfer", {"from": hexstr(src), "to": hexstr(dest), "amount": amount})

    def _Balances_transfer_keep_alive(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self.transfer(
            self._signed(origin), account_bytes(args["dest"].value), int(args["value"].value), keep_alive=True
        )

    def _Balances_transfer_allow_death(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self.transfer(
            self._signed(origin),
            account_bytes(args["dest"].value),
            int(args["value"].value),
            keep_alive=False,
        )

    def _Balances_transfer_all(self, origin: bytes | None, args: dict[str, Any]) -> None:
        src = self._signed(origin)
        free = self.st.account(src)[1]
        keep = bool(args["keep_alive"].value)
        amount = free - EXISTENTIAL_DEPOSIT if keep else free
        self.transfer(src, account_bytes(args["dest"].value), max(amount, 0), keep_alive=keep)

    def _Balances_force_transfer(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self._root(origin)
        src = account_bytes(args["source"].value)
        self.transfer(src, account_bytes(args["dest"].value), int(args["value"].value), keep_alive=False)

    def _Balances_force_set_balance(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self._root(origin)
        who = account_bytes(args["who"].value)
        new_free = int(args["new_free"].value)
        nonce, free, reserved = self.st.account(who)
        self.st.accounts[who] = (nonce, new_free, reserved)
        self.st.total_issuance += new_free - free
        self.event("Balances", "BalanceSet", {"who": hexstr(who), "free": new_free})

    def _System_remark(self, origin: bytes | None, args: dict[str, Any]) -> None:
        return None

    def _System_remark_with_event(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        self.event(
            "System",
            "Remarked",
            {"sender": hexstr(who), "hash": hexstr(blake2_256(raw_bytes(args["remark"])))},
        )

    def _Utility_batch(self, origin: bytes | None, args: dict[str, Any]) -> None:
        for i, call in enumerate(nested_calls(args["calls"])):
            try:
                self.dispatch(call, origin)
            except DispatchFailure as failure:
                self.event("Utility", "BatchInterrupted", {"index": i, "error": failure.error})
                return
            self.event("Utility", "ItemCompleted", None)
        self.event("Utility", "BatchCompleted", None)

    def _Utility_batch_all(self, origin: bytes | None, args: dict[str, Any]) -> None:
        def run() -> None:
            for call in nested_calls(args["calls"]):
                self.dispatch(call, origin)
                self.event("Utility", "ItemCompleted", None)
            self.event("Utility", "BatchCompleted", None)

        self._transactional(run)

    def _Utility_force_batch(self, origin: bytes | None, args: dict[str, Any]) -> None:
        failed = False
        for call in nested_calls(args["calls"]):
            try:
                self.dispatch(call, origin)
            except DispatchFailure as failure:
                failed = True
                self.event("Utility", "ItemFailed", {"error": failure.error})
                continue
            self.event("Utility", "ItemCompleted", None)
        self.event("Utility", "BatchCompletedWithErrors" if failed else "BatchCompleted", None)

    def _Sudo_sudo(self, origin: bytes | None, args: dict[str, Any]) -> None:
        if origin != self.st.sudo_key:
            raise self.chain.module_error("Sudo", "RequireSudo")
        inner = nested_calls(args["call"])[0]
        try:
            self.dispatch(inner, None)
            result: Any = {"Ok": ()}
        except DispatchFailure as failure:
            result = {"Err": failure.error}
        self.event("Sudo", "Sudid", {"sudo_result": result})

    _Sudo_sudo_unchecked_weight = _Sudo_sudo

    # -- contracts
    def _store_code(self, who: bytes, code: bytes) -> bytes:
        try:
            cx.model_of(code)
        except cx.CodeRejected as exc:
            raise self.chain.module_error("Contracts", "CodeRejected") from exc
        code_hash = blake2_256(code)
        if code_hash not in self.st.codes:
            deposit = CODE_DEPOSIT_PER_BYTE * len(code)
            self._reserve(who, deposit)
            self.st.codes[code_hash] = code
            self.st.code_owner[code_hash] = (who, deposit)
            self.event(
                "Contracts",
                "CodeStored",
                {"code_hash": hexstr(code_hash), "deposit_held": deposit, "uploader": hexstr(who)},
            )
        return code_hash

    def _reserve(self, who: bytes, amount: int) -> None:
        nonce, free, reserved = self.st.account(who)
        if free - amount < EXISTENTIAL_DEPOSIT:
            raise self.chain.module_error("Contracts", "StorageDepositNotEnoughFunds")
        self.st.accounts[who] = (nonce, free - amount, reserved + amount)

    def _Contracts_upload_code(self, origin: bytes | None, args: dict[str, Any]) -> None:
        code = raw_bytes(args["code"])
        limit = args["storage_deposit_limit"].value
        new_code = blake2_256(code) not in self.st.codes
        if new_code and limit is not None and CODE_DEPOSIT_PER_BYTE * len(code) > int(limit):
            raise self.chain.module_error("Contracts", "StorageDepositLimitExhausted")
        self._store_code(self._signed(origin), code)

    def _Contracts_instantiate_with_code(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)

        def run() -> None:
            code = raw_bytes(args["code"])
            new_code = blake2_256(code) not in self.st.codes
            code_hash = self._store_code(who, code)
            self._instantiate(who, code_hash, args, CODE_DEPOSIT_PER_BYTE * len(code) if new_code else 0)

        self._transactional(run)

    def _Contracts_instantiate(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        code_hash = bytes.fromhex(str(args["code_hash"].value)[2:])
        if code_hash not in self.st.codes:
            raise self.chain.module_error("Contracts", "CodeNotFound")
        self._transactional(lambda: self._instantiate(who, code_hash, args))

    def _instantiate(self, who: bytes, code_hash: bytes, args: dict[str, Any], code_deposit: int = 0) -> None:
        data = raw_bytes(args["data"])
        salt = raw_bytes(args["salt"])
        value = int(args["value"].value)
        gas = args["gas_limit"].value
        address = contract_address(who, code_hash, data, salt)
        if address in self.st.contracts:
            raise self.chain.module_error("Contracts", "DuplicateContract")
        code = self.st.codes[code_hash]
        needed = contract_gas(data)
        if needed[0] > int(gas["ref_time"]) or needed[1] > int(gas["proof_size"]):
            raise self.chain.module_error("Contracts", "OutOfGas")
        limit = args["storage_deposit_limit"].value
        if limit is not None and code_deposit + CONTRACT_BASE_DEPOSIT > int(limit):
            raise self.chain.module_error("Contracts", "StorageDepositLimitExhausted")
        ctx = cx.Ctx(self.number, self.st.timestamp, address)
        try:
            state, out = cx.instantiate(code, data, who, ctx, value)
        except cx.CodeRejected as exc:
            raise self.chain.module_error("Contracts", "CodeRejected") from exc
        if out.trapped:
            raise self.chain.module_error("Contracts", "ContractTrapped")
        if out.reverted or state is None:
            raise self.chain.module_error("Contracts", "ContractReverted")
        self._reserve(who, CONTRACT_BASE_DEPOSIT)
        self.transfer(who, address, EXISTENTIAL_DEPOSIT + value, keep_alive=True)
        self.st.contracts[address] = ContractRecord(code_hash, cx.model_of(code), state, who, self.st.gen)
        for topics, ev_data in out.events:
            self.event(
                "Contracts", "ContractEmitted", {"contract": hexstr(address), "data": hexstr(ev_data)}, topics
            )
        self.event(
            "Contracts",
            "Instantiated",
            {"deployer": hexstr(who), "contract": hexstr(address)},
            [blake2_256(who), blake2_256(address)],
        )

    def _Contracts_call(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        dest = account_bytes(args["dest"].value)
        value = int(args["value"].value)
        gas = args["gas_limit"].value
        data = raw_bytes(args["data"])
        rec = self.st.contracts.get(dest)
        if rec is None:
            raise self.chain.module_error("Contracts", "ContractNotFound")
        if value and self.st.account(who)[1] - value < EXISTENTIAL_DEPOSIT:
            raise self.chain.module_error("Contracts", "TransferFailed")
        needed = contract_gas(data)
        if needed[0] > int(gas["ref_time"]) or needed[1] > int(gas["proof_size"]):
            raise self.chain.module_error("Contracts", "OutOfGas")
        # the model changes its state in place, and only when the message succeeds
        rec = self.st.own_contract(dest)
        out = cx.call(rec.state, data, who, value, cx.Ctx(self.number, self.st.timestamp, dest))
        if out.trapped:
            raise self.chain.module_error("Contracts", "ContractTrapped")
        if out.reverted:
            raise self.chain.module_error("Contracts", "ContractReverted")
        if value:
            self.transfer(who, dest, value, keep_alive=True)
        for topics, ev_data in out.events:
            self.event(
                "Contracts", "ContractEmitted", {"contract": hexstr(dest), "data": hexstr(ev_data)}, topics
            )
        self.event(
            "Contracts",
            "Called",
            {"caller": {"Signed": hexstr(who)}, "contract": hexstr(dest)},
            [blake2_256(who), blake2_256(dest)],
        )


def _info(weight: Weight, cls: str) -> dict[str, Any]:
    return {"weight": {"ref_time": weight[0], "proof_size": weight[1]}, "class": cls, "pays_fee": "Yes"}
