"""Wider check of the coherence gate than the validity benchmark's quick sets: many random-note renders and
shuffles, with seeds the benchmark does not use, scored as G(M) x P against the quick real probes.

    .venv/bin/python bench/coherence_wide.py                       # the shipped coherence model
    git show <rev>:scoring/data/coherence_model.json > old.json
    .venv/bin/python bench/coherence_wide.py --compare old.json    # and an older model beside it

An older model file names its own inputs; every input a model has ever used is still among the feature
scalars (`ic_mean_sq` and `log_events_per_s` are derived as `scoring.novelty.coherence_inputs` derives them).
Prints, per model, the Mann-Whitney AUC of real over each class with its median and highest score.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/: its scoring.py would hide the scoring package

from bench.validity_sets import QUICK, build_sets  # noqa: E402
from scoring import probes as P  # noqa: E402
from scoring.features import extract_features  # noqa: E402
from scoring.novelty import coherence, read_harmony  # noqa: E402

PROGRAMS = (0, 11, 19, 24, 48, 73)
"""Piano, vibraphone, organ, guitar, strings, flute."""
SEEDS = range(100, 106)
SHUFFLE_SEEDS = (500, 501)

Coherence = Callable[[Mapping[str, float]], float]


def model_from_file(path: Path) -> Coherence:
    """M of a coherence model file (any version), computed from the feature scalars."""
    doc = json.loads(path.read_text())
    mean, std, w = (np.asarray(doc[k], dtype=np.float64) for k in ("mean", "std", "weights"))

    def m(s: Mapping[str, float]) -> float:
        events = math.log2(1 + max(0.0, s["events_per_s"]))
        derived = {"ic_mean_sq": s["ic_mean"] ** 2, "log_events_per_s": events}
        x = np.array([derived.get(k, s.get(k, math.nan)) for k in doc["features"]], dtype=np.float64)
        z = float(doc["bias"]) + math.fsum((((x - mean) / std) * w).tolist())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    return m


def probe_sets() -> dict[str, list[np.ndarray]]:
    """real (the quick set), random notes (PROGRAMS x SEEDS), shuffles (SHUFFLE_SEEDS of every real)."""
    cache = P.ProbeCache()
    real = build_sets(QUICK).real
    rnd = [P.random_notes(30.0, prog, seed=seed, cache=cache) for prog in PROGRAMS for seed in SEEDS]
    shuffles = []
    for i, p in enumerate(real):
        slices: float | tuple[float, float] = (0.25, 1.0) if p.meta.get("kind") == "soundtrack" else 0.6
        shuffles += [P.shuffle_slices(p.pcm, slices, seed=seed + 10 * i)[0] for seed in SHUFFLE_SEEDS]
    return {"real": [p.pcm for p in real], "random_notes": rnd, "shuffles": shuffles}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", type=Path, action="append", default=[], help="an older coherence_model.json")
    args = ap.parse_args()
    models: dict[str, Coherence] = {"shipped": coherence}
    models.update({str(p): model_from_file(p) for p in args.compare})
    sets = probe_sets()
    scalars = {k: [f.scalars for f in extract_features(v)] for k, v in sets.items()}
    for name, m in models.items():
        score = {k: [read_harmony(s, m).credit for s in v] for k, v in scalars.items()}
        line = [f"{name}: real median {np.median(score['real']):.2f}"]
        for cls in ("random_notes", "shuffles"):
            auc = P.auc_mann_whitney(score["real"], score[cls])
            line.append(
                f"{cls} ({len(score[cls])}) AUC {auc:.3f}, median {np.median(score[cls]):.2f}, "
                f"highest {max(score[cls]):.2f}"
            )
        print("; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
