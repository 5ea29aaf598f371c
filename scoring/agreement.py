"""The agreement rule ami-agreement/1: whether a validator's recomputation confirms a published score.

A worker (any device: CUDA, CPU, any thread count or FFT backend) publishes ``novelty_bp``, ``quality_bp``
and a commitment; a validator recomputes them on its own device. Float features differ across devices by
float32 rounding, so an exact comparison would challenge honest workers. The rule (docs/verification.md):

1. Exact fields, the same bit for bit on any device: ``pcm_sha256`` (canonical decode on the CPU, pinned),
   ``catalogue_root`` (a hash chain over (track id, pcm_sha256), no floats) and the commitment. The
   validator recomputes the commitment from ITS pcm_sha256, root and versions with the PUBLISHED
   ``novelty_bp``/``quality_bp`` and no duplicate/derivative (a published score asserts "not a duplicate"):

       expected = commitment(pcm_re, root_re, novelty_pub, quality_pub, None, None, versions_re)

   ``expected != commitment_pub`` is a finding (``commitment_mismatch``): other audio, other catalogue,
   other code versions, or bp values other than the ones committed.
2. Tolerances: ``|novelty_pub - novelty_re| <= NOVELTY_TOLERANCE_BP`` and
   ``|quality_pub - quality_re| <= QUALITY_TOLERANCE_BP`` agree; a larger difference is a finding
   (``score_mismatch``, with both values).
3. Verdict guard band: when the validator's own duplicate/derivative gate rejects a published track, it is a
   finding (``scored_rejected``) only when the deciding statistic is at least ``GATE_GUARD`` beyond its
   threshold (``|margin| >= GATE_GUARD``); a borderline recomputed verdict "agrees within guard band". An
   unknown margin (an engine that does not report it) counts as not borderline.
4. Versions: a validator whose library versions differ from the ones pinned for the model version reports
   "unverifiable: <what differs>", never a finding (`library_differences`).
5. Errors are not verdicts: a failure to fetch, decode or rescore is "unverifiable, with the reason"; the
   callers (offchain/audit) never turn one into a finding.

`compare` is pure: it takes the published and recomputed values and returns an `Agreement`. It imports
nothing heavy, so it runs wherever ``scoring`` is importable.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

AGREEMENT_VERSION = "ami-agreement/1"
"""Version of this rule; recorded in every validator's evidence."""

NOVELTY_TOLERANCE_BP = 100
"""Largest |published - recomputed| novelty (basis points) that still agrees."""

QUALITY_TOLERANCE_BP = 50
"""Largest |published - recomputed| quality (basis points) that still agrees."""

GATE_GUARD = 0.02
"""Half-width of the guard band around the duplicate/derivative thresholds (in the statistic's own units,
cosine similarity or Chromaprint similarity, both in [0, 1])."""

PINNED_LIBRARIES: dict[str, str] = {
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "torch": "2.13.0",
    "soundfile": "0.14.0",
    "libsndfile": "1.2.2",
    "soxr": "1.1.0",
    "chromaprint": "1.5.1",
}
"""Versions of every library that can change a scoring output, as scripts/setup.sh installs them for the
current `scoring.versions.MODEL_VERSION`. Changing one of them means a new model version. Local build tags
(``+cpu``, ``+cu126``) are not part of a version: the device is not a version."""


class Verdict(StrEnum):
    """The outcome of one comparison."""

    AGREE = "agree"
    FINDING = "finding"
    UNVERIFIABLE = "unverifiable"


class FindingKind(StrEnum):
    """What a finding says (the same words as `offchain.audit.model.FindingKind`)."""

    SCORE_MISMATCH = "score_mismatch"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    SCORED_REJECTED = "scored_rejected"


@dataclass(frozen=True)
class AgreementFinding:
    """One value outside the rule: its kind and a sentence with both values."""

    kind: FindingKind
    detail: str


