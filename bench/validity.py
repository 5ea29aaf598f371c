"""Benchmark: do the published scores measure what they claim? One table of validity figures on probe sets.

Builds the probe sets of `scoring.probes` (renders and decodes cached under .ami/probes), scores them with the
public scoring API and prints one table with the target of each line and whether it passes:
  * novelty AUC of real music vs each degenerate class (loops, shuffles, random notes, tones, noise), every
    probe scored alone against an empty catalogue (target >= 0.95);
  * Spearman rho of quality vs step along each quality ladder (target -1: strictly falling from the first
    step), and the largest |quality change| of a -6 dB copy in % of the original's quality (target <= 1 %);
  * the derivative confusion table: per variant class the share whose duplicate_of / derivative_of names the
    source, which is the earliest mint (source, then a same-audio copy, then each variant alone; target
    >= 95 %), and false positives among distinct same-style pieces minted in order (target 0);
  * the spread of novelty across instrumentations of one piece, max - min in % of 10,000 (target <= 10 %).

    .venv/bin/python bench/validity.py --quick            # small sets, a few minutes once renders are cached
    .venv/bin/python bench/validity.py --full --json out.json

From Python, each section takes an injectable scoring function, so one section can be iterated on alone:
    from bench.validity import run_validity, novelty_auc, build_sets, QUICK
    report = run_validity(quick=True)
    sets = build_sets(QUICK, sections=["novelty"]); novelty_auc(sets, novelty_fn=my_novelty)
It measures whatever `scoring.engine` computes now; it assumes nothing about how.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring import probes as P  # noqa: E402
from scoring.decode import CanonicalAudio, pcm_sha256  # noqa: E402

if TYPE_CHECKING:
    from scoring.engine import PublishedScore

DEFAULT_CACHE = ROOT / ".ami" / "probes"
DEGENERATE_CLASSES = ("loops", "shuffles", "random_notes", "tones", "noise")
SAME_STYLE_SETS = ("bach_chorales", "folk_tunes", "game_soundtrack")
SECTIONS = ("novelty", "ladders", "derivatives", "spread")

TARGET_AUC = 0.95
TARGET_RHO = -1.0
TARGET_GAIN_PCT = 1.0
TARGET_CAUGHT = 0.95
TARGET_FP = 0
TARGET_SPREAD_PCT = 10.0

Verdict = tuple[str | None, str | None]
"""(duplicate_of, derivative_of) of one track."""
NoveltyFn = Callable[[np.ndarray], float]
"""Novelty in basis points of one canonical PCM probe, scored alone against an empty catalogue."""
QualityFn = Callable[[np.ndarray], float]
"""Quality in basis points of one canonical PCM probe."""
GateFn = Callable[
    [Sequence[tuple[str, np.ndarray]], Sequence[tuple[str, np.ndarray]]], tuple[list[Verdict], list[Verdict]]
]
"""gate(minted, queries): mint ``minted`` in order into a new catalogue (each checked against the earlier
ones), then check each query alone against all of them; returns (verdicts of minted, verdicts of queries)."""


@dataclass(frozen=True)
class Sizes:
    """How big each probe set is (see `QUICK` and `FULL`)."""

    real_works: int
    real_soundtracks: int
    real_seconds: float
    degenerate_n: int
    degenerate_seconds: float
    ladder_works: int
    ladder_soundtracks: int
    derivative_works: tuple[str, ...]
    derivative_soundtracks: int
    derivative_seconds: float
    derivative_full: bool
    chorales: int
    folk_tunes: int
    game_pieces: int
    negative_seconds: float
    spread_work: str
    spread_n: int


QUICK = Sizes(
    real_works=6,
    real_soundtracks=6,
    real_seconds=30.0,
    degenerate_n=4,
    degenerate_seconds=30.0,
    ladder_works=1,
    ladder_soundtracks=1,
    derivative_works=("joplin_maple_leaf", "haydn_op74no1_m1"),
    derivative_soundtracks=1,
    derivative_seconds=60.0,
    derivative_full=False,
    chorales=12,
    folk_tunes=8,
    game_pieces=8,
    negative_seconds=30.0,
    spread_work="bach_bwv66_6",
    spread_n=6,
)
FULL = Sizes(
    real_works=len(P.REAL_WORKS),
    real_soundtracks=len(P.SOUNDTRACKS),
    real_seconds=60.0,
    degenerate_n=12,
    degenerate_seconds=60.0,
    ladder_works=3,
    ladder_soundtracks=3,
    derivative_works=(
        "joplin_maple_leaf",
        "haydn_op74no1_m1",
        "mozart_k156_m1",
        "beethoven_op18no1_m1",
        "schumann_op41no1_m1",
    ),
    derivative_soundtracks=3,
    derivative_seconds=60.0,
    derivative_full=True,
    chorales=400,
    folk_tunes=100,
    game_pieces=30,
    negative_seconds=30.0,
    spread_work="bach_bwv66_6",
    spread_n=10,
)


@dataclass
class ProbeSets:
    """Every probe set the benchmark scores, and why any probe is missing."""

    real: list[P.Probe]
    degenerate: list[P.Probe]
    ladders: list[P.Probe]
    sources: list[P.Probe]
    variants: list[P.Probe]
    negatives: dict[str, list[P.Probe]]
    spread: list[P.Probe]
    skipped: list[str] = field(default_factory=list)
    missing_packages: list[str] = field(default_factory=list)


def _first_available(
    n: int, makers: Sequence[Callable[[], tuple[P.Probe, list[P.Probe]]]], skipped: list[str]
) -> list[tuple[P.Probe, list[P.Probe]]]:
    """The first ``n`` (source, variants) sets the makers can make; why others failed goes to ``skipped``."""
    out: list[tuple[P.Probe, list[P.Probe]]] = []
    for make in makers:
        if len(out) >= n:
            break
        try:
            out.append(make())
        except P.ProbeUnavailable as exc:
            skipped.append(str(exc))
    return out


def build_sets(
    sizes: Sizes, cache: str | Path | None = None, sections: Sequence[str] = SECTIONS
) -> ProbeSets:
    """Make (or read from the cache) the probe sets that ``sections`` need; the others stay empty."""
    want = set(sections)
    unknown = want - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    c = P.ProbeCache(cache if cache is not None else DEFAULT_CACHE)
    skipped: list[str] = []
    real: list[P.Probe] = []
    degenerate: list[P.Probe] = []
    ladders: list[P.Probe] = []
    sources: list[P.Probe] = []
    variants: list[P.Probe] = []
    negatives: dict[str, list[P.Probe]] = {}
    spread: list[P.Probe] = []
    if want & {"novelty", "ladders"}:
        real = P.real_probes(
            sizes.real_works, sizes.real_soundtracks, seconds=sizes.real_seconds, cache=c, skipped=skipped
        )
    if "novelty" in want:
        degenerate = P.degenerate_probes(
            sizes.degenerate_n, seconds=sizes.degenerate_seconds, cache=c, skipped=skipped
        )
    if "ladders" in want:
        corpus_real = [
            p for p in real if p.meta.get("kind") == "corpus" and p.meta.get("instrument") == "own"
        ]
        track_real = [p for p in real if p.meta.get("kind") == "soundtrack"]
        originals = corpus_real[: sizes.ladder_works] + track_real[: sizes.ladder_soundtracks]
        # "lossless > 128 kbps" only means something when the first step is lossless: a soundtrack shipped
        # as Ogg or MP3 has been through a codec already, so the MP3 ladder takes lossless originals only.
        lossless = corpus_real[: sizes.ladder_works] + [p for p in track_real if p.meta.get("lossless")][
            : sizes.ladder_soundtracks
        ]
        ladders = P.ladder_probes(originals, [k for k in P.LADDERS if k != "mp3"], cache=c)
        ladders += P.ladder_probes(lossless, ["mp3"], gain=False, cache=c)
    if "derivatives" in want:
        made = _first_available(
            len(sizes.derivative_works),
            [
                partial(
                    P.derivative_probes,
                    work,
                    seconds=sizes.derivative_seconds,
                    full=sizes.derivative_full,
                    cache=c,
                    skipped=skipped,
                )
                for work in sizes.derivative_works
            ],
            skipped,
        ) + _first_available(
            sizes.derivative_soundtracks,
            [
                partial(
                    P.soundtrack_derivatives,
                    track,
                    seconds=sizes.derivative_seconds,
                    full=sizes.derivative_full,
                    cache=c,
                    skipped=skipped,
                )
                for track in P.SOUNDTRACKS
            ],
            skipped,
        )
        for src, vs in made:
            sources.append(src)
            variants += vs
        counts = {
            "bach_chorales": sizes.chorales,
            "folk_tunes": sizes.folk_tunes,
            "game_soundtrack": sizes.game_pieces,
        }
        negatives = {
            kind: P.negative_probes(kind, n, seconds=sizes.negative_seconds, cache=c, skipped=skipped)
            for kind, n in counts.items()
        }
    if "spread" in want:
        spread = P.instrumentation_probes(
            sizes.spread_work, sizes.spread_n, seconds=sizes.real_seconds, cache=c, skipped=skipped
        )
    return ProbeSets(
        real,
        degenerate,
        ladders,
        sources,
        variants,
        negatives,
        spread,
        skipped,
        P.missing_soundfont_packages() + P.missing_soundtrack_packages(),
    )


# --------------------------------------------------------------------------------------------- scoring


def canonical(pcm: np.ndarray) -> CanonicalAudio:
    """A probe's PCM as the engine's input type (it is canonical already: mono float32 at 22,050 Hz)."""
    x = np.ascontiguousarray(pcm, dtype=np.float32)
    return CanonicalAudio(x, P.SR, pcm_sha256(x), len(x) / P.SR, "wav")


class EngineScorer:
    """The public scoring API as the benchmark's scoring functions; a probe scored alone is scored once."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._alone: dict[str, PublishedScore] = {}
        self.calls = 0

    def alone(self, pcm: np.ndarray) -> PublishedScore:
        """`score_batch` of this one probe against an empty catalogue (memoised by PCM hash)."""
        from scoring.engine import TrackInput, new_catalogue, score_batch  # torch: only when not injected

        audio = canonical(pcm)
        if audio.sha256 not in self._alone:
            self.calls += 1
            self._alone[audio.sha256] = score_batch(
                [TrackInput("probe", audio)], new_catalogue(), device=self.device
            )[0]
        return self._alone[audio.sha256]

    def novelty(self, pcm: np.ndarray) -> float:
        """`NoveltyFn`: novelty_bp of the probe alone."""
        return float(self.alone(pcm).novelty_bp)

    def quality(self, pcm: np.ndarray) -> float:
        """`QualityFn`: quality_bp of the probe alone."""
        return float(self.alone(pcm).quality_bp)

    def gate(
        self, minted: Sequence[tuple[str, np.ndarray]], queries: Sequence[tuple[str, np.ndarray]]
    ) -> tuple[list[Verdict], list[Verdict]]:
        """`GateFn` on the engine: one `score_batch` in mint order (added to a new catalogue), then one
        `score_batch` per query against that catalogue."""
        from scoring.engine import TrackInput, new_catalogue, score_batch  # torch: only when not injected

        cat = new_catalogue()
        items = [TrackInput(i, canonical(p)) for i, p in minted]
        self.calls += len(items) + len(queries)
        first = score_batch(items, cat, device=self.device, add_to_catalogue=True) if items else []
        after = [score_batch([TrackInput(i, canonical(p))], cat, device=self.device)[0] for i, p in queries]
        return (
            [(s.duplicate_of, s.derivative_of) for s in first],
            [(s.duplicate_of, s.derivative_of) for s in after],
        )


