"""Benchmark of the worker under a hostile creator (issue 11's done-when figure): `--mints` hostile mints in
one block (strings that are no CIDs, directory CIDs, content nobody has), then one honest mint by another
creator, on the devnet and a js-ipfs node, the worker in its own process. Prints the honest track's latency
from its finalized mint to its published score against the 60 s target, and the worker's peak RSS against
the 1.5 GB target, as ratios (below 1.0 meets the target), with every hostile track's verdict at that moment.

    .venv/bin/python bench/hostile.py [--mints 1000] [--scorer engine|hash]

`engine` scores the honest track with the real scoring process (its own memory is not the worker's);
`hash` uses the tests' stand-in, so the figure is the pipeline's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

# `python bench/hostile.py` puts bench/ first on sys.path, where bench/scoring.py would shadow the scoring
# package; the scenario itself lives with the tests that run a smaller version of it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "tests" / "hostile"))

from hostile_world import run_scenario  # noqa: E402

LATENCY_TARGET_S = 60.0
RSS_TARGET_MB = 1536.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mints", type=int, default=1000, help="hostile mints in the one block")
    ap.add_argument("--scorer", choices=("engine", "hash"), default="engine")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        got = run_scenario(Path(tmp), args.mints, scorer=args.scorer, timeout_s=1800)
    print(json.dumps(got, indent=2))
    print(
        f"honest track published {got['honest_latency_s']:.1f} s after its mint, behind {args.mints} hostile "
        f"mints: {got['honest_latency_s'] / LATENCY_TARGET_S:.2f} x the 60 s target"
    )
    print(
        f"worker peak RSS {got['worker_peak_rss_mb']:.0f} MB: "
        f"{got['worker_peak_rss_mb'] / RSS_TARGET_MB:.2f} x the 1.5 GB target"
    )


if __name__ == "__main__":
    main()