@dataclass(frozen=True)
class Agreement:
    """What `compare` concluded.

    Attributes:
        findings: values outside the rule (empty when the score agrees).
        unverifiable: why the recomputation cannot be used (version differences); when not empty, no finding
            is reported, whatever the values.
        notes: remarks on an agreement (e.g. "duplicate verdict agrees within guard band").
    """

    findings: tuple[AgreementFinding, ...] = ()
    unverifiable: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        if self.unverifiable:
            return Verdict.UNVERIFIABLE
        return Verdict.FINDING if self.findings else Verdict.AGREE

    @property
    def reason(self) -> str:
        """One line: why unverifiable, or the notes of an agreement."""
        if self.unverifiable:
            return "unverifiable: " + "; ".join(self.unverifiable)
        return "; ".join(self.notes)


def borderline(margin: float | None) -> bool:
    """Whether a gate decision lies inside the guard band, ``|margin| < GATE_GUARD`` (None: it does not)."""
    return margin is not None and abs(float(margin)) < GATE_GUARD


def compare(
    published_novelty_bp: int,
    published_quality_bp: int,
    published_commitment: bytes | None,
    recomputed_novelty_bp: int | None,
    recomputed_quality_bp: int | None,
    expected_commitment: bytes | None,
    *,
    rejected: str | None = None,
    gate_margin: float | None = None,
    version_differences: Sequence[str] = (),
) -> Agreement:
    """Compare a published score with a recomputation under ami-agreement/1 (see the module docstring).

    Args:
        published_novelty_bp, published_quality_bp, published_commitment: what the chain shows.
        recomputed_novelty_bp, recomputed_quality_bp: the validator's values (None: not computed, e.g. the
            audio was rejected before scoring).
        expected_commitment: the commitment recomputed from the validator's pcm_sha256, catalogue root and
            versions with the PUBLISHED bp values and no duplicate/derivative; None when it cannot be formed
            (published bp out of 0..10000).
        rejected: why the validator's rule rejects the track ("duplicate_of:3", "derivative_of:3",
            "undecodable: ..."); None when it accepts it.
        gate_margin: for a duplicate/derivative rejection, the signed distance of the deciding statistic from
            its threshold (None: unknown, not borderline).
        version_differences: library versions in which the validator differs from the pinned ones.

    Returns:
        The `Agreement`: unverifiable when versions differ; else the findings (possibly none).
    """
    if version_differences:
        return Agreement(unverifiable=tuple(version_differences))
    findings: list[AgreementFinding] = []
    notes: list[str] = []
    if rejected is not None:
        gate = rejected.split(":", 1)[0] in ("duplicate_of", "derivative_of")
        if gate and borderline(gate_margin):
            notes.append(
                f"{rejected} agrees within guard band (margin {float(gate_margin or 0.0):+.4f},"
                f" guard {GATE_GUARD})"
            )
        else:
            findings.append(
                AgreementFinding(FindingKind.SCORED_REJECTED, f"the track must not be scored ({rejected})")
            )
            return Agreement(tuple(findings), (), tuple(notes))
    diffs = []
    for name, pub, re_, tol in (
        ("novelty_bp", published_novelty_bp, recomputed_novelty_bp, NOVELTY_TOLERANCE_BP),
        ("quality_bp", published_quality_bp, recomputed_quality_bp, QUALITY_TOLERANCE_BP),
    ):
        if re_ is None or abs(int(pub) - int(re_)) > tol:
            diffs.append(f"{name} published {pub}, recomputed {re_} (tolerance {tol})")
    if diffs:
        findings.append(AgreementFinding(FindingKind.SCORE_MISMATCH, ", ".join(diffs)))
    if expected_commitment is None or published_commitment != expected_commitment:
        want = "0x" + expected_commitment.hex() if expected_commitment is not None else None
        findings.append(
            AgreementFinding(
                FindingKind.COMMITMENT_MISMATCH,
                "the commitment does not commit to the recomputed PCM, catalogue root and versions with the"
                f" published scores (expected {want})",
            )
        )
    return Agreement(tuple(findings), (), tuple(notes))


