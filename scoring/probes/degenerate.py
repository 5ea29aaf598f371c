"""Degenerate probe sets: loops, shuffled slices, random notes, tones, noise, and short or padded clips (music
without intent)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import signal

from scoring.probes.cache import ProbeCache
from scoring.probes.instruments import CHOIR, CLARINET, FLUTE, GUITAR, ORGAN, PIANO, STRINGS, VIBES
from scoring.probes.probe import SR, Probe, ProbeUnavailable
from scoring.probes.renders import REAL_WORKS, render_notes, render_work
from scoring.probes.soundtracks import SOUNDTRACKS, soundtrack_excerpt
from scoring.testsignals import sine, tone, white_noise

_FADE = 64  # samples (~3 ms) of raised-cosine fade at every cut, so cuts do not add clicks of their own


def _fade(pcm: np.ndarray, n: int = _FADE) -> np.ndarray:
    out = np.array(pcm, dtype=np.float32, copy=True)
    n = min(n, len(out) // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float64))).astype(np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def loop_audio(pcm: np.ndarray, start_s: float, loop_s: float, seconds: float) -> np.ndarray:
    """``pcm[start_s : start_s + loop_s]`` repeated back to back for ``seconds`` (edges faded by 3 ms)."""
    a = int(round(start_s * SR))
    n = int(round(loop_s * SR))
    if n <= 2 * _FADE or a + n > len(pcm):
        raise ValueError(f"loop {start_s}+{loop_s} s does not fit a {len(pcm) / SR:.1f} s source")
    unit = _fade(pcm[a : a + n])
    total = int(round(seconds * SR))
    return np.tile(unit, -(-total // n))[:total]


def shuffle_slices(
    pcm: np.ndarray, slice_s: float | tuple[float, float], seed: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The source cut into slices that are then put back in a random order.

    Args:
        pcm: source samples.
        slice_s: a fixed slice length in seconds (e.g. one beat), or (low, high) for random lengths.
        seed: RNG seed.

    Returns:
        (shuffled samples, the (start, end) sample ranges of the source in their new order). Every slice is
        faded in and out over 3 ms; the shuffled signal has the source's length (the tail shorter than a
        slice is dropped).
    """
    rng = np.random.default_rng(seed)
    bounds: list[tuple[int, int]] = []
    pos = 0
    while True:
        length = slice_s if isinstance(slice_s, (int, float)) else float(rng.uniform(slice_s[0], slice_s[1]))
        n = max(int(round(length * SR)), 4 * _FADE)
        if pos + n > len(pcm):
            break
        bounds.append((pos, pos + n))
        pos += n
    order = rng.permutation(len(bounds))
    new = [bounds[i] for i in order]
    return np.concatenate([_fade(pcm[a:b]) for a, b in new]), new


