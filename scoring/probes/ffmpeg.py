"""The ffmpeg runs the probes need: decode a soundtrack file, encode MP3, stretch or re-key (Rubber Band)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from scoring.probes.probe import SR, ProbeUnavailable

RAW_MONO = ("-f", "f32le", "-ar", str(SR), "-ac", "1")
"""ffmpeg's options for raw canonical PCM on a pipe: little-endian float32, `SR`, one channel."""


def ffmpeg_binary() -> str:
    """The ffmpeg executable on PATH.

    Raises:
        ProbeUnavailable: ffmpeg is not installed (says which Debian package to install).
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProbeUnavailable("ffmpeg not found on PATH (install Debian package ffmpeg)")
    return ffmpeg


def wav_bytes(pcm: np.ndarray, rate: int = SR) -> bytes:
    """``pcm`` (mono [n] or [n, channels]) as the bytes of a 16-bit WAV file at ``rate`` Hz."""
    with io.BytesIO() as buf:
        sf.write(buf, np.asarray(pcm, dtype=np.float32), rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()


def decode_stereo(path: Path) -> np.ndarray:
    """The whole file as 44.1 kHz stereo float32 [n, 2] (ffmpeg; tracker modules through libopenmpt)."""
    ffmpeg = ffmpeg_binary()
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-ac", "2", "-ar", "44100", "-f", "s16le", "-"],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0 or len(out.stdout) < 4 * 44100:
        raise ProbeUnavailable(f"ffmpeg could not decode {path}: {out.stderr.decode(errors='replace')[:200]}")
    return np.frombuffer(out.stdout, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0


def encode_mp3(pcm: np.ndarray, kbps: int) -> bytes:
    """MP3 bytes (ffmpeg libmp3lame, CBR ``kbps``) of canonical PCM, sent as 44.1 kHz stereo as a creator's
    upload would be (resampled with soxr, the channel duplicated)."""
    ffmpeg = ffmpeg_binary()
    up = soxr.resample(np.asarray(pcm, dtype=np.float32), SR, 44100, quality="HQ")
    stereo = np.repeat(np.clip(up, -1.0, 1.0)[:, None], 2, axis=1)
    out = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "wav",
            "-i",
            "-",
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{kbps}k",
            "-f",
            "mp3",
            "-",
        ],
        input=wav_bytes(stereo, 44100),
        capture_output=True,
        check=False,
    )
    if out.returncode != 0 or not out.stdout:
        raise ProbeUnavailable(f"ffmpeg/libmp3lame failed: {out.stderr.decode(errors='replace')[:200]}")
    return out.stdout


def rubberband_filter(ffmpeg: str, pcm: np.ndarray, tempo: float, semitones: int) -> np.ndarray:
    """``pcm`` through ffmpeg's Rubber Band filter: time-stretched by ``tempo`` (pitch kept) and pitch-shifted
    by ``semitones`` (duration kept); float32 at `SR`, clipped to +-1.

    Raises:
        ProbeUnavailable: the filter is missing or failed.
    """
    flt = f"rubberband=tempo={tempo}:pitch={2 ** (semitones / 12):.10f}"
    out = subprocess.run(
        [ffmpeg, "-v", "error", *RAW_MONO, "-i", "-", "-af", flt, *RAW_MONO, "-"],
        input=np.asarray(pcm, dtype="<f4").tobytes(),
        capture_output=True,
        check=False,
    )
    if out.returncode != 0 or not out.stdout:
        raise ProbeUnavailable(f"ffmpeg rubberband failed: {out.stderr.decode(errors='replace')[:200]}")
    return np.clip(np.frombuffer(out.stdout, dtype="<f4"), -1.0, 1.0)
