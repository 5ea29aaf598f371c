"""The contracts' events as typed Python classes, derived from their one declaration in `description`.

Each event of `description.CONTRACTS` becomes a frozen dataclass named by its label, with its fields in
declaration order. A field named like a Python keyword (`from`) is `from_` in Python; `abi_fields()` gives
the names back. An event both contracts declare alike (`OracleAdded`) is one class.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, fields, make_dataclass
from typing import Any

from pallets_spec.description import CONTRACTS, Arg, Event
from pallets_spec.typeexpr import TypeExpr

_INTS = frozenset({"u8", "u16", "u32", "u64", "u128", "Balance", "Timestamp", "BlockNumber"})


def python_name(name: str) -> str:
    """An ABI field name as a Python identifier: `from` -> `from_`."""
    return f"{name}_" if keyword.iskeyword(name) else name


def abi_name(name: str) -> str:
    """The reverse of `python_name`: `from_` -> `from`."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def model_type(expr: TypeExpr) -> Any:
    """The Python type the model holds for a Rust type: integers, `bytes` for accounts and byte arrays."""
    if expr.head in _INTS:
        return int
    if expr.head == "String":
        return str
    if expr.head in ("AccountId", "array"):
        return bytes
    if expr.head == "Vec":
        return list[model_type(expr.args[0])]  # type: ignore[misc]
    if expr.head == "tuple":
        return tuple[tuple(model_type(a) for a in expr.args)]  # type: ignore[misc]
    raise TypeError(f"no model type for {expr}")


@dataclass(frozen=True)
class ContractEvent:
    """Base of all events; the class name is the event label."""

    @property
    def label(self) -> str:
        return type(self).__name__

    def abi_fields(self) -> dict[str, Any]:
        return {abi_name(f.name): getattr(self, f.name) for f in fields(self)}


def _signature(event: Event) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, f.type) for f in event.fields)


def _event_class(event: Event) -> type[ContractEvent]:
    spec = [(python_name(f.name), model_type(f.expr)) for f in event.fields]
    cls = make_dataclass(event.label, spec, bases=(ContractEvent,), frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = event.docs.strip() or event.label
    return cls


def _all_events() -> dict[str, Event]:
    out: dict[str, Event] = {}
    for contract in CONTRACTS.values():
        for event in contract.events:
            known = out.setdefault(event.label, event)
            if _signature(known) != _signature(event):
                raise TypeError(f"event {event.label} is declared twice with different fields")
    return out


EVENTS: dict[str, Event] = _all_events()
"""Every event of every contract, by label (one declaration each)."""

EVENT_TYPES: dict[str, type[ContractEvent]] = {label: _event_class(e) for label, e in EVENTS.items()}
"""The model's class of each event, by label."""

EVENT_CLASSES: dict[str, dict[str, type[ContractEvent]]] = {
    c.name: {e.label: EVENT_TYPES[e.label] for e in c.events} for c in CONTRACTS.values()
}
"""The event classes of each contract, by contract name then label."""


def event_fields(label: str) -> tuple[Arg, ...]:
    """The declared fields of event `label`, in order."""
    return EVENTS[label].fields


__all__ = [
    "EVENTS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "ContractEvent",
    "abi_name",
    "event_fields",
    "model_type",
    "python_name",
]
