"""The devnet's bridge to the executable contract models in pallets_spec.runtime (bytes in, bytes out).

Kept apart so the chain core only sees: which model a Wasm blob names, instantiate, call, and JSON state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pallets_spec import runtime


class CodeRejected(ValueError):
    """The uploaded code is not a Wasm module naming a known AMI model."""


@dataclass
class Outcome:
    output: bytes
    reverted: bool
    events: list[tuple[list[bytes], bytes]] = field(default_factory=list)  # (topics, data)
    trapped: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Ctx:
    block_number: int
    timestamp: int
    address: bytes


def model_of(code: bytes) -> str:
    """The model id (e.g. `ami_nft@1`) that a Wasm blob names in its `ami-model` custom section."""
    rt = runtime
    try:
        return str(rt.model_id_of(bytes(code)))
    except rt.UnknownModel as exc:
        raise CodeRejected(str(exc)) from exc


def _ctx(ctx: Ctx) -> Any:
    return runtime.ExecContext(block_number=ctx.block_number, timestamp=ctx.timestamp, address=ctx.address)


def _outcome(res: Any) -> Outcome:
    return Outcome(
        output=bytes(res.output),
        reverted=bool(res.reverted),
        events=[([bytes(t) for t in ev.topics], bytes(ev.data)) for ev in res.events],
        trapped=bool(getattr(res, "trapped", False)),
        error=getattr(res, "error", None),
    )


def instantiate(code: bytes, data: bytes, caller: bytes, ctx: Ctx, value: int = 0) -> tuple[Any, Outcome]:
    """Run a constructor; the state is None when it reverted or trapped."""
    rt = runtime
    try:
        state, res = rt.instantiate(bytes(code), data, caller, _ctx(ctx), value)
    except rt.UnknownModel as exc:
        raise CodeRejected(str(exc)) from exc
    return state, _outcome(res)


def call(state: Any, data: bytes, caller: bytes, value: int, ctx: Ctx) -> Outcome:
    """Execute a message; `state` changes in place only when the outcome is not reverted."""
    return _outcome(runtime.call(state, data, caller, value, _ctx(ctx)))


def dry_run(state: Any, data: bytes, caller: bytes, value: int, ctx: Ctx) -> Outcome:
    """Execute a message without changing `state`."""
    return _outcome(runtime.dry_run(state, data, caller, value, _ctx(ctx)))


def copy_state(state: Any) -> Any:
    return copy.deepcopy(state)


def state_to_json(state: Any) -> Any:
    return runtime.dump_state(state)


def state_from_json(data: Any) -> Any:
    return runtime.load_state(data)
