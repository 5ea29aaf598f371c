"""Melodic motion of a track: how often its clearly heard single melody moves by leap rather than by step,
and how continuously its pitch content moves from beat to beat (voice leading).

Pitch proximity is one of the most robust regularities of melody across cultures (most melodic intervals are
one or two scale steps; Huron, "Sweet Anticipation" 2006, ch. 5; Narmour's implication-realization model),
and one that notes with no musical intent lack: random notes from a two-octave scale leap most of the time.

The measure is taken only where one pitch clearly dominates (monophonic passages, or a melody far above its
accompaniment), so dense polyphony, where no single line can be followed from the spectrum, says little and
the measure stays near its prior:
- the spectrum is folded onto semitones (`scoring.salience`; the bands from MIDI `LOWEST_F0` up are used) and
  pooled to `POOL` hops (46 ms);
- each candidate fundamental f0 (MIDI `LOWEST_F0`..`HIGHEST_F0`) gets a harmonic-sum salience
  ``s(f0) = sum_h a_h P(f0 + o_h)`` over the partials at +0, +12, +19, +24 semitones (`HARMONICS`);
- a frame is a melody frame when it is within `ON_DB` of the loudest frame and its best candidate beats
  `CLEAR_RATIO` times every candidate that is not the same pitch, a neighbour, or one whose partials fall
  on the best one's (`_RELATED`);
- melody frames at most `MAX_GAP_S` apart form a phrase; a pitch held for at least `MIN_NOTE_FRAMES`
  melody frames is a note, and a note that hops to a partial of the one before (a fifth, octave, twelfth or
  two octaves away) and straight back is that note held, not two changes (`_without_flicker`);
- each change of note is a melodic transition; a leap is a transition of `LEAP_SEMITONES` or more;
- ``melodic_leap = (leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)``: the share of leaps, drawn towards the
  prior when there are few transitions to go on;
- a surprising leap (`surprising_leaps`, since model 10) is a leap that costs more than `SURPRISE_BITS` to
  the piece's and the corpus' interval models together (`scoring.intervals`), and ``surprising_leap`` is
  their share, drawn towards the same prior. A repeated arpeggio leaps on most changes but soon expects its
  own leaps; random notes' leaps stay surprising.
"""

from __future__ import annotations

import numpy as np
import torch

from scoring import salience
from scoring.frame_stats import beat_sync

LOWEST_F0 = 48
HIGHEST_F0 = 96
"""Candidate fundamentals, MIDI C3..C7: where melodies are sung and played."""
HARMONICS: tuple[tuple[int, float], ...] = ((0, 1.0), (12, 0.8), (19, 0.6), (24, 0.5))
"""(semitones above f0, weight) of the partials summed into a candidate's salience."""
POOL = 2
ON_DB = 35.0
CLEAR_RATIO = 4.0
MAX_GAP_S = 0.5
MIN_NOTE_FRAMES = 2
"""A pitch must hold for 2 pooled frames (93 ms) to be a note: shorter ones are the spectrum of a held note
flickering between its partials (model 10)."""
FLICKER_SEMITONES = (7, 12, 19, 24)
"""Distances at which a held note's partials lie from it (`HARMONICS`, and the fifth between its second and
third partials): a hop there and straight back is the note held (`_without_flicker`)."""
LEAP_SEMITONES = 5
SURPRISE_BITS = 5.0
"""A leap that costs more than this (of log2 49 = 5.6 bits for a blind guess among the 49 intervals) to the
piece's and the corpus' interval models together is surprising."""
PRIOR = 0.35
"""Share of leaps assumed before any evidence: about the middle of composed music measured here."""
WEIGHT = 60.0
"""How many transitions the prior counts for."""

_N = HIGHEST_F0 - LOWEST_F0 + 1
_OFFSETS = np.abs(np.arange(_N)[:, None] - np.arange(_N)[None, :])
_RELATED = np.isin(_OFFSETS, (0, 1, 5, 7, 12, 19, 24))
"""[best, other]: candidates that may be the same note heard through its partials, or its neighbour. Two
candidates share a partial when they lie a difference of two `HARMONICS` offsets apart: 12, 19 and 24, and
since model 9 also 7 (19 - 12) and 5 (24 - 19). A fifth below a note sums that note's octave partial as its
own twelfth, so a timbre with strong second and third partials (a choir, a clarinet) had made most of its
own frames unclear, and random notes on the clarinet yielded 17 transitions in 60 s."""


def melodic_phrases(semitone_power: np.ndarray, fps: float) -> list[np.ndarray]:
    """The clearly heard melody of a semitone power spectrum [bands, T] (MIDI `salience.BANK_LOW`..
    `salience.BANK_HIGH`) at ``fps`` frames per second, as phrases of notes: MIDI pitches, one per change
    of pitch held `MIN_NOTE_FRAMES` or more, hops to a partial and back read as the note held, split where
    the melody falls silent for more than `MAX_GAP_S` (see the module docstring). Phrases of one note, which
    hold no interval, are left out."""
    return phrases_and_changes(semitone_power, fps)[0]


