"""The measures taken of probes: the benchmark's two rank metrics and the tests' pitch-class profile."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal

from scoring.probes.probe import SR
from scoring.testsignals import midi_to_hz


def auc_mann_whitney(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve that ``positives`` score above ``negatives``, by the Mann-Whitney U statistic.

    ``AUC = U / (n_pos * n_neg)`` with ``U = sum over pairs [p > n] + 0.5 [p == n]``: the probability that a
    random positive outscores a random negative, ties counted half. 1.0 = perfect separation, 0.5 = chance.

    Raises:
        ValueError: either set is empty.
    """
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUC needs at least one positive and one negative score")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1, dtype=np.float64)
    # Tied values share the mean of the ranks they occupy.
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: the Pearson correlation of the average ranks (ties share their mean rank).

    ``rho = cov(R(x), R(y)) / (sd(R(x)) sd(R(y)))``; without ties this is ``1 - 6 sum d_i^2 / (n (n^2 - 1))``.
    Returns NaN when either side is constant (no ranking to correlate).

    Raises:
        ValueError: lengths differ or fewer than 2 points.
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size or a.size < 2:
        raise ValueError(f"Spearman rho needs two equal-length series of >= 2 points, got {a.size}, {b.size}")
    ra, rb = _average_ranks(a) - (a.size + 1) / 2.0, _average_ranks(b) - (b.size + 1) / 2.0
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if denom == 0.0:
        return float("nan")
    return float((ra * rb).sum() / denom)


def pitch_class_profile(pcm: np.ndarray, n_fft: int = 8192) -> np.ndarray:
    """A 12-bin pitch-class profile of ``pcm`` (sum of STFT power per pitch class, 55 Hz..2 kHz, normalised to
    sum 1). Used by the tests to check that a transposition rolls the profile; not a scoring feature."""
    _, _, z = signal.stft(np.asarray(pcm, np.float64), fs=SR, nperseg=n_fft, noverlap=n_fft // 2)
    power = (np.abs(z) ** 2).sum(axis=1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SR)
    keep = (freqs >= 55.0) & (freqs <= 2000.0)
    pc = np.mod(np.round(12 * np.log2(freqs[keep] / midi_to_hz(69.0))) + 9, 12).astype(int)
    prof = np.bincount(pc, weights=power[keep], minlength=12)
    return prof / prof.sum()