# --------------------------------------------------------------------------------------------- sections


def novelty_auc(sets: ProbeSets, novelty_fn: NoveltyFn) -> dict[str, object]:
    """AUC (Mann-Whitney) that real probes get a higher novelty than each degenerate class.

    Returns ``{"auc": {class: AUC}, "real": {name: bp}, "degenerate": {name: bp}, "median": {class: bp}}``.
    """
    real = {p.name: novelty_fn(p.pcm) for p in sets.real}
    degenerate = {p.name: novelty_fn(p.pcm) for p in sets.degenerate}
    by_class = {c: [degenerate[p.name] for p in sets.degenerate if p.label == c] for c in DEGENERATE_CLASSES}
    auc = {c: P.auc_mann_whitney(list(real.values()), v) for c, v in by_class.items() if v and real}
    median = {"real": statistics.median(real.values()) if real else math.nan}
    median.update({c: statistics.median(v) for c, v in by_class.items() if v})
    return {"auc": auc, "real": real, "degenerate": degenerate, "median": median}


def ladders(sets: ProbeSets, quality_fn: QualityFn) -> dict[str, object]:
    """Spearman rho of quality vs step for every (original, ladder), and the -6 dB copies' quality change.

    Returns ``{"rho": {ladder: {original: rho}}, "quality": {ladder: {original: [bp per step]}},
    "gain_pct": {original: |q(-6 dB) - q| / q * 100}}``.
    """
    rho: dict[str, dict[str, float]] = {}
    quality: dict[str, dict[str, list[float]]] = {}
    gain: dict[str, float] = {}
    originals = {p.source for p in sets.ladders}
    for orig in sorted(o for o in originals if o):
        steps = [p for p in sets.ladders if p.source == orig]
        base: float | None = None
        for ladder in P.LADDERS:
            seq = sorted((p for p in steps if p.label == ladder), key=lambda p: p.step)
            if not seq:
                continue
            q = [quality_fn(p.pcm) for p in seq]
            base = q[0] if base is None else base
            quality.setdefault(ladder, {})[orig] = q
            rho.setdefault(ladder, {})[orig] = P.spearman_rho([p.step for p in seq], q)
        quiet = [p for p in steps if p.label == "gain_-6dB"]
        if quiet:
            q0 = base if base is not None else quality_fn(next(s for s in sets.real if s.name == orig).pcm)
            qg = quality_fn(quiet[0].pcm)
            gain[orig] = abs(qg - q0) / q0 * 100.0 if q0 else (0.0 if qg == q0 else math.inf)
    return {"rho": rho, "quality": quality, "gain_pct": gain}


