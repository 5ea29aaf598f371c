"""Benchmark of novelty on short clips and on clips padded to 30 s: what the evidence factor E closes, and
what it leaves open.

Six seconds of random notes (`scoring.probes.random_notes`, several GM programs and seeds), scored alone and
followed by 24 s of each padding: silence, white noise 30 dB under the notes, three tones (a held C-major
chord, a 440 Hz sine, a 100 Hz..5 kHz sweep) and slow loops of 2, 3 and 4 chords, a chord every 3 s
(`scoring.probes.degenerate.vamp`), 10 dB under the notes. Prints per padding the median and largest
G x P x T (what the harmony reads), E (the evidence of the view that counted) and novelty_bp, each clip
scored alone against an empty catalogue. Since model 15 the 3- and 4-chord loops, under three cycles in 24 s,
are loops too: no melody moves over them (`scoring.structure.LOOP_CYCLES_UNSUNG`).

With ``--lengths`` it first shows why: excerpts of 6..20 s cut from the quick validity sets' 30 s probes
(real music, loops, shuffles, random notes; at 0 s, mid-way and at the end), the AUC of real vs each class
and the medians, in G x P x T alone and in novelty.

    .venv/bin/python bench/padding.py [--clips 8] [--lengths]
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
from scoring.probes.degenerate import C_AM_F_G, C_F_G, at_level, tone_probes, vamp  # noqa: E402
from scoring.testsignals import white_noise  # noqa: E402

PROGRAMS = (P.PIANO, P.ORGAN, P.STRINGS, P.FLUTE, P.GUITAR, P.VIBES, P.CLARINET, P.CHOIR)
PAD_S = 24.0


def paddings(clip: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The clip alone and followed by each padding, keyed by the padding's name."""
    tones = {p.meta["signal"]: p.pcm for p in tone_probes(PAD_S)}
    pads = {
        "silence": np.zeros(int(PAD_S * P.SR), np.float32),
        "noise -30 dB": at_level(white_noise(PAD_S, amp=1.0, seed=seed), clip, -30.0),
        "held chord -10 dB": at_level(tones["chord_cmaj"], clip, -10.0),
        "sine -10 dB": at_level(tones["sine440"], clip, -10.0),
        "sweep -10 dB": at_level(tones["sweep"], clip, -10.0),
        "C-G every 3 s -10 dB": at_level(vamp(PAD_S), clip, -10.0),
        "C-F-G every 3 s -10 dB": at_level(vamp(PAD_S, chords=C_F_G), clip, -10.0),
        "C-Am-F-G every 3 s -10 dB": at_level(vamp(PAD_S, chords=C_AM_F_G), clip, -10.0),
    }
    return {"alone": clip, **{k: np.concatenate((clip, v)) for k, v in pads.items()}}


LENGTHS_S = (6.0, 8.0, 12.0, 16.0, 20.0, 30.0)
LENGTH_CLASSES = ("loops", "shuffles", "random_notes")


def by_length(cache: Path) -> None:
    """Print, per excerpt length, the AUC of real vs each of `LENGTH_CLASSES` in G x P x T and in novelty."""
    probes = P.real_probes(12, 12, seconds=30.0, cache=cache) + [
        p for p in P.degenerate_probes(4, seconds=30.0, cache=cache) if p.label in LENGTH_CLASSES
    ]
    print(f"{'excerpt':>8s} " + " ".join(f"{c + ' AUC GPT/novelty':>30s}" for c in LENGTH_CLASSES))
    for length in LENGTHS_S:
        n = int(length * P.SR)
        cuts, labels = [], []
        for p in probes:
            for start in sorted({0, (p.pcm.size - n) // 2, p.pcm.size - n}):
                x = p.pcm[max(start, 0) : max(start, 0) + n]
                if x.size >= n - P.SR // 2 and float(np.sqrt(np.mean(np.square(x)))) > 1e-4:
                    cuts.append(x)
                    labels.append(p.group if p.group == "real" else p.label)
        res = [novelty(f.embedding, f.scalars, None, None) for f in extract_features(cuts)]
        gpt = np.array([r.harmony.structure for r in res])
        bp = np.array([r.novelty_bp for r in res], dtype=np.float64)
        lab = np.array(labels)
        cells = []
        for c in LENGTH_CLASSES:
            a = P.auc_mann_whitney(gpt[lab == "real"], gpt[lab == c])
            b = P.auc_mann_whitney(bp[lab == "real"], bp[lab == c])
            cells.append(
                f"{a:.2f}/{b:.2f} (median {np.median(gpt[lab == c]):.2f}/{np.median(bp[lab == c]):.0f})"
            )
        print(f"{length:7.0f}s " + " ".join(f"{c:>30s}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8, help="random-note clips (programs and seeds)")
    ap.add_argument("--cache", type=Path, default=Path(".ami/probes"), help="probe cache folder")
    ap.add_argument(
        "--lengths", action="store_true", help="first, AUC of real vs degenerate by excerpt length"
    )
    args = ap.parse_args()
    if args.lengths:
        by_length(args.cache)
    rows: dict[str, list[tuple[float, float, int]]] = {}
    for i in range(args.clips):
        clip = P.random_notes(6.0, PROGRAMS[i % len(PROGRAMS)], seed=400 + i, cache=args.cache)
        takes = paddings(clip, 400 + i)
        for name, feats in zip(takes, extract_features(list(takes.values())), strict=True):
            n = novelty(feats.embedding, feats.scalars, None, None)
            rows.setdefault(name, []).append((n.harmony.structure, n.evidence, n.novelty_bp))
    print(
        f"{'6 s of random notes':26s} {'G x P x T median/max':>21s} {'E max':>6s} {'novelty median/max':>19s}"
    )
    for name, vals in rows.items():
        c, e, bp = (np.array(v) for v in zip(*vals, strict=True))
        print(
            f"{name:26s} {np.median(c):10.2f}/{c.max():.2f} {e.max():6.2f} "
            f"{np.median(bp):12.0f}/{bp.max():.0f}"
        )


if __name__ == "__main__":
    main()
