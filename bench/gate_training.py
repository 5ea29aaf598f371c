"""Calibration of the derivative gate on the training split: how well `scoring.derivative.match` separates
the same composition from distinct works of one style, for the gate now (register profiles, a 30 s window,
`scoring.derivative.threshold`, the change condition) and the three before it (the same without the change
condition; registers or one fold over every octave, 15 s).

Nothing here is scored by bench/validity.py:
- same composition: each work of `scripts/training_split.TRAIN_WORKS` (45 s) against itself on 7 other GM
  programs, transposed by +2, -3 and +5 semitones, at tempo x0.8 and x1.25, and on another SoundFont;
- distinct works of one style: 90 Palestrina mass movements (every 13th in name order, on organ) and 150
  Ryan's Mammoth tunes (the last 60 reels and 60 jigs in name order, which the validity benchmark's first
  100 never reach, and the first 30 hornpipes, on violin), 60 s each (so that a 30 s window has offsets to
  choose from, as in a real catalogue), every pair within a set.

    .venv/bin/python bench/gate_training.py            # renders cached in .ami/probes (first run ~10 min)
    .venv/bin/python bench/gate_training.py --pairs 600 --json out.json

Prints, per gate: the lowest same-composition margin (score minus the window's threshold; without and with
the clarinet, whose strong odd partials are the hardest instrument change), how many fall under the
threshold, and the distinct pairs at or above it. The gate now (ami-derivative/5) also asks the best
window's change correlation to reach `scoring.derivative.CHANGE_THRESHOLD`, its margin being the smaller of
the two; a second table gives, per gate, the lowest same-composition change correlation and those of the
distinct pairs whose score alone reaches the threshold.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from training_split import TRAIN_WORKS  # noqa: E402

from scoring import derivative, salience, structure  # noqa: E402
from scoring.features import frame_features  # noqa: E402
from scoring.probes import instruments as inst  # noqa: E402
from scoring.probes.probe import ProbeUnavailable  # noqa: E402
from scoring.probes.renders import CorpusWork, render_work  # noqa: E402

PROGRAMS = (inst.PIANO, inst.STRINGS, inst.FLUTE, inst.GUITAR, inst.CLARINET, inst.CHOIR, inst.ORGAN)
SECONDS = 45.0
NEGATIVE_SECONDS = 60.0

Recipe = tuple[str, str, str, CorpusWork, dict[str, object]]


def recipes() -> list[Recipe]:
    """(set, work, variant, corpus work, render_work keywords) of every training render."""
    from music21 import corpus  # slow to import

    out: list[Recipe] = []
    for w in TRAIN_WORKS:
        out.append(("same", w.name, "source", w, {"seconds": SECONDS}))
        for prog in PROGRAMS:
            if prog not in w.programs:
                out.append(("same", w.name, f"program{prog}", w, {"seconds": SECONDS, "program": prog}))
        for shift in (2, -3, 5):
            out.append(("same", w.name, f"transpose{shift:+d}", w, {"seconds": SECONDS, "transpose": shift}))
        for factor in (0.8, 1.25):
            out.append(("same", w.name, f"tempo{factor}", w, {"seconds": SECONDS / factor, "tempo": factor}))
        out.append(("same", w.name, "musescore", w, {"seconds": SECONDS, "soundfont": "musescore"}))
    paths = sorted(
        str(p).split("/corpus/")[1].rsplit(".", 1)[0] for p in corpus.corpora.CoreCorpus().getPaths()
    )
    for p in [p for p in paths if p.startswith("palestrina/")][::13][:90]:
        work = CorpusWork("tr_" + p.replace("/", "_"), "renaissance_mass", p, None, (inst.ORGAN,), 90)
        out.append(("palestrina", p, "organ", work, {"seconds": NEGATIVE_SECONDS}))
    ryans = [p for p in paths if p.startswith("ryansMammoth/")]
    tunes = (
        [p for p in ryans if p.endswith("Reel")][-60:]
        + [p for p in ryans if p.endswith("Jig")][-60:]
        + [p for p in ryans if p.endswith("Hornpipe")][:30]
    )
    for p in tunes:
        work = CorpusWork("tr_" + p.split("/")[1], "folk", p, None, (inst.VIOLIN,), 110, 2)
        out.append(("folk", p, "violin", work, {"seconds": NEGATIVE_SECONDS}))
    return out


def one_fold(semitone_power: np.ndarray) -> np.ndarray:
    """The gate's steps before registers (ami-derivative/2): one pitch-class fold over every octave."""
    return structure.chroma_steps(salience.salience_chroma(semitone_power))[0]


