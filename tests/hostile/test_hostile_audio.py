"""D4: a small file that declares gigabytes of decoded audio is refused before a single sample is decoded."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from scoring.decode import MAX_DECODED_SAMPLES, decode_bytes
from scoring.errors import DecodedTooLarge, DecompressionBomb


def _silent_flac(channels: int, rate: int, seconds: float) -> bytes:
    """A FLAC of near-silence (a faint click each second, so it is not digital silence): tiny once encoded."""
    buf = io.BytesIO()
    frames = int(rate * seconds)
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((rate, channels), dtype=np.int16)
        block[0, :] = 3000
        for start in range(0, frames, rate):
            f.write(block[: min(rate, frames - start)])
    return buf.getvalue()


def test_many_channels_at_a_high_rate_are_refused_before_decoding() -> None:
    channels, rate, seconds = 8, 384_000, 60
    data = _silent_flac(channels, rate, seconds)
    samples = channels * rate * seconds
    assert samples > MAX_DECODED_SAMPLES and len(data) < 8 * 2**20  # small file, huge decode
    tracemalloc.start()
    try:
        with pytest.raises(DecodedTooLarge, match=r"8 channels x 384000 Hz") as info:
            decode_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(info.value, DecompressionBomb)
    # Decoding would have built a float64 buffer of rate*seconds frames (184 MB) first.
    assert peak < 4 * len(data) + 16 * 2**20, peak


def test_an_honest_stereo_file_under_the_limit_still_decodes() -> None:
    data = _silent_flac(2, 48_000, 6)
    audio = decode_bytes(data)
    assert audio.duration_s == pytest.approx(6.0, abs=0.01)
