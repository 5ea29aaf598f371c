"""Builds scoring/data/interval_model.json: a long-term model of melodic intervals from music21's corpus.

IDyOM's long-term model (Pearce 2005) of `scoring.intervals`:
every part of every song of the Essen folksong collection in music21's corpus (the collection IDyOM's own
studies train on) is read as MIDI pitches, and `count_intervals` counts each interval (-24..24 semitones)
after each context of up to two intervals. The counts are key- and tempo-invariant by construction.

Left out: the collection's test files, and the three files whose songs the validity benchmark, the coherence
model's training split or the sample catalogue render (altdeu10, altdeu20, ballad10).

Run: .venv/bin/python scripts/build_interval_model.py (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from music21 import corpus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring.intervals import INTERVAL_MODEL_VERSION, INTERVAL_RANGE, LTM_ORDER, count_intervals  # noqa: E402

OUT = ROOT / "scoring" / "data" / "interval_model.json"

LEFT_OUT = {"altdeu10", "altdeu20", "ballad10", "test0", "test1", "testd", "teste"}
MIN_NOTES = 5


def melodies_of(path: Path) -> list[list[int]]:
    """The MIDI pitches of every part of every song in one file of the collection (rests skipped, chords
    have none here)."""
    work = corpus.parse(path)
    out = []
    for score in getattr(work, "scores", None) or [work]:
        for part in score.parts or [score]:
            pitches = [n.pitch.midi for n in part.recurse().notes if n.isNote]
            if len(pitches) >= MIN_NOTES:
                out.append(pitches)
    return out


def main() -> int:
    paths = sorted(
        p
        for p in corpus.corpora.CoreCorpus().getPaths()
        if "essenFolksong" in str(p) and Path(p).stem not in LEFT_OUT
    )
    t0 = time.time()
    with Pool(2) as pool:
        melodies = [m for ms in pool.map(melodies_of, paths) for m in ms]
    counts = count_intervals([np.array(m) for m in melodies], LTM_ORDER)

    def interval(symbol: int) -> str:
        return str(symbol - INTERVAL_RANGE)

    doc = {
        "version": INTERVAL_MODEL_VERSION,
        "source": "music21 corpus, essenFolksong: " + ", ".join(Path(p).stem for p in paths),
        "melodies": len(melodies),
        "intervals": int(counts[()].sum()),
        "order": LTM_ORDER,
        "counts": {
            " ".join(interval(s) for s in context): {
                interval(int(s)): int(row[s]) for s in np.flatnonzero(row)
            }
            for context, row in sorted(counts.items())
        },
    }
    OUT.write_text(json.dumps(doc, indent=0) + "\n")
    took = time.time() - t0
    print(f"wrote {OUT}: {len(melodies)} melodies, {doc['intervals']} intervals, {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
