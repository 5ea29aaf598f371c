"""The worker's SQLite schema: its tables, its version and the migration steps between versions."""

from __future__ import annotations

import aiosqlite

from offchain.projection import PAID_COLUMNS, SCORE_COLUMNS

SCHEMA_VERSION = 1
# A schema change bumps SCHEMA_VERSION to N and adds MIGRATIONS[N - 1]: the SQL taking a version N-1 file to N
# (offchain/sqlite.py runs each step in one transaction; tests/operator/test_state.py opens every version).
MIGRATIONS: dict[int, str] = {}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1), block_number INTEGER NOT NULL, block_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, kind TEXT NOT NULL, contract TEXT,
    data TEXT NOT NULL, PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracks (
    token_id INTEGER PRIMARY KEY, creator TEXT NOT NULL, owner TEXT NOT NULL, audio_cid TEXT NOT NULL,
    metadata_cid TEXT NOT NULL, splits TEXT NOT NULL, block_number INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', reason TEXT, detail TEXT, novelty_bp INTEGER, quality_bp INTEGER,
    model_version INTEGER, commitment TEXT, scored_json TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tracks_status ON tracks (status);
CREATE TABLE IF NOT EXISTS listens (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, token_id INTEGER NOT NULL,
    listener TEXT NOT NULL, seconds INTEGER NOT NULL, PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS listens_token_listener ON listens (token_id, listener, block_number, event_index);
CREATE TABLE IF NOT EXISTS curations (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, kind TEXT NOT NULL,
    token_id INTEGER NOT NULL, curator TEXT NOT NULL, label TEXT,
    PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS playlists (
    playlist_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chain_scores ({SCORE_COLUMNS}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY, start_block INTEGER NOT NULL, end_block INTEGER NOT NULL,
    policy_version TEXT NOT NULL, record TEXT NOT NULL, payout_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS payouts (
    payout_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, kind INTEGER NOT NULL, account TEXT NOT NULL,
    token_id INTEGER, amount TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    paid_block INTEGER);
CREATE INDEX IF NOT EXISTS payouts_status ON payouts (status, epoch);
CREATE TABLE IF NOT EXISTS paid_events ({PAID_COLUMNS});
"""


async def add_retry_columns(conn: aiosqlite.Connection) -> None:
    """Additive, idempotent: `tracks.retry_at` (unix time a track is due again) for the scoring lanes."""
    cur = await conn.execute("PRAGMA table_info(tracks)")
    if "retry_at" not in {str(r[1]) for r in await cur.fetchall()}:
        await conn.execute("ALTER TABLE tracks ADD COLUMN retry_at REAL")