def random_notes(
    seconds: float,
    program: int,
    seed: int,
    *,
    qpm: float = 110.0,
    soundfont: str = "fluid",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Random pitches on a C-major scale grid (two octaves from C4), random eighth/quarter/half durations,
    one in six notes doubled a third below, rendered on GM ``program``: notes with no musical intent."""
    rng = np.random.default_rng(seed)
    scale = [60 + s for s in (0, 2, 4, 5, 7, 9, 11)] + [72 + s for s in (0, 2, 4, 5, 7, 9, 11, 12)]
    notes: list[tuple[tuple[int, ...], float]] = []
    total_q = seconds * qpm / 60.0 + 4.0
    t = 0.0
    while t < total_q:
        i = int(rng.integers(len(scale)))
        dur = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        pitches = (scale[i], scale[max(i - 2, 0)]) if rng.random() < 1 / 6 else (scale[i],)
        notes.append((pitches, dur))
        t += dur
    return render_notes(
        notes, qpm, program, seconds, soundfont=soundfont, name=f"random.{program}.{seed}", cache=cache
    )


def two_chord_loop(
    seconds: float,
    program: int,
    *,
    chords: tuple[tuple[int, ...], ...] = ((48, 60, 64, 67), (43, 59, 62, 67)),
    qpm: float = 100.0,
    soundfont: str = "fluid",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Two chords (default C major, G major), one bar of four beats each, repeated for ``seconds``."""
    bars = int(math.ceil(seconds * qpm / 60.0 / 4.0)) + 1
    notes = [(chords[b % len(chords)], 4.0) for b in range(bars)]
    return render_notes(
        notes, qpm, program, seconds, soundfont=soundfont, name=f"loop2.{program}", cache=cache
    )


def _pink_like(seconds: float, exponent: float, seed: int) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), shaped in the frequency domain."""
    n = int(round(seconds * SR))
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / np.max(np.abs(x)) * 10 ** (-1.0 / 20.0)


def tone_probes(seconds: float = 30.0) -> list[Probe]:
    """Tones: a 440 Hz sine, a logarithmic 100 Hz..5 kHz sweep, a held C-major chord (harmonic tones), and a
    held A-minor chord with slow tremolo. Peak -1 dBFS."""
    t = np.arange(int(round(seconds * SR))) / SR
    peak = 10 ** (-1.0 / 20.0)
    items = {
        "sine440": sine(440.0, seconds),
        "sweep": signal.chirp(t, 100.0, seconds, 5000.0, method="logarithmic"),
        "chord_cmaj": tone((60.0, 64.0, 67.0), seconds, n_harmonics=6),
        "chord_amin_tremolo": tone((57.0, 60.0, 64.0), seconds, n_harmonics=6)
        * (1 + 0.3 * np.sin(2 * np.pi * 4 * t)),
    }
    out = []
    for name, x in items.items():
        pcm = (np.asarray(x) / np.max(np.abs(x)) * peak).astype(np.float32)
        out.append(Probe(f"degenerate/tones/{name}", "degenerate", "tones", pcm, meta={"signal": name}))
    return out


def noise_probes(seconds: float = 30.0, seed: int = 7) -> list[Probe]:
    """White, pink (1/f) and brown (1/f^2) noise, plus white noise at a lower level. Peak -1 dBFS."""
    out = []
    for name, expo in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        pcm = _pink_like(seconds, expo, seed).astype(np.float32)
        out.append(Probe(f"degenerate/noise/{name}", "degenerate", "noise", pcm, meta={"exponent": expo}))
    quiet = white_noise(seconds, amp=0.05, seed=seed + 1).astype(np.float32)
    out.append(Probe("degenerate/noise/white_quiet", "degenerate", "noise", quiet, meta={"exponent": 0.0}))
    return out


_PROGRAMS = (PIANO, ORGAN, STRINGS, FLUTE, GUITAR, VIBES, CLARINET, CHOIR)
"""The GM programs the degenerate renders cycle through."""


def _loop_probe(i: int, seconds: float, cache: ProbeCache | str | Path | None) -> Probe:
    """Loop ``i``: for even ``i`` a 2-chord loop on a GM program, for odd ``i`` 1, 2 or 4 bars of a real
    render repeated; ``seconds`` long."""
    if i % 2 == 0:
        prog = _PROGRAMS[(i // 2) % len(_PROGRAMS)]
        pcm = two_chord_loop(seconds, prog, cache=cache)
        return Probe(
            f"degenerate/loops/2chord.{prog}",
            "degenerate",
            "loops",
            pcm,
            meta={"kind": "2-chord", "program": prog},
        )
    work = REAL_WORKS[(i // 2) % len(REAL_WORKS)]
    src = render_work(work, 30.0, cache=cache)
    bars = (1, 2, 4)[(i // 2) % 3]
    bar_s = work.beats_per_bar * 60.0 / work.qpm
    pcm = loop_audio(src, 2 * bar_s, bars * bar_s, seconds)
    return Probe(
        f"degenerate/loops/{work.name}.{bars}bar",
        "degenerate",
        "loops",
        pcm,
        source=f"real/{work.name}",
        meta={"kind": "bars", "bars": bars},
    )


def _shuffle_probe(i: int, seconds: float, cache: ProbeCache | str | Path | None) -> Probe:
    """Shuffle ``i``: for even ``i`` a render cut into beats, for odd ``i`` a soundtrack excerpt cut into
    random 0.25-1 s slices; the slices randomly permuted."""
    if i % 2 == 0:
        work = REAL_WORKS[(i // 2) % len(REAL_WORKS)]
        src = render_work(work, seconds, cache=cache)
        pcm, order = shuffle_slices(src, 60.0 / work.qpm, seed=100 + i)
        src_name = f"real/{work.name}"
    else:
        track = SOUNDTRACKS[(i // 2) % len(SOUNDTRACKS)]
        src = soundtrack_excerpt(track, seconds, cache=cache)
        pcm, order = shuffle_slices(src, (0.25, 1.0), seed=100 + i)
        src_name = f"real/{track.name}"
    return Probe(
        f"degenerate/shuffles/{src_name.split('/')[1]}.{i}",
        "degenerate",
        "shuffles",
        pcm,
        source=src_name,
        meta={"slices": len(order)},
    )


def _random_notes_probe(i: int, seconds: float, cache: ProbeCache | str | Path | None) -> Probe:
    """Random notes ``i``: `random_notes` with seed 200 + ``i`` on the ``i``-th program of `_PROGRAMS`."""
    prog = _PROGRAMS[i % len(_PROGRAMS)]
    notes = random_notes(seconds, prog, seed=200 + i, cache=cache)
    return Probe(
        f"degenerate/random_notes/{prog}.{i}",
        "degenerate",
        "random_notes",
        notes,
        meta={"program": prog, "seed": 200 + i},
    )


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def at_level(x: np.ndarray, reference: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled so that its RMS level lies ``db`` decibels from ``reference``'s, as float32."""
    return (x * (_rms(reference) * 10 ** (db / 20.0) / max(_rms(x), 1e-12))).astype(np.float32)


