"""Derivative gate: is a track the same composition as a catalogued one, in another key, tempo,
instrumentation, or as an excerpt? Cover-song matching on chroma steps, plus an inverted index of harmony
landmarks.

Matching (in the spirit of cover-song identification, Serra et al. 2008; Ellis & Poliner 2007):
- both tracks' pitch-class steps (`scoring.features.TrackFeatures.chroma_steps`, made by `gate_steps`: the
  harmonic salience of `scoring.salience`, which weighs notes rather than partials, folded to pitch
  classes in a bass and a treble register) are smoothed over ~1 s, pooled to 0.46 s steps, mean-centred
  per track (what every piece in a key shares is removed, so only the specific progression is compared)
  and unit-normalised; timbre is absent from the profile, so another instrumentation matches;
- key: all 12 transpositions are tried at once (a circular cross-correlation over pitch classes; estimating
  the key from the profiles alone misleads when an instrument flattens the profile);
- tempo: the query is resampled in time by every factor of `TEMPO_FACTORS` (0.78..1.28, 5 % apart);
- excerpt: every diagonal of the cross-similarity matrix is scanned with a window of `WINDOW_S` seconds (or
  the shorter track's length when that is shorter), so a 15 s excerpt from anywhere is found;
- window and threshold: a longer window tells distinct works of one style apart far better (two chorales or
  two mass movements share cadences and progressions for 15 s, seldom for 30 s) while an instrument change
  lowers a true match's mean cosine only a little, so the threshold falls with the window
  (`threshold`: `THRESHOLD` up to `SHORT_WINDOW_S`, `LONG_THRESHOLD` at `WINDOW_S`);
- registers: a step holds one pitch-class profile per register (`scoring.salience.GATE_REGISTERS`), each
  unit-normalised and scaled by 1/sqrt(registers), so the cosine of two steps is the mean of the
  registers' cosines; the same transposition applies to every register;
- motion: a window's mean cosine also counts what the two windows share on average, and distinct pieces can
  share an average sonority (a drone, a pad, one voicing held through a section) with none of its motion;
  so the best window's `change_correlation` (each window minus its own mean step, then correlated) must
  reach `CHANGE_THRESHOLD` as well. The same progression on any instrument reads 0.5 or more there,
  pieces matched through their sound alone 0.1 or less (docs/scoring.md);
- the match score is the best window's mean cosine similarity; a derivative is a score >= `threshold` of its
  window with a change correlation >= `CHANGE_THRESHOLD`, and the best match is the one with the largest
  margin (the smaller of the two differences).

Candidates (`LandmarkIndex`): every catalogued track's harmony landmarks, i.e. hashed runs of
`LANDMARK_LENGTH` key-invariant chord changes (`scoring.structure.transition_token`), go into an inverted
index;
a query's candidates are the tracks sharing the most landmarks (idf-weighted), together with its nearest
neighbours by structural embedding. Both are tempo- and key-invariant, so true matches are not lost.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from scoring import salience, structure

DERIVATIVE_VERSION = "ami-derivative/5"
"""2: the steps are pitch-class profiles of the harmonic salience (`scoring.salience`), not a chromagram;
3: one profile per register (bass, treble); 4: a 30 s window with a threshold that falls with the window;
5: the window must also share the motion (`change_correlation` >= `CHANGE_THRESHOLD`)."""
THRESHOLD = 0.62
"""Window mean cosine similarity at or above which two tracks share a composition, for windows up to
`SHORT_WINDOW_S` (see docs/scoring.md)."""
SHORT_WINDOW_S = 15.0
WINDOW_S = 30.0
LONG_THRESHOLD = 0.54
"""The threshold of a `WINDOW_S` window (bench/gate_training.py: at 30 s, 5 of 159 same-composition pairs
fall under it and 4 of 4005 pairs of distinct Palestrina movements reach it; at 15 s and `THRESHOLD`, 11 and
66)."""
CHANGE_THRESHOLD = 0.3
"""The `change_correlation` at or above which a window that reaches its score threshold is a match."""
MIN_WINDOW_S = 8.0
"""Tracks shorter than this are never called derivatives (too little to judge)."""
SMOOTH_STEPS = 4
POOL = 2
TEMPO_FACTORS: tuple[float, ...] = tuple(1.05**k for k in range(-5, 6))
LANDMARK_LENGTH = 3
LANDMARK_CANDIDATES = 20
STOP_SHARE = 0.2
"""A landmark held by more than this share of a large index is too common to point at anything."""


def gate_steps(semitone_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A semitone spectrum [bands, T] (`scoring.salience.BANK_LOW`..`BANK_HIGH`) -> the gate's steps
    [N, `scoring.salience.GATE_WIDTH`] and which steps are voiced [N].

    Each register of `scoring.salience.register_chroma` becomes `scoring.structure.chroma_steps` of that
    register alone (log-compressed relative to its own strongest class, unit norm), scaled by 1/sqrt(R) so a
    step is a unit vector; a step is voiced by the summed profile's energy.
    """
    p = salience.register_chroma(semitone_power)
    regs = p.shape[0] // 12
    blocks = [structure.chroma_steps(p[12 * r : 12 * r + 12])[0] for r in range(regs)]
    _, voiced = structure.chroma_steps(p.reshape(regs, 12, -1).sum(axis=0))
    return np.hstack(blocks) / math.sqrt(regs), voiced


