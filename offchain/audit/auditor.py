"""The audit core: rescore minted tracks, recompute epoch settlements, and compare with the chain.

Inputs come from the chain (the validator's own ledger of finalized events) and IPFS only. Scores are
recomputed with the model version recorded on chain (a version this validator does not run is reported as
unverifiable, never as wrong); an epoch is resettled with the worker's own pure policy
(`offchain.economics.settle_epoch`) over an `EpochInput` that the worker's own store code derives from the
same chain events (`offchain.store.WorkerStore.epoch_input`, on a ledger file of the validator's, fed from the
chain): the rules are reused, never restated, so an honest worker and a validator cannot drift apart.

A recomputed score is compared with the published one under the agreement rule (`scoring.agreement`,
ami-agreement/1, docs/verification.md): tolerances, an exact commitment, a guard band around the duplicate
gate. The validator's own failures are never verdicts: an error while fetching (other than what the chain
itself decides: an invalid CID, content over the size limit), an exception in the rescorer, or an engine
that cannot score (fpcalc missing...) leaves the track "unverifiable, with the reason". When a score was
published for it, the walk stops there (later catalogue roots would be wrong); when none was, the track is
rejected provisionally, as the worker rejected it, and the walk is redone if a score lands later.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from offchain.audit.db import MintRow, PaidRow, ScoreRow, ValidatorDb
from offchain.audit.model import (
    AUDIT_VERSION,
    EPOCH_SUBJECT_BASE,
    AuditReport,
    Finding,
    FindingKind,
    Status,
    SubjectAudit,
    epoch_subject,
    score_subject,
)
from offchain.audit.rescore import Rescored, RescoreError, Rescorer
from offchain.economics import POLICY_VERSION, EpochInput, PolicyParams, RewardKind, payout_id, settle_epoch
from offchain.projection import BlockData
from offchain.scoring_rule import DeclaredGenre, declared_genre, no_metadata
from offchain.store import WorkerStore
from scoring.agreement import AGREEMENT_VERSION, Agreement, Verdict, compare

if TYPE_CHECKING:
    from offchain.ipfs.store import ContentStore

log = structlog.get_logger("ami.audit")

# The reason of a provisional rejection: content unavailable and no score published (see rescore_pending).
PROVISIONAL = "not_found"
# The reason of a provisional rejection made because this validator failed (fetch error, rescorer exception,
# engine unable to score) on a track with no published score: redone like PROVISIONAL if a score lands.
UNVERIFIED = "unverified"

TrustProvider = Callable[[EpochInput], Mapping[str, int] | None]


@dataclass
class AuditOptions:
    """The policy the worker runs under (same values as its WorkerSettings) and the validator's own knobs."""

    epoch_blocks: int
    policy: PolicyParams
    policy_version: str = POLICY_VERSION
    max_audio_bytes: int = 50 * 1024 * 1024
    # Blocks after an epoch's end before unpaid expected payouts count as missing (the worker settles and the
    # submitter batches after the epoch ends).
    grace_blocks: int | None = None

    @property
    def grace(self) -> int:
        return self.epoch_blocks if self.grace_blocks is None else self.grace_blocks


def _transient(exc: BaseException) -> bool:
    from offchain.ipfs import errors as e

    return isinstance(exc, e.IpfsUnavailable | e.IpfsTimeout | e.IpfsNotFound)


def _content_reason(exc: BaseException) -> str:
    from offchain.ipfs import errors as e

    if isinstance(exc, e.InvalidCid):
        return "bad_cid"
    if isinstance(exc, e.CidMismatch):
        return "cid_mismatch"
    if isinstance(exc, e.IpfsTooLarge):
        return "too_large"
    return "fetch_failed"


