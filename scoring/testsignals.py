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


_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 3, 5, 7, 10), (0, 2, 4, 7, 9))


def _place(out: np.ndarray, seg: np.ndarray, at_s: float, sr: int) -> None:
    i = int(round(at_s * sr))
    j = min(out.shape[0], i + seg.shape[0])
    if i < j:
        out[i:j] += seg[: j - i]


def _progression_song(
    rng: np.random.Generator, tonic: float, bpm: float, seconds: float, sr: int
) -> np.ndarray:
    """A random diatonic progression (4 chords of 3 or 4 notes), random timbre, optional bass and hi-hat."""
    scale = _SCALES[int(rng.integers(0, 2))]
    degrees = rng.integers(0, 7, 4)
    size = int(rng.integers(3, 5))
    chords = [tuple(scale[(d + 2 * k) % 7] + 12 * ((d + 2 * k) // 7) for k in range(size)) for d in degrees]
    per_chord = int(rng.integers(1, 5))
    harmonics = int(rng.integers(1, 8))
    decay = float(rng.uniform(0.2, 2.0))
    bass, drums = bool(rng.random() < 0.6), bool(rng.random() < 0.6)
    beat = 60.0 / bpm
    out = np.zeros(int(round(seconds * sr)))
    hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr)) * 0.15
    k = 0
    while k * beat < seconds:
        chord = chords[(k // per_chord) % 4]
        _place(
            out, tone(tuple(tonic + c for c in chord), beat, sr, 0.4, harmonics, beat * decay), k * beat, sr
        )
        if bass and k % per_chord == 0:
            _place(out, tone((tonic - 12 + chord[0],), beat, sr, 0.3, 2, beat), k * beat, sr)
        if drums:
            _place(out, hat, k * beat, sr)
        k += 1
    return out


def _melody_piece(
    rng: np.random.Generator, arpeggio: bool, tonic: float, beat: float, seconds: float, sr: int
) -> np.ndarray:
    """A scale melody (or an arpeggio of a random figure) over a bass note every two beats."""
    scale = _SCALES[int(rng.integers(0, len(_SCALES)))]
    harm = int(rng.integers(1, 7))
    step = beat / (int(rng.integers(2, 5)) if arpeggio else 1)
    cell = rng.permutation(len(scale))[: int(rng.integers(3, len(scale) + 1))]  # the arpeggio's figure
    x = np.zeros(int(round(seconds * sr)))
    k = 0
    while k * step < seconds:
        if arpeggio:
            note = tonic + 12 + scale[int(cell[k % len(cell)])] + 12 * ((k // len(cell)) % 2)
        else:
            note = tonic + 12 + scale[int(rng.integers(0, len(scale)))]
        _place(x, tone((note,), step, sr, 0.5, harm, step * rng.uniform(0.3, 1.5)), k * step, sr)
        k += 1
    for b in np.arange(0.0, seconds, 2 * beat):
        _place(x, tone((tonic - 12 + scale[int(rng.integers(0, 3)) * 2],), 2 * beat, sr, 0.3, 3), b, sr)
    return x


def _groove_piece(
    rng: np.random.Generator, seed: int, tonic: float, bpm: float, seconds: float, sr: int
) -> np.ndarray:
    """A drum groove: clicks, a kick every two beats, tuned toms on a random 16th-note pattern."""
    beat = 60.0 / bpm
    x = click_track(bpm, seconds, sr, amp=0.5, noise=float(rng.uniform(0.0, 0.05)), seed=seed)
    t = np.arange(int(0.15 * sr)) / sr
    kick = 0.8 * np.sin(2 * np.pi * rng.uniform(45.0, 70.0) * t) * np.exp(-t / 0.05)
    for b in np.arange(0.0, seconds, 2 * beat):
        _place(x, kick, b, sr)
    # tuned toms on a random 16th-note pattern, so that grooves differ in pitch and rhythm
    toms = [tonic - 12 + float(d) for d in rng.choice(12, 3, replace=False)]
    pattern = rng.random(16) < 0.35
    for k in range(int(seconds / (beat / 4)) + 1):
        if pattern[k % 16]:
            note = toms[int(rng.integers(0, 3))]
            _place(x, tone((note,), beat / 2, sr, 0.5, 2, beat / 6), k * beat / 4, sr)
    return x


def _pad_piece(rng: np.random.Generator, seed: int, tonic: float, seconds: float, sr: int) -> np.ndarray:
    """One to three sustained chords with a slow swell and a little noise."""
    scale = _SCALES[int(rng.integers(0, 2))]
    x = np.zeros(int(round(seconds * sr)))
    span = seconds / int(rng.integers(1, 4))
    for at in np.arange(0.0, seconds, span):
        degrees = rng.choice(7, int(rng.integers(2, 5)), replace=False)
        chord = tuple(tonic + scale[d] + 12 * int(rng.integers(0, 2)) for d in degrees)
        _place(x, tone(chord, span, sr, 0.5, int(rng.integers(2, 8))), at, sr)
    t = np.arange(x.shape[0]) / sr
    x *= 1 - rng.uniform(0.1, 0.6) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t))
    x += white_noise(seconds, sr, 0.01, seed=seed)[: x.shape[0]]
    return x


def varied_music(count: int, seconds: float = 6.0, sr: int = SAMPLE_RATE, seed: int = 0) -> list[np.ndarray]:
    """``count`` short pieces of varied synthetic music (float64 mono in [-1, 1]), deterministic in ``seed``.

    Eight kinds in turn: random diatonic progressions (two kinds), scale melodies over a bass, arpeggios,
    drum grooves, sustained pads with a slow swell, quieter copies of an earlier piece (duplicates for the
    Chromaprint gate) and transposed or re-tempoed re-renders of the last progression (candidates for the
    derivative gate). Tonic, tempo, scale, chords, timbre (harmonics, decay), gain and some clipping vary at
    random. Used by the agreement perturbation suite (tests/agreement) and bench/agreement.py.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out: list[np.ndarray] = []
    last_song: tuple[int, float, float] = (0, 60.0, 120.0)
    for i in range(count):
        kind = i % 8
        tonic = float(rng.integers(45, 72))
        bpm = float(rng.uniform(70.0, 170.0))
        beat = 60.0 / bpm
        if kind in (0, 1):
            song_seed = int(rng.integers(0, 1 << 30))
            last_song = (song_seed, tonic, bpm)
            x = _progression_song(np.random.default_rng(song_seed), tonic, bpm, seconds, sr)
        elif kind in (2, 3):
            x = _melody_piece(rng, kind == 3, tonic, beat, seconds, sr)
        elif kind == 4:
            x = _groove_piece(rng, i, tonic, bpm, seconds, sr)
        elif kind == 5:
            x = _pad_piece(rng, i, tonic, seconds, sr)
        elif kind == 6:
            x = out[i - 6] * rng.uniform(0.4, 0.9)
        else:
            song_seed, tonic0, bpm0 = last_song
            shift, scale_t = (float(rng.integers(1, 4)), 1.0) if rng.random() < 0.5 else (0.0, 1.05)
            x = _progression_song(
                np.random.default_rng(song_seed), tonic0 + shift, bpm0 * scale_t, seconds, sr
            )
        x = np.asarray(x[:n], dtype=np.float64)
        if x.shape[0] < n:
            x = np.pad(x, (0, n - x.shape[0]))
        if kind != 6:
            x = clip(x, float(rng.uniform(1.5, 3.0))) if rng.random() < 0.1 else x * rng.uniform(0.3, 1.0)
        out.append(np.clip(x, -1.0, 1.0))
    return out
