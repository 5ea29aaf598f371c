"""Benchmark of novelty on short clips and on clips padded to 30 s: what the evidence factor E closes and what
it leaves open.

Six seconds of random notes (`scoring.probes.random_notes`, several GM programs and seeds), scored alone and
followed by 24 s of each padding: silence, white noise 30 dB under the notes, and three tones (a held C-major
chord, a 440 Hz sine, a 100 Hz..5 kHz sweep) 10 dB under the notes. Prints per padding the median and largest
G x P x T (what the harmony reads), E, and novelty_bp, each clip scored alone against an empty catalogue.

    .venv/bin/python bench/padding.py [--clips 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# `python bench/padding.py` puts bench/ first on sys.path, where bench/scoring.py would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from scoring import probes as P  # noqa: E402
from scoring.features import extract_features  # noqa: E402
from scoring.novelty import novelty  # noqa: E402
from scoring.probes.degenerate import tone_probes  # noqa: E402
from scoring.testsignals import white_noise  # noqa: E402

PROGRAMS = (P.PIANO, P.ORGAN, P.STRINGS, P.FLUTE, P.GUITAR, P.VIBES, P.CLARINET, P.CHOIR)
PAD_S = 24.0


def _at(x: np.ndarray, rms: float) -> np.ndarray:
    return (x * (rms / max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-12))).astype(
        np.float32
    )


def paddings(clip: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The clip alone and followed by each padding, keyed by the padding's name."""
    rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))
    tones = {p.meta["signal"]: p.pcm for p in tone_probes(PAD_S)}
    pads = {
        "silence": np.zeros(int(PAD_S * P.SR), np.float32),
        "noise -30 dB": _at(white_noise(PAD_S, amp=1.0, seed=seed), rms * 10 ** (-30 / 20)),
        "held chord -10 dB": _at(tones["chord_cmaj"], rms * 10 ** (-10 / 20)),
        "sine -10 dB": _at(tones["sine440"], rms * 10 ** (-10 / 20)),
        "sweep -10 dB": _at(tones["sweep"], rms * 10 ** (-10 / 20)),
    }
    return {"alone": clip, **{k: np.concatenate((clip, v)) for k, v in pads.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8, help="random-note clips (programs and seeds)")
    ap.add_argument("--cache", type=Path, default=Path(".ami/probes"), help="probe cache folder")
    args = ap.parse_args()
    rows: dict[str, list[tuple[float, float, int]]] = {}
    for i in range(args.clips):
        clip = P.random_notes(6.0, PROGRAMS[i % len(PROGRAMS)], seed=400 + i, cache=args.cache)
        takes = paddings(clip, 400 + i)
        for name, feats in zip(takes, extract_features(list(takes.values())), strict=True):
            n = novelty(feats.embedding, feats.scalars, None, None)
            rows.setdefault(name, []).append((n.harmony.credit, n.evidence, n.novelty_bp))
    print(
        f"{'6 s of random notes':22s} {'G x P x T median/max':>21s} {'E max':>6s} {'novelty median/max':>19s}"
    )
    for name, vals in rows.items():
        c, e, bp = (np.array(v) for v in zip(*vals, strict=True))
        print(
            f"{name:22s} {np.median(c):10.2f}/{c.max():.2f} {e.max():6.2f} "
            f"{np.median(bp):12.0f}/{bp.max():.0f}"
        )


if __name__ == "__main__":
    main()
