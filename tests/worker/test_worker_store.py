"""The worker store: one transaction per block batch with the checkpoint; replays are harmless."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ami_node.events import EVENT_TYPES
from offchain.projection import BlockData, typed_event
from offchain.store import StoreError, WorkerStore


def block(n: int, *events: tuple[str, dict]) -> BlockData:
    return BlockData(n, f"0x{n:064x}", [typed_event(k, i, f) for i, (k, f) in enumerate(events)])


MINT = (
    "Minted",
    {
        "token_id": 7,
        "creator": "C",
        "audio_cid": "QmA",
        "metadata_cid": "QmM",
        "royalty_splits": [["C", 6000], ["P", 4000]],
    },
)


async def test_replaying_blocks_changes_nothing(store: WorkerStore) -> None:
    b1 = block(1, MINT)
    b2 = block(
        2,
        ("Listened", {"token_id": 7, "listener": "L", "seconds": 40}),
        ("Tagged", {"token_id": 7, "curator": "K", "tag": "jazz"}),
    )
    res = await store.ingest([b1, b2])
    assert (res.blocks, res.events, res.listens, res.new_tracks) == (2, 3, 1, [7])
    before = await store.counts()
    again = await store.ingest([b1, b2])  # a replay after a crash between fetch and commit
    assert again.blocks == 0 and await store.counts() == before
    assert await store.checkpoint() == (2, b2.hash)
    t = await store.track(7)
    assert t is not None and t.splits == (("C", 6000), ("P", 4000)) and t.status == "pending"


async def test_a_malformed_event_writes_nothing_of_its_batch(store: WorkerStore) -> None:
    await store.ingest([block(1, MINT)])
    good = block(2, ("Listened", {"token_id": 7, "listener": "L", "seconds": 40}))
    with pytest.raises(ValidationError, match="seconds"):  # a typed event without `seconds` is refused
        block(3, ("Listened", {"token_id": 7, "listener": "L"}))
    # one that skipped validation (built with `model_construct`) fails the projection: nothing is written
    broken = EVENT_TYPES["Listened"].model_construct(
        block_number=3, block_hash="0x", event_index=0, contract="", token_id=7, listener="L"
    )
    bad = BlockData(3, f"0x{3:064x}", [broken])
    with pytest.raises(AttributeError, match="seconds"):
        await store.ingest([good, bad])
    assert await store.checkpoint() == (1, block(1).hash)
    assert (await store.counts())["events"] == 1


async def test_out_of_order_blocks_are_refused(store: WorkerStore) -> None:
    with pytest.raises(ValueError, match="out of order"):
        await store.ingest([block(3), block(2)])


async def test_an_epoch_is_settled_once_and_unpaid_budget_is_recorded(store: WorkerStore) -> None:
    from offchain.economics import EpochInput, PolicyParams, settle_epoch
    from pallets_spec.vocabulary import PayoutKind

    s = settle_epoch(EpochInput(0, 0, 9, {}), PolicyParams(budgets={PayoutKind.CREATE: 5}))
    assert await store.save_settlement(s, 0, 9) and not await store.save_settlement(s, 0, 9)
    assert (await store.epochs())[0]["unallocated"]["create"] == 5


async def test_a_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        await WorkerStore.open(p)


async def test_a_gap_after_the_checkpoint_is_refused(store: WorkerStore) -> None:
    from offchain.store import GapError

    await store.ingest([block(1)], contiguous=True)
    with pytest.raises(GapError, match="does not follow the checkpoint #1"):
        await store.ingest([block(3)], contiguous=True)
    assert await store.checkpoint() == (1, block(1).hash)
