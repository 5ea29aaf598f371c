"""Quality ladders: a probe degraded stepwise (MP3 bitrate, noise, clipping, bit depth, drive, low-pass)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import signal

from scoring.decode import decode_bytes
from scoring.probes.cache import ProbeCache, _cache
from scoring.probes.ffmpeg import encode_mp3
from scoring.probes.probe import SR, Probe


def mp3_roundtrip(
    pcm: np.ndarray, kbps: int, *, name: str = "pcm", cache: ProbeCache | str | Path | None = None
) -> np.ndarray:
    """Canonical PCM of `encode_mp3` decoded through `scoring.decode.decode_bytes` (cached by PCM hash)."""
    digest = hashlib.sha256(np.asarray(pcm, dtype=np.float32).tobytes()).hexdigest()
    recipe: dict[str, object] = {"pcm": digest, "kbps": kbps}
    return _cache(cache).get(
        "mp3", f"{name}.{kbps}k", recipe, lambda: decode_bytes(encode_mp3(pcm, kbps)).pcm
    )


def add_noise(pcm: np.ndarray, snr_db: float, seed: int = 11) -> np.ndarray:
    """``pcm`` plus white Gaussian noise whose power is the signal's power / 10^(snr_db/10)."""
    x = np.asarray(pcm, dtype=np.float64)
    rms = math.sqrt(float(np.mean(x * x)))
    noise = np.random.default_rng(seed).standard_normal(len(x)) * rms * 10 ** (-snr_db / 20.0)
    return (x + noise).astype(np.float32)


def hard_clip(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    """``pcm`` amplified by ``gain_db`` and hard-clipped at full scale (+-1)."""
    return np.clip(np.asarray(pcm, np.float64) * 10 ** (gain_db / 20.0), -1.0, 1.0).astype(np.float32)


def requantise(pcm: np.ndarray, bits: int) -> np.ndarray:
    """``pcm`` rounded to a ``bits``-bit signed grid (step 2^-(bits-1)), without dither."""
    scale = float(2 ** (bits - 1))
    return (np.round(np.asarray(pcm, np.float64) * scale) / scale).astype(np.float32)


def tanh_drive(pcm: np.ndarray, drive: float) -> np.ndarray:
    """Soft saturation ``tanh(drive x) / tanh(drive)``: same peak, more harmonic distortion as drive grows."""
    return (np.tanh(drive * np.asarray(pcm, np.float64)) / math.tanh(drive)).astype(np.float32)


def lowpass(pcm: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 8th-order Butterworth low-pass at ``cutoff_hz`` (the bandwidth of a dull transfer)."""
    sos = signal.butter(8, cutoff_hz, btype="low", fs=SR, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(pcm, np.float64)).astype(np.float32)


LADDERS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "mp3": (("lossless", None), ("128k", 128), ("64k", 64), ("32k", 32)),
    "noise": (("clean", None), ("40dB", 40.0), ("30dB", 30.0), ("20dB", 20.0), ("10dB", 10.0)),
    "clipping": (("clean", None), ("+6dB", 6.0), ("+12dB", 12.0), ("+18dB", 18.0), ("+24dB", 24.0)),
    "bit_depth": (("16bit", 16), ("12bit", 12), ("8bit", 8), ("6bit", 6)),
    "distortion": (("clean", None), ("drive2", 2.0), ("drive4", 4.0), ("drive8", 8.0), ("drive16", 16.0)),
    "lowpass": (("11kHz", None), ("8kHz", 8000.0), ("5kHz", 5000.0), ("3kHz", 3000.0)),
}
"""Quality ladders: (step label, parameter) from the original (first step) to the worst. At the canonical
22,050 Hz rate the original's bandwidth is 11 kHz, and renders come from 16-bit WAVs."""


def degrade(
    pcm: np.ndarray,
    ladder: str,
    param: float | None,
    *,
    name: str = "pcm",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """One ladder step applied to ``pcm`` (``param`` None: the original, unchanged)."""
    if ladder not in LADDERS:
        raise ValueError(f"unknown ladder {ladder!r}; known: {', '.join(LADDERS)}")
    if param is None:
        return np.asarray(pcm, dtype=np.float32)
    if ladder == "mp3":
        return mp3_roundtrip(pcm, int(param), name=name, cache=cache)
    transforms: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
        "noise": add_noise,
        "clipping": hard_clip,
        "bit_depth": lambda x, b: requantise(x, int(b)),
        "distortion": tanh_drive,
        "lowpass": lowpass,
    }
    return transforms[ladder](pcm, float(param))


def ladder_probes(
    originals: Sequence[Probe],
    ladders: Sequence[str] | None = None,
    *,
    gain: bool = True,
    cache: ProbeCache | str | Path | None = None,
) -> list[Probe]:
    """Every ladder (default: all of `LADDERS`) on each original, plus (`gain`) each original's -6 dB copy.

    Returns probes with group "ladder", label = ladder name (or ``"gain_-6dB"``), ``source`` = the original's
    name and ``step`` = index in the ladder (0 = the original itself).
    """
    out: list[Probe] = []
    for orig in originals:
        stem = orig.name.split("/", 1)[-1]
        for ladder in ladders or list(LADDERS):
            for step, (label, param) in enumerate(LADDERS[ladder]):
                pcm = degrade(orig.pcm, ladder, param, name=stem, cache=cache)
                out.append(
                    Probe(
                        f"ladder/{stem}/{ladder}/{label}",
                        "ladder",
                        ladder,
                        pcm,
                        source=orig.name,
                        step=step,
                        meta={"param": param},
                    )
                )
        if not gain:
            continue
        quiet = (orig.pcm * np.float32(0.5)).astype(np.float32)
        out.append(Probe(f"ladder/{stem}/gain_-6dB", "ladder", "gain_-6dB", quiet, source=orig.name, step=1))
    return out