def _unit_registers(x: np.ndarray) -> np.ndarray:
    """Rows [n, 12 R] with each register's 12 values unit-normalised and scaled by 1/sqrt(R) (all-zero blocks
    stay zero), so a row's dot product with another is the mean of the registers' cosines."""
    regs = x.shape[1] // 12
    blocks = x.reshape(x.shape[0], regs, 12)
    norm = np.linalg.norm(blocks, axis=2, keepdims=True)
    unit = np.where(norm > 1e-9, blocks / np.where(norm > 1e-9, norm, 1.0), 0.0)
    return unit.reshape(x.shape) / math.sqrt(regs)


def _width(steps: np.ndarray) -> int:
    x = np.asarray(steps)
    width = x.shape[-1] if x.ndim == 2 else 12
    if width % 12 or width == 0:
        raise ValueError(f"gate steps hold {width} values per step; a multiple of 12 is required")
    return width


def prepare(steps: np.ndarray) -> np.ndarray:
    """Gate steps [n, 12 R] -> matching sequence [m, 12 R]: ~1 s moving average, pooled by `POOL`,
    mean-centred, each register unit-normalised and scaled by 1/sqrt(R) (all-zero blocks stay zero)."""
    width = _width(steps)
    x = np.asarray(steps, dtype=np.float64).reshape(-1, width)
    if x.shape[0] == 0:
        return x
    c = np.concatenate((np.zeros((1, width)), np.cumsum(x, axis=0)))
    k = min(SMOOTH_STEPS, x.shape[0])
    sm = (c[k:] - c[:-k]) / k
    m = sm.shape[0] // POOL
    pooled = sm[: m * POOL].reshape(m, POOL, width).mean(axis=1) if m else sm.mean(axis=0, keepdims=True)
    return _unit_registers(pooled - pooled.mean(axis=0))


def _step_seconds() -> float:
    return structure.STEP_FRAMES * 512 / 22050.0 * POOL


def _resample(x: np.ndarray, factor: float) -> np.ndarray:
    """Time-scale a sequence by ``factor`` (> 1: longer) with linear interpolation; rows re-normalised."""
    n = x.shape[0]
    m = max(1, int(round(n * factor)))
    pos = np.arange(m) / factor
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = (pos - i0)[:, None]
    return _unit_registers((1.0 - w) * x[i0] + w * x[i1])


