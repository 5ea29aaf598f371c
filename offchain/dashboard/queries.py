"""Read-only queries of the dashboard over a worker's database (or a validator's ledger) and its audit file.

The files come from offchain/dashboard/sources.py, opened read-only. List pages are paged in SQL
(LIMIT/OFFSET on an indexed or primary key) so a page costs the same on 100 or 100,000 tracks.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import aiosqlite

from offchain.dashboard.sources import Source, open_readonly
from pallets_spec.vocabulary import PAYOUT_KIND_LABELS, PayoutKind

PER_PAGE = 50
KIND_NAMES = PAYOUT_KIND_LABELS
TRACK_SORTS = {
    "token": "token_id",
    "novelty": "novelty_bp",
    "quality": "quality_bp",
    "block": "block_number",
    "status": "status",
}
TRACK_STATUSES = ("pending", "scored", "submitted", "published", "rejected")
HIST_BIN_BP = 500  # histogram bin width of the distributions page, in basis points (20 bins over 0..10000)


class NotFound(LookupError):
    """A page asked for something the database does not hold (a token, an epoch, an account)."""


class BadRequest(ValueError):
    """A query parameter is malformed; the message says what is accepted."""


def short(account: str) -> str:
    return account if len(account) <= 14 else f"{account[:6]}…{account[-6:]}"


_TOKEN_REF = re.compile(r"token:(\d+)")


def token_refs(text: str | None) -> list[int]:
    """Token ids named as `token:N` in a verdict or a detail ("duplicate of token:1")."""
    return [int(m) for m in _TOKEN_REF.findall(text or "")]


def _page(page: int, per_page: int = PER_PAGE) -> int:
    if page < 1:
        raise BadRequest("page must be 1 or more")
    return (page - 1) * per_page


class Queries:
    """Every read the pages make. `main` is required for all but the findings; `audit` is optional."""

    def __init__(
        self,
        source: Source,
        main: aiosqlite.Connection | None,
        audit: aiosqlite.Connection | None,
        epoch_blocks: int | None = None,
    ) -> None:
        self.source = source
        self._main = main
        self._audit = audit
        self._epoch_blocks = epoch_blocks

    @classmethod
    async def open(cls, source: Source, epoch_blocks: int | None = None) -> Queries:
        main = await open_readonly(source.main) if source.main else None
        try:
            audit = await open_readonly(source.audit) if source.audit else None
        except BaseException:
            if main is not None:
                await main.close()
            raise
        return cls(source, main, audit, epoch_blocks)

    async def close(self) -> None:
        for conn in (self._main, self._audit):
            if conn is not None:
                await conn.close()

    @property
    def has_main(self) -> bool:
        return self._main is not None

    @property
    def has_audit(self) -> bool:
        return self._audit is not None

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self._main is None:
            raise NotFound("this validator folder has no ledger.sqlite: only its findings can be shown")
        async with self._main.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    async def _audit_rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self._audit is None:
            return []
        async with self._audit.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # -- overview --------------------------------------------------------------------------------------------

    async def checkpoint(self) -> int | None:
        row = await self._one("SELECT block_number FROM checkpoint")
        return int(row[0]) if row else None

    async def epoch_blocks(self) -> int:
        """Epoch length: the settled epochs' own, else the configured one, else the worker's default."""
        row = await self._one("SELECT start_block, end_block FROM epochs ORDER BY epoch LIMIT 1")
        if row:
            return int(row[1]) - int(row[0]) + 1
        return self._epoch_blocks or 100

    async def track_status_counts(self) -> dict[str, int]:
        out = dict.fromkeys(TRACK_STATUSES, 0)
        for status, n in await self._rows("SELECT status, COUNT(*) FROM tracks GROUP BY status"):
            out[str(status)] = int(n)
        return out

    async def payout_status_counts(self) -> dict[str, int]:
        out = {"pending": 0, "handed": 0, "paid": 0}
        for status, n in await self._rows("SELECT status, COUNT(*) FROM payouts GROUP BY status"):
            out[str(status)] = int(n)
        return out

    async def totals(self) -> dict[str, int]:
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM listens), (SELECT COUNT(*) FROM events),"
            " (SELECT COUNT(*) FROM epochs), (SELECT COUNT(*) FROM chain_scores)"
        )
        return {"listens": row[0], "events": row[1], "epochs": row[2], "scores_on_chain": row[3]}

    # -- epochs ----------------------------------------------------------------------------------------------

    @staticmethod
    def _epoch(r: Sequence[Any]) -> dict[str, Any]:
        rec = json.loads(r[4])
        budgets = {k: int(v) for k, v in rec.get("budgets", {}).items()}
        paid = {k: int(v) for k, v in rec.get("paid", {}).items()}
        unalloc = {k: int(v) for k, v in rec.get("unallocated", {}).items()}
        return {
            "epoch": int(r[0]),
            "start_block": int(r[1]),
            "end_block": int(r[2]),
            "policy_version": r[3],
            "payout_count": int(r[5]),
            "budgets": budgets,
            "paid": paid,
            "unallocated": unalloc,
            "budget_total": sum(budgets.values()),
            "paid_total": sum(paid.values()),
            "unallocated_total": sum(unalloc.values()),
        }

    _EPOCH_COLS = "epoch, start_block, end_block, policy_version, record, payout_count"

    async def epochs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Settled epochs, newest first."""
        sql = f"SELECT {self._EPOCH_COLS} FROM epochs ORDER BY epoch DESC"
        rows = await self._rows(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [self._epoch(r) for r in rows]

    async def epoch(self, epoch: int) -> dict[str, Any]:
        row = await self._one(f"SELECT {self._EPOCH_COLS} FROM epochs WHERE epoch=?", (epoch,))
        if row is None:
            raise NotFound(f"epoch {epoch} is not settled in this database")
        ep = self._epoch(row)
        status = await self._rows(
            "SELECT status, COUNT(*), SUM(CAST(amount AS INTEGER)) FROM payouts WHERE epoch=?"
            " GROUP BY status",
            (epoch,),
        )
        ep["by_status"] = {s: {"count": int(n), "amount": int(a or 0)} for s, n, a in status}
        sybil = await self._rows(
            "SELECT account, amount, reason FROM payouts WHERE epoch=? AND kind=?"
            " AND (reason LIKE '%in a farm of%' OR reason LIKE '%(capped)%') ORDER BY account",
            (epoch, int(PayoutKind.LISTEN)),
        )
        ep["sybil"] = [{"account": a, "amount": int(m), "reason": why} for a, m, why in sybil]
        ep["sybil_total"] = sum(s["amount"] for s in ep["sybil"])
        return ep

    async def epoch_payouts(self, epoch: int, page: int) -> tuple[list[dict[str, Any]], int]:
        total = (await self._one("SELECT COUNT(*) FROM payouts WHERE epoch=?", (epoch,)))[0]
        rows = await self._rows(
            "SELECT account, kind, token_id, amount, reason, status, payout_id FROM payouts WHERE epoch=?"
            " ORDER BY kind, CAST(amount AS INTEGER) DESC, account LIMIT ? OFFSET ?",
            (epoch, PER_PAGE, _page(page)),
        )
        return [self._payout(r) for r in rows], int(total)

    @staticmethod
    def _payout(r: Sequence[Any]) -> dict[str, Any]:
        return {
            "account": r[0],
            "kind": KIND_NAMES.get(int(r[1]), str(r[1])),
            "token_id": r[2],
            "amount": int(r[3]),
            "reason": r[4],
            "status": r[5],
            "payout_id": r[6],
        }

    # -- tracks ----------------------------------------------------------------------------------------------

    _TRACK_COLS = (
        "token_id, creator, owner, audio_cid, metadata_cid, splits, block_number, status, reason, detail,"
        " novelty_bp, quality_bp, model_version, commitment, attempts,"
        " json_extract(scored_json, '$.scored_genre'), json_extract(scored_json, '$.declared_genre')"
    )

    @staticmethod
    def _track(r: Sequence[Any]) -> dict[str, Any]:
        return {
            "token_id": int(r[0]),
            "creator": r[1],
            "owner": r[2],
            "audio_cid": r[3],
            "metadata_cid": r[4],
            "splits": [(a, int(b)) for a, b in json.loads(r[5])],
            "block_number": int(r[6]),
            "status": r[7],
            "reason": r[8],
            "detail": r[9],
            "novelty_bp": r[10],
            "quality_bp": r[11],
            "model_version": r[12],
            "commitment": r[13],
            "attempts": int(r[14]),
            "genre": r[15],
            "declared_genre": r[16],
            "refs": token_refs(r[9]),
        }

    @staticmethod
    def _track_filter(q: str) -> tuple[str, list[Any]]:
        """The WHERE clause of a search, chosen by the query's shape so that each is an indexed lookup:
        a token id, a status, an audio CID, a creator's address, else a genre prefix or a rejection reason."""
        q = q.strip()
        if not q:
            return "", []
        if q.lstrip("#").isdigit():
            return " WHERE token_id=?", [int(q.lstrip("#"))]
        if q in TRACK_STATUSES:
            return " WHERE status=?", [q]
        if q.startswith(("bafy", "Qm")):
            return " WHERE audio_cid=?", [q]
        if len(q) >= 40 and q.isalnum():
            return " WHERE creator=?", [q]
        # Genres are stored as the reference's snake_case names ("ragtime_piano"): "Ragtime piano" or
        # "ragtime" find it by prefix.
        key = re.sub(r"[\s_-]+", "_", q.casefold())
        return (
            " WHERE json_extract(scored_json, '$.scored_genre') BETWEEN ? AND ?"
            " OR (status='rejected' AND reason=?)",
            [key, key + "\U0010ffff", key],
        )

    async def tracks(
        self, q: str = "", sort: str = "token", order: str = "asc", page: int = 1
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of tracks matching `q` (token id, status, account, CID, genre), sorted, and the total."""
        if sort not in TRACK_SORTS:
            raise BadRequest(f"sort must be one of {', '.join(TRACK_SORTS)}")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc")
        where, args = self._track_filter(q)
        total = (await self._one(f"SELECT COUNT(*) FROM tracks{where}", args))[0]
        col = TRACK_SORTS[sort]
        # Ties (and NULL scores) fall back to the token order, so pages never overlap. The page's tokens are
        # picked on the (indexed) sort key alone; only those rows are then read in full.
        by = f"ORDER BY {col} {order}, token_id {order}"
        rows = await self._rows(
            f"SELECT {self._TRACK_COLS} FROM tracks WHERE token_id IN"
            f" (SELECT token_id FROM tracks{where} {by} LIMIT ? OFFSET ?) {by}",
            (*args, PER_PAGE, _page(page)),
        )
        out = [self._track(r) for r in rows]
        await self._fill_chain_scores(out)
        return out, int(total)

    async def _fill_chain_scores(self, tracks: list[dict[str, Any]]) -> None:
        """A validator's ledger records mints but not the worker's scoring: show the scores published on
        chain for the tracks of a page instead (the latest per token)."""
        todo = {t["token_id"]: t for t in tracks if t["novelty_bp"] is None and t["status"] == "pending"}
        if not todo or self.source.kind != "validator":
            return
        marks = ",".join("?" * len(todo))
        for tok, nov, qual in await self._rows(
            f"SELECT token_id, novelty_bp, quality_bp FROM chain_scores WHERE token_id IN ({marks})"
            " ORDER BY block_number, event_index",
            list(todo),
        ):
            t = todo[int(tok)]
            t.update(novelty_bp=int(nov), quality_bp=int(qual), status="published")

    async def track(self, token_id: int) -> dict[str, Any]:
        row = await self._one(
            f"SELECT {self._TRACK_COLS}, scored_json FROM tracks WHERE token_id=?", (token_id,)
        )
        if row is None:
            raise NotFound(f"token {token_id} was not minted (or not yet seen) in this database")
        t = self._track(row)
        await self._fill_chain_scores([t])
        t["details"] = json.loads(row[17]) if row[17] else {}
        t["chain_scores"] = [
            {
                "block": int(b),
                "novelty_bp": int(n),
                "quality_bp": int(q),
                "model_version": int(v),
                "oracle": o,
            }
            for b, n, q, v, o in await self._rows(
                "SELECT block_number, novelty_bp, quality_bp, model_version, oracle FROM chain_scores"
                " WHERE token_id=? ORDER BY block_number, event_index",
                (token_id,),
            )
        ]
        t["payouts"] = [
            self._payout(r) | {"epoch": int(r[7])}
            for r in await self._rows(
                "SELECT account, kind, token_id, amount, reason, status, payout_id, epoch FROM payouts"
                " WHERE token_id=? ORDER BY epoch, kind, account",
                (token_id,),
            )
        ]
        dup = await self._rows(
            "SELECT token_id, reason FROM tracks WHERE status='rejected'"
            " AND reason IN ('duplicate','derivative')"
            " AND (detail=? OR detail LIKE ?)",
            (f"duplicate of token:{token_id}", f"% of token:{token_id}"),
        )
        t["copies"] = [{"token_id": int(a), "reason": b} for a, b in dup]
        return t

    async def track_points(self) -> dict[int, tuple[int, int | None, int | None, str, str | None]]:
        """token -> (mint block, novelty, quality, status, genre) of every track, for the map (background)."""
        rows = await self._rows(
            "SELECT token_id, block_number, novelty_bp, quality_bp, status,"
            " json_extract(scored_json, '$.scored_genre') FROM tracks"
        )
        return {int(r[0]): (int(r[1]), r[2], r[3], r[4], r[5]) for r in rows}

    # -- accounts --------------------------------------------------------------------------------------------

    async def accounts(self, q: str = "", page: int = 1) -> tuple[list[dict[str, Any]], int]:
        """Accounts paid anything, the best paid first."""
        where, args = (" WHERE account=?", [q.strip()]) if q.strip() else ("", [])
        total = (await self._one(f"SELECT COUNT(DISTINCT account) FROM payouts{where}", args))[0]
        rows = await self._rows(
            f"SELECT account, SUM(CAST(amount AS INTEGER)) AS total, COUNT(*), COUNT(DISTINCT epoch)"
            f" FROM payouts{where} GROUP BY account ORDER BY total DESC, account LIMIT ? OFFSET ?",
            (*args, PER_PAGE, _page(page)),
        )
        return [
            {"account": a, "total": int(t), "payouts": int(n), "epochs": int(e)} for a, t, n, e in rows
        ], int(total)

    async def account(self, account: str) -> dict[str, Any]:
        rows = await self._rows(
            "SELECT epoch, kind, SUM(CAST(amount AS INTEGER)), COUNT(*) FROM payouts WHERE account=?"
            " GROUP BY epoch, kind ORDER BY epoch, kind",
            (account,),
        )
        created = await self._rows(
            "SELECT token_id, status, novelty_bp, quality_bp FROM tracks WHERE creator=? ORDER BY token_id"
            " LIMIT 200",
            (account,),
        )
        if not rows and not created:
            raise NotFound(f"account {account} was never paid and minted nothing in this database")
        by_epoch: dict[int, dict[str, int]] = defaultdict(dict)
        for ep, kind, amount, _n in rows:
            by_epoch[int(ep)][KIND_NAMES.get(int(kind), str(kind))] = int(amount)
        royalties = []
        for tok, amount, n, splits in await self._rows(
            "SELECT p.token_id, SUM(CAST(p.amount AS INTEGER)), COUNT(*), t.splits FROM payouts p"
            " LEFT JOIN tracks t ON t.token_id=p.token_id WHERE p.account=? AND p.kind=?"
            " GROUP BY p.token_id ORDER BY p.token_id",
            (account, int(PayoutKind.ROYALTY)),
        ):
            share = dict((a, int(b)) for a, b in json.loads(splits)) if splits else {}
            royalties.append(
                {"token_id": tok, "amount": int(amount), "epochs": int(n), "split_bp": share.get(account)}
            )
        payouts = [
            self._payout(r) | {"epoch": int(r[7])}
            for r in await self._rows(
                "SELECT account, kind, token_id, amount, reason, status, payout_id, epoch FROM payouts"
                " WHERE account=? ORDER BY epoch DESC, kind LIMIT 200",
                (account,),
            )
        ]
        return {
            "account": account,
            "by_epoch": dict(sorted(by_epoch.items())),
            "total": sum(sum(v.values()) for v in by_epoch.values()),
            "royalties": royalties,
            "created": [
                {"token_id": int(a), "status": b, "novelty_bp": c, "quality_bp": d} for a, b, c, d in created
            ],
            "payouts": payouts,
        }

    # -- distributions ---------------------------------------------------------------------------------------

    async def histograms(self) -> dict[str, Any]:
        """Per mint epoch, counts of scored tracks in HIST_BIN_BP-wide bins of novelty and of quality."""
        e = await self.epoch_blocks()
        out: dict[str, Any] = {"epoch_blocks": e, "bin_bp": HIST_BIN_BP, "novelty": {}, "quality": {}}
        for metric in ("novelty", "quality"):
            col = f"{metric}_bp"
            counts: dict[int, list[int]] = {}
            for ep, b, n in await self._rows(
                f"SELECT block_number / ?, MIN({col} / ?, ?), COUNT(*) FROM tracks WHERE {col} IS NOT NULL"
                " GROUP BY 1, 2 ORDER BY 1, 2",
                (e, HIST_BIN_BP, 10_000 // HIST_BIN_BP - 1),
            ):
                counts.setdefault(int(ep), [0] * (10_000 // HIST_BIN_BP))[int(b)] = int(n)
            out[metric] = counts
        return out

    # -- findings --------------------------------------------------------------------------------------------

    async def audit_counts(self) -> dict[str, int]:
        return {
            s: int(n) for s, n in await self._audit_rows("SELECT status, COUNT(*) FROM audits GROUP BY 1")
        }

    async def findings(self, page: int = 1) -> tuple[list[dict[str, Any]], int]:
        """Audits that are not a plain match (mismatches first), with their findings and challenge state."""
        offset = _page(page)
        total_rows = await self._audit_rows("SELECT COUNT(*) FROM audits WHERE status!='match'")
        total = int(total_rows[0][0]) if total_rows else 0
        rows = await self._audit_rows(
            "SELECT a.subject, a.doc, c.status, c.tx_hash, c.block_number, c.error, c.evidence_cid"
            " FROM audits a LEFT JOIN challenges c ON c.subject=a.subject WHERE a.status!='match'"
            " ORDER BY a.status='mismatch' DESC, a.subject LIMIT ? OFFSET ?",
            (PER_PAGE, offset),
        )
        out = []
        for subject, doc, cst, tx, blk, err, cid in rows:
            d = json.loads(doc)
            out.append(
                {
                    "subject": subject,
                    "kind": d.get("kind"),
                    "status": d.get("status"),
                    "reason": d.get("reason", ""),
                    "findings": d.get("findings", []),
                    "commitment": d.get("evidence_commitment"),
                    "challenge": None
                    if cst is None
                    else {"status": cst, "tx_hash": tx, "block": blk, "error": err, "evidence_cid": cid},
                }
            )
        return out, total

    async def evidence(self, subject: str) -> dict[str, Any]:
        rows = await self._audit_rows("SELECT doc FROM audits WHERE subject=?", (subject,))
        if not rows:
            raise NotFound(f"no audit of {subject!r} in the validator database")
        doc = json.loads(rows[0][0])
        return {
            "subject": subject,
            "evidence_commitment": doc.get("evidence_commitment"),
            **doc.get("evidence", {}),
        }

    async def challenges_on_chain(self) -> list[dict[str, Any]]:
        """Challenged events the worker saw (a worker's own view of validators' findings)."""
        if self._main is None:
            return []
        rows = await self._rows(
            "SELECT block_number, data FROM events WHERE kind='Challenged'"
            " ORDER BY block_number DESC LIMIT 200"
        )
        return [{"block": int(b), **json.loads(d)} for b, d in rows]
