"""`ami status` lists failed and retried items; `ami requeue` puts failed outbox rows back to pending (the
devnet test in tests/hostile proves the requeued payout is then paid exactly once)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest
from ledgers import minted, write_blocks
from typer.testing import CliRunner

from offchain.cli import app


async def _fill(db: Path, outbox: Path) -> None:
    from ami_node.keys import load_keypair
    from ami_node.submitter import Payout, Submitter
    from offchain.projection import BlockData
    from offchain.store import WorkerStore

    await write_blocks(db, [BlockData(1, "0x01", [minted(i, i + 1) for i in range(3)])])
    s = await WorkerStore.open(db)
    await s.record_rejection(1, "not_a_file", "a UnixFS directory node, not a file")
    await s.schedule_retry(2, "not_found: nobody has it", time.time() + 60)
    await s.close()
    alice = load_keypair("//Alice")
    sub = Submitter(None, alice, outbox, rewards="5Rewards")  # type: ignore[arg-type]  # no chain needed
    await sub.open()
    await sub.enqueue_payouts(0, [Payout(id=b"\x01" * 32, to=alice.address, amount=5, kind=1)])
    await sub.enqueue_call("score:3:1", "5Rewards", "submit_score", b"\x00", abi="ami_rewards")
    await sub.close()
    # What the submitter writes when the dry run reverts.
    conn = sqlite3.connect(outbox)
    conn.execute("UPDATE payouts SET state='failed', error='dry run reverted: NotOracle'")
    conn.execute("UPDATE calls SET state='failed', error='dry run reverted: NotOracle'")
    conn.commit()
    conn.close()


def test_status_shows_failures_and_requeue_resets_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, outbox = tmp_path / "w.sqlite", tmp_path / "w.outbox.sqlite"
    asyncio.run(_fill(db, outbox))
    monkeypatch.setenv("AMI_DB_PATH", str(db))
    monkeypatch.setenv("AMI_SIGNING_KEY", "//Alice")
    out = CliRunner().invoke(app, ["status", "--json"])
    assert out.exit_code == 0, out.output
    problems = json.loads(out.output)["problems"]
    assert problems["rejected_by_reason"] == {"not_a_file": 1}
    assert [t["token_id"] for t in problems["retrying"]] == [2]
    assert problems["failed_payouts"] == [{"id": "0x" + "01" * 32, "error": "dry run reverted: NotOracle"}]
    assert problems["failed_calls"] == [{"key": "score:3:1", "error": "dry run reverted: NotOracle"}]
    monkeypatch.setenv("COLUMNS", "80")
    table = CliRunner().invoke(app, ["status"])
    assert table.exit_code == 0 and "NotOracle" in table.output and "not_a_file" in table.output
    # At 80 columns nothing is cut to an ellipsis: every word is whole, long ids fold onto a second line.
    assert "…" not in table.output and max(len(line) for line in table.output.splitlines()) <= 80
    assert "dry run reverted: NotOracle" in table.output and "not_found: nobody has it" in table.output
    out = CliRunner().invoke(app, ["requeue"])
    assert out.exit_code == 0, out.output
    assert "requeued 2 failed payouts and calls" in out.output and "NotOracle" in out.output
    conn = sqlite3.connect(outbox)
    states = conn.execute("SELECT state FROM payouts UNION ALL SELECT state FROM calls").fetchall()
    conn.close()
    assert states == [("pending",), ("pending",)]
    again = CliRunner().invoke(app, ["requeue"])
    assert again.exit_code == 0 and "requeued 0" in again.output


def test_requeue_without_an_outbox_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMI_DB_PATH", str(tmp_path / "w.sqlite"))
    monkeypatch.setenv("AMI_SIGNING_KEY", "//Alice")
    out = CliRunner().invoke(app, ["requeue"])
    assert out.exit_code == 1 and "no outbox at" in out.output
