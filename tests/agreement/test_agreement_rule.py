"""scoring.agreement.compare against the written rule (docs/verification.md), case by case, and the pinned
library versions against this installation (scripts/setup.sh)."""

from __future__ import annotations

import hashlib

import pytest

from scoring.agreement import (
    GATE_GUARD,
    NOVELTY_TOLERANCE_BP,
    PINNED_LIBRARIES,
    QUALITY_TOLERANCE_BP,
    FindingKind,
    Verdict,
    borderline,
    compare,
    library_differences,
    library_versions,
)

C = hashlib.blake2b(b"a commitment", digest_size=32).digest()
OTHER = hashlib.blake2b(b"another", digest_size=32).digest()


def _kinds(a: object) -> list[str]:
    return [f.kind.value for f in a.findings]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dn", "dq", "kinds"),
    [
        (0, 0, []),
        (NOVELTY_TOLERANCE_BP, 0, []),
        (-NOVELTY_TOLERANCE_BP, QUALITY_TOLERANCE_BP, []),
        (0, -QUALITY_TOLERANCE_BP, []),
        (NOVELTY_TOLERANCE_BP + 1, 0, ["score_mismatch"]),
        (-NOVELTY_TOLERANCE_BP - 1, 0, ["score_mismatch"]),
        (0, QUALITY_TOLERANCE_BP + 1, ["score_mismatch"]),
        (0, -QUALITY_TOLERANCE_BP - 1, ["score_mismatch"]),
    ],
)
def test_tolerances_are_inclusive_and_one_more_bp_is_a_finding(dn: int, dq: int, kinds: list[str]) -> None:
    a = compare(5000 + dn, 6000 + dq, C, 5000, 6000, C)
    assert _kinds(a) == kinds
    assert a.verdict == (Verdict.FINDING if kinds else Verdict.AGREE)
    if kinds:
        detail = a.findings[0].detail
        assert f"published {5000 + dn}" in detail or f"published {6000 + dq}" in detail


def test_commitment_must_equal_the_recomputed_one() -> None:
    a = compare(5000, 6000, C, 5000, 6000, OTHER)
    assert _kinds(a) == ["commitment_mismatch"] and "0x" + OTHER.hex() in a.findings[0].detail
    assert _kinds(compare(5000, 6000, C, 5000, 6000, None)) == ["commitment_mismatch"]
    assert _kinds(compare(5000, 6000, None, 5000, 6000, C)) == ["commitment_mismatch"]
    both = compare(5200, 6000, C, 5000, 6000, OTHER)
    assert _kinds(both) == ["score_mismatch", "commitment_mismatch"]


def test_no_recomputed_score_is_a_mismatch() -> None:
    assert _kinds(compare(5000, 6000, C, None, None, C)) == ["score_mismatch"]


@pytest.mark.parametrize(
    ("margin", "kinds"),
    [
        (0.0, []),
        (GATE_GUARD * 0.99, []),
        (-GATE_GUARD * 0.99, []),
        (GATE_GUARD, ["scored_rejected"]),
        (-GATE_GUARD * 1.01, ["scored_rejected"]),
        (None, ["scored_rejected"]),
    ],
)
def test_gate_guard_band(margin: float | None, kinds: list[str]) -> None:
    a = compare(5000, 6000, C, 5000, 6000, C, rejected="duplicate_of:token:3", gate_margin=margin)
    assert _kinds(a) == kinds
    if not kinds:
        assert "agrees within guard band" in a.reason
    assert borderline(margin) == (not kinds)


def test_borderline_verdict_still_checks_the_scores() -> None:
    a = compare(5200, 6000, C, 5000, 6000, C, rejected="derivative_of:token:1", gate_margin=0.001)
    assert _kinds(a) == ["score_mismatch"]


def test_other_rejections_have_no_guard_band() -> None:
    a = compare(5000, 6000, C, None, None, None, rejected="undecodable: CorruptAudio", gate_margin=0.0)
    assert _kinds(a) == [FindingKind.SCORED_REJECTED.value]


def test_version_differences_are_unverifiable_never_findings() -> None:
    a = compare(9000, 100, OTHER, 5000, 6000, C, version_differences=["torch 2.14.0 here, pinned 2.13.0"])
    assert a.verdict == Verdict.UNVERIFIABLE and a.findings == ()
    assert a.reason == "unverifiable: torch 2.14.0 here, pinned 2.13.0"


def test_library_differences_name_what_differs() -> None:
    pinned = {"torch": "2.13.0", "libsndfile": "1.2.2", "soxr": "1.1.0"}
    own = {"torch": "2.13.0+cu126", "libsndfile": "1.2.0"}
    assert library_differences(pinned, own) == [
        "libsndfile 1.2.0 here, pinned 1.2.2",
        "soxr absent here, pinned 1.1.0",
    ]
    assert library_differences(pinned, {**pinned, "torch": "2.13.0+cpu"}) == []


def test_this_installation_runs_the_pinned_libraries() -> None:
    """scripts/setup.sh installs exactly PINNED_LIBRARIES: a bump there must bump the pins (and the model
    version), or every validator on the new stack would call its recomputations unverifiable."""
    assert set(library_versions()) == set(PINNED_LIBRARIES)
    assert library_differences() == []
