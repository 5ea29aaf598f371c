"""The validator's report model: findings with evidence, per-subject verdicts, and evidence commitments.

A *subject* is one thing the worker published that a validator can check and challenge on its own: a score
(`score:<token>:<model version>`) or an epoch's settlement (`epoch:<n>`). Each audited subject gets one
`SubjectAudit` with a status and the findings that make it differ. The evidence document of a subject is
canonical JSON (sorted keys, no floats, no timestamps), so every validator that sees the same chain and IPFS
derives the same bytes and the same `evidence_commitment`, which is what `challenge(token_id, evidence)` puts
on chain.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

AUDIT_VERSION = "ami-audit/1"

# The rewards contract's `challenge` takes a token id. An epoch's settlement is not a token, so its challenges
# use ids with the top bit set: EPOCH_SUBJECT_BASE | epoch (no NFT contract mints 2^63 tokens).
EPOCH_SUBJECT_BASE = 1 << 63


class Status(StrEnum):
    """How a subject came out of the audit."""

    MATCH = "match"  # recomputed and identical to what was published and paid
    MISMATCH = "mismatch"  # at least one finding: challengeable
    UNVERIFIABLE = "unverifiable"  # cannot be recomputed here (unknown model version, content unavailable)
    PENDING = "pending"  # not yet auditable (epoch settlement still in its grace period)


class FindingKind(StrEnum):
    SCORE_MISMATCH = "score_mismatch"  # novelty/quality differ from the recomputation
    COMMITMENT_MISMATCH = (
        "commitment_mismatch"  # commitment differs from the recomputed PCM/features/catalogue
    )
    SCORED_REJECTED = "scored_rejected"  # a score was published for a track the policy rejects (duplicate...)
    PAYOUT_UNEARNED = "payout_unearned"  # a Paid id the policy does not produce
    PAYOUT_AMOUNT = "payout_amount"  # an expected payout paid with another amount
    PAYOUT_RECIPIENT = "payout_recipient"  # an expected payout id paid to another account or kind
    PAYOUT_MISSING = "payout_missing"  # an expected payout not paid within the grace period


class Finding(BaseModel):
    """One difference between what the chain shows and what the validator recomputed."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    subject: str
    detail: str
    expected: dict[str, Any] = Field(default_factory=dict)
    published: dict[str, Any] = Field(default_factory=dict)


class SubjectAudit(BaseModel):
    """The audit of one subject: status, findings, the evidence document and its commitment."""

    subject: str
    kind: str  # "score" or "epoch"
    status: Status
    token_id: int  # the token id a challenge names (EPOCH_SUBJECT_BASE | epoch for epochs)
    reason: str = ""  # why unverifiable / pending
    findings: list[Finding] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    evidence_commitment: str | None = None  # 0x-hex blake2b-256 of the canonical evidence, when MISMATCH

    def seal(self) -> SubjectAudit:
        """Fill `evidence_commitment` for a mismatch (idempotent)."""
        if self.status == Status.MISMATCH:
            self.evidence_commitment = "0x" + evidence_commitment(self.evidence).hex()
        return self


class AuditReport(BaseModel):
    """What `ami audit` prints: every subject audited, in order (scores by token, then epochs)."""

    audit_version: str = AUDIT_VERSION
    from_block: int
    to_block: int
    subjects: list[SubjectAudit] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for sub in self.subjects:
            out[sub.status.value] += 1
        return out

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.subjects for f in s.findings]


def canonical_json(doc: Any) -> bytes:
    """The canonical bytes of an evidence document: sorted keys, compact, ASCII; floats are refused."""

    def check(v: Any) -> None:
        if isinstance(v, float):
            raise TypeError("evidence must not hold floats (not canonical across platforms)")
        if isinstance(v, dict):
            for x in v.values():
                check(x)
        elif isinstance(v, list | tuple):
            for x in v:
                check(x)

    check(doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def evidence_commitment(doc: Any) -> bytes:
    """blake2b-256 over the canonical JSON of an evidence document: the 32 bytes `challenge` records."""
    return hashlib.blake2b(canonical_json(doc), digest_size=32).digest()


def score_subject(token_id: int, model_version: int) -> str:
    return f"score:{token_id}:{model_version}"


def epoch_subject(epoch: int) -> str:
    return f"epoch:{epoch}"
