"""The validator's own SQLite state: the chain facts it audits, its rescoring results, audits and challenges.

Chain facts (mints, published scores, payouts, distributed batches, challenges) are written with the
checkpoint in one transaction, keyed by their event position, with ON CONFLICT DO NOTHING: replaying a block
is harmless. Everything else (rescoring results, audits, challenges sent) is keyed by its subject, so a
restart picks up where the validator stopped and never challenges the same subject twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from offchain.audit.model import SubjectAudit
from offchain.audit.rescore import Rescored
from offchain.economics.records import ScoreRec, TrackInfo
from offchain.projection import PAID_COLUMNS, SCORE_COLUMNS, BlockData, project
from offchain.sqlite import SqliteFile, hex_text, transaction
from offchain.store.ledger import blocks_after, read_checkpoint, write_checkpoint

SCHEMA_VERSION = 1
# A schema change bumps SCHEMA_VERSION to N and adds MIGRATIONS[N - 1]: the SQL taking a version N-1 file to N
# (offchain/sqlite.py runs each step in one transaction; tests/operator/test_state.py opens every version).
MIGRATIONS: dict[int, str] = {}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1), block_number INTEGER NOT NULL, block_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mints (
    token_id INTEGER PRIMARY KEY, creator TEXT NOT NULL, audio_cid TEXT NOT NULL, metadata_cid TEXT NOT NULL,
    splits TEXT NOT NULL, block_number INTEGER NOT NULL, event_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS scores ({SCORE_COLUMNS}) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS paid ({PAID_COLUMNS});
CREATE INDEX IF NOT EXISTS paid_epoch ON paid (epoch);
CREATE TABLE IF NOT EXISTS batches (
    epoch INTEGER NOT NULL, batch INTEGER NOT NULL, count INTEGER NOT NULL, total TEXT NOT NULL,
    block_number INTEGER NOT NULL, PRIMARY KEY (epoch, batch));
CREATE TABLE IF NOT EXISTS challenged (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, challenge_id INTEGER NOT NULL,
    token_id TEXT NOT NULL, validator TEXT NOT NULL, evidence TEXT NOT NULL,
    PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rescored (
    model_version INTEGER NOT NULL, token_id INTEGER NOT NULL, accepted INTEGER NOT NULL, reason TEXT,
    novelty_bp INTEGER, quality_bp INTEGER, commitment TEXT, inputs TEXT NOT NULL, entry BLOB,
    PRIMARY KEY (model_version, token_id));
CREATE TABLE IF NOT EXISTS audits (
    subject TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL,
    audited_block INTEGER NOT NULL, paid_seen INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS challenges (
    subject TEXT PRIMARY KEY, token_id TEXT NOT NULL, evidence TEXT NOT NULL, status TEXT NOT NULL,
    tx_hash TEXT, block_number INTEGER, error TEXT, evidence_cid TEXT);
"""


class ValidatorDbError(Exception):
    """The validator database is unusable (another schema version, not SQLite)."""


@dataclass(frozen=True)
class MintRow(TrackInfo):
    """A `Minted` event as the validator keeps it: the minted track, and the content to fetch and rescore."""

    audio_cid: str
    metadata_cid: str


@dataclass(frozen=True)
class ScoreRow(ScoreRec):
    """A published score (`ScoreSubmitted`) with its provenance: the subject of a score audit."""

    model_version: int
    oracle: str
    commitment: str


@dataclass(frozen=True)
class PaidRow:
    """A payout the contract made (`Paid`), compared with the resettled epoch's payouts."""

    payout_id: str
    account: str
    amount: int
    kind: int
    epoch: int
    at: tuple[int, int]


@dataclass(frozen=True)
class ChallengeRow:
    """A challenge this validator decided on, and where sending it stands."""

    subject: str
    token_id: int
    evidence: str
    status: str  # "pending" (intent recorded), "sent" (landed), "refused" (the contract refused it for good)
    tx_hash: str | None
    block_number: int | None
    error: str | None
    evidence_cid: str | None  # the canonical evidence document on IPFS (its blake2b-256 is `evidence`)