def note_changes(semitone_power: np.ndarray, fps: float) -> np.ndarray:
    """The STFT frames at which the clearly heard melody (`melodic_phrases`) moves to a new note: the start
    of every note of a phrase but its first, one per melodic transition. [K] int64, ascending."""
    return phrases_and_changes(semitone_power, fps)[1]


def phrases_and_changes(semitone_power: np.ndarray, fps: float) -> tuple[list[np.ndarray], np.ndarray]:
    """`melodic_phrases` and `note_changes` from one pass over the spectrum (the feature pass needs both)."""
    found = _phrases_at(semitone_power, fps)
    starts = [at[1:] for _, at in found]
    changes = np.concatenate(starts) * POOL if starts else np.zeros(0, np.int64)
    return [notes for notes, _ in found], changes


def _phrases_at(semitone_power: np.ndarray, fps: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """`melodic_phrases` with the pooled frame at which each of their notes starts: [(notes, frames)]."""
    p = np.asarray(semitone_power, dtype=np.float64)
    t = (p.shape[1] // POOL) * POOL
    if t == 0:
        return []
    pooled = p[:, :t].reshape(p.shape[0], t // POOL, POOL).mean(axis=2)
    level = 10.0 * np.log10(pooled[LOWEST_F0 - salience.BANK_LOW :].sum(axis=0) + 1e-12)
    on = level > level.max() - ON_DB
    sal = salience.harmonic_salience(pooled, LOWEST_F0, HIGHEST_F0, HARMONICS)  # [F0s, frames]
    best = sal.argmax(axis=0)
    frames = np.arange(sal.shape[1])
    rival = np.where(_RELATED[best].T, 0.0, sal).max(axis=0)
    clear = on & (sal[best, frames] > CLEAR_RATIO * np.maximum(rival, 1e-12))
    where = np.nonzero(clear)[0]
    if where.size < 2:
        return []
    pitch = best[where] + LOWEST_F0
    breaks = np.nonzero(np.diff(where) > int(round(MAX_GAP_S * fps / POOL)))[0] + 1
    phrases = []
    for run, at in zip(np.split(pitch, breaks), np.split(where, breaks), strict=True):
        starts = np.flatnonzero(np.r_[True, np.diff(run) != 0])
        held = np.diff(np.r_[starts, run.size]) >= MIN_NOTE_FRAMES
        notes, onsets = _without_flicker(run[starts][held], at[starts][held])
        if notes.size > 1:
            phrases.append((notes, onsets))
    return phrases


def _without_flicker(pitches: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The notes of a phrase, one per change of pitch, with every hop to a partial and straight back (A B A,
    B `FLICKER_SEMITONES` from A) read as A held. Hops that chain (A B A B A) fold into one A. ``at``: the
    frame each pitch starts at. Returns (notes, the frame each one starts)."""
    out: list[int] = []
    start: list[int] = []
    for p, f in zip(pitches.tolist(), at.tolist(), strict=True):
        if out and out[-1] == p:
            continue
        out.append(int(p))
        start.append(int(f))
        if len(out) >= 3 and out[-1] == out[-3] and abs(out[-2] - out[-1]) in FLICKER_SEMITONES:
            del out[-2:], start[-2:]
    return np.asarray(out, dtype=np.int64), np.asarray(start, dtype=np.int64)


def intervals(phrases: list[np.ndarray]) -> np.ndarray:
    """Every melodic interval of ``phrases``, in semitones with their sign, phrase after phrase (none joins
    two phrases)."""
    return np.concatenate([np.diff(p) for p in phrases]) if phrases else np.zeros(0, np.int64)


def motion_of(phrases: list[np.ndarray]) -> tuple[int, int]:
    """(transitions, leaps) of melodic phrases: every interval, and those of `LEAP_SEMITONES` or more."""
    steps = np.abs(intervals(phrases))
    return int(steps.size), int((steps >= LEAP_SEMITONES).sum())


def surprising_leaps(phrases: list[np.ndarray], bits: np.ndarray) -> int:
    """How many of the phrases' intervals leap (`LEAP_SEMITONES` or more) and cost more than `SURPRISE_BITS`,
    with ``bits`` one per interval in order (`scoring.intervals.surprisal`)."""
    steps = np.abs(intervals(phrases))
    return int(((steps >= LEAP_SEMITONES) & (np.asarray(bits) > SURPRISE_BITS)).sum())


def melodic_leap(transitions: int, leaps: int) -> float:
    """``(leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)``, in [0, 1]."""
    return (leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)


CONTINUITY_VIEWS: tuple[tuple[int, int, float], ...] = (
    (36, 96, 100.0),
    (36, 96, 1000.0),
    (48, 120, 100.0),
    (48, 120, 1000.0),
)
"""(lowest and highest MIDI band, compression c) of the four views `beat_continuity` averages: the
fundamentals' range C2..C7, or C3 up to the top of the bank where melodies' partials lie; and
``log(1 + c p / max p)`` with c = 100 or 1000. Averaging them keeps the measure from hanging on any one
choice of range or floor."""
_CONTINUITY_CHUNK = 256
CONTINUITY_MIN_BEATS = 8
"""Fewer beats than this and a 0.5 s grid stands in for them, as for the structure features."""
CONTINUITY_NEUTRAL = 0.5
"""About the value of material whose beats come in no order; taken where fewer than 4 beats carry signal."""


def _continuity_view(sync: np.ndarray, compression: float, follows: np.ndarray | None = None) -> float:
    """Share, averaged over beats i, of the beats j (not i - 1, i, i + 1) farther from beat i than beat i + 1
    is; the distance is the earth mover's distance along the pitch axis of the compressed, unit-sum spectra.
    Only rows i with ``follows[i]`` (beat i + 1 came right after beat i, no silent beat between) count."""
    v = np.log1p(compression * sync / sync.max())
    v = v / v.sum(axis=1, keepdims=True)
    c = torch.from_numpy(np.cumsum(v, axis=1))
    n = c.shape[0]
    counts = np.zeros(n - 1)
    for r0 in range(0, n - 1, _CONTINUITY_CHUNK):
        rows = np.arange(r0, min(r0 + _CONTINUITY_CHUNK, n - 1))
        # The L1 distance of cumulative sums is the 1-D earth mover's distance, so cdist gives every pair
        # (scipy's cityblock gives the same bits, more slowly). It runs in float64 on the CPU whatever
        # device extracted the features; their ~1e-7 differences move this share only where two
        # distances tie that closely. Row blocks bound the memory of a 15-minute track (2,800 beats) to
        # a few MiB.
        d = torch.cdist(c[r0 : rows[-1] + 1], c, p=1.0).numpy()
        nxt = d[rows - r0, rows + 1]
        farther = (d > nxt[:, None]).sum(axis=1)
        # Beat i itself (distance 0) and beat i + 1 are never farther; beat i - 1 may be and is no "other".
        prev = np.zeros(rows.size, dtype=bool)
        has_prev = rows >= 1
        prev[has_prev] = d[(rows - r0)[has_prev], rows[has_prev] - 1] > nxt[has_prev]
        counts[rows] = farther - prev
    others = np.where(np.arange(n - 1) >= 1, n - 3, n - 2)
    share = counts / others
    if follows is not None:
        share = share[follows]
    return float(np.mean(share)) if share.size else CONTINUITY_NEUTRAL


def beat_continuity(semitone_power: np.ndarray, beat_frames: np.ndarray, fps: float) -> float:
    """How much nearer each beat's pitch content lies to the next beat's than to the piece's other beats.

    Composed music moves from beat to beat by small steps (voice leading: most voices hold or move by a
    step, Huron 2001, "Tone and voice"), so a beat's successor is nearer than most other beats (0.7..0.8
    measured on composed music); a piece cut into beat slices and put in a random order, or random notes,
    joins unrelated beats, whose successor is no nearer than any other beat (about 0.5). Ranks, not
    distances, are compared, so timbres that make every beat alike (a clarinet's odd partials, a choir)
    keep their ordering.

    The semitone power [`salience.BANK_HIGH` - `salience.BANK_LOW` + 1, T] at ``fps`` frames per second is
    averaged over each beat (frames ``beat_frames``; a 0.5 s grid with fewer than `CONTINUITY_MIN_BEATS`),
    and `_continuity_view` is averaged over `CONTINUITY_VIEWS`; in each view, beats under 1e-4 of the
    loudest are left out, and a view with fewer than 4 beats left counts as `CONTINUITY_NEUTRAL`.
    """
    p = np.asarray(semitone_power, dtype=np.float64)
    n_frames = p.shape[1]
    beats = np.asarray(beat_frames, dtype=np.int64)
    beats = beats[(beats >= 0) & (beats < n_frames)]
    if beats.size < CONTINUITY_MIN_BEATS:
        beats = np.arange(0, n_frames, max(1, int(0.5 * fps)))
    beats = np.unique(beats)
    if beats.size < 5:
        return CONTINUITY_NEUTRAL
    # Whole beats only: beat_sync's last column runs from the last beat to the end of the track.
    sync = beat_sync(p, beats)[:, :-1].T
    views = []
    for low, high, compression in CONTINUITY_VIEWS:
        part = sync[:, low - salience.BANK_LOW : high - salience.BANK_LOW + 1]
        energy = part.sum(axis=1)
        keep = np.nonzero(energy > energy.max() * 1e-4)[0] if energy.max() > 0 else np.zeros(0, np.int64)
        # Across a silent beat there is no voice leading to judge: the beats on either side of a rest
        # are not each other's successors.
        follows = np.diff(keep) == 1
        usable = keep.size >= 4 and follows.any()
        views.append(_continuity_view(part[keep], compression, follows) if usable else CONTINUITY_NEUTRAL)
    return float(np.mean(views))