def _window_sums(q: np.ndarray, r: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Sums of ``w`` consecutive diagonal entries of the cross-similarity ``S_k[i, j] = sum_b sum_p
    q_i[b, (p + k) mod 12] r_j[b, p]`` (query k semitones above the reference, the same k in every register
    b), for every transposition k at once: the diagonals' offsets (reference index minus query index) and
    [offsets, query start, 12] sums, -inf where the window leaves either track; None when none fits.

    All 12 transpositions come from one circular cross-correlation along the pitch-class axis (an FFT over the
    12 classes), so trying every key costs about as much as trying one.
    """
    nq, nr = q.shape[0], r.shape[0]
    fq = np.fft.rfft(q.reshape(nq, -1, 12), axis=2)  # [nq, R, 7]
    fr = np.conj(np.fft.rfft(r.reshape(nr, -1, 12), axis=2))
    s = np.fft.irfft(np.einsum("ibf,jbf->ijf", fq, fr), n=12)
    offsets = np.arange(-(nq - w), nr - w + 1)
    if offsets.size == 0:
        return None
    i = np.arange(nq)
    j = i[None, :] + offsets[:, None]
    valid = (j >= 0) & (j < nr)
    vals = np.where(valid[..., None], s[i[None, :], np.clip(j, 0, nr - 1)], 0.0)  # [offsets, nq, 12]
    c = np.concatenate((np.zeros((offsets.size, 1, 12)), np.cumsum(vals, axis=1)), axis=1)
    cv = np.concatenate((np.zeros((offsets.size, 1)), np.cumsum(valid, axis=1)), axis=1)
    sums = c[:, w:] - c[:, :-w]
    full = ((cv[:, w:] - cv[:, :-w]) == w)[..., None]
    if not full.any():
        return None
    return offsets, np.where(full, sums, -np.inf)


def threshold(window_s: float) -> float:
    """The score at or above which a window of ``window_s`` seconds is a match: `THRESHOLD` up to
    `SHORT_WINDOW_S`, `LONG_THRESHOLD` from `WINDOW_S`, linear in between."""
    t = min(max((window_s - SHORT_WINDOW_S) / (WINDOW_S - SHORT_WINDOW_S), 0.0), 1.0)
    return THRESHOLD + t * (LONG_THRESHOLD - THRESHOLD)


@dataclass(frozen=True)
class Match:
    """Best alignment of a query with a reference: score (window mean cosine), shift (semitones the query
    sits above the reference, mod 12), tempo factor applied to the query, the window length in seconds, and
    the window's `change_correlation`."""

    score: float
    shift: int
    tempo: float
    window_s: float
    change: float

    @property
    def threshold(self) -> float:
        """The threshold of this match's window (the module's `threshold`)."""
        return threshold(self.window_s)

    @property
    def margin(self) -> float:
        """The smaller of score minus threshold and change minus `CHANGE_THRESHOLD`: >= 0 is a match."""
        return min(self.score - self.threshold, self.change - CHANGE_THRESHOLD)

    @property
    def is_match(self) -> bool:
        return self.margin >= 0.0


def _best_start(table: np.ndarray, shift: int) -> tuple[int, int]:
    """(diagonal index, query start) of the largest window sum at transposition ``shift`` in a
    `_window_sums` table (the first in row-major order on ties)."""
    o, start = np.unravel_index(int(np.argmax(table[:, :, shift])), table.shape[:2])
    return int(o), int(start)


def change_correlation(q_window: np.ndarray, r_window: np.ndarray, shift: int) -> float:
    """Correlation of two aligned windows' motion: the query window [w, 12 R] taken down ``shift`` semitones
    in every register, each window minus its own mean step, then the cosine of the two (0.0 when either
    window never changes). Two windows that share only an average sonority read near 0; the same
    progression reads high whatever the instruments."""
    w = q_window.shape[0]
    q = np.roll(q_window.reshape(w, -1, 12), -shift, axis=2).reshape(w, -1)
    found = centred_cosine(q, r_window)
    return 0.0 if found is None else found


def centred_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine of two equally shaped sequences [frames, values] after each value's mean over its own
    sequence is removed: what moves together, with what each holds throughout left out. None when either
    never changes."""
    ac = a - a.mean(axis=0)
    bc = b - b.mean(axis=0)
    den = math.sqrt(float(np.sum(ac * ac)) * float(np.sum(bc * bc)))
    return float(np.sum(ac * bc)) / den if den > 1e-12 else None


def match(query_steps: np.ndarray, ref_steps: np.ndarray, window_s: float = WINDOW_S) -> Match:
    """Best `Match` of two tracks' gate steps (`gate_steps`; plain [n, 12] chroma steps work too) over every
    transposition, the tempo grid and every offset: per tempo factor the window of the largest mean cosine,
    with its `change_correlation`; over the factors the one with the largest `Match.margin` (the window,
    `WINDOW_S` or the shorter track, depends on the tempo factor).

    Tracks with less than `MIN_WINDOW_S` of material never match (score -1). ``window_s`` other than
    `WINDOW_S` is for calibration (bench/gate_training.py); 15 s gives the gate of ami-derivative/3.

    Raises:
        ValueError: the two tracks' steps differ in width (made by different gate versions).
    """
    if _width(query_steps) != _width(ref_steps):
        raise ValueError(
            f"gate steps of width {_width(query_steps)} and {_width(ref_steps)} cannot be compared"
        )
    q0, r = prepare(query_steps), prepare(ref_steps)
    dt = _step_seconds()
    best = Match(-1.0, 0, 1.0, 0.0, 0.0)
    if min(q0.shape[0], r.shape[0]) * dt < MIN_WINDOW_S:
        return best
    for factor in TEMPO_FACTORS:
        q = _resample(q0, factor)
        w = int(round(min(window_s / dt, q.shape[0], r.shape[0])))
        if w * dt < MIN_WINDOW_S:
            continue
        found = _window_sums(q, r, w)
        if found is None:
            continue
        offsets, table = found
        scores = np.max(table, axis=(0, 1)) / w
        k = int(np.argmax(scores))
        o, start = _best_start(table, k)
        ref_start = start + int(offsets[o])
        change = change_correlation(q[start : start + w], r[ref_start : ref_start + w], k)
        cand = Match(float(scores[k]), k, factor, w * dt, change)
        if cand.margin > best.margin:
            best = cand
    return best


@dataclass(frozen=True)
class Alignment:
    """Where a `Match` lies: its window's start and end in each track's own seconds (to within a step of
    0.46 s and the ~1 s smoothing), so a listener can hear the two passages the gate compared."""

    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float


def locate(query_steps: np.ndarray, ref_steps: np.ndarray, found: Match) -> Alignment:
    """The window of ``found`` (the `match` of these two tracks' steps): at its shift and tempo, the diagonal
    and start whose mean cosine is the largest, with the query's times taken back through its tempo factor.

    Raises:
        ValueError: ``found`` is no alignment of these steps (score -1: too short to compare).
    """
    if found.window_s <= 0.0:
        raise ValueError("the tracks were too short to compare, so no window was matched")
    q = _resample(prepare(query_steps), found.tempo)
    r = prepare(ref_steps)
    dt = _step_seconds()
    w = int(round(found.window_s / dt))
    sums = _window_sums(q, r, w)
    if sums is None:
        raise ValueError(f"no window of {found.window_s:.1f} s fits these steps; pass their own match")
    offsets, table = sums
    o, start = _best_start(table, found.shift)
    ref_start = start + int(offsets[o])
    return Alignment(
        round(start * dt / found.tempo, 2),
        round((start + w) * dt / found.tempo, 2),
        round(ref_start * dt, 2),
        round((ref_start + w) * dt, 2),
    )


def landmarks(steps: np.ndarray, voiced: np.ndarray | None = None) -> list[int]:
    """Harmony landmarks of a track: 64-bit hashes of every run of `LANDMARK_LENGTH` consecutive
    key-invariant chord changes (sorted, unique), from the gate steps with their registers summed. Tempo
    does not change the chord events, so neither does it change these."""
    width = _width(steps)
    x = np.asarray(steps, dtype=np.float64).reshape(-1, width // 12, 12).sum(axis=1)
    v = np.ones(x.shape[0], bool) if voiced is None else np.asarray(voiced, bool)
    labels, _ = structure.chord_events(x, v)
    toks = [structure.transition_token(a, b) for a, b in zip(labels[:-1], labels[1:], strict=True)]
    out = set()
    for i in range(len(toks) - LANDMARK_LENGTH + 1):
        key = ">".join(toks[i : i + LANDMARK_LENGTH]).encode()
        out.add(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little"))
    return sorted(out)


class LandmarkIndex:
    """Inverted index: landmark hash -> catalogue positions holding it."""

    def __init__(self) -> None:
        self._postings: dict[int, list[int]] = defaultdict(list)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, position: int, marks: Iterable[int]) -> None:
        """Index the landmarks of the entry at catalogue ``position`` (positions are added in order)."""
        for h in marks:
            self._postings[h].append(position)
        self._count = max(self._count, position + 1)

    def candidates(self, marks: Sequence[int], limit: int = LANDMARK_CANDIDATES) -> list[int]:
        """Positions sharing the most landmarks with ``marks`` (idf-weighted: ``sum log(1 + N / df)``),
        best first, ties by position; landmarks held by more than `STOP_SHARE` of an index of 50+ entries are
        skipped."""
        n = max(self._count, 1)
        score: dict[int, float] = defaultdict(float)
        for h in set(marks):
            post = self._postings.get(h)
            if not post:
                continue
            if n >= 50 and len(post) > STOP_SHARE * n:
                continue
            idf = math.log(1.0 + n / len(post))
            for pos in post:
                score[pos] += idf
        ranked = sorted(score.items(), key=lambda t: (-t[1], t[0]))
        return [p for p, _ in ranked[:limit]]
