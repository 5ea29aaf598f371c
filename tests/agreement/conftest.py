"""Fixtures of the agreement suite: >= 500 pieces of varied synthetic music, scored once as a worker publishes
them (the baseline), and the means to score them again as a validator on another "device".

A device is simulated on the CPU by what differs between devices: float32-scale relative noise in the
intermediates of the feature code (FFT and matmul outputs), another thread count, another FFT implementation
(scipy's pocketfft instead of torch's backend, same precision). Chromaprint fingerprints come from `fpcalc` on
the CPU in every run, so they are computed once per track and reused (nothing perturbs them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from agreement_world import (
    LONG_SECONDS,
    LONG_TRACKS,
    N_TRACKS,
    SECONDS,
    Noise,
    noisy,
    scipy_irfft,
    scipy_rfft,
    score_run,
)

from scoring.decode import CanonicalAudio, pcm_sha256
from scoring.testsignals import varied_music


@pytest.fixture(scope="session")
def tracks() -> list[Any]:
    """`N_TRACKS` TrackInputs of canonical PCM (ids "t000".., no declared genre): `SECONDS` long, the last
    `LONG_TRACKS` `LONG_SECONDS` long."""
    from scoring.engine import TrackInput

    out = []
    music = varied_music(N_TRACKS - LONG_TRACKS, SECONDS, seed=2026)
    music += varied_music(LONG_TRACKS, LONG_SECONDS, seed=2027)
    for i, x in enumerate(music):
        pcm = np.ascontiguousarray(x, dtype=np.float32)
        audio = CanonicalAudio(pcm, 22050, pcm_sha256(pcm), pcm.shape[0] / 22050, "wav")
        out.append(TrackInput(f"t{i:03d}", audio, None))
    return out


@pytest.fixture(scope="session")
def fingerprints(tracks: list[Any]) -> dict[str, np.ndarray]:
    """Chromaprint items of every track by PCM hash (fpcalc, once)."""
    from scoring.fingerprint import fingerprint_pcm

    return {t.audio.sha256: fingerprint_pcm(t.audio.pcm, t.audio.sample_rate) for t in tracks}


@pytest.fixture(scope="session")
def baseline(tracks: list[Any], fingerprints: dict[str, np.ndarray]) -> list[Any]:
    """The worker's published scores: default threads, torch's FFT, no noise."""
    return score_run(tracks, fingerprints)


@pytest.fixture
def perturb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``perturb(noise=rel, threads=n, other_fft=bool)`` changes the "device" until the test ends."""
    saved = torch.get_num_threads()

    def apply(noise: float = 0.0, threads: int | None = None, other_fft: bool = False) -> None:
        rfft, irfft, matmul, tmatmul = torch.fft.rfft, torch.fft.irfft, torch.matmul, torch.Tensor.__matmul__
        if other_fft:
            rfft, irfft = scipy_rfft, scipy_irfft
        if noise:
            jitter = Noise(noise, seed=7)
            rfft = noisy(rfft, jitter)
            irfft = noisy(irfft, jitter)
            matmul = noisy(matmul, jitter)
            tmatmul = noisy(tmatmul, jitter)
        monkeypatch.setattr(torch.fft, "rfft", rfft)
        monkeypatch.setattr(torch.fft, "irfft", irfft)
        monkeypatch.setattr(torch, "matmul", matmul)
        monkeypatch.setattr(torch.Tensor, "__matmul__", tmatmul)
        if threads is not None:
            torch.set_num_threads(threads)

    yield apply
    torch.set_num_threads(saved)
