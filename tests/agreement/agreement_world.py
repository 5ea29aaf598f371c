"""Helpers of the agreement suite: scoring a whole run as the worker does, and simulating another device on
the CPU (float32-scale noise in FFT/matmul outputs, other thread counts, scipy's pocketfft for torch's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
import torch

from scoring.decode import pcm_sha256

N_TRACKS = 504
SECONDS = 5.0  # the shortest a minted track may be (scoring.decode.DEFAULT_MIN_SECONDS)
LONG_TRACKS = 64
LONG_SECONDS = 16.0
"""The last `LONG_TRACKS` of the run last `LONG_SECONDS`: novelty pays only a share of its value under 20 s of
pitched material that shows harmony (`scoring.novelty.evidence`, 0 under 8 s), so these carry the novelty
that devices must agree on, on the steep part of that ramp."""
CHUNK = 24  # tracks per score_batch call: kNN against the catalogue plus the earlier tracks of the chunk
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 1.19e-7


def score_run(tracks: list[Any], fingerprints: dict[str, np.ndarray], device: str = "cpu") -> list[Any]:
    """Score every track in mint order, as the worker does: chunks of `CHUNK` against a growing catalogue."""
    import scoring.engine as engine

    cached = engine.fingerprint_pcm
    engine.fingerprint_pcm = lambda pcm, sr, *a, **k: fingerprints[pcm_sha256(pcm)]  # type: ignore[assignment]
    try:
        cat = engine.new_catalogue()
        out: list[Any] = []
        for start in range(0, len(tracks), CHUNK):
            chunk = tracks[start : start + CHUNK]
            out += engine.score_batch(chunk, cat, device=device, add_to_catalogue=True)
        return out
    finally:
        engine.fingerprint_pcm = cached  # type: ignore[assignment]


class Noise:
    """Multiply float tensors by (1 + rel * N(0, 1)) elementwise (complex ones by 1 + rel * (N + iN)),
    from a seeded generator: a stand-in for another device's rounding."""

    def __init__(self, rel: float, seed: int) -> None:
        self.rel = rel
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
            return t
        real = t.real.dtype if t.is_complex() else t.dtype
        noise = torch.randn(t.shape, generator=self.gen, dtype=real, device="cpu").to(t.device)
        if t.is_complex():
            noise = torch.complex(noise, torch.randn(t.shape, generator=self.gen, dtype=real).to(t.device))
        return t * (1 + self.rel * noise)


def noisy(fn: Callable[..., torch.Tensor], jitter: Noise) -> Callable[..., torch.Tensor]:
    def wrapped(*args: Any, **kwargs: Any) -> torch.Tensor:
        return jitter(fn(*args, **kwargs))

    return wrapped


def scipy_rfft(x: torch.Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> torch.Tensor:
    """torch.fft.rfft computed by scipy's pocketfft instead of torch's backend (MKL on x86), same precision:
    float32 in, complex64 out (float64 in, complex128 out)."""
    out = scipy.fft.rfft(x.detach().cpu().numpy(), n=n, axis=dim, norm=norm, workers=torch.get_num_threads())
    return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)


def scipy_irfft(
    x: torch.Tensor, n: int | None = None, dim: int = -1, norm: str | None = None
) -> torch.Tensor:
    """torch.fft.irfft computed by scipy's pocketfft, same precision."""
    out = scipy.fft.irfft(x.detach().cpu().numpy(), n=n, axis=dim, norm=norm, workers=torch.get_num_threads())
    return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)
