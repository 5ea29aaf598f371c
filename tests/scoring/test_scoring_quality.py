"""Quality: falls monotonically as clipping, added noise or low-pass degradation grow (real render)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss

from scoring import testsignals as ts
from scoring.decode import SAMPLE_RATE
from scoring.features import extract_features
from scoring.quality import WEIGHTS, quality_bp, quality_components, quality_score

CLIP_GAINS = (1.0, 1.5, 2.5, 5.0)
SNRS_DB = (None, 40.0, 25.0, 10.0)
CUTOFFS_HZ = (None, 6000.0, 3000.0, 1500.0)


def _add_noise(x: np.ndarray, snr_db: float | None) -> np.ndarray:
    if snr_db is None:
        return x
    noise = np.random.default_rng(7).standard_normal(x.size)
    rms = np.sqrt(np.mean(x**2))
    return np.clip(x + noise * rms * 10 ** (-snr_db / 20), -1, 1)


def _lowpass(x: np.ndarray, cutoff: float | None) -> np.ndarray:
    if cutoff is None:
        return x
    return ss.sosfilt(ss.butter(8, cutoff, fs=SAMPLE_RATE, output="sos"), x)


@pytest.fixture(scope="module")
def degraded(audio) -> dict[str, list[int]]:
    x = audio["bach"].pcm.astype(np.float64)
    series = {
        "clipping": [np.clip(x * g, -1, 1) for g in CLIP_GAINS],
        "noise": [_add_noise(x, s) for s in SNRS_DB],
        "lowpass": [_lowpass(x, c) for c in CUTOFFS_HZ],
    }
    flat = [t.astype(np.float32) for tracks in series.values() for t in tracks]
    feats = iter(extract_features(flat, SAMPLE_RATE, device="cpu"))
    return {name: [quality_bp(next(feats).scalars) for _ in tracks] for name, tracks in series.items()}


@pytest.mark.parametrize("series", ["clipping", "noise", "lowpass"])
def test_quality_falls_strictly_with_degradation(degraded, series: str) -> None:
    values = degraded[series]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values


def test_clean_render_is_high_and_noise_is_low(degraded) -> None:
    assert degraded["clipping"][0] >= 8500
    noise = extract_features([ts.white_noise(10.0, SAMPLE_RATE, amp=0.3).astype(np.float32)], SAMPLE_RATE)[0]
    assert quality_bp(noise.scalars) < degraded["noise"][-1]


BASE = {
    "true_peak_dbfs": -1.0,
    "clipping_ratio": 0.0,
    "rolloff99_hz": 9000.0,
    "crest_factor_db": 14.0,
    "spectral_flatness": 0.001,
    "silence_ratio": 0.02,
    "loudness_range_lu": 4.0,
}


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("true_peak_dbfs", [-6.0, -1.0, 0.0, 1.0, 3.0]),
        ("clipping_ratio", [0.0, 1e-4, 1e-3, 1e-2, 0.3]),
        ("rolloff99_hz", [10000.0, 6000.0, 3000.0, 1000.0, 100.0]),
        ("crest_factor_db", [20.0, 10.0, 6.0, 3.0, 0.5]),
        ("spectral_flatness", [0.0, 0.01, 0.05, 0.2, 0.6]),
        ("silence_ratio", [0.0, 0.2, 0.4, 0.6, 0.95]),
        ("loudness_range_lu", [10.0, 4.0, 1.0, 0.1, 0.0]),
    ],
)
def test_each_component_is_monotone(key: str, values: list[float]) -> None:
    scores = [quality_score({**BASE, key: v}) for v in values]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    comps = quality_components({**BASE, key: values[-1]})
    assert all(0.0 < c <= 1.0 for c in comps.values())


def test_weights_sum_to_one_and_bp_range() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert 0 <= quality_bp({**BASE, "clipping_ratio": 1.0, "true_peak_dbfs": 30.0, "rolloff99_hz": 0.0}) < 100
    assert quality_bp(BASE) <= 10000
