"""The validator's epoch audits: an epoch resettled from the chain's events, compared with its Paid events."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Any

from offchain.audit.db import PaidRow, ValidatorDb
from offchain.audit.model import (
    AUDIT_VERSION,
    EPOCH_SUBJECT_BASE,
    Finding,
    FindingKind,
    Status,
    SubjectAudit,
    epoch_subject,
)
from offchain.audit.options import AuditOptions, TrustProvider
from offchain.economics import EpochInput, settle_epoch
from offchain.store import WorkerStore


class EpochAudits:
    """The auditor's epoch audits (its database, ledger, options and trust provider are the auditor's)."""

    db: ValidatorDb
    ledger: WorkerStore
    opt: AuditOptions
    trust: TrustProvider | None

    def epoch_range(self, epoch: int) -> tuple[int, int]:
        n = self.opt.epoch_blocks
        return epoch * n, (epoch + 1) * n - 1

    async def audit_epoch(self, epoch: int) -> SubjectAudit:
        """Resettle `epoch` from the chain's events and compare with every `Paid` of that epoch."""
        subject = epoch_subject(epoch)
        start, end = self.epoch_range(epoch)
        base = SubjectAudit(
            subject=subject, kind="epoch", status=Status.MATCH, token_id=EPOCH_SUBJECT_BASE | epoch
        )
        head = await self.db.head()
        cp = await self.ledger.checkpoint()
        if cp is None or cp[0] < end:
            base.status = Status.PENDING
            base.reason = f"epoch ends at block {end}; the ledger is at {cp[0] if cp else 0}"
            return base
        inp = await self.ledger.epoch_input(epoch, self.opt.epoch_blocks)
        if self.trust is not None:
            ext = await asyncio.to_thread(self.trust, inp)
            if ext is not None:
                inp = dataclasses.replace(inp, external_trust=ext)
        settlement = await asyncio.to_thread(settle_epoch, inp, self.opt.policy, self.opt.policy_version)
        expected = {"0x" + p.payout_id.hex(): p for p in settlement.payouts}
        paid = {p.payout_id: p for p in await self.db.paid(epoch)}
        overdue = head >= end + self.opt.grace
        rows: list[dict[str, Any]] = []
        for pid, got in sorted(paid.items()):
            want = expected.get(pid)
            if want is None:
                self._payout_finding(
                    base,
                    FindingKind.PAYOUT_UNEARNED,
                    pid,
                    None,
                    got,
                    rows,
                    f"payout {pid[:18]}… of {got.amount} to {got.account} (kind {got.kind})"
                    " is not one the policy produces",
                )
            elif got.account != want.account or got.kind != int(want.kind):
                self._payout_finding(
                    base,
                    FindingKind.PAYOUT_RECIPIENT,
                    pid,
                    want,
                    got,
                    rows,
                    f"payout {pid[:18]}… belongs to {want.account} (kind {int(want.kind)}),"
                    f" paid to {got.account} (kind {got.kind})",
                )
            elif got.amount != want.amount:
                self._payout_finding(
                    base,
                    FindingKind.PAYOUT_AMOUNT,
                    pid,
                    want,
                    got,
                    rows,
                    f"payout {pid[:18]}… to {got.account}: paid {got.amount}, the policy gives {want.amount}",
                )
        unpaid = [pid for pid in sorted(expected) if pid not in paid]
        if unpaid and overdue:
            for pid in unpaid:
                self._payout_finding(
                    base,
                    FindingKind.PAYOUT_MISSING,
                    pid,
                    expected[pid],
                    None,
                    rows,
                    f"payout {pid[:18]}… of {expected[pid].amount} to {expected[pid].account}"
                    f" not paid by block {end + self.opt.grace}",
                )
        if base.findings:
            base.status = Status.MISMATCH
            base.evidence = {
                "audit": AUDIT_VERSION,
                "subject": subject,
                "epoch": epoch,
                "policy_version": self.opt.policy_version,
                "blocks": [start, end],
                "inputs": _input_summary(inp),
                "expected_total": str(sum(p.amount for p in settlement.payouts)),
                "paid_total": str(sum(p.amount for p in paid.values())),
                "payouts": rows,
            }
            base.seal()
        elif unpaid:
            base.status = Status.PENDING
            base.reason = (
                f"{len(unpaid)} expected payouts not paid yet (grace until block {end + self.opt.grace})"
            )
        return base

    @staticmethod
    def _payout_finding(
        base: SubjectAudit,
        kind: FindingKind,
        pid: str,
        want: Any,
        got: PaidRow | None,
        rows: list[dict[str, Any]],
        detail: str,
    ) -> None:
        expected = (
            {}
            if want is None
            else {
                "account": want.account,
                "kind": int(want.kind),
                "token_id": want.token_id,
                "amount": str(want.amount),
                "reason": want.reason,
            }
        )
        published = (
            {}
            if got is None
            else {
                "account": got.account,
                "kind": got.kind,
                "amount": str(got.amount),
                "at": list(got.at),
            }
        )
        base.findings.append(
            Finding(kind=kind, subject=base.subject, detail=detail, expected=expected, published=published)
        )
        rows.append({"finding": kind.value, "payout_id": pid, "expected": expected, "paid": published})


def _input_summary(inp: EpochInput) -> dict[str, Any]:
    """Counts and a digest of the epoch's inputs: validators can tell whether they saw the same chain."""
    h = hashlib.blake2b(digest_size=32)
    for tok in sorted(inp.tracks):
        t = inp.tracks[tok]
        h.update(repr((tok, t.creator, t.royalty_splits, t.minted_at)).encode())
    for rec in (*inp.scores, *inp.listens, *inp.previous_listens, *inp.curations):
        h.update(repr(rec).encode())
    return {
        "tracks": len(inp.tracks),
        "scores": len(inp.scores),
        "listens": len(inp.listens),
        "previous_listens": len(inp.previous_listens),
        "curations": len(inp.curations),
        "digest": "0x" + h.hexdigest(),
    }