# ------------------------------------------------------------------------------------------- whole runs


@dataclass
class RunAgreement:
    """A validator's view of a whole run: ``published[i]`` (the worker's) against ``recomputed[i]``.

    Attributes:
        tracks: tracks compared.
        published: tracks the worker published (its gate found no duplicate/derivative).
        findings: (track index, finding) for every value outside the rule: false findings when both runs
            are honest.
        verdict_flips: tracks whose verdict (original, duplicate or derivative) differs between the runs.
        borderline_flips: those of them inside the guard band (not findings).
        target_changes: tracks with the same verdict against another earlier track (e.g. the copy of the
            original instead of the original: equal similarities up to rounding); changes nothing published.
        max_novelty_diff, max_quality_diff: largest |published - recomputed| over published tracks (bp).
        commitments_equal: published tracks whose commitment the validator reproduces exactly.
        tampers: tampers tried (each published value moved tolerance + 1 bp from the validator's value,
            both ways, committed consistently); tampers_found: those reported as score_mismatch.
        honest_tampers, honest_tampers_found: the same moves from the worker's honest value; one is missed
            only when the validator's value itself moved toward it (|d| > 0), so ``found == tried`` whenever
            the two runs agree to the bp.
    """

    tracks: int = 0
    published: int = 0
    findings: list[tuple[int, AgreementFinding]] = field(default_factory=list)
    verdict_flips: int = 0
    borderline_flips: int = 0
    target_changes: int = 0
    max_novelty_diff: int = 0
    max_quality_diff: int = 0
    commitments_equal: int = 0
    tampers: int = 0
    tampers_found: int = 0
    honest_tampers: int = 0
    honest_tampers_found: int = 0


def gate_margin(score: object) -> float | None:
    """``details["gate"]["margin"]`` of a `scoring.engine.PublishedScore`, or None when the engine does not
    report one (read defensively: then no verdict counts as borderline)."""
    details = getattr(score, "details", None)
    gate = details.get("gate") if isinstance(details, Mapping) else None
    margin = gate.get("margin") if isinstance(gate, Mapping) else None
    return float(margin) if isinstance(margin, int | float) else None


