"""The worker store's payout outbox: settled payouts, kept until the contract's Paid event closes them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from offchain.economics import EpochSettlement, SettledPayout
from offchain.sqlite import hex_text, transaction
from pallets_spec.vocabulary import PayoutKind


@dataclass(frozen=True)
class OutboxPayout(SettledPayout):
    """A settled payout in the outbox and its status: "pending", "handed" (to the submitter) or "paid"."""

    status: str


class PayoutOutbox:
    """Settlements in, payouts out: `save_settlement` fills the outbox, the worker hands and closes rows."""

    _db: aiosqlite.Connection

    async def save_settlement(self, s: EpochSettlement, start_block: int, end_block: int) -> bool:
        """Record an epoch's settlement and its payouts in the outbox, once. False when already settled."""
        async with transaction(self._db) as db:
            cur = await db.execute(
                "INSERT INTO epochs VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    s.epoch,
                    start_block,
                    end_block,
                    s.policy_version,
                    json.dumps(s.as_record()),
                    len(s.payouts),
                ),
            )
            fresh = cur.rowcount == 1
            if fresh:
                await db.executemany(
                    "INSERT INTO payouts (payout_id, epoch, kind, account, token_id, amount, reason)"
                    " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    [
                        (
                            hex_text(p.payout_id),
                            p.epoch,
                            int(p.kind),
                            p.account,
                            p.token_id,
                            str(p.amount),
                            p.reason,
                        )
                        for p in s.payouts
                    ],
                )
                # A payout whose Paid event was already seen (e.g. the DB was rebuilt) is closed at once.
                await db.execute(
                    "UPDATE payouts SET status='paid', paid_block=(SELECT block_number FROM paid_events"
                    " WHERE paid_events.payout_id=payouts.payout_id) WHERE epoch=? AND payout_id IN"
                    " (SELECT payout_id FROM paid_events)",
                    (s.epoch,),
                )
        return fresh

    @staticmethod
    def _payout(r: Sequence[Any]) -> OutboxPayout:
        return OutboxPayout(
            bytes.fromhex(r[0][2:]),
            int(r[1]),
            PayoutKind(int(r[2])),
            r[3],
            None if r[4] is None else int(r[4]),
            int(r[5]),
            r[6],
            r[7],
        )

    async def payouts(
        self, status: str | Iterable[str] | None = None, epoch: int | None = None, limit: int = 10_000_000
    ) -> list[OutboxPayout]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(sts))})")
            args += sts
        if epoch is not None:
            where.append("epoch=?")
            args.append(epoch)
        sql = "SELECT payout_id, epoch, kind, account, token_id, amount, reason, status FROM payouts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        cur = await self._db.execute(sql + " ORDER BY epoch, kind, account, token_id LIMIT ?", (*args, limit))
        return [self._payout(r) for r in await cur.fetchall()]

    async def requeue_unconfirmed(self) -> None:
        """Payouts handed but not seen paid, and scores queued but not seen published, are handed again."""
        await self._db.execute("UPDATE payouts SET status='pending' WHERE status='handed'")
        await self._db.execute("UPDATE tracks SET status='scored' WHERE status='submitted'")

    async def mark_payouts(self, ids: Iterable[bytes], status: str) -> None:
        await self._db.executemany(
            "UPDATE payouts SET status=? WHERE payout_id=? AND status!='paid'",
            [(status, hex_text(i)) for i in ids],
        )
