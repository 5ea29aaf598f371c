"""One projection of typed contract events into ledger rows, shared by the worker store and the validator.

`project(blocks)` turns the finalized blocks' domain events (`ami_node.events`) into row tuples, one list per
table shape; each ledger writes the lists it keeps (the worker: events, tracks, listens, curations, playlists,
owners, scores, payments; the validator: mints, scores, payments, batches, challenges). Every row is keyed by
its event position (block number, event index) or by its own natural key, so replaying a block is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ami_node.events import (
    EVENT_TYPES,
    BatchDistributed,
    Challenged,
    DomainEvent,
    Listened,
    Minted,
    Paid,
    PlaylistAdded,
    PlaylistCreated,
    ScoreSubmitted,
    Tagged,
    Transferred,
)
from offchain.sqlite import hex_text

# Where an event happened: kept in the row's key columns, not in its stored data.
_POSITION_FIELDS = {"block_number", "block_hash", "event_index", "contract"}

Row = tuple[Any, ...]

# The columns of the tables both ledgers fill with the same rows (`Rows.scores`, `Rows.paid`): the worker's
# chain_scores and paid_events, the validator's scores and paid.
SCORE_COLUMNS = """
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, token_id INTEGER NOT NULL,
    novelty_bp INTEGER NOT NULL, quality_bp INTEGER NOT NULL, model_version INTEGER NOT NULL,
    oracle TEXT NOT NULL, commitment TEXT NOT NULL, PRIMARY KEY (block_number, event_index)"""
PAID_COLUMNS = """
    payout_id TEXT PRIMARY KEY, account TEXT NOT NULL, amount TEXT NOT NULL, kind INTEGER NOT NULL,
    epoch INTEGER NOT NULL, block_number INTEGER NOT NULL, event_index INTEGER NOT NULL"""


@dataclass(frozen=True)
class BlockData:
    """A finalized block's number, hash and its typed contract events, in event order."""

    number: int
    hash: str
    events: Sequence[DomainEvent] = ()


@dataclass
class Rows:
    """The rows of a run of blocks, by shape (the column order of each ledger's tables)."""

    events: list[Row] = field(default_factory=list)  # block, index, label, contract, data JSON
    mints: list[Row] = field(default_factory=list)  # token, creator, audio CID, metadata CID, splits JSON, at
    owners: list[Row] = field(default_factory=list)  # new owner, token
    listens: list[Row] = field(default_factory=list)  # block, index, token, listener, seconds
    curations: list[Row] = field(
        default_factory=list
    )  # block, index, "tag"|"playlist", token, curator, label
    playlists: list[Row] = field(default_factory=list)  # playlist id, owner, name
    scores: list[Row] = field(
        default_factory=list
    )  # block, index, token, novelty, quality, version, oracle, c
    paid: list[Row] = field(default_factory=list)  # payout id, to, amount, kind, epoch, block, index
    batches: list[Row] = field(default_factory=list)  # epoch, batch, count, total, block
    challenged: list[Row] = field(
        default_factory=list
    )  # block, index, challenge id, token, validator, evidence


def jsonable(v: Any) -> Any:
    """`v` as JSON-able data: bytes as 0x-hex, mappings with text keys, sequences as lists."""
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return v


def event_data(ev: DomainEvent) -> dict[str, Any]:
    """An event's own fields (Rust names, e.g. `from`), without where it happened."""
    return ev.model_dump(by_alias=True, exclude=_POSITION_FIELDS)


def typed_event(
    label: str, index: int, fields: Mapping[str, Any], *, block: int = 0, contract: str = ""
) -> DomainEvent:
    """The domain event `label` at event `index` from plain field values (bytes become 0x-hex), for replays,
    benches and tests that hold events as data."""
    return EVENT_TYPES[label].model_validate(
        {
            **{k: jsonable(v) for k, v in fields.items()},
            "block_number": block,
            "block_hash": "0x",
            "event_index": index,
            "contract": contract,
        }
    )


def _minted(rows: Rows, n: int, ev: Any) -> None:
    splits = [(str(acc), int(bp)) for acc, bp in ev.royalty_splits]
    rows.mints.append(
        (ev.token_id, ev.creator, ev.audio_cid, ev.metadata_cid, json.dumps(splits), n, ev.event_index)
    )


def _transferred(rows: Rows, n: int, ev: Any) -> None:
    rows.owners.append((ev.to, ev.token_id))


def _listened(rows: Rows, n: int, ev: Any) -> None:
    rows.listens.append((n, ev.event_index, ev.token_id, ev.listener, ev.seconds))


def _tagged(rows: Rows, n: int, ev: Any) -> None:
    rows.curations.append((n, ev.event_index, "tag", ev.token_id, ev.curator, ev.tag))


def _playlist_added(rows: Rows, n: int, ev: Any) -> None:
    rows.curations.append((n, ev.event_index, "playlist", ev.token_id, ev.curator, str(ev.playlist_id)))


def _playlist_created(rows: Rows, n: int, ev: Any) -> None:
    rows.playlists.append((ev.playlist_id, ev.owner, ev.name))


def _score_submitted(rows: Rows, n: int, ev: Any) -> None:
    rows.scores.append(
        (
            n,
            ev.event_index,
            ev.token_id,
            ev.novelty_bp,
            ev.quality_bp,
            ev.model_version,
            ev.oracle,
            hex_text(ev.commitment),
        )
    )


def _paid(rows: Rows, n: int, ev: Any) -> None:
    rows.paid.append(
        (hex_text(ev.payout_id), ev.to, str(int(ev.amount)), ev.kind, ev.epoch, n, ev.event_index)
    )


def _batch_distributed(rows: Rows, n: int, ev: Any) -> None:
    rows.batches.append((ev.epoch, ev.batch, ev.count, str(int(ev.total)), n))


def _challenged(rows: Rows, n: int, ev: Any) -> None:
    rows.challenged.append(
        (n, ev.event_index, ev.challenge_id, str(int(ev.token_id)), ev.validator, hex_text(ev.evidence))
    )


_PROJECT: dict[type[DomainEvent], Callable[[Rows, int, Any], None]] = {
    Minted: _minted,
    Transferred: _transferred,
    Listened: _listened,
    Tagged: _tagged,
    PlaylistAdded: _playlist_added,
    PlaylistCreated: _playlist_created,
    ScoreSubmitted: _score_submitted,
    Paid: _paid,
    BatchDistributed: _batch_distributed,
    Challenged: _challenged,
}


def project(blocks: Sequence[BlockData]) -> Rows:
    """The rows of `blocks`' events (every event also as an `events` row with its data as JSON)."""
    rows = Rows()
    for b in blocks:
        for ev in b.events:
            rows.events.append(
                (b.number, ev.event_index, ev.label, ev.contract, json.dumps(jsonable(event_data(ev))))
            )
            step = _PROJECT.get(type(ev))
            if step is not None:
                step(rows, b.number, ev)
    return rows
