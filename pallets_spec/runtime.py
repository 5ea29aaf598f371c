"""The contracts as a node executes them: bytes in, bytes out, with ink!'s dispatch and revert semantics.

The devnet calls `instantiate` and `call` (and `dry_run` for `ContractsApi_call`). Input is selector + SCALE
arguments; output is the SCALE-encoded `Result<Result<T, Error>, LangError>` (or `Result<T, LangError>` for
queries) as ink! returns it. `reverted` is ink!'s REVERT flag: set when the message returns `Err` (either
level); state then stays as it was and no event is emitted. `trapped` means the contract trapped (ink! panics
on value sent to a non-payable message); the node reports `Contracts.ContractTrapped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pallets_spec.abi import CONSTRUCTOR_RETURN, Err, Ok, SpecAbi, decode_error
from pallets_spec.description import CONTRACTS, Contract
from pallets_spec.model import STATE_CLASSES, ContractError, ContractState, state_from_dict
from pallets_spec.scale import ScaleError
from pallets_spec.wasm import WasmError, read_model_id

# Queries whose label collides with a storage field in the Python state.
_METHOD_FOR_LABEL = {"owner": "get_owner"}
_ABIS = {name: SpecAbi(c) for name, c in CONTRACTS.items()}


class UnknownModel(ValueError):
    """The code names no contract model this package knows."""


@dataclass(frozen=True)
class ExecContext:
    """What the executing node knows: the block being built and the contract's own address."""

    block_number: int = 0
    timestamp: int = 0
    address: bytes = bytes(32)


@dataclass(frozen=True)
class EmittedEvent:
    """One `Contracts.ContractEmitted`: `topics[0]` is the signature topic; `data` holds the fields' SCALE."""

    topics: list[bytes]
    data: bytes


@dataclass(frozen=True)
class ExecOutcome:
    output: bytes
    reverted: bool
    events: list[EmittedEvent] = field(default_factory=list)
    trapped: bool = False
    error: str | None = None
    """The decoded error variant (`NotOracle`, `CouldNotReadInput`) or the trap reason; None on success."""


def model_id_of(code_or_model: bytes | str) -> str:
    """`ami_nft@1` from a model name, a contract name (`ami_nft`) or Wasm code with an `ami-model` section."""
    if isinstance(code_or_model, bytes | bytearray):
        try:
            model = read_model_id(bytes(code_or_model))
        except WasmError as exc:
            raise UnknownModel(str(exc)) from None
    else:
        model = code_or_model
        if model in CONTRACTS:
            model = CONTRACTS[model].model_id
    if model not in STATE_CLASSES:
        raise UnknownModel(f"no contract model {model!r}; known: {sorted(STATE_CLASSES)}")
    return model


def abi(contract: str) -> SpecAbi:
    """The shared SpecAbi of `ami_nft` / `ami_rewards` (encode calls, decode outputs and events)."""
    if contract not in _ABIS:
        raise UnknownModel(f"no contract {contract!r}; known: {sorted(_ABIS)}")
    return _ABIS[contract]


def contract_of(state: ContractState) -> Contract:
    return CONTRACTS[state.CONTRACT]


def _lang_error() -> ExecOutcome:
    return ExecOutcome(output=bytes([1, 1]), reverted=True, error="CouldNotReadInput")


def instantiate(
    code_or_model: bytes | str,
    constructor_input: bytes,
    caller: bytes,
    ctx: ExecContext | None = None,
    value: int = 0,
) -> tuple[ContractState | None, ExecOutcome]:
    """Run a constructor. Returns (state, outcome); state is None when the constructor reverted or trapped."""
    if len(caller) != 32:
        raise ValueError(f"caller must be a 32-byte account id, got {len(caller)} bytes")
    cls = STATE_CLASSES[model_id_of(code_or_model)]
    contract = CONTRACTS[cls.CONTRACT]
    abi = _ABIS[contract.name]
    ctor = abi.constructors_by_selector.get(bytes(constructor_input[:4]))
    if ctor is None or len(constructor_input) < 4:
        return None, _lang_error()
    try:
        abi.decode_args(ctor.args, bytes(constructor_input[4:]))
    except ScaleError:
        return None, _lang_error()
    if value and not ctor.payable:
        return None, ExecOutcome(b"", reverted=True, trapped=True, error="constructor is not payable")
    state = cls.new(bytes(caller))
    return state, ExecOutcome(output=abi.codec.encode(CONSTRUCTOR_RETURN, Ok(None)), reverted=False)


def call(
    state: ContractState, input: bytes, caller: bytes, value: int = 0, ctx: ExecContext | None = None
) -> ExecOutcome:
    """Execute a message on `state` (changed in place only when the outcome is not reverted)."""
    if len(caller) != 32:
        raise ValueError(f"caller must be a 32-byte account id, got {len(caller)} bytes")
    contract = contract_of(state)
    abi = _ABIS[contract.name]
    message = abi.messages_by_selector.get(bytes(input[:4])) if len(input) >= 4 else None
    if message is None:
        return _lang_error()
    try:
        args = abi.decode_args(message.args, bytes(input[4:]))
    except ScaleError:
        return _lang_error()
    if value and not message.payable:
        return ExecOutcome(b"", reverted=True, trapped=True, error=f"{message.label} is not payable")
    method = getattr(state, _METHOD_FOR_LABEL.get(message.label, message.label))
    try:
        if message.mutates:
            result, events = method(bytes(caller), **args)
        else:
            result, events = method(**args), []
    except ContractError as exc:
        return ExecOutcome(
            output=abi.encode_output(message, Ok(Err(exc.variant))), reverted=True, error=exc.variant
        )
    except Exception as exc:  # a model bug must not take the node down: report it as a trap
        return ExecOutcome(b"", reverted=True, trapped=True, error=f"{type(exc).__name__}: {exc}")
    if hasattr(result, "to_abi"):
        result = result.to_abi()
    output = abi.encode_output(message, Ok(Ok(result)) if message.fallible else Ok(result))
    emitted = []
    for ev in events:
        spec = contract.event(ev.label)
        values = ev.abi_fields()
        emitted.append(EmittedEvent(abi.event_topics(spec, values), abi.encode_event_data(spec, values)))
    return ExecOutcome(output=output, reverted=False, events=emitted)


def dry_run(
    state: ContractState, input: bytes, caller: bytes, value: int = 0, ctx: ExecContext | None = None
) -> ExecOutcome:
    """`call` that never changes `state` (what `ContractsApi_call` answers)."""
    message = _ABIS[state.CONTRACT].messages_by_selector.get(bytes(input[:4]))
    target = state if message is not None and not message.mutates else state.clone()
    return call(target, input, caller, value, ctx)


def dump_state(state: ContractState) -> dict:
    """JSON-serialisable state (includes the model id); `load_state` reverses it."""
    return state.to_dict()


def load_state(d: dict) -> ContractState:
    return state_from_dict(d)


__all__ = [
    "EmittedEvent",
    "abi",
    "ExecContext",
    "ExecOutcome",
    "UnknownModel",
    "call",
    "contract_of",
    "decode_error",
    "dry_run",
    "dump_state",
    "instantiate",
    "load_state",
    "model_id_of",
]