def derivatives(sets: ProbeSets, gate_fn: GateFn) -> dict[str, object]:
    """Derivative confusion table and same-style false positives.

    Mint order: every source, then a same-audio copy of each (ids ``<source>#copy``); each variant is then
    checked alone against them and counts as caught when duplicate_of or derivative_of is its source's id (a
    copy named instead is counted as ``named_copy``). Then each same-style set is minted in order into a new
    catalogue; every duplicate_of / derivative_of there is a false positive.

    Returns ``{"classes": {class: {"n", "caught", "named_copy", "named_other", "missed", "share"}},
    "copies": {...same fields for the copies...}, "false_positives": {set: {"n", "fp", "pairs"}},
    "misses": [variant names]}``.
    """
    minted = [(p.name, p.pcm) for p in sets.sources] + [(f"{p.name}#copy", p.pcm) for p in sets.sources]
    queries = [(p.name, p.pcm) for p in sets.variants]
    first, after = gate_fn(minted, queries) if minted else ([], [])

    def tally(rows: Sequence[tuple[str, str, Verdict]]) -> dict[str, dict[str, object]]:
        table: dict[str, dict[str, object]] = {}
        for cls, src, (dup, der) in rows:
            t = table.setdefault(cls, {"n": 0, "caught": 0, "named_copy": 0, "named_other": 0, "missed": 0})
            named = dup or der
            key = (
                "caught"
                if named == src
                else "named_copy"
                if named == f"{src}#copy"
                else "missed"
                if named is None
                else "named_other"
            )
            t["n"] = int(t["n"]) + 1  # type: ignore[call-overload]
            t[key] = int(t[key]) + 1  # type: ignore[call-overload]
        for t in table.values():
            t["share"] = int(t["caught"]) / int(t["n"])  # type: ignore[call-overload]
        return table

    copies = tally(
        [("copy", p.name, v) for p, v in zip(sets.sources, first[len(sets.sources) :], strict=True)]
    )
    rows = [(p.label, str(p.source), v) for p, v in zip(sets.variants, after, strict=True)]
    misses = [p.name for p, (_, _, (d, r)) in zip(sets.variants, rows, strict=True) if (d or r) != p.source]
    fps: dict[str, dict[str, object]] = {}
    for kind, probes in sets.negatives.items():
        verdicts, _ = gate_fn([(p.name, p.pcm) for p in probes], []) if probes else ([], [])
        pairs = [(p.name, d or r) for p, (d, r) in zip(probes, verdicts, strict=True) if d or r]
        fps[kind] = {"n": len(probes), "fp": len(pairs), "pairs": pairs}
    return {
        "classes": tally(rows),
        "copies": copies.get("copy", {}),
        "false_positives": fps,
        "misses": misses,
    }


