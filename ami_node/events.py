"""Typed domain events of the AMI contracts, decoded from a block's Contracts.ContractEmitted records.

Each event carries where it happened (`block_number`, `block_hash`, `event_index`, `contract`) and is keyed by
`key = (block_number, event_index)`: an extrinsic hash is not unique on Substrate, an event position is.
Accounts are SS58 strings (prefix 42), byte arrays "0x"-hex strings. The Rust field `from` is `from_` here
(alias "from" on input and in `model_dump(by_alias=True)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ami_node.abi import AbiError, ContractAbi
from ami_node.port import Block

__all__ = [
    "EVENT_TYPES",
    "BatchDistributed",
    "Challenged",
    "DomainEvent",
    "Listened",
    "Minted",
    "OracleAdded",
    "OracleRemoved",
    "Paid",
    "PlaylistAdded",
    "PlaylistCreated",
    "ScoreSubmitted",
    "Tagged",
    "Transfer",
    "Transferred",
    "ValidatorAdded",
    "ValidatorRemoved",
    "decode_block",
]

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


class Minted(DomainEvent):
    label: ClassVar[str] = "Minted"
    token_id: int
    creator: str
    audio_cid: str
    metadata_cid: str
    royalty_splits: list[tuple[str, int]]


class Transferred(DomainEvent):
    label: ClassVar[str] = "Transferred"
    token_id: int
    from_: str = Field(alias="from")
    to: str


class Listened(DomainEvent):
    label: ClassVar[str] = "Listened"
    token_id: int
    listener: str
    seconds: int


class Tagged(DomainEvent):
    label: ClassVar[str] = "Tagged"
    token_id: int
    curator: str
    tag: str


class PlaylistCreated(DomainEvent):
    label: ClassVar[str] = "PlaylistCreated"
    playlist_id: int
    owner: str
    name: str


class PlaylistAdded(DomainEvent):
    label: ClassVar[str] = "PlaylistAdded"
    playlist_id: int
    token_id: int
    curator: str


class OracleAdded(DomainEvent):
    label: ClassVar[str] = "OracleAdded"
    account: str


class OracleRemoved(DomainEvent):
    label: ClassVar[str] = "OracleRemoved"
    account: str


class ValidatorAdded(DomainEvent):
    label: ClassVar[str] = "ValidatorAdded"
    account: str


class ValidatorRemoved(DomainEvent):
    label: ClassVar[str] = "ValidatorRemoved"
    account: str


class ScoreSubmitted(DomainEvent):
    label: ClassVar[str] = "ScoreSubmitted"
    token_id: int
    oracle: str
    novelty_bp: int
    quality_bp: int
    model_version: int
    commitment: str


class Paid(DomainEvent):
    label: ClassVar[str] = "Paid"
    payout_id: str
    to: str
    amount: int
    kind: int
    epoch: int


class BatchDistributed(DomainEvent):
    label: ClassVar[str] = "BatchDistributed"
    epoch: int
    batch: int
    count: int
    total: int


class Challenged(DomainEvent):
    label: ClassVar[str] = "Challenged"
    challenge_id: int
    token_id: int
    validator: str
    evidence: str


class Transfer(DomainEvent):
    """A MINT token transfer (rewards contract), not to be confused with the NFT's `Transferred`."""

    label: ClassVar[str] = "Transfer"
    from_: str = Field(alias="from")
    to: str
    amount: int


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.label: cls
    for cls in (
        Minted, Transferred, Listened, Tagged, PlaylistCreated, PlaylistAdded, OracleAdded, OracleRemoved,
        ValidatorAdded, ValidatorRemoved, ScoreSubmitted, Paid, BatchDistributed, Challenged, Transfer,
    )
}


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
            log.error("undecodable contract event", block=block.ref.number, index=raw.index,
                      contract=raw.contract, error=str(exc))
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
            log.error("contract event does not fit its domain type", label=label, block=block.ref.number,
                      index=raw.index, error=str(exc))
            continue
        out.append(event)
    return out
