"""Benchmark: do the published scores measure what they claim? One table of validity figures on probe sets.

Builds the probe sets of `scoring.probes` (renders and decodes cached under .ami/probes), scores them with the
public scoring API and prints one table with the target of each line and whether it passes:
  * novelty AUC of real music vs each degenerate class (loops, shuffles, random notes, tones, noise, and
    clips of 6 or 8 s of random notes, alone or padded to 30 s with silence, quiet noise or a tone), every
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
It measures whatever `scoring.engine` computes now; it assumes nothing about how. Its parts: the probe sets
(bench/validity_sets.py), the engine as scoring functions (validity_engine.py), the sections
(validity_sections.py) and the table (validity_table.py); this module runs them and re-exports their names.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.validity_engine import EngineScorer, GateFn, NoveltyFn, QualityFn, Verdict, canonical  # noqa: E402
from bench.validity_sections import derivatives, ladders, novelty_auc, spread  # noqa: E402
from bench.validity_sets import (  # noqa: E402
    DEFAULT_CACHE,
    DEGENERATE_CLASSES,
    FULL,
    QUICK,
    SAME_STYLE_SETS,
    SECTIONS,
    ProbeSets,
    Sizes,
    build_sets,
)
from bench.validity_table import (  # noqa: E402
    TARGET_AUC,
    TARGET_CAUGHT,
    TARGET_FP,
    TARGET_GAIN_PCT,
    TARGET_RHO,
    TARGET_SPREAD_PCT,
    format_table,
    table_rows,
)

__all__ = [
    "DEFAULT_CACHE",
    "DEGENERATE_CLASSES",
    "FULL",
    "QUICK",
    "SAME_STYLE_SETS",
    "SECTIONS",
    "TARGET_AUC",
    "TARGET_CAUGHT",
    "TARGET_FP",
    "TARGET_GAIN_PCT",
    "TARGET_RHO",
    "TARGET_SPREAD_PCT",
    "EngineScorer",
    "GateFn",
    "NoveltyFn",
    "ProbeSets",
    "QualityFn",
    "Sizes",
    "Verdict",
    "build_sets",
    "canonical",
    "derivatives",
    "format_table",
    "ladders",
    "main",
    "novelty_auc",
    "run_validity",
    "spread",
    "table_rows",
]


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
