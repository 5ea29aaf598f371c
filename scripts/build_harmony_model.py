"""Builds scoring/data/harmony_model.json: counts of key-invariant chord transitions in music21's corpus.

The long-term model of `scoring.structure` (IDyOM's "LTM"): each score is chordified, every sounding chord is
reduced to (root pitch class, major/minor), consecutive repeats are merged, and each change becomes the token
``from_quality|interval|to_quality`` (interval = root movement in semitones mod 12), so the model is
transposition- and tempo-invariant. Unigram counts and bigram counts of consecutive tokens are stored.

Run: .venv/bin/python scripts/build_harmony_model.py (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from music21 import corpus

OUT = Path(__file__).resolve().parent.parent / "scoring" / "data" / "harmony_model.json"
VERSION = "ami-harmony/1"
# Composers of music21's corpus with polyphonic scores (monophonic folk collections carry no harmony), with
# the most scores taken from each: chordifying a long quartet movement takes minutes, a chorale a second.
COMPOSERS = {
    "bach": 400,
    "monteverdi": 60,
    "trecento": 40,
    "palestrina": 25,
    "joplin": 1,
    "handel": 1,
    "corelli": 1,
    "schubert": 1,
    "weber": 1,
    "verdi": 1,
    "cpebach": 1,
    "mozart": 4,
    "haydn": 4,
    "beethoven": 3,
    "josquin": 4,
}
QUALITY = {"major": "M", "minor": "m", "augmented": "M", "diminished": "m"}


def tokens_of(path: str) -> list[str]:
    score = corpus.parse(path)
    chords = score.chordify().recurse().getElementsByClass("Chord")
    seq: list[tuple[int, str]] = []
    for ch in chords:
        if len(ch.pitches) < 2:
            continue
        q = QUALITY.get(ch.quality)
        if q is None:
            continue
        label = (ch.root().pitchClass, q)
        if not seq or seq[-1] != label:
            seq.append(label)
    return [f"{a[1]}|{(b[0] - a[0]) % 12}|{b[1]}" for a, b in zip(seq, seq[1:], strict=False)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="share of each composer's quota to take")
    args = ap.parse_args()
    uni: Counter[str] = Counter()
    bi: Counter[str] = Counter()
    n_scores = 0
    t0 = time.time()
    for composer, quota in COMPOSERS.items():
        paths = sorted(str(p) for p in corpus.getComposer(composer))[: max(1, int(quota * args.scale))]
        for p in paths:
            try:
                toks = tokens_of(p)
            except Exception as exc:  # a score music21 cannot chordify is skipped, and said
                print(f"skip {p}: {type(exc).__name__}", file=sys.stderr)
                continue
            n_scores += 1
            uni.update(toks)
            bi.update(f"{a}>{b}" for a, b in zip(toks, toks[1:], strict=False))
        print(
            f"{composer}: {n_scores} scores, {sum(uni.values())} transitions, {time.time() - t0:.0f} s",
            file=sys.stderr,
        )
    doc = {
        "version": VERSION,
        "scores": n_scores,
        "unigram": dict(sorted(uni.items())),
        "bigram": dict(sorted(bi.items())),
    }
    OUT.write_text(json.dumps(doc, indent=0, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {n_scores} scores, {sum(uni.values())} transitions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