CLIP_KINDS = (
    "6s",
    "6s+silence",
    "6s+noise",
    "6s+chord",
    "8s",
    "6s+sine",
    "6s+sweep",
    "6s+vamp",
    "6s+loop3",
    "6s+loop4",
)
"""Clip ``i`` is of kind ``CLIP_KINDS[i % 10]``: 6 s of random notes alone, followed by 24 s of silence, or by
24 s of white noise 30 dB under the notes' RMS level, or of a held C-major chord, a 440 Hz sine or a
100 Hz..5 kHz sweep (`tone_probes`) or a slow loop of 2, 3 or 4 chords (`vamp`: C-G, C-F-G, C-Am-F-G, a
chord every 3 s) 10 dB under it; or 8 s alone."""
_CLIP_TONES = {"6s+chord": "chord_cmaj", "6s+sine": "sine440", "6s+sweep": "sweep"}


C_AND_G = ((60.0, 64.0, 67.0), (67.0, 71.0, 74.0))
"""C major and G major (MIDI notes): the default `vamp`."""
C_F_G = ((60.0, 64.0, 67.0), (65.0, 69.0, 72.0), (67.0, 71.0, 74.0))
C_AM_F_G = ((60.0, 64.0, 67.0), (57.0, 60.0, 64.0), (65.0, 69.0, 72.0), (67.0, 71.0, 74.0))
"""Slow loops of three and four chords for `vamp` (MIDI notes)."""
_CLIP_LOOPS = {"6s+vamp": C_AND_G, "6s+loop3": C_F_G, "6s+loop4": C_AM_F_G}


def vamp(seconds: float, chord_s: float = 3.0, chords: tuple[tuple[float, ...], ...] = C_AND_G) -> np.ndarray:
    """``seconds`` of ``chords`` (harmonic tones) in turn, each ``chord_s`` seconds: a loop slow enough that
    each chord change comes before a held chord's evidence runs out."""
    n = int(seconds / chord_s)
    return np.concatenate([tone(chords[k % len(chords)], chord_s, n_harmonics=6) for k in range(n)])


def _clip_probe(i: int, cache: ProbeCache | str | Path | None) -> Probe:
    """Clip ``i``: random notes (seed 300 + ``i``, the ``i``-th program of `_PROGRAMS`) too short to show
    structure, alone or padded to 30 s with silence, quiet noise, a quieter tone or a slow vamp
    (`CLIP_KINDS`)."""
    prog = _PROGRAMS[i % len(_PROGRAMS)]
    kind = CLIP_KINDS[i % len(CLIP_KINDS)]
    notes = random_notes(8.0 if kind == "8s" else 6.0, prog, seed=300 + i, cache=cache)
    pad = np.zeros(24 * SR, np.float32)
    if kind == "6s+noise":
        pad = at_level(white_noise(24.0, amp=1.0, seed=300 + i), notes, -30.0)
    elif kind in _CLIP_TONES:
        tone_pcm = next(p.pcm for p in tone_probes(24.0) if p.meta["signal"] == _CLIP_TONES[kind])
        pad = at_level(tone_pcm, notes, -10.0)
    elif kind in _CLIP_LOOPS:
        pad = at_level(vamp(24.0, chords=_CLIP_LOOPS[kind]), notes, -10.0)
    pcm = notes if kind in ("6s", "8s") else np.concatenate((notes, pad)).astype(np.float32)
    return Probe(
        f"degenerate/clips/{kind}.{prog}.{i}",
        "degenerate",
        "clips",
        pcm,
        meta={"program": prog, "seed": 300 + i, "kind": kind},
    )


def degenerate_probes(
    n: int = 4,
    *,
    seconds: float = 60.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """``n`` probes of each degenerate class (labels "loops", "shuffles", "random_notes", "tones", "noise",
    "clips").

    - loops: alternately a 2-chord loop rendered on a GM instrument, and 1, 2 or 4 bars of a real render
      (`REAL_WORKS`) repeated; ``seconds`` long;
    - shuffles: a real piece (render or soundtrack) cut into beat-length slices (renders) or random 0.25-1 s
      slices (soundtracks), randomly permuted;
    - random_notes: `random_notes` on piano, organ, strings, flute...;
    - tones, noise: `tone_probes`, `noise_probes` (at most 4 of each exist; ``n`` caps them);
    - clips: `_clip_probe`, whatever ``seconds`` is (6 or 8 s of random notes, some padded to 30 s with
      silence, noise, a tone or a slow vamp).
    """
    out: list[Probe] = []
    for make in (_loop_probe, _shuffle_probe, _random_notes_probe):
        for i in range(n):
            try:
                out.append(make(i, seconds, cache))
            except ProbeUnavailable as exc:
                if skipped is not None:
                    skipped.append(str(exc))
    out += tone_probes(seconds)[:n]
    out += noise_probes(seconds)[:n]
    for i in range(n):
        try:
            out.append(_clip_probe(i, cache))
        except ProbeUnavailable as exc:
            if skipped is not None:
                skipped.append(str(exc))
    return out
