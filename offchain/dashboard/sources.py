"""Which databases the dashboard reads (a worker's, a validator's, its audits) and how it opens them.

The databases are read as their owners wrote them (offchain/store.py, offchain/audit/db.py): connections are
opened read-only (SQLite `mode=ro`), so the dashboard can never change stored data; only its own indexes are
added, when the file is writable.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosqlite

# Indexes for the pages' paged sorts, searches and histograms at 100,000 tracks: each is a covering or keyed
# lookup instead of a scan of the wide track rows (their score details run to kilobytes). The store's schema
# does not have them; the dashboard adds them itself, IF NOT EXISTS, when the file is writable.
DASHBOARD_INDEXES = (
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_novelty ON tracks (novelty_bp, token_id)",
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_quality ON tracks (quality_bp, token_id)",
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_block ON tracks (block_number, novelty_bp, quality_bp)",
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_creator ON tracks (creator)",
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_cid ON tracks (audio_cid)",
    "CREATE INDEX IF NOT EXISTS dashboard_tracks_genre"
    " ON tracks (json_extract(scored_json, '$.scored_genre'))",
    "CREATE INDEX IF NOT EXISTS dashboard_payouts_account ON payouts (account, amount)",
    "CREATE INDEX IF NOT EXISTS dashboard_payouts_epoch ON payouts (epoch, kind)",
    "CREATE INDEX IF NOT EXISTS dashboard_payouts_token ON payouts (token_id)",
    "CREATE INDEX IF NOT EXISTS dashboard_chain_scores_token ON chain_scores (token_id)",
)


def ensure_indexes(path: Path) -> str | None:
    """Add DASHBOARD_INDEXES to a worker-schema database; None when done, else why not (pages then scan)."""
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            for sql in DASHBOARD_INDEXES:
                conn.execute(sql)
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class DashboardError(Exception):
    """The dashboard cannot serve this database (missing, not SQLite, not a worker's or validator's)."""


@dataclass(frozen=True)
class Source:
    """Where the dashboard reads from: `main` holds the worker-store schema (a worker's database or a
    validator's ledger), `audit` the validator's audits and challenges, `catalogue` the embeddings folder."""

    kind: Literal["worker", "validator"]
    main: Path | None
    audit: Path | None = None
    catalogue: Path | None = None


async def open_readonly(path: Path) -> aiosqlite.Connection:
    """A read-only connection to an existing SQLite file; DashboardError says why one cannot be had."""
    if not path.is_file():
        raise DashboardError(f"no database at {path}: pass the worker's .sqlite file or a validator's folder")
    uri = f"file:{path.resolve()}?mode=ro"
    try:
        conn = await aiosqlite.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise DashboardError(f"{path}: cannot open the database read-only: {exc}") from None
    try:
        # Read to the end and close: a statement left pending would pin this connection's WAL snapshot and
        # every later page would show the database as it was at startup.
        async with conn.execute("SELECT name FROM sqlite_master LIMIT 1") as cur:
            await cur.fetchall()
    except sqlite3.Error as exc:
        await conn.close()
        raise DashboardError(f"{path}: not a SQLite database ({exc})") from None
    return conn


def _tables(path: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise DashboardError(f"{path}: not a SQLite database ({exc})") from None


_WORKER_TABLES = {"tracks", "payouts", "epochs", "checkpoint", "events"}
_AUDIT_TABLES = {"audits", "challenges", "mints"}


def resolve_source(path: Path, validator: Path | None = None) -> Source:
    """Which files to read for `ami dashboard --db PATH [--validator DIR]`.

    PATH is a worker's database file (its catalogue folder beside it), a validator's folder (validator.sqlite
    and ledger.sqlite) or its validator.sqlite; `validator` adds a validator's findings to a worker's view.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "validator.sqlite").is_file():
            return resolve_source(path / "validator.sqlite")
        if (path / "worker.sqlite").is_file():
            return resolve_source(path / "worker.sqlite", validator)
        raise DashboardError(f"{path} holds neither worker.sqlite nor validator.sqlite")
    if not path.is_file():
        raise DashboardError(f"no database at {path}: pass the worker's .sqlite file or a validator's folder")
    tables = _tables(path)
    if tables >= _AUDIT_TABLES:
        ledger = path.with_name("ledger.sqlite")
        return Source("validator", ledger if ledger.is_file() else None, path, None)
    if tables >= _WORKER_TABLES:
        audit = None
        if validator is not None:
            vsrc = resolve_source(validator)
            if vsrc.audit is None:
                raise DashboardError(f"{validator} is not a validator's folder or validator.sqlite")
            audit = vsrc.audit
        cat = path.parent / "catalogue"
        return Source("worker", path, audit, cat if cat.is_dir() else None)
    raise DashboardError(
        f"{path} is a SQLite file but neither a worker's database nor a validator's"
        f" (tables found: {', '.join(sorted(tables)) or 'none'})"
    )
