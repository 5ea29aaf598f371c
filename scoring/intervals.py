"""How expected each interval of a melody is, IDyOM-style: the piece's own short-term model and a long-term
model of folk melodies, combined by their certainty (`scoring.ppm.entropy_weighted`).

IDyOM (Pearce 2005, 2018) predicts each note of a melody from what came before. Here the note is the interval
from the previous one (so the model does not care about key), in semitones clipped to -24..24 (49 symbols):
- the short-term model (STM) learns the piece as it unfolds: counts of each interval after each context of
  up to `STM_ORDER` intervals heard so far in the piece; counts carry over from phrase to phrase, contexts do
  not cross a silence;
- the long-term model (LTM) holds the same counts over the Essen folksong collection of music21's corpus,
  the collection IDyOM's own studies train on (`scoring/data/interval_model.json`, built by
  `scripts/build_interval_model.py`; contexts of up to `LTM_ORDER` intervals);
- each model's prediction blends its contexts from the longest down to a uniform floor by PPM's escape
  method C, and the two predictions are combined by entropy weighting (both `scoring.ppm`, shared with the
  chord model).

An arpeggio or a horn call leaps, but its leaps are ones melodies commonly make and they return in a
pattern, so both models soon expect them. Random notes' leaps stay unexpected to both.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import numpy as np

from scoring import ppm
from scoring.errors import ScoringError

INTERVAL_RANGE = 24
"""Intervals beyond two octaves either way count as two octaves."""
SYMBOLS = 2 * INTERVAL_RANGE + 1
STM_ORDER = 3
"""Longest context, in intervals, of the piece's own model."""
LTM_ORDER = 2
"""Longest context, in intervals, of the corpus model."""
INTERVAL_MODEL_VERSION = "ami-intervals/1"
_MODEL_FILE = "data/interval_model.json"

IntervalCounts = dict[tuple[int, ...], np.ndarray]
"""Counts [SYMBOLS] of the next interval symbol (0..48 for -24..24 semitones) after each context of symbols
(the empty context holds every interval)."""


def interval_symbols(pitches: np.ndarray) -> list[int]:
    """The intervals between successive MIDI pitches as symbols 0..48 (-24..24 semitones; wider: clipped)."""
    return (np.clip(np.diff(np.asarray(pitches)), -INTERVAL_RANGE, INTERVAL_RANGE) + INTERVAL_RANGE).tolist()


def _ppm(counts: IntervalCounts, contexts: list[tuple[int, ...]]) -> np.ndarray:
    """One model's prediction: `scoring.ppm.escape_c` over the tables of ``contexts`` it has seen, onto a
    uniform floor."""
    return ppm.escape_c(np.full(SYMBOLS, 1.0 / SYMBOLS), (counts[c] for c in contexts if c in counts))


def count_intervals(melodies: Iterable[np.ndarray], order: int = LTM_ORDER) -> IntervalCounts:
    """Counts of each interval after each context of up to ``order`` intervals within each melody (MIDI
    pitches): the long-term model's table."""
    counts: IntervalCounts = {}
    for pitches in melodies:
        history: list[int] = []
        for x in interval_symbols(pitches):
            for context in ppm.contexts(history, order):
                counts.setdefault(context, np.zeros(SYMBOLS))[x] += 1
            history.append(x)
    return counts


def _model_bytes() -> bytes:
    try:
        return resources.files("scoring").joinpath(_MODEL_FILE).read_bytes()
    except OSError as exc:
        raise ScoringError(f"interval model scoring/{_MODEL_FILE} is missing: {exc}") from exc


@lru_cache(maxsize=1)
def load_interval_model() -> IntervalCounts:
    """The shipped long-term model (`scoring/data/interval_model.json`).

    Raises:
        ScoringError: the file is missing, damaged or of another version.
    """
    try:
        doc = json.loads(_model_bytes())
        if doc.get("version") != INTERVAL_MODEL_VERSION:
            raise ScoringError(
                f"interval model is {doc.get('version')!r}, not {INTERVAL_MODEL_VERSION}; "
                "rerun scripts/build_interval_model.py"
            )
        counts: IntervalCounts = {}
        for context, row in doc["counts"].items():
            key = tuple(int(v) + INTERVAL_RANGE for v in context.split())
            table = counts[key] = np.zeros(SYMBOLS)
            for interval, n in row.items():
                table[int(interval) + INTERVAL_RANGE] = float(n)
    except (ValueError, KeyError, AttributeError, IndexError) as exc:
        raise ScoringError(f"interval model scoring/{_MODEL_FILE} is damaged: {exc}") from exc
    return counts


@lru_cache(maxsize=1)
def interval_model_digest() -> str:
    """``sha256:`` + 16 hex digits of the shipped interval model file (recorded in score versions)."""
    return "sha256:" + hashlib.sha256(_model_bytes()).hexdigest()[:16]


def surprisal(
    phrases: list[np.ndarray], schematic: IntervalCounts | None = None, order: int = STM_ORDER
) -> np.ndarray:
    """Bits of each interval of ``phrases`` (MIDI pitches), phrase after phrase, each predicted from what the
    piece played before it (the short-term model, contexts of up to ``order`` intervals) and, with
    ``schematic`` (a long-term model: `load_interval_model`, `count_intervals`), from the corpus too.

    Returns:
        [sum of len(phrase) - 1] bits, ``-log2 P(interval | what came before)``.
    """
    counts: IntervalCounts = {}
    bits: list[float] = []
    for phrase in phrases:
        history: list[int] = []
        for x in interval_symbols(phrase):
            contexts = ppm.contexts(history, order)
            p = _ppm(counts, contexts)
            if schematic is not None:
                corpus = _ppm(schematic, ppm.contexts(history, LTM_ORDER))
                p = ppm.entropy_weighted(p, corpus, math.log2(SYMBOLS))
            bits.append(-math.log2(float(p[x])))
            for context in contexts:
                counts.setdefault(context, np.zeros(SYMBOLS))[x] += 1
            history.append(x)
    return np.asarray(bits, dtype=np.float64)
