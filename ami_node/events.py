"""Typed domain events of the AMI contracts, decoded from a block's Contracts.ContractEmitted records.

Each event carries where it happened (`block_number`, `block_hash`, `event_index`, `contract`) and is keyed by
`key = (block_number, event_index)`: an extrinsic hash is not unique on Substrate, an event position is.
Accounts are SS58 strings (prefix 42), byte arrays "0x"-hex strings. The Rust field `from` is `from_` here
(alias "from" on input and in `model_dump(by_alias=True)`). The classes are built from the events' one
declaration in `pallets_spec.description`; a field's type follows its Rust type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ami_node.abi import AbiError, ContractAbi
from ami_node.port import Block
from pallets_spec.events import EVENTS, event_fields, model_type, python_name
from pallets_spec.typeexpr import TypeExpr

# The event classes (`Minted`, `Paid`, ...) are served by `__getattr__` from EVENT_TYPES, by label.
__all__ = ["EVENT_TYPES", "DomainEvent", "decode_block", *EVENTS]

log = structlog.get_logger(__name__)


class DomainEvent(BaseModel):
    """Base of every decoded contract event."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    label: ClassVar[str] = ""
    block_number: int
    block_hash: str
    event_index: int
    contract: str

    @property
    def key(self) -> tuple[int, int]:
        """(block_number, event_index): the event's unique, replay-safe identity."""
        return (self.block_number, self.event_index)


def _client_type(expr: TypeExpr) -> Any:
    """The Python type a decoded field has on the client: int, or str for text, accounts and byte arrays."""
    if expr.head in ("String", "AccountId", "array"):
        return str
    if expr.head == "Vec":
        return list[_client_type(expr.args[0])]  # type: ignore[misc]
    if expr.head == "tuple":
        return tuple[tuple(_client_type(a) for a in expr.args)]  # type: ignore[misc]
    return int if model_type(expr) is int else str


def _domain_class(label: str) -> type[DomainEvent]:
    """The pydantic class of event `label`, built from its one declaration in pallets_spec.description."""
    spec: dict[str, Any] = {}
    for f in event_fields(label):
        name = python_name(f.name)
        spec[name] = (_client_type(f.expr), Field(alias=f.name) if name != f.name else ...)
    cls = create_model(
        label, __base__=DomainEvent, __module__=__name__, __doc__=EVENTS[label].docs.strip(), **spec
    )
    cls.label = label
    return cls


EVENT_TYPES: dict[str, type[DomainEvent]] = {label: _domain_class(label) for label in EVENTS}
"""The domain class of every contract event, by label."""


def __getattr__(name: str) -> Any:
    """`Minted`, `Paid`, ...: the domain class of the event with that label, as declared once."""
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def decode_block(block: Block, contracts: Mapping[str, ContractAbi]) -> list[DomainEvent]:
    """The domain events of `block` emitted by the contracts in `contracts` (address -> ABI), in event order.

    Events of other contracts and of other pallets are ignored. An event a watched contract emitted that its
    ABI cannot decode is logged and skipped rather than stopping the follower (it would fail the same way on
    every replay).
    """
    out: list[DomainEvent] = []
    for raw in block.events:
        if raw.pallet != "Contracts" or raw.name != "ContractEmitted" or raw.contract is None:
            continue
        abi = contracts.get(raw.contract)
        if abi is None or raw.data is None:
            continue
        try:
            label, fields = abi.decode_event(raw.topics, raw.data)
        except AbiError as exc:
            log.error(
                "undecodable contract event",
                block=block.ref.number,
                index=raw.index,
                contract=raw.contract,
                error=str(exc),
            )
            continue
        cls = EVENT_TYPES.get(label)
        if cls is None:
            log.warning("contract event without a domain type", label=label, block=block.ref.number)
            continue
        try:
            event = cls.model_validate(
                {
                    **{k: _plain(v) for k, v in fields.items()},
                    "block_number": block.ref.number,
                    "block_hash": block.ref.hash,
                    "event_index": raw.index,
                    "contract": raw.contract,
                }
            )
        except ValidationError as exc:  # the ABI and the domain type disagree (e.g. a newer contract)
            log.error(
                "contract event does not fit its domain type",
                label=label,
                block=block.ref.number,
                index=raw.index,
                error=str(exc),
            )
            continue
        out.append(event)
    return out
