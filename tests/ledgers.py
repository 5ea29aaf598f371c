"""Worker databases for tests that read one from outside the worker (the CLI's status, backup, requeue):
blocks of domain events written through the store, as the worker writes them."""

from __future__ import annotations

from pathlib import Path

from ami_node.events import DomainEvent
from offchain.projection import BlockData, typed_event
from offchain.store import WorkerStore


def minted(index: int, token_id: int) -> DomainEvent:
    """Event `index` of its block: creator "C" mints `token_id` (CIDs "Qm"), all royalties to C."""
    fields = {
        "token_id": token_id,
        "creator": "C",
        "audio_cid": "Qm",
        "metadata_cid": "Qm",
        "royalty_splits": [["C", 10000]],
    }
    return typed_event("Minted", index, fields)


async def write_blocks(db: Path, blocks: list[BlockData]) -> None:
    """Open the worker database at `db` (created if missing), ingest `blocks`, close it."""
    store = await WorkerStore.open(db)
    try:
        await store.ingest(blocks)
    finally:
        await store.close()