def _content_verdict(exc: BaseException) -> bool:
    """Whether a fetch error is the rule's verdict on the content itself, the same for every validator: the
    CID on chain is invalid, or the content is over the size limit. Anything else (a CID mismatch is this
    validator's IPFS node serving wrong bytes, an unexpected exception is a bug) says nothing of the track."""
    from offchain.ipfs import errors as e

    return isinstance(exc, e.InvalidCid | e.IpfsTooLarge)


class Auditor:
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

    async def ingest(self, blocks: list[BlockData]) -> None:
        """Record finalized blocks in the worker-store ledger (for epoch inputs) and the validator DB."""
        if not blocks:
            return
        await self.ledger.ingest(blocks)
        await self.db.ingest(blocks)

    async def head(self) -> int:
        cp = await self.db.checkpoint()
        return cp[0] if cp else 0

    # -- rescoring -------------------------------------------------------------------------------------------

    async def rescore_pending(self) -> int:
        """Rescore minted tracks in token order under every model version this validator runs.

        A track whose content is temporarily unavailable stops the walk for that version (later tracks'
        catalogue would be incomplete), unless no score was published for it and it was minted more than the
        grace period ago: then it is treated as the worker treats it, rejected and outside the catalogue. That
        rejection is provisional: if a score for it lands later, the walk is rewound to it and redone.
        Returns how many tracks were rescored.
        """
        done = 0
        mints = await self.db.mints()
        scored = await self.db.scored_tokens()
        head = await self.head()
        self.blocked.clear()
        for version, rescorer in sorted(self.rescorers.items()):
            revisit = await self.db.provisional_rejections(version) & scored
            if revisit:
                first = min(revisit)
                dropped = await self.db.delete_rescored_from(version, first)
                # Score audits made against the old catalogue are made again (a challenge already decided
                # stays decided: it is never sent twice).
                stale = []
                for subject in await self.db.audit_statuses():
                    kind, _, rest = subject.partition(":")
                    tok, _, ver = rest.partition(":")
                    if kind == "score" and int(ver) == version and int(tok) >= first:
                        stale.append(subject)
                await self.db.delete_audits(stale)
                log.info("audit.rewind", model_version=version, from_token=first, dropped=dropped)
                self._restored.discard(version)
            if version not in self._restored:
                entries = await self.db.catalogue_entries(version)
                try:
                    await asyncio.to_thread(rescorer.restore, entries)
                except Exception as exc:  # e.g. entries stored by an older validator: unverifiable, said why
                    why = f"the rescorer cannot restore its catalogue: {type(exc).__name__}: {exc}"
                    self.blocked[version] = (entries[0][0] if entries else 0, why)
                    log.error("audit.restore_failed", model_version=version, error=str(exc))
                    continue
                self._restored.add(version)
            have = await self.db.rescored_tokens(version)
            for mint in mints:
                if mint.token_id in have:
                    continue
                settled = mint.token_id in scored or head - mint.at[0] < self.opt.grace
                result = await self._rescore_one(
                    rescorer, mint, wait_for_content=settled, published=mint.token_id in scored
                )
                if result is None:
                    break
                await self.db.save_rescored(version, mint.token_id, result)
                if result.entry is not None:
                    await asyncio.to_thread(rescorer.accept, mint.token_id, result.entry)
                done += 1
        return done

    async def _rescore_one(
        self, rescorer: Rescorer, mint: MintRow, *, wait_for_content: bool, published: bool = False
    ) -> Rescored | None:
        """The track's recomputation, or None: not now (content unavailable, or this validator failed on a
        track with a published score; `blocked` says why)."""
        try:
            audio = await self.content.cat(mint.audio_cid, max_bytes=self.opt.max_audio_bytes)
        except Exception as exc:
            if _transient(exc):
                if wait_for_content:
                    self.blocked[rescorer.model_version] = (mint.token_id, f"content unavailable: {exc}")
                    log.info("audit.content_unavailable", token_id=mint.token_id, error=str(exc))
                    return None
                return Rescored(
                    accepted=False, reason=f"{PROVISIONAL}: {exc}", inputs={"audio_cid": mint.audio_cid}
                )
            reason = _content_reason(exc)
            if not _content_verdict(exc):
                why = f"{reason} here: {type(exc).__name__}: {exc}"
                return self._unverified(rescorer, mint, published, why)
            return Rescored(accepted=False, reason=f"{reason}: {exc}", inputs={"audio_cid": mint.audio_cid})
        declared = await self._declared_genre(mint)
        if declared is None:
            self.blocked[rescorer.model_version] = (mint.token_id, "metadata unavailable: IPFS unreachable")
            return None
        try:
            r = await asyncio.to_thread(rescorer.rescore, mint.token_id, audio, declared)
        except RescoreError as exc:
            self.blocked[rescorer.model_version] = (mint.token_id, f"rescorer failed: {exc}")
            log.error("audit.rescorer_failed", token_id=mint.token_id, error=str(exc))
            return None
        except Exception as exc:  # a bug or a broken installation of the validator: never a verdict
            log.exception("audit.rescorer_crashed", token_id=mint.token_id)
            why = f"rescorer raised {type(exc).__name__}: {exc}"
            return self._unverified(rescorer, mint, published, why)
        if not r.accepted and (r.reason or "").startswith("unscorable"):
            # The engine could not run on this machine (fpcalc missing, ...): not the track's fault.
            return self._unverified(rescorer, mint, published, str(r.reason))
        return r

    def _unverified(self, rescorer: Rescorer, mint: MintRow, published: bool, why: str) -> Rescored | None:
        """This validator failed on `mint`: stop the walk when a score was published for it (unverifiable,
        with the reason), else reject it provisionally as the worker did (redone if a score lands)."""
        if published:
            self.blocked[rescorer.model_version] = (mint.token_id, f"unverifiable here: {why}")
            log.warning("audit.unverifiable", token_id=mint.token_id, reason=why)
            return None
        return Rescored(
            accepted=False, reason=f"{UNVERIFIED}: {why}"[:500], inputs={"audio_cid": mint.audio_cid}
        )

    async def _declared_genre(self, mint: MintRow) -> DeclaredGenre | None:
        """The creator's declared genre, read as the worker reads it (verified, capped at the metadata limit).

        As on the worker, only an unreachable IPFS node is waited out (None: try again later); any other
        failure, or malformed metadata, means no genre, with the reason the shared rule records.
        """
        from offchain.ipfs import errors as e
        from offchain.ipfs.metadata import MAX_METADATA_BYTES

        try:
            raw = await self.content.cat(mint.metadata_cid, max_bytes=MAX_METADATA_BYTES)
        except e.IpfsUnavailable as exc:
            log.info("audit.metadata_unavailable", token_id=mint.token_id, error=str(exc))
            return None
        except Exception as exc:
            reason = "not_found" if isinstance(exc, e.IpfsNotFound | e.IpfsTimeout) else _content_reason(exc)
            return no_metadata(reason, str(exc))
        return declared_genre(raw)

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
            + payout_id(self.opt.policy_version, epoch, RewardKind.CREATE, mint.creator, mint.token_id).hex()
        )
        paid = await self.db.paid_by_id(pid)
        if paid is None:
            return None
        return {"payout_id": pid, "to": paid.account, "amount": str(paid.amount), "epoch": paid.epoch}

    # -- epochs ----------------------------------------------------------------------------------------------

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
        head = await self.head()
        cp = await self.ledger.checkpoint()
        if cp is None or cp[0] < end:
            base.status = Status.PENDING
            base.reason = f"epoch ends at block {end}; the ledger is at {cp[0] if cp else 0}"
            return base
        inp = await self.ledger.epoch_input(epoch, self.opt.epoch_blocks)
        if self.trust is not None:
            ext = await asyncio.to_thread(self.trust, inp)
            if ext is not None:
                inp = type(inp)(**{**inp.__dict__, "external_trust": ext})
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
