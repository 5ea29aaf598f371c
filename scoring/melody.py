"""Melodic motion of a track: how often its clearly heard single melody moves by leap rather than by step.

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
- a frame is a melody frame when it is within `ON_DB` of the loudest frame and its best candidate beats every
  candidate that is not the same pitch, a neighbour or a harmonic/subharmonic of it `CLEAR_RATIO` times;
- consecutive melody frames at most `MAX_GAP_S` apart whose pitches differ are one melodic transition; a leap
  is a transition of `LEAP_SEMITONES` or more;
- ``melodic_leap = (leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)``: the share of leaps, drawn towards the
  prior when there are few transitions to go on.
"""

from __future__ import annotations

import numpy as np

from scoring import salience

LOWEST_F0 = 48
HIGHEST_F0 = 96
"""Candidate fundamentals, MIDI C3..C7: where melodies are sung and played."""
HARMONICS: tuple[tuple[int, float], ...] = ((0, 1.0), (12, 0.8), (19, 0.6), (24, 0.5))
"""(semitones above f0, weight) of the partials summed into a candidate's salience."""
POOL = 2
ON_DB = 35.0
CLEAR_RATIO = 4.0
MAX_GAP_S = 0.5
LEAP_SEMITONES = 5
PRIOR = 0.35
"""Share of leaps assumed before any evidence: about the middle of composed music measured here."""
WEIGHT = 60.0
"""How many transitions the prior counts for."""

_N = HIGHEST_F0 - LOWEST_F0 + 1
_OFFSETS = np.abs(np.arange(_N)[:, None] - np.arange(_N)[None, :])
_RELATED = np.isin(_OFFSETS, (0, 1, 12, 19, 24))
"""[best, other]: candidates that may be the same note heard through its partials, or its neighbour."""


def melodic_motion(semitone_power: np.ndarray, fps: float) -> tuple[int, int]:
    """(transitions, leaps) of the clearly heard melody of a semitone power spectrum [bands, T] (MIDI
    `salience.BANK_LOW`..`salience.BANK_HIGH`) at ``fps`` frames per second (see the module docstring)."""
    p = np.asarray(semitone_power, dtype=np.float64)
    t = (p.shape[1] // POOL) * POOL
    if t == 0:
        return 0, 0
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
        return 0, 0
    pitch = best[where]
    close = np.diff(where) <= int(round(MAX_GAP_S * fps / POOL))
    steps = np.abs(np.diff(pitch))
    moved = close & (steps > 0)
    return int(moved.sum()), int((moved & (steps >= LEAP_SEMITONES)).sum())


def melodic_leap(transitions: int, leaps: int) -> float:
    """``(leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)``, in [0, 1]."""
    return (leaps + PRIOR * WEIGHT) / (transitions + WEIGHT)