class ValidatorDb(SqliteFile):
    """Async access to the validator's SQLite file; one instance per process owns the connection."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION
    MIGRATIONS = MIGRATIONS
    ERROR = ValidatorDbError
    OWNER = "validator"

    async def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(await (await self._db.execute(sql, args)).fetchall())

    # -- chain facts -----------------------------------------------------------------------------------------

    async def checkpoint(self) -> tuple[int, str] | None:
        return await read_checkpoint(self._db)

    async def head(self) -> int:
        """The checkpoint's block number, 0 before the first block."""
        cp = await self.checkpoint()
        return cp[0] if cp else 0

    async def ingest(self, blocks: Sequence[BlockData]) -> int:
        """Record the audited events of blocks above the checkpoint, with the new checkpoint; returns how many
        blocks were new."""
        todo = blocks_after(blocks, await self.checkpoint())
        if not todo:
            return 0
        rows = project(todo)
        async with transaction(self._db) as db:
            await db.executemany(
                "INSERT INTO mints VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.mints
            )
            await db.executemany(
                "INSERT INTO scores VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.scores
            )
            await db.executemany("INSERT INTO paid VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.paid)
            await db.executemany(
                "INSERT INTO batches VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", rows.batches
            )
            await db.executemany(
                "INSERT INTO challenged VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.challenged
            )
            await write_checkpoint(db, todo[-1])
        return len(todo)

    async def mints(self) -> list[MintRow]:
        rows = await self._all(
            "SELECT token_id, creator, audio_cid, metadata_cid, splits, block_number, event_index FROM mints"
            " ORDER BY token_id"
        )
        return [
            MintRow(
                token_id=int(r[0]),
                creator=r[1],
                audio_cid=r[2],
                metadata_cid=r[3],
                royalty_splits=tuple((a, int(b)) for a, b in json.loads(r[4])),
                minted_at=(int(r[5]), int(r[6])),
            )
            for r in rows
        ]

    async def scores(self, from_block: int = 0, to_block: int | None = None) -> list[ScoreRow]:
        rows = await self._all(
            "SELECT token_id, novelty_bp, quality_bp, model_version, oracle, commitment, block_number,"
            " event_index FROM scores WHERE block_number BETWEEN ? AND ? ORDER BY block_number, event_index",
            (from_block, to_block if to_block is not None else 2**62),
        )
        return [
            ScoreRow(
                token_id=int(r[0]),
                novelty_bp=int(r[1]),
                quality_bp=int(r[2]),
                at=(int(r[6]), int(r[7])),
                model_version=int(r[3]),
                oracle=r[4],
                commitment=r[5],
            )
            for r in rows
        ]

    async def scored_tokens(self) -> set[int]:
        return {int(r[0]) for r in await self._all("SELECT DISTINCT token_id FROM scores")}

    _PAID_SELECT = "SELECT payout_id, account, amount, kind, epoch, block_number, event_index FROM paid"

    @staticmethod
    def _paid(r: Sequence[Any]) -> PaidRow:
        return PaidRow(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), (int(r[5]), int(r[6])))

    async def paid(self, epoch: int) -> list[PaidRow]:
        order = " ORDER BY block_number, event_index"
        rows = await self._all(self._PAID_SELECT + " WHERE epoch=?" + order, (epoch,))
        return [self._paid(r) for r in rows]

    async def paid_by_id(self, payout_id: str) -> PaidRow | None:
        rows = await self._all(self._PAID_SELECT + " WHERE payout_id=?", (payout_id,))
        return self._paid(rows[0]) if rows else None

    async def challenged_on_chain(self, validator: str | None = None) -> list[tuple[int, str, str]]:
        """(token_id, evidence hex, validator) of every Challenged event seen."""
        rows = await self._all("SELECT token_id, evidence, validator FROM challenged ORDER BY block_number")
        return [(int(r[0]), r[1], r[2]) for r in rows if validator is None or r[2] == validator]

    # -- rescoring -------------------------------------------------------------------------------------------

    async def rescored(self, model_version: int, token_id: int) -> Rescored | None:
        rows = await self._all(
            "SELECT accepted, reason, novelty_bp, quality_bp, commitment, inputs, entry FROM rescored"
            " WHERE model_version=? AND token_id=?",
            (model_version, token_id),
        )
        if not rows:
            return None
        r = rows[0]
        return Rescored(
            accepted=bool(r[0]),
            reason=r[1],
            novelty_bp=r[2],
            quality_bp=r[3],
            commitment=bytes.fromhex(r[4][2:]) if r[4] else None,
            inputs=json.loads(r[5]),
            entry=r[6],
        )

    async def rescored_tokens(self, model_version: int) -> set[int]:
        rows = await self._all("SELECT token_id FROM rescored WHERE model_version=?", (model_version,))
        return {int(r[0]) for r in rows}

    async def save_rescored(self, model_version: int, token_id: int, r: Rescored) -> None:
        await self._db.execute(
            "INSERT INTO rescored VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                model_version,
                token_id,
                int(r.accepted),
                r.reason,
                r.novelty_bp,
                r.quality_bp,
                hex_text(r.commitment) if r.commitment is not None else None,
                json.dumps(r.inputs, sort_keys=True),
                r.entry,
            ),
        )

    async def provisional_rejections(self, model_version: int) -> set[int]:
        """Tokens rejected only provisionally: their content could not be fetched (reason "not_found: ...")
        or this validator failed on them (reason "unverified: ..."); redone when a score lands for one."""
        rows = await self._all(
            "SELECT token_id FROM rescored WHERE model_version=? AND accepted=0"
            " AND (reason LIKE 'not_found:%' OR reason LIKE 'unverified:%')",
            (model_version,),
        )
        return {int(r[0]) for r in rows}

    async def delete_rescored_from(self, model_version: int, token_id: int) -> int:
        """Forget rescoring results of tokens >= token_id (their catalogue changes); returns how many."""
        cur = await self._db.execute(
            "DELETE FROM rescored WHERE model_version=? AND token_id>=?", (model_version, token_id)
        )
        return int(cur.rowcount)

    async def catalogue_entries(self, model_version: int) -> list[tuple[int, bytes]]:
        rows = await self._all(
            "SELECT token_id, entry FROM rescored WHERE model_version=? AND entry IS NOT NULL"
            " ORDER BY token_id",
            (model_version,),
        )
        return [(int(r[0]), bytes(r[1] or b"")) for r in rows]

    # -- audits & challenges ---------------------------------------------------------------------------------

    async def save_audit(self, audit: SubjectAudit, block: int, paid_seen: int = 0) -> None:
        """Store an audit; `paid_seen` is how many Paid events of an epoch it compared (to redo it when more
        land later)."""
        await self._db.execute(
            "INSERT INTO audits VALUES (?,?,?,?,?,?) ON CONFLICT (subject) DO UPDATE SET"
            " status=excluded.status, doc=excluded.doc, audited_block=excluded.audited_block,"
            " paid_seen=excluded.paid_seen",
            (audit.subject, audit.kind, audit.status.value, audit.model_dump_json(), block, paid_seen),
        )

    async def audit_paid_seen(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in await self._all("SELECT subject, paid_seen FROM audits")}

    async def paid_counts(self) -> dict[int, int]:
        """{epoch: number of Paid events seen}."""
        return {
            int(r[0]): int(r[1]) for r in await self._all("SELECT epoch, COUNT(*) FROM paid GROUP BY epoch")
        }

    async def audits(self) -> list[SubjectAudit]:
        rows = await self._all("SELECT doc FROM audits ORDER BY subject")
        return [SubjectAudit.model_validate_json(r[0]) for r in rows]

    async def audit_statuses(self) -> dict[str, str]:
        """{subject: status} of every audit made (cheap: documents are not parsed)."""
        return {r[0]: r[1] for r in await self._all("SELECT subject, status FROM audits")}

    async def delete_audits(self, subjects: Iterable[str]) -> None:
        """Forget audits so they are made again (after a rescoring rewind)."""
        await self._db.executemany("DELETE FROM audits WHERE subject=?", [(x,) for x in subjects])

    async def audit(self, subject: str) -> SubjectAudit | None:
        rows = await self._all("SELECT doc FROM audits WHERE subject=?", (subject,))
        return SubjectAudit.model_validate_json(rows[0][0]) if rows else None

    async def challenge(self, subject: str) -> ChallengeRow | None:
        rows = await self._all(
            "SELECT subject, token_id, evidence, status, tx_hash, block_number, error, evidence_cid"
            " FROM challenges"
            " WHERE subject=?",
            (subject,),
        )
        return self._challenge(rows[0]) if rows else None

    @staticmethod
    def _challenge(r: Sequence[Any]) -> ChallengeRow:
        return ChallengeRow(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])

    async def challenges(self, status: str | Iterable[str] | None = None) -> list[ChallengeRow]:
        sql = (
            "SELECT subject, token_id, evidence, status, tx_hash, block_number, error, evidence_cid"
            " FROM challenges"
        )
        args: list[Any] = []
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            sql += f" WHERE status IN ({','.join('?' * len(sts))})"
            args = sts
        return [self._challenge(r) for r in await self._all(sql + " ORDER BY subject", args)]

    async def record_challenge_intent(
        self, subject: str, token_id: int, evidence: str, evidence_cid: str | None = None
    ) -> bool:
        """Persist the decision to challenge `subject` before sending; False when it was already decided."""
        cur = await self._db.execute(
            "INSERT INTO challenges (subject, token_id, evidence, status, evidence_cid)"
            " VALUES (?,?,?,'pending',?) ON CONFLICT DO NOTHING",
            (subject, str(token_id), evidence, evidence_cid),
        )
        return cur.rowcount == 1

    async def mark_challenge(
        self,
        subject: str,
        status: str,
        *,
        tx_hash: str | None = None,
        block: int | None = None,
        error: str | None = None,
    ) -> None:
        await self._db.execute(
            "UPDATE challenges SET status=?, tx_hash=COALESCE(?, tx_hash),"
            " block_number=COALESCE(?, block_number), error=? WHERE subject=?",
            (status, tx_hash, block, error, subject),
        )
