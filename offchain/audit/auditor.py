"""The validator's auditor: its ledgers kept in step with the chain, and published scores audited.

Rescoring walks are in `offchain.audit.rescoring`, epoch audits in `offchain.audit.epochs`.

Inputs come from the chain (the validator's own ledger of finalized events) and IPFS only. Scores are
recomputed with the model version recorded on chain (a version this validator does not run is reported as
unverifiable, never as wrong); an epoch is resettled with the worker's own pure policy
(`offchain.economics.settle_epoch`) over an `EpochInput` that the worker's own store code derives from the
same chain events (`WorkerStore.epoch_input` in `offchain.store.settlement`, on a ledger file of the
validator's, fed from the chain): the rules are reused, never restated, so an honest worker and a validator
cannot drift apart.

A recomputed score is compared with the published one under the agreement rule (`scoring.agreement`,
ami-agreement/1, docs/verification.md): tolerances, an exact commitment, a guard band around the duplicate
gate. The validator's own failures are never verdicts: an error while fetching (other than what the chain
itself decides: an invalid CID, content over the size limit), an exception in the rescorer, or an engine
that cannot score (fpcalc missing...) leaves the track "unverifiable, with the reason". When a score was
published for it, the walk stops there (later catalogue roots would be wrong); when none was, the track is
rejected provisionally, as the worker rejected it, and the walk is redone if a score lands later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from offchain.audit.db import MintRow, ScoreRow, ValidatorDb
from offchain.audit.epochs import EpochAudits
from offchain.audit.model import (
    AUDIT_VERSION,
    AuditReport,
    Finding,
    FindingKind,
    Status,
    SubjectAudit,
    score_subject,
)
from offchain.audit.options import AuditOptions, TrustProvider
from offchain.audit.rescore import Rescored, Rescorer
from offchain.audit.rescoring import RescoreWalk
from offchain.economics import payout_id
from offchain.ipfs.store import ContentStore
from offchain.projection import BlockData
from offchain.store import WorkerStore
from pallets_spec.vocabulary import PayoutKind
from scoring.agreement import AGREEMENT_VERSION, Agreement, Verdict, compare

__all__ = ["AuditOptions", "Auditor", "TrustProvider"]

log = structlog.get_logger("ami.audit")


class Auditor(RescoreWalk, EpochAudits):
    """Keeps the ledger and the validator DB in step with the chain, rescoring and auditing on demand."""

    def __init__(
        self,
        db: ValidatorDb,
        ledger: WorkerStore,
        content: ContentStore,
        rescorers: Mapping[int, Rescorer],
        options: AuditOptions,
        trust: TrustProvider | None = None,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.content = content
        self.rescorers = dict(rescorers)
        self.opt = options
        self.trust = trust
        self._restored: set[int] = set()
        # Why each token could not be rescored yet, by model version (content unavailable, ...).
        self.blocked: dict[int, tuple[int, str]] = {}

    # -- chain -> ledgers ------------------------------------------------------------------------------------

    async def checkpoint(self) -> tuple[int, str] | None:
        """The lower of the two ledgers' checkpoints: where following resumes after a restart."""
        a, b = await self.db.checkpoint(), await self.ledger.checkpoint()
        if a is None or b is None:
            return None
        return a if a[0] <= b[0] else b

    async def head(self) -> int:
        """The last block the validator db holds (0 before the first)."""
        return await self.db.head()

    async def ingest(self, blocks: list[BlockData]) -> None:
        """Record finalized blocks in the worker-store ledger (for epoch inputs) and the validator DB."""
        if not blocks:
            return
        await self.ledger.ingest(blocks)
        await self.db.ingest(blocks)

    # -- scores ----------------------------------------------------------------------------------------------

    async def audit_score(self, score: ScoreRow, mint: MintRow | None) -> SubjectAudit:
        subject = score_subject(score.token_id, score.model_version)
        published = {
            "novelty_bp": score.novelty_bp,
            "quality_bp": score.quality_bp,
            "commitment": score.commitment,
            "oracle": score.oracle,
            "at": list(score.at),
        }
        base = SubjectAudit(subject=subject, kind="score", status=Status.MATCH, token_id=score.token_id)
        if score.model_version not in self.rescorers:
            base.status = Status.UNVERIFIABLE
            base.reason = (
                f"model version {score.model_version} is not one this validator runs"
                f" ({sorted(self.rescorers) or 'none'})"
            )
            return base
        if mint is None:
            base.status = Status.MISMATCH
            base.findings.append(
                Finding(
                    kind=FindingKind.SCORED_REJECTED,
                    subject=subject,
                    detail=f"score published for token {score.token_id}, never minted",
                    published=published,
                )
            )
            base.evidence = self._score_evidence(score, None, None, published, base.findings)
            return base.seal()
        r = await self.db.rescored(score.model_version, score.token_id)
        if r is None:
            blocked = self.blocked.get(score.model_version)
            base.status = Status.UNVERIFIABLE
            base.reason = (
                f"not rescored yet: token {blocked[0]}: {blocked[1]}" if blocked else "not rescored yet"
            )
            return base
        expected = {
            "novelty_bp": r.novelty_bp,
            "quality_bp": r.quality_bp,
            "commitment": "0x" + r.commitment.hex() if r.commitment is not None else None,
            "accepted": r.accepted,
            "reason": r.reason,
            **{f"inputs.{k}": v for k, v in sorted(r.inputs.items())},
        }
        agreement = self._agreement(score, r)
        if agreement.verdict == Verdict.UNVERIFIABLE:
            base.status = Status.UNVERIFIABLE
            base.reason = agreement.reason
            return base
        base.reason = agreement.reason  # notes of an agreement (e.g. within the guard band)
        for f in agreement.findings:
            rejected = f.kind.value == FindingKind.SCORED_REJECTED.value
            base.findings.append(
                Finding(
                    kind=FindingKind(f.kind.value),
                    subject=subject,
                    detail=f"token {score.token_id}: {f.detail}, yet it was scored" if rejected else f.detail,
                    expected=expected,
                    published=published,
                )
            )
        if base.findings:
            base.status = Status.MISMATCH
            base.evidence = self._score_evidence(score, mint, r, published, base.findings)
            if not r.accepted:
                base.evidence["paid_as_original"] = await self._create_payout(score, mint)
            base.seal()
        return base

    def _agreement(self, score: ScoreRow, r: Rescored) -> Agreement:
        """`scoring.agreement.compare` of the published score with the recomputation `r`."""
        rescorer = self.rescorers[score.model_version]
        expected_commitment = None
        if r.accepted or (r.reason or "").startswith(("duplicate_of", "derivative_of")):
            try:
                expected_commitment = rescorer.commit(dict(r.inputs), score.novelty_bp, score.quality_bp)
            except Exception as exc:  # the rescorer's own failure: never a verdict
                log.exception("audit.commit_failed", token_id=score.token_id)
                return Agreement(unverifiable=(f"the rescorer failed: {type(exc).__name__}: {exc}",))
        gate = r.inputs.get("gate")
        margin = None
        if isinstance(gate, dict) and isinstance(gate.get("margin_ppm"), int):
            margin = gate["margin_ppm"] / 1_000_000
        try:
            published_commitment: bytes | None = bytes.fromhex(score.commitment.removeprefix("0x"))
        except ValueError:
            published_commitment = None
        return compare(
            score.novelty_bp,
            score.quality_bp,
            published_commitment,
            r.novelty_bp,
            r.quality_bp,
            expected_commitment,
            rejected=None if r.accepted else (r.reason or "rejected"),
            gate_margin=margin,
            version_differences=[str(d) for d in r.inputs.get("version_differences") or []],
        )

    def _score_evidence(
        self,
        score: ScoreRow,
        mint: MintRow | None,
        r: Rescored | None,
        published: dict[str, Any],
        findings: list[Finding],
    ) -> dict[str, Any]:
        return {
            "audit": AUDIT_VERSION,
            "agreement": AGREEMENT_VERSION,
            "subject": score_subject(score.token_id, score.model_version),
            "token_id": score.token_id,
            "model_version": score.model_version,
            "audio_cid": mint.audio_cid if mint else None,
            "published": published,
            "expected": None
            if r is None
            else {
                "accepted": r.accepted,
                "reason": r.reason,
                "novelty_bp": r.novelty_bp,
                "quality_bp": r.quality_bp,
                "commitment": "0x" + r.commitment.hex() if r.commitment is not None else None,
                "inputs": r.inputs,
            },
            "findings": sorted(f.kind.value for f in findings),
        }

    async def _create_payout(self, score: ScoreRow, mint: MintRow | None) -> dict[str, Any] | None:
        """The create-to-earn payout the chain shows for a track that should never have been scored."""
        if mint is None:
            return None
        epoch = score.at[0] // self.opt.epoch_blocks
        pid = (
            "0x"
            + payout_id(self.opt.policy_version, epoch, PayoutKind.CREATE, mint.creator, mint.token_id).hex()
        )
        paid = await self.db.paid_by_id(pid)
        if paid is None:
            return None
        return {"payout_id": pid, "to": paid.account, "amount": str(paid.amount), "epoch": paid.epoch}

    # -- whole audits ----------------------------------------------------------------------------------------

    async def audit(
        self,
        *,
        token_id: int | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        epoch: int | None = None,
    ) -> AuditReport:
        """Audit the scores and epochs selected (all that the ledger holds when nothing is selected)."""
        head = await self.head()
        lo, hi = from_block, head if to_block is None else min(to_block, head)
        if epoch is not None:
            lo, hi = self.epoch_range(epoch)
        report = AuditReport(from_block=lo, to_block=hi)
        mints = {m.token_id: m for m in await self.db.mints()}
        if epoch is None or token_id is not None:
            for s in await self.db.scores(lo, hi):
                if token_id is None or s.token_id == token_id:
                    report.subjects.append(await self.audit_score(s, mints.get(s.token_id)))
        if token_id is None:
            for e in self.epochs_between(lo, hi):
                report.subjects.append(await self.audit_epoch(e))
        return report

    def epochs_between(self, lo: int, hi: int) -> list[int]:
        """Epochs overlapping blocks lo..hi (epoch 0 starts at block 0)."""
        n = self.opt.epoch_blocks
        return list(range(lo // n, hi // n + 1))
