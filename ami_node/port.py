"""The chain port: the async interface the worker, submitter and CLI use to talk to any Substrate chain.

Adapters: `ami_node.substrate.SubstrateChainPort` (substrate-interface 1.8.1, real nodes and the devnet) and
`ami_node.memory.MemoryChainPort` (in-memory fake for tests). Addresses are SS58 strings (prefix 42), hashes
are "0x"-hex strings, raw bytes are `bytes`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ami_node.keys import Keypair

__all__ = [
    "Block",
    "BlockRef",
    "CallError",
    "ChainError",
    "ChainPort",
    "ChainUnavailable",
    "ContractReverted",
    "DryRun",
    "PoolRejected",
    "RawEvent",
    "SignedTx",
    "dispatch_error_text",
]


@dataclass(frozen=True)
class BlockRef:
    """A block by number and hash."""

    number: int
    hash: str


@dataclass(frozen=True)
class RawEvent:
    """One System.Events record of a block, as the node reported it.

    `index` is the record's position in System.Events (the event index that keys domain events).
    `extrinsic_index` is `i` for phase ApplyExtrinsic(i), None for initialization/finalization.
    `contract` and `data` are filled only for Contracts.ContractEmitted: the emitting contract's address and
    the raw SCALE bytes of the ink! event's fields.
    """

    index: int
    pallet: str
    name: str
    attributes: Any
    topics: tuple[bytes, ...]
    extrinsic_index: int | None
    contract: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Block:
    """A block's identity, its extrinsic hashes (in order) and all of its events."""

    ref: BlockRef
    parent_hash: str
    extrinsic_hashes: tuple[str, ...]
    events: tuple[RawEvent, ...]


@dataclass(frozen=True)
class SignedTx:
    """A signed extrinsic ready to submit; mortal between blocks `era_birth` and `era_death` (exclusive)."""

    hash: str
    data: bytes
    signer: str
    nonce: int
    era_birth: int
    era_death: int


@dataclass(frozen=True)
class DryRun:
    """The result of a contract dry run (ContractsApi_call).

    `success` is False when the contract trapped or reverted (`error` then says why, for a revert the decoded
    ink! error variant is left to `ami_node.abi`); `output` is the raw return bytes.
    `gas_required` is (ref_time, proof_size).
    """

    success: bool
    output: bytes
    error: str | None
    gas_required: tuple[int, int]
    storage_deposit: int


class ChainError(Exception):
    """Base of every error the chain port raises."""


class ChainUnavailable(ChainError):
    """The node is unreachable or did not answer in time (after the adapter's own retries)."""


class PoolRejected(ChainError):
    """The transaction pool refused an extrinsic.

    `code` is the JSON-RPC error code (1010 invalid, 1011 unknown validity, 1012 temporarily banned,
    1014 priority too low); `transient` is True when submitting again (possibly with a fresh nonce) may
    succeed: priority too low (1014), outdated/stale/future nonce (1010). Bad signature, inability to pay and
    "temporarily banned" (the pool has just seen these exact bytes) are not transient.
    """

    def __init__(self, code: int, reason: str, transient: bool) -> None:
        super().__init__(f"transaction pool rejected the extrinsic ({code}): {reason}")
        self.code = code
        self.reason = reason
        self.transient = transient


class CallError(ChainError):
    """A call cannot be composed: unknown pallet/call or bad arguments (the message says what is expected)."""


class ContractReverted(ChainError):
    """A contract message reverted; `error` is the decoded ink! error variant name, e.g. "NotOracle"."""

    def __init__(self, error: str, message: str | None = None) -> None:
        super().__init__(message or f"contract reverted: {error}")
        self.error = error


