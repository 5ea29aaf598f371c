"""Deterministic synthetic test signals (numpy only): tones, chords, click tracks, noise, clipping,
simple songs.

Used by the scoring tests and the benchmark; every generator is seeded and returns float64 mono in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from scoring._rate import SAMPLE_RATE

MAJOR_PROGRESSION = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))
"""I - IV - V - I as semitone offsets from the tonic."""


def midi_to_hz(note: float) -> float:
    """Frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def sine(
    freq_hz: float, seconds: float, sr: int = SAMPLE_RATE, amp: float = 0.5, phase: float = 0.0
) -> np.ndarray:
    """A pure tone."""
    t = np.arange(int(round(seconds * sr))) / sr
    return amp * np.sin(2 * np.pi * freq_hz * t + phase)


def white_noise(seconds: float, sr: int = SAMPLE_RATE, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with standard deviation `amp`, clipped to [-1, 1]."""
    rng = np.random.default_rng(seed)
    return np.clip(amp * rng.standard_normal(int(round(seconds * sr))), -1.0, 1.0)


def click_track(
    bpm: float, seconds: float, sr: int = SAMPLE_RATE, amp: float = 0.8, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Short Hann-windowed 2 kHz clicks (10 ms) at `bpm`, the first at t = 0, plus optional white noise."""
    n = int(round(seconds * sr))
    out = np.zeros(n)
    length = int(0.01 * sr)
    click = amp * np.hanning(length) * np.sin(2 * np.pi * 2000.0 * np.arange(length) / sr)
    for t in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(round(t * sr))
        j = min(n, i + length)
        out[i:j] += click[: j - i]
    if noise > 0:
        out += white_noise(seconds, sr, noise, seed)[:n]
    return np.clip(out, -1.0, 1.0)


def tone(
    notes: tuple[float, ...],
    seconds: float,
    sr: int = SAMPLE_RATE,
    amp: float = 0.3,
    n_harmonics: int = 4,
    decay_s: float | None = None,
) -> np.ndarray:
    """Harmonic tones (1/h amplitudes) at the given MIDI notes, summed; optional exponential decay."""
    t = np.arange(int(round(seconds * sr))) / sr
    out = np.zeros_like(t)
    for note in notes:
        f0 = midi_to_hz(note)
        for h in range(1, n_harmonics + 1):
            if h * f0 < sr / 2:
                out += np.sin(2 * np.pi * h * f0 * t) / h
    out *= amp / max(len(notes), 1)
    if decay_s is not None:
        out *= np.exp(-t / decay_s)
    return out


def chord_song(
    tonic_midi: float = 60.0,
    bpm: float = 120.0,
    seconds: float = 30.0,
    sr: int = SAMPLE_RATE,
    progression: tuple[tuple[int, ...], ...] = MAJOR_PROGRESSION,
    beats_per_chord: int = 4,
    drums: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """A repeating chord progression: one plucked chord per beat (decaying harmonic tones), a bass note on
    the downbeat and, with `drums`, a noise hi-hat on every beat. Transposing = changing `tonic_midi`;
    changing the tempo = changing `bpm` (the musical content per beat stays the same)."""
    n = int(round(seconds * sr))
    out = np.zeros(n)
    beat = 60.0 / bpm
    rng = np.random.default_rng(seed)
    hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr)) * 0.15
    k = 0
    while k * beat < seconds:
        i = int(round(k * beat * sr))
        chord = progression[(k // beats_per_chord) % len(progression)]
        notes = tuple(tonic_midi + c for c in chord)
        seg = tone(notes, beat, sr, amp=0.4, decay_s=beat / 2)
        if k % beats_per_chord == 0:
            seg = seg + tone((tonic_midi - 24 + chord[0],), beat, sr, amp=0.3, n_harmonics=2, decay_s=beat)
        j = min(n, i + seg.shape[0])
        out[i:j] += seg[: j - i]
        if drums:
            jj = min(n, i + hat.shape[0])
            out[i:jj] += hat[: jj - i]
        k += 1
    return np.clip(out, -1.0, 1.0)


def two_part_song(seconds: float = 40.0, sr: int = SAMPLE_RATE, bpm: float = 120.0) -> np.ndarray:
    """First half a major progression in C with drums, second half a minor progression in F# without:
    one clear structural boundary at seconds / 2."""
    half = seconds / 2
    a = chord_song(60, bpm, half, sr)
    b = chord_song(
        66, bpm, half, sr, progression=((0, 3, 7), (5, 8, 12), (7, 10, 14), (0, 3, 7)), drums=False
    )
    return np.concatenate((a, b))


def clip(x: np.ndarray, gain: float) -> np.ndarray:
    """Hard clipping after a gain: the classic over-driven master."""
    return np.clip(gain * x, -1.0, 1.0)