def spread(sets: ProbeSets, novelty_fn: NoveltyFn) -> dict[str, object]:
    """Novelty of one piece on several instruments and SoundFonts: ``{"novelty": {name: bp}, "spread_pct":
    (max - min) / 10,000 * 100}``."""
    nov = {p.name: novelty_fn(p.pcm) for p in sets.spread}
    pct = (max(nov.values()) - min(nov.values())) / 100.0 if nov else math.nan
    return {"novelty": nov, "spread_pct": pct}


# --------------------------------------------------------------------------------------------- table


def table_rows(report: dict[str, object]) -> list[tuple[str, str, str, str, str]]:
    """(section, measure, value, target, PASS/FAIL) lines of the report."""
    rows: list[tuple[str, str, str, str, str]] = []

    def ok(flag: bool) -> str:
        return "PASS" if flag else "FAIL"

    nov = report.get("novelty")
    if isinstance(nov, dict):
        n_real = len(nov["real"])
        if nov["real"]:
            # Not a target of its own: the lowest real pieces show what the AUC lines hide.
            low = sorted(nov["real"].items(), key=lambda kv: kv[1])[:3]
            text = ", ".join(f"{k.split('/', 1)[1]} {v:.0f}" for k, v in low)
            rows.append(("novelty real", f"lowest of {n_real}: {text}", f"{low[0][1]:.0f}", "info", ""))
        for cls in DEGENERATE_CLASSES:
            if cls in nov["auc"]:
                a = nov["auc"][cls]
                n = sum(1 for k in nov["degenerate"] if k.startswith(f"degenerate/{cls}/"))
                med = f"median {nov['median']['real']:.0f} vs {nov['median'][cls]:.0f}"
                rows.append(
                    (
                        "novelty AUC",
                        f"real({n_real}) vs {cls}({n}); {med}",
                        f"{a:.3f}",
                        ">= 0.95",
                        ok(a >= TARGET_AUC),
                    )
                )
    lad = report.get("ladders")
    if isinstance(lad, dict):
        for ladder, per in lad["rho"].items():
            vals = list(per.values())
            worst = max(vals, key=lambda r: -2.0 if math.isnan(r) else r)
            text = " ".join("nan" if math.isnan(r) else f"{r:+.2f}" for r in vals)
            passed = all(not math.isnan(r) and r <= TARGET_RHO + 1e-9 for r in vals)
            rows.append(
                (
                    "quality rho",
                    f"{ladder} ({len(vals)} originals): {text}",
                    "nan" if math.isnan(worst) else f"{worst:+.2f}",
                    "= -1",
                    ok(passed),
                )
            )
        if lad["gain_pct"]:
            g = max(lad["gain_pct"].values())
            rows.append(
                (
                    "quality -6 dB",
                    f"max |dq| of {len(lad['gain_pct'])} originals",
                    f"{g:.2f} %",
                    "<= 1 %",
                    ok(g <= TARGET_GAIN_PCT),
                )
            )
    der = report.get("derivatives")
    if isinstance(der, dict):
        if der["copies"]:
            c = der["copies"]
            rows.append(
                (
                    "derivative",
                    f"same-audio copy ({c['caught']}/{c['n']})",
                    f"{c['share']:.0%}",
                    ">= 95 %",
                    ok(c["share"] >= TARGET_CAUGHT),
                )
            )
        for cls in P.VARIANT_CLASSES:
            if cls in der["classes"]:
                t = der["classes"][cls]
                detail = f"{cls} ({t['caught']}/{t['n']}; copy {t['named_copy']}, other {t['named_other']})"
                rows.append(
                    ("derivative", detail, f"{t['share']:.0%}", ">= 95 %", ok(t["share"] >= TARGET_CAUGHT))
                )
        for kind, f in der["false_positives"].items():
            rows.append(
                (
                    "false positives",
                    f"{kind} ({f['n']} distinct pieces)",
                    str(f["fp"]),
                    "0",
                    ok(f["fp"] <= TARGET_FP and f["n"] > 0),
                )
            )
    spr = report.get("spread")
    if isinstance(spr, dict) and spr["novelty"]:
        s = spr["spread_pct"]
        vals = list(spr["novelty"].values())
        rows.append(
            (
                "novelty spread",
                f"{len(vals)} instrumentations: {min(vals):.0f}..{max(vals):.0f} bp",
                f"{s:.1f} %",
                "<= 10 %",
                ok(s <= TARGET_SPREAD_PCT),
            )
        )
    return rows