def compare_runs(published: Sequence[object], recomputed: Sequence[object]) -> RunAgreement:
    """Compare two runs of `scoring.engine.score_batch` over the same tracks in the same order, the first as
    a worker published it, the second as a validator recomputes it, under ami-agreement/1; also try every
    tamper just past the tolerances (see `RunAgreement`).

    Raises:
        ValueError: the runs differ in length.
    """
    from scoring.engine import commitment  # the engine imports the decoders; this module does not

    if len(published) != len(recomputed):
        raise ValueError(f"{len(published)} published scores but {len(recomputed)} recomputed ones")
    out = RunAgreement(tracks=len(published))
    for i, (pub, rec) in enumerate(zip(published, recomputed, strict=True)):
        p: Any = pub
        r: Any = rec

        def commit(novelty_bp: int, quality_bp: int, r: Any = r) -> bytes | None:
            if not (0 <= novelty_bp <= 10000 and 0 <= quality_bp <= 10000):
                return None
            return bytes(
                commitment(
                    r.pcm_sha256,
                    r.catalogue_root,
                    novelty_bp,
                    quality_bp,
                    None,
                    None,
                    r.versions,
                    r.model_version,
                )
            )

        p_gate = p.duplicate_of or p.derivative_of
        r_rejected = (
            f"duplicate_of:{r.duplicate_of}"
            if r.duplicate_of
            else (f"derivative_of:{r.derivative_of}" if r.derivative_of else None)
        )
        if (bool(p.duplicate_of), bool(p.derivative_of)) != (bool(r.duplicate_of), bool(r.derivative_of)):
            out.verdict_flips += 1
            if borderline(gate_margin(p)) or borderline(gate_margin(r)):
                out.borderline_flips += 1
        elif (p.duplicate_of, p.derivative_of) != (r.duplicate_of, r.derivative_of):
            out.target_changes += 1
        if p_gate:
            continue  # the worker publishes nothing for a duplicate or derivative: nothing to audit
        out.published += 1
        out.max_novelty_diff = max(out.max_novelty_diff, abs(p.novelty_bp - r.novelty_bp))
        out.max_quality_diff = max(out.max_quality_diff, abs(p.quality_bp - r.quality_bp))
        expected = commit(p.novelty_bp, p.quality_bp)
        out.commitments_equal += int(expected == p.commitment)
        margin = gate_margin(r)
        agreement = compare(
            p.novelty_bp,
            p.quality_bp,
            p.commitment,
            r.novelty_bp,
            r.quality_bp,
            expected,
            rejected=r_rejected,
            gate_margin=margin,
        )
        out.findings.extend((i, f) for f in agreement.findings)
        for base, honest in ((r, False), (p, True)):
            for dn, dq in (
                (NOVELTY_TOLERANCE_BP + 1, 0),
                (-NOVELTY_TOLERANCE_BP - 1, 0),
                (0, QUALITY_TOLERANCE_BP + 1),
                (0, -QUALITY_TOLERANCE_BP - 1),
            ):
                n, q = base.novelty_bp + dn, base.quality_bp + dq
                forged = commit(n, q)
                if forged is None:
                    continue  # out of 0..10000: not publishable at all
                tampered = compare(n, q, forged, r.novelty_bp, r.quality_bp, forged)
                found = any(f.kind == FindingKind.SCORE_MISMATCH for f in tampered.findings)
                if honest:
                    out.honest_tampers += 1
                    out.honest_tampers_found += int(found)
                else:
                    out.tampers += 1
                    out.tampers_found += int(found)
    return out


# ---------------------------------------------------------------------------------------------- versions


def _public(version: str) -> str:
    """A version without its local build tag: "2.13.0+cpu" -> "2.13.0"."""
    return version.split("+", 1)[0].strip()


@functools.cache
def library_versions() -> dict[str, str]:
    """This machine's version of every library in `PINNED_LIBRARIES` ("absent" when not installed).

    Python packages come from their installed metadata (nothing heavy is imported, except soundfile for the
    libsndfile it loads); Chromaprint from ``fpcalc -version``.
    """
    out: dict[str, str] = {}
    for name in ("numpy", "scipy", "torch", "soundfile", "soxr"):
        try:
            out[name] = _public(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    try:
        import soundfile  # heavy optional dependency (a C library); absent on GPU-only check machines

        out["libsndfile"] = _public(str(soundfile.__libsndfile_version__))
    except (ImportError, OSError):
        out["libsndfile"] = "absent"
    out["chromaprint"] = _fpcalc_version()
    return out


def _fpcalc_version() -> str:
    exe = shutil.which("fpcalc")
    if exe is None:
        return "absent"
    try:
        done = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "absent"
    m = re.search(r"version\s+([0-9][0-9.]*)", done.stdout + done.stderr)
    return m.group(1) if m else "unknown"


def library_differences(
    pinned: Mapping[str, str] | None = None, own: Mapping[str, str] | None = None
) -> list[str]:
    """What differs between the pinned library versions and this machine's, one sentence per library.

    Args:
        pinned: pinned versions (default `PINNED_LIBRARIES`).
        own: this machine's versions (default `library_versions()`).

    Returns:
        e.g. ``["torch 2.14.0 here, pinned 2.13.0"]``; empty when everything matches.
    """
    pin = PINNED_LIBRARIES if pinned is None else pinned
    mine = library_versions() if own is None else own
    return [
        f"{name} {_public(mine.get(name, 'absent'))} here, pinned {_public(want)}"
        for name, want in sorted(pin.items())
        if _public(mine.get(name, "absent")) != _public(want)
    ]
