"""Pitch salience from a semitone spectrum: harmonic sums that weigh notes rather than partials.

A plain chromagram folds every partial onto its pitch class, so the same chord on a piano (strong low
partials, fast decay) and on strings (rich upper partials, sustained) gives different pitch-class profiles.
Summing each candidate fundamental's partials first (Klapuri 2006; the harmonic weighting of Gomez's HPCP,
2006) moves the energy of a note's partials onto the note, so the profile depends less on who plays it. The
derivative gate aligns these profiles (`scoring.features.TrackFeatures.chroma_steps`); `scoring.melody`
follows the clearly heard melody through the same sums.

The gate keeps two registers apart: fundamentals below middle C (the bass line) and from middle C up (the
upper voices and the melody). Two pieces of one style share their pitch-class content but rarely how it
is spread between bass and treble, while the same piece on another instrument keeps its notes where
they are; so the registers separate distinct works of one style better than one fold over every octave, and
an instrument's strong upper partials (a clarinet's twelfth) weigh less against the notes.

The semitone spectrum spans MIDI `BANK_LOW`..`BANK_HIGH` (A1..C9, 55 Hz..8.4 kHz at 22,050 Hz): the lowest
fundamental of a cello or a bass line, and the fourth partial of the highest candidate.
"""

from __future__ import annotations

import numpy as np

BANK_LOW = 33
BANK_HIGH = 120
GATE_F0_LOW = 36
GATE_F0_HIGH = 96
"""Fundamentals the gate's pitch-class profiles count: MIDI C2..C7."""
GATE_REGISTERS: tuple[tuple[int, int], ...] = ((GATE_F0_LOW, 59), (60, GATE_F0_HIGH))
"""(lowest, highest) fundamental, MIDI, of each register the gate folds on its own: bass C2..B3, treble
C4..C7."""
GATE_WIDTH = 12 * len(GATE_REGISTERS)
"""Values per gate step: 12 pitch classes per register, bass first."""
GATE_HARMONICS: tuple[tuple[int, float], ...] = ((0, 1.0), (12, 1 / 2), (19, 1 / 3), (24, 1 / 4))
"""(semitones above f0, weight) of the partials summed for the gate: the first four, weighted 1/h."""


def harmonic_salience(
    semitone_power: np.ndarray, f0_low: int, f0_high: int, harmonics: tuple[tuple[int, float], ...]
) -> np.ndarray:
    """``s(f0, t) = sum_h a_h P(f0 + o_h, t)`` for f0 = ``f0_low``..``f0_high`` (MIDI) from a semitone power
    spectrum [`BANK_HIGH` - `BANK_LOW` + 1, T]; partials above the bank are left out. Returns [F0s, T]."""
    p = np.asarray(semitone_power, dtype=np.float64)
    n = f0_high - f0_low + 1
    base = f0_low - BANK_LOW
    out = np.zeros((n, p.shape[1]))
    for offset, weight in harmonics:
        rows = p[base + offset : base + offset + n]
        out[: rows.shape[0]] += weight * rows
    return out


def _gate_matrix() -> np.ndarray:
    """[`GATE_WIDTH`, bands]: `harmonic_salience` with the gate's partials, then the fold over the octaves of
    each of `GATE_REGISTERS`, as one linear map of the semitone spectrum (both steps are linear, so one
    product does them)."""
    bands = BANK_HIGH - BANK_LOW + 1
    sal = harmonic_salience(np.eye(bands), GATE_F0_LOW, GATE_F0_HIGH, GATE_HARMONICS)  # [F0s, bands]
    f0 = GATE_F0_LOW + np.arange(sal.shape[0])
    fold = np.zeros((GATE_WIDTH, sal.shape[0]))
    for r, (low, high) in enumerate(GATE_REGISTERS):
        inside = (f0 >= low) & (f0 <= high)
        fold[12 * r + f0[inside] % 12, np.flatnonzero(inside)] = 1.0
    return fold @ sal


_GATE = _gate_matrix()


def register_chroma(semitone_power: np.ndarray) -> np.ndarray:
    """Pitch-class profiles per frame [`GATE_WIDTH`, T] of the gate's harmonic salience, folded over the
    octaves of each register: rows 0..11 the bass (row 0 = C), 12..23 the treble."""
    return _GATE @ np.asarray(semitone_power, dtype=np.float64)


def salience_chroma(semitone_power: np.ndarray) -> np.ndarray:
    """Pitch-class profile per frame [12, T] (row 0 = C) of the harmonic salience over every gate
    fundamental: the registers of `register_chroma` summed."""
    reg = register_chroma(semitone_power)
    return reg.reshape(len(GATE_REGISTERS), 12, -1).sum(axis=0)
