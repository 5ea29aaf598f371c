"""The devnet's chain data: limits from the runtime's metadata, world state, blocks, pooled transactions,
fault switches and the errors a node answers with."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ami_node.devnet import contracts as cx
from ami_node.devnet.extrinsic import Extrinsic
from ami_node.devnet.meta import Runtime, hexstr

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

EXISTENTIAL_DEPOSIT = 1_000_000_000

Weight = tuple[int, int]


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


class ChainCore(Protocol):
    """What the pool and the block builder use of the chain (`chain.Devnet`): its state, blocks and clock."""

    rt: Runtime
    state: WorldState
    blocks: list[Block]
    faults: Faults
    clock: Callable[[], float]

    @property
    def best(self) -> Block: ...

    @property
    def genesis_hash(self) -> bytes: ...

    def emit(self, kind: str, payload: Any) -> None: ...

    def module_error(self, pallet: str, name: str) -> DispatchFailure: ...