def format_table(rows: Sequence[tuple[str, str, str, str, str]]) -> str:
    """The rows as a fixed-width text table."""
    head = ("section", "measure", "value", "target", "")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_validity(
    quick: bool = True,
    *,
    sizes: Sizes | None = None,
    cache: str | Path | None = None,
    device: str | None = None,
    novelty_fn: NoveltyFn | None = None,
    quality_fn: QualityFn | None = None,
    gate_fn: GateFn | None = None,
    sections: Sequence[str] = SECTIONS,
) -> dict[str, object]:
    """Build the probe sets, run the chosen sections and return the report (also holds ``"table"`` rows).

    Args:
        quick: `QUICK` sizes, else `FULL` (ignored when ``sizes`` is given).
        cache: probe cache folder (default .ami/probes in the repository).
        device: torch device for the engine (None: CUDA when present).
        novelty_fn, quality_fn, gate_fn: replacements for the engine's scores (default: `EngineScorer`).
        sections: which of "novelty", "ladders", "derivatives", "spread" to run.
    """
    t0 = time.perf_counter()
    chosen = sizes if sizes is not None else (QUICK if quick else FULL)
    sets = build_sets(chosen, cache, sections)
    t_sets = time.perf_counter() - t0
    engine = EngineScorer(device)
    report: dict[str, object] = {
        "sizes": asdict(chosen),
        "probes": {
            "real": len(sets.real),
            "degenerate": len(sets.degenerate),
            "ladder": len(sets.ladders),
            "sources": len(sets.sources),
            "variants": len(sets.variants),
            "spread": len(sets.spread),
            **{k: len(v) for k, v in sets.negatives.items()},
        },
        "skipped": sets.skipped,
        "missing_packages": sets.missing_packages,
    }
    if "novelty" in sections:
        report["novelty"] = novelty_auc(sets, novelty_fn or engine.novelty)
    if "ladders" in sections:
        report["ladders"] = ladders(sets, quality_fn or engine.quality)
    if "derivatives" in sections:
        report["derivatives"] = derivatives(sets, gate_fn or engine.gate)
    if "spread" in sections:
        report["spread"] = spread(sets, novelty_fn or engine.novelty)
    rows = table_rows(report)
    report["table"] = [list(r) for r in rows]
    report["passed"] = sum(r[4] == "PASS" for r in rows)
    report["failed"] = sum(r[4] == "FAIL" for r in rows)
    report["seconds"] = {"build_sets": round(t_sets, 1), "total": round(time.perf_counter() - t0, 1)}
    report["engine_calls"] = engine.calls
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small probe sets (the default)")
    size.add_argument(
        "--full",
        action="store_true",
        help="the full probe sets (every distinct Bach chorale, 100 reels and jigs...)",
    )
    ap.add_argument("--json", type=Path, help="also write the whole report as JSON to this file")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="probe cache folder")
    ap.add_argument("--device", default=None, help="torch device for the engine (default: CUDA when present)")
    ap.add_argument(
        "--section",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable)",
    )
    args = ap.parse_args(argv)
    report = run_validity(
        quick=not args.full,
        cache=args.cache,
        device=args.device,
        sections=args.section or SECTIONS,
    )
    mode = "full" if args.full else "quick"
    print(f"AMI scoring validity ({mode}); probes: {json.dumps(report['probes'])}")
    missing = report["missing_packages"]
    assert isinstance(missing, list)
    if missing:
        print(f"MISSING packages, their probes are left out (run scripts/setup.sh): {', '.join(missing)}")
    skipped = report["skipped"]
    assert isinstance(skipped, list)
    if skipped:
        print(f"{len(skipped)} probes skipped:")
        for line in skipped[:20]:
            print(f"  - {line}")
    print()
    print(format_table([tuple(r) for r in report["table"]]))  # type: ignore[arg-type, attr-defined]
    print()
    der = report.get("derivatives")
    if isinstance(der, dict) and der["misses"]:
        print(f"derivatives not attributed to their source ({len(der['misses'])}):")
        print("  " + ", ".join(m.removeprefix("variant/") for m in der["misses"]))
        fps = [f"{a} -> {b}" for f in der["false_positives"].values() for a, b in f["pairs"]]
        if fps:
            print(f"false positives: {', '.join(fps)}")
        print()
    print(
        f"{report['passed']} lines pass, {report['failed']} fail; {report['engine_calls']} engine scorings; "
        f"seconds: {report['seconds']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