def registers(semitone_power: np.ndarray) -> np.ndarray:
    """The gate's steps now: a bass and a treble profile (`scoring.derivative.gate_steps`)."""
    return derivative.gate_steps(semitone_power)[0]


REPRESENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "one fold": one_fold,
    "registers": registers,
}
GATES: dict[str, tuple[str, float, bool]] = {
    "one fold, 15 s (ami-derivative/2)": ("one fold", 15.0, False),
    "registers, 15 s (ami-derivative/3)": ("registers", 15.0, False),
    f"registers, {derivative.WINDOW_S:g} s (ami-derivative/4)": ("registers", derivative.WINDOW_S, False),
    f"registers, {derivative.WINDOW_S:g} s, change (" + derivative.DERIVATIVE_VERSION + ")": (
        "registers",
        derivative.WINDOW_S,
        True,
    ),
}
"""Gate label -> (steps, window in seconds, whether the change condition applies); the threshold is
`scoring.derivative.threshold` of the window used, which is `scoring.derivative.THRESHOLD` (0.62) for 15 s.
The gates without the change condition are judged on the score's margin alone, as they were."""


def _render(recipe: Recipe) -> tuple[str, str, str, dict[str, np.ndarray] | None]:
    kind, name, variant, work, kwargs = recipe
    try:
        pcm = render_work(work, **kwargs)  # type: ignore[arg-type]
    except ProbeUnavailable:
        return kind, name, variant, None
    power = frame_features(pcm)["semitone_power"]
    return kind, name, variant, {rep: fn(power).astype(np.float32) for rep, fn in REPRESENTATIONS.items()}


Figures = tuple[float, float, float]


def _figures(job: tuple[np.ndarray, np.ndarray, float]) -> Figures:
    """(score minus its window's threshold, change correlation, `Match.margin`) of one pair's
    `scoring.derivative.match`."""
    m = derivative.match(job[0], job[1], job[2])
    return m.score - m.threshold, m.change, m.margin


def _margin(figures: Figures, with_change: bool) -> float:
    """The gate's margin with the change condition, the score's alone without it."""
    return figures[2] if with_change else figures[0]