def dispatch_error_text(err: Any, name_module_error: Callable[[int, int], str | None] | None = None) -> str:
    """A readable text for a DispatchError, or for an ExtrinsicFailed event's attributes holding one.

    A module error already named (an event decoded with the node's metadata) reads "Pallet.Error", e.g.
    "Contracts.ContractReverted". A raw one (`{"Module": {"index": 8, "error": "0x02000000"}}`, as a dry run
    returns it) is named by `name_module_error(pallet index, error index)` when given (the adapter answers
    "Contracts::OutOfGas" from the node's metadata); otherwise it is reported by its indexes.
    """
    err = err.get("dispatch_error", err) if isinstance(err, dict) else err
    if isinstance(err, dict) and "Module" in err:
        return _module_error_text(err["Module"], name_module_error)
    if isinstance(err, dict) and len(err) == 1:
        ((kind, detail),) = err.items()
        return f"{kind}({detail})" if detail not in (None, "", {}) else str(kind)
    return str(err)


def _module_error_text(mod: Any, name_module_error: Callable[[int, int], str | None] | None) -> str:
    if not isinstance(mod, dict):
        return f"module error {mod}"
    index, raw = mod.get("index"), mod.get("error")
    if name_module_error is not None and index is not None:
        # The first byte of the 4-byte error field is the error's index in its pallet.
        error_index = bytes.fromhex(raw.removeprefix("0x"))[0] if isinstance(raw, str) else int(raw or 0)
        named = name_module_error(int(index), error_index)
        if named is not None:
            return named
    name = mod.get("name") or raw
    pallet = mod.get("pallet") or mod.get("module")
    if name and not str(name).startswith("0x"):
        return f"{pallet}.{name}" if pallet else str(name)
    return f"module error (pallet index {index}, error {raw})"


@runtime_checkable
class ChainPort(Protocol):
    """What the rest of the project may ask of a chain. All methods are async and never block the loop."""

    async def finalized_head(self) -> BlockRef: ...

    async def best_head(self) -> BlockRef: ...

    async def block_hash(self, number: int) -> str | None:
        """The canonical hash at `number`, or None when there is no such block yet."""
        ...

    async def block(self, number: int) -> Block:
        """The canonical block at `number` with all its events; ChainError when it does not exist."""
        ...

    def finalized_heads(self) -> AsyncIterator[BlockRef]:
        """Notices of new finalized heads; may skip numbers; survives reconnects. Never ends on its own."""
        ...

    async def account_next_index(self, address: str) -> int:
        """The next nonce for `address`, counting transactions in the pool (system_accountNextIndex)."""
        ...

    async def account_nonce(self, address: str, at: str) -> int:
        """`address`'s nonce in the state of block `at` (a hash): how many of its transactions that chain has
        included, ignoring the pool. A signed transaction whose nonce is below it in a finalized block's state
        and that is not in the chain can never land (another extrinsic used its nonce)."""
        ...

    async def free_balance(self, address: str) -> int: ...

    async def compose_call(self, pallet: str, function: str, params: dict[str, Any]) -> Any:
        """An opaque call object for `pallet.function(**params)`; CallError when unknown or badly typed."""
        ...

    async def contract_dry_run(self, contract: str, data: bytes, origin: str, value: int = 0) -> DryRun: ...

    async def contract_call(
        self,
        contract: str,
        data: bytes,
        gas_limit: tuple[int, int],
        value: int = 0,
        storage_deposit_limit: int | None = None,
    ) -> Any:
        """An opaque Contracts.call with the given input `data` (selector + SCALE args)."""
        ...

    async def batch_all(self, calls: Sequence[Any]) -> Any:
        """An opaque Utility.batch_all of `calls` (all or nothing)."""
        ...

    async def call_weight(self, call: Any, signer: str) -> tuple[int, int]:
        """Estimated (ref_time, proof_size) of `call` signed by `signer` (payment_queryInfo)."""
        ...

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        """The largest (ref_time, proof_size) one normal extrinsic may use (runtime BlockWeights constant)."""
        ...

    async def sign(self, call: Any, keypair: Keypair, nonce: int, era_period: int = 64) -> SignedTx:
        """Sign `call` mortal for `era_period` blocks from the current finalized head."""
        ...

    async def submit(self, tx: SignedTx) -> str:
        """Submit (author_submitExtrinsic) and return the extrinsic hash; PoolRejected when refused."""
        ...

    async def close(self) -> None: ...
