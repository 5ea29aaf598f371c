"""Chromaprint fingerprints of canonical PCM and their alignment similarity."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import fingerprint as fpmod
from scoring.fingerprint import FingerprintError, fingerprint_pcm, similarity


def test_transcode_matches_and_unrelated_does_not(audio) -> None:
    a = fingerprint_pcm(audio["bach"].pcm, audio["bach"].sample_rate)
    b = fingerprint_pcm(audio["bach_mp3"].pcm, audio["bach_mp3"].sample_rate)
    c = fingerprint_pcm(audio["folk"].pcm, audio["folk"].sample_rate)
    # about 8 items per second, minus the edges of the filter window
    assert a.dtype == np.uint32 and 0.8 < a.size / (audio["bach"].duration_s * fpmod.ITEMS_PER_SECOND) <= 1.0
    assert similarity(a, a) == 1.0
    assert similarity(a, b) >= 0.98
    assert similarity(a, c) < 0.7
    assert similarity(a, c) == similarity(c, a)
    assert np.array_equal(a, fingerprint_pcm(audio["bach"].pcm, audio["bach"].sample_rate))


def test_similarity_finds_the_alignment() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**32, 400, dtype=np.uint64).astype(np.uint32)
    assert similarity(x[25:], x) == 1.0
    assert similarity(x, x[25:]) == 1.0
    assert similarity(x[200:], x, max_offset=100) < 0.7  # beyond the search window
    noisy = x ^ np.uint32(1)  # one bit in 32 differs
    assert similarity(noisy, x) == pytest.approx(31 / 32)
    assert similarity(np.zeros(0, np.uint32), x) == 0.0


def test_missing_fpcalc_is_a_typed_error(monkeypatch) -> None:
    monkeypatch.setattr(fpmod.shutil, "which", lambda name: None)
    with pytest.raises(FingerprintError, match="libchromaprint-tools"):
        fingerprint_pcm(np.zeros(22050, np.float32), 22050)