def run(pairs: int | None = None, workers: int = 2) -> dict[str, object]:
    """Render (cached), extract and match; ``pairs`` caps the distinct pairs per set (random, seed 0)."""
    with ProcessPoolExecutor(workers) as pool:
        made = [r for r in pool.map(_render, recipes(), chunksize=4) if r[3] is not None]
        rng = np.random.default_rng(0)
        report: dict[str, object] = {}
        # gates that differ only in the change condition share their matches
        memo: dict[tuple[str, float, str], tuple[list[tuple[int, int]], list[Figures]]] = {}
        for gate, (rep, window, with_change) in GATES.items():
            sources = {
                name: steps[rep] for kind, name, variant, steps in made if variant == "source" and steps
            }
            same = [
                (f"{name}/{variant}", steps[rep], sources[name])
                for kind, name, variant, steps in made
                if kind == "same" and variant != "source" and steps and name in sources
            ]
            if (rep, window, "same") not in memo:
                jobs = [(q, r, window) for _, q, r in same]
                memo[rep, window, "same"] = [], list(pool.map(_figures, jobs, chunksize=8))
            same_figures = memo[rep, window, "same"][1]
            same_scores = [_margin(f, with_change) for f in same_figures]
            distinct: dict[str, dict[str, object]] = {}
            for kind in ("palestrina", "folk"):
                items = [(name, steps[rep]) for k, name, _, steps in made if k == kind and steps]
                if (rep, window, kind) not in memo:
                    all_pairs = list(itertools.combinations(range(len(items)), 2))
                    if pairs is not None and pairs < len(all_pairs):
                        chosen = rng.choice(len(all_pairs), size=pairs, replace=False)
                        all_pairs = [all_pairs[int(i)] for i in chosen]
                    jobs = [(items[j][1], items[i][1], window) for i, j in all_pairs]
                    memo[rep, window, kind] = all_pairs, list(pool.map(_figures, jobs, chunksize=64))
                all_pairs, figures = memo[rep, window, kind]
                scores = [_margin(f, with_change) for f in figures]
                flagged = sorted(
                    (
                        (s, items[i][0], items[j][0])
                        for s, (i, j) in zip(scores, all_pairs, strict=True)
                        if s >= 0.0
                    ),
                    reverse=True,
                )
                distinct[kind] = {
                    "pairs": len(scores),
                    "highest": round(max(scores), 3),
                    "p99": round(float(np.percentile(scores, 99)), 3),
                    "at_or_above_threshold": len(flagged),
                    "top": [[round(s, 3), a, b] for s, a, b in flagged[:5]],
                    # the change correlation of every pair whose score alone reaches its threshold
                    "change_of_score_matches": sorted(round(c, 3) for m, c, _ in figures if m >= 0.0),
                }
            clarinet = np.array(["program71" in label for label, _, _ in same])
            s = np.array(same_scores)
            report[gate] = {
                "same_pairs": len(s),
                "same_lowest": round(float(s[~clarinet].min()), 3),
                "same_lowest_clarinet": round(float(s[clarinet].min()), 3) if clarinet.any() else None,
                "same_under_threshold": [
                    [label, round(float(v), 3)] for (label, _, _), v in zip(same, s, strict=True) if v < 0.0
                ],
                "distinct": distinct,
                "same_change_lowest": round(min(c for _, c, _ in same_figures), 3),
                "same_change_of_score_matches_lowest": round(
                    min(c for m, c, _ in same_figures if m >= 0.0), 3
                ),
            }
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=None, help="distinct pairs per set (default: every pair)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = ap.parse_args()
    report = run(args.pairs, args.workers)
    print(
        "margins: score minus the threshold of the window, and for the change gate the smaller of that and"
        f" the change correlation minus {derivative.CHANGE_THRESHOLD} (>= 0 is a match)"
    )
    margin_rows, change_rows = [], []
    for rep, r in report.items():
        assert isinstance(r, dict)
        d = r["distinct"]
        margin_rows.append(
            f"| {rep} | {r['same_lowest']} ({r['same_lowest_clarinet']}) | {len(r['same_under_threshold'])}"
            f"/{r['same_pairs']} | {d['palestrina']['at_or_above_threshold']}/{d['palestrina']['pairs']}, "
            f"{d['palestrina']['highest']} | {d['folk']['at_or_above_threshold']}/{d['folk']['pairs']}, "
            f"{d['folk']['highest']} |"
        )
        spans = []
        for kind in ("palestrina", "folk"):
            c = d[kind]["change_of_score_matches"]
            under = sum(v < derivative.CHANGE_THRESHOLD for v in c)
            span = f": {min(c)}..{max(c)}, {under} under the condition" if c else ""
            spans.append(f"{kind} {len(c)}{span}")
        lowest = f"{r['same_change_lowest']} ({r['same_change_of_score_matches_lowest']})"
        change_rows.append(f"| {rep} | {lowest} | {'; '.join(spans)} |")
    print(
        "| gate | same composition, lowest margin (clarinet) | under threshold | Palestrina pairs >= thr,"
        " highest margin | folk pairs >= thr, highest margin |"
    )
    print("| --- | --- | --- | --- | --- |", *margin_rows, sep="\n")
    print("\nchange correlation at the best window (every gate's figures; the condition applies to the last)")
    print(
        "| gate | same composition, lowest (of those the score matches) |"
        " distinct pairs the score matches: change |"
    )
    print("| --- | --- | --- |", *change_rows, sep="\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
