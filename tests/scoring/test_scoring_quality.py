"""Quality (ami-quality/2): every degradation ladder falls from its first step on real renders, gain does not
move the score, and each measure matches an independent reference or a worked example."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
import scipy.stats as st
import torch

from bench.quality import build_ladders, mp3_upload, pink_noise, with_noise
from scoring import probes
from scoring import quality as Q
from scoring import testsignals as ts
from scoring.decode import SAMPLE_RATE, decode_file

SR = SAMPLE_RATE
PIECES = ("bach", "mozart", "joplin")
"""conftest.py renders (30 s, 44.1 kHz stereo WAV): organ chorale, string quartet, piano rag."""


@pytest.fixture(scope="module")
def ladder_bp(rendered: dict[str, Path]) -> dict[str, dict[str, list[int]]]:
    torch.set_num_threads(1)
    return {
        piece: {
            name: [Q.quality_bp(Q.quality_measures(s, SR)) for s in steps]
            for name, steps in build_ladders(rendered[piece]).items()
        }
        for piece in PIECES
    }


@pytest.mark.parametrize("ladder", ["mp3", "white", "pink", "clip", "bits", "tanh", "lowpass"])
@pytest.mark.parametrize("piece", PIECES)
def test_every_ladder_falls_from_its_first_step(ladder_bp, piece: str, ladder: str) -> None:
    bp = ladder_bp[piece][ladder]
    rho = st.spearmanr(np.arange(len(bp)), bp).statistic
    assert rho == pytest.approx(-1.0), (piece, ladder, bp)
    assert all(a > b for a, b in itertools.pairwise(bp)), (piece, ladder, bp)


@pytest.mark.parametrize("piece", PIECES)
def test_minus_6_db_moves_no_score_by_more_than_1_percent(rendered: dict[str, Path], piece: str) -> None:
    gain = np.float32(10 ** (-6 / 20))
    for name, steps in build_ladders(rendered[piece]).items():
        for i, s in enumerate(steps):
            a = Q.quality_score(Q.quality_measures(s, SR))
            b = Q.quality_score(Q.quality_measures((s * gain).astype(np.float32), SR))
            assert abs(b - a) <= 0.01 * a, (piece, name, i, a, b)


def test_noise_and_tones_score_below_music_buried_in_noise(rendered: dict[str, Path]) -> None:
    x = decode_file(rendered["bach"]).pcm
    n = x.size
    worst_music = min(
        Q.quality_bp(Q.quality_measures(with_noise(x, 0.0, pink), SR)) for pink in (False, True)
    )
    pink = (0.1 * pink_noise(n, 3)).astype(np.float32)
    white = ts.white_noise(n / SR, SR, amp=0.1).astype(np.float32)
    tone = ts.sine(440.0, n / SR, SR, amp=0.3).astype(np.float32)
    for signal in (pink, white, tone):
        assert Q.quality_bp(Q.quality_measures(signal, SR)) < worst_music


# ----------------------------------------------------------------------------------- measures vs references


def test_stft_power_matches_scipy() -> None:
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    ours = Q.stft_power(x, 2048, 1024)
    _, _, ref = ss.stft(
        x.astype(np.float64),
        nperseg=2048,
        noverlap=1024,
        window="hann",
        boundary=None,
        padded=False,
        scaling="spectrum",
        detrend=False,
    )
    ref_power = (np.abs(ref) * ss.get_window("hann", 2048).sum()) ** 2  # undo scipy's 1/sum(w) scaling
    assert ours.shape == ref_power.T.shape
    assert np.max(np.abs(ours - ref_power.T)) < 1e-4 * ref_power.max()


def test_chunked_spectra_change_no_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks only bound memory: with 37 frames (or rows) per chunk, every value is that of the whole track at
    # once (torch.stft of all of it; the smoothed spectrogram with chunks larger than the track).
    x = ts.chord_song(seconds=20.0) + ts.white_noise(20.0, amp=0.01, seed=2)
    whole = torch.stft(
        torch.from_numpy(x.astype(np.float32)),
        2048,
        1024,
        window=torch.hann_window(2048, periodic=True),
        center=False,
        return_complex=True,
    )
    reference = whole.abs().double().square().T.numpy()
    smooth_whole, _ = Q.smoothed_spectrogram(x, SR)
    monkeypatch.setattr(Q, "STFT_CHUNK_VALUES", 37 * 1025)
    chunked = Q.stft_power(x, 2048, 1024)
    assert chunked.shape[0] > 10 * 37
    assert np.array_equal(chunked, reference)
    assert np.array_equal(Q.smoothed_spectrogram(x, SR)[0], smooth_whole)


def test_smoothed_spectrogram_is_a_9_bin_moving_average() -> None:
    x = ts.chord_song(seconds=6.0)
    smooth, freqs = Q.smoothed_spectrogram(x, SR)
    power = Q.stft_power(x)
    power = power[Q.active_frames(power)]
    ref = ndi.uniform_filter1d(power, 9, axis=1, mode="constant")[:, ::3]
    assert np.allclose(smooth, ref, rtol=1e-9, atol=1e-12 * power.max())
    assert freqs[1] == pytest.approx(3 * SR / 2048)


def test_active_frames_worked_example() -> None:
    # frame powers 1, 1e-4 (-40 dB, kept) and 1e-6 (-60 dB, dropped) relative to the loud frames
    power = np.array([[1.0], [1.0], [1.0], [1e-4], [1e-6]] * 4)
    assert Q.active_frames(power).tolist() == [True, True, True, True, False] * 4


def test_floor_margin_worked_example() -> None:
    freqs = np.linspace(200.0, 2800.0, 50)  # below the codec range: no hole handling
    smooth = np.ones((100, 50))
    smooth[50:] = 0.01  # half the frames 20 dB quieter: mean 0.505, 10th percentile 0.01
    assert Q.floor_margin_db(smooth, freqs) == pytest.approx(10 * math.log10(50.5), abs=1e-9)
    smooth[50:] = 1e-6  # 60 dB: the per-bin margin is capped at 30 dB
    assert Q.floor_margin_db(smooth, freqs) == pytest.approx(30.0)


def test_floor_margin_of_stationary_noise_matches_the_gamma_law() -> None:
    # Neighbouring Hann bins are correlated, so rather than a closed form the reference is the same statistic
    # computed from scipy's STFT and scipy's moving average.
    x = np.random.default_rng(1).standard_normal(60 * SR) * 0.1
    _, _, z = ss.stft(x, nperseg=2048, noverlap=1024, window="hann", boundary=None, padded=False)
    smooth = ndi.uniform_filter1d(np.abs(z.T) ** 2, 9, axis=1, mode="constant")[:, ::3]
    f = np.arange(1025)[::3] * SR / 2048
    band = smooth[:, (f >= 100) & (f < 10000)]
    ref = np.mean(10 * np.log10(band.mean(0) / np.percentile(band, 10, axis=0)))
    ours = Q.quality_measures(x.astype(np.float32), SR)["floor_margin_db"]
    assert ours == pytest.approx(ref, abs=0.05)
    assert 1.0 < ours < 4.0


def test_bandwidth_of_a_brick_wall_low_pass() -> None:
    x = _broadband()
    for cutoff in (3000.0, 5000.0, 8000.0):
        spec = np.fft.rfft(x.astype(np.float64))
        spec[np.fft.rfftfreq(x.size, 1 / SR) > cutoff] = 0.0
        y = np.fft.irfft(spec, x.size).astype(np.float32)
        assert Q.quality_measures(y, SR)["bandwidth_hz"] == pytest.approx(cutoff, rel=0.06)


def _broadband() -> np.ndarray:
    """Music-like signal with content up to Nyquist that comes and goes: plucked chords and noise hi-hats."""
    return ts.chord_song(seconds=10.0).astype(np.float32)


def test_spectral_hole_ratio_counts_a_removed_band() -> None:
    x = np.random.default_rng(2).standard_normal(20 * SR)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / SR)
    spec[(f > 5000) & (f < 6500)] = 0.0
    y = np.fft.irfft(spec, x.size).astype(np.float32)
    bins = np.arange(129) * SR / 256
    in_range = (bins >= Q.CODEC_LO_HZ) & (bins < Q.CODEC_HI_HZ)
    # Hann leakage fills the bin on each edge of the notch; the bins well inside it are holes
    inside = in_range & (bins > 5000 + SR / 256) & (bins < 6500 - SR / 256)
    expected = inside.sum() / in_range.sum()
    assert Q.spectral_hole_ratio(y, SR) == pytest.approx(expected, abs=0.02)
    assert Q.spectral_hole_ratio(x.astype(np.float32), SR) < 0.001


def test_codec_grid_zeros_show_in_mp3_and_not_in_its_source(rendered: dict[str, Path]) -> None:
    source = decode_file(rendered["mozart"]).pcm
    assert Q.codec_zero_excess(source, SR) < 0.005
    assert Q.codec_zero_excess(mp3_upload(rendered["mozart"], 128), SR) > 0.03


def test_zero_share_of_float32_powers_is_that_of_their_float64_values() -> None:
    # float32(1e-5) lies just under 1e-5: against a frame maximum of 1 it is a zero in float64 (the reference
    # the measure is defined in), and not one if the threshold were formed in float32.
    tiny = float(np.float32(1e-5))
    frames = np.array([[1.0, tiny, 0.5, 0.0], [2.0, 2 * tiny, 2e-6, 1.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    assert Q._zero_share(frames.astype(np.float64))[:2].tolist() == [0.5, 0.5]
    np.testing.assert_array_equal(Q._zero_share(frames), Q._zero_share(frames.astype(np.float64)))
    assert np.isnan(Q._zero_share(frames)[2])


def _runs_reference(x: np.ndarray, rel: float, min_run: int) -> float:
    hot = np.abs(x) >= rel * np.max(np.abs(x))
    total = 0
    for value, group in itertools.groupby(hot):
        length = len(list(group))
        if value and length >= min_run:
            total += length
    return total / x.size


def test_flat_top_ratio_matches_run_length_reference() -> None:
    x = ts.tone((57.0, 64.0), 5.0, SR, amp=0.8)
    for drive in (1.0, 1.5, 3.0):
        y = np.clip(x * drive, -0.4, 0.4)  # clipped below full scale: the track's own peak counts
        assert Q.flat_top_ratio(y) == pytest.approx(_runs_reference(y, 0.999, 3), abs=1e-12)
    assert Q.flat_top_ratio(x) < 1e-3


def test_crest_factor_of_a_sine_is_3_db() -> None:
    x = ts.sine(997.0, 10.0, SR, amp=0.25)
    assert Q.crest_factor_db(x) == pytest.approx(20 * math.log10(math.sqrt(2)), abs=0.01)


def test_effective_bits_reads_the_grid_at_any_gain() -> None:
    x = np.random.default_rng(3).uniform(-1, 1, 10 * SR)
    q8 = probes.requantise(x, 8)  # round(128 x) / 128: levels -128..128, 256 of them non-zero
    assert Q.effective_bits(q8) == pytest.approx(8.0, abs=1e-9)
    assert Q.effective_bits((q8 * np.float32(0.3)).astype(np.float32)) == pytest.approx(8.0, abs=1e-9)
    distinct = len(set(x.astype(np.float32).tolist()) - {0.0})  # Python's set as the reference count
    assert Q.effective_bits(x.astype(np.float32)) == pytest.approx(math.log2(distinct), abs=1e-12)


def test_distinct_count_matches_pythons_set() -> None:
    rng = np.random.default_rng(4)
    # duplicates within and across the 16-bit digits, both ends of the range, and one value
    for bits in (
        rng.integers(0, 1 << 32, 50_000, dtype=np.uint64).astype(np.uint32),
        rng.integers(0, 300, 50_000).astype(np.uint32) * np.uint32(65_537),
        np.array([0, 0xFFFFFFFF, 0x0000FFFF, 0xFFFF0000, 0xFFFFFFFF, 0], dtype=np.uint32),
        np.array([7], dtype=np.uint32),
    ):
        assert Q._distinct_count(bits) == len(set(bits.tolist()))


# ------------------------------------------------------------------------------------------- components


BASE = {
    "floor_margin_db": 18.0,
    "bandwidth_hz": 10000.0,
    "hole_ratio": 0.01,
    "codec_zero_excess": 0.0,
    "flat_top_ratio": 0.0,
    "crest_db": 14.0,
    "effective_bits": 18.0,
}


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("floor_margin_db", [25.0, 15.0, 10.0, 5.0, 2.0]),
        ("bandwidth_hz", [11000.0, 8000.0, 5000.0, 3000.0, 100.0]),
        ("hole_ratio", [0.06, 0.1, 0.2, 0.4, 0.8]),
        ("codec_zero_excess", [0.01, 0.05, 0.1, 0.2, 0.5]),
        ("flat_top_ratio", [0.0, 1e-4, 1e-3, 1e-2, 0.3]),
        ("crest_db", [20.0, 10.0, 6.0, 3.0, 0.5]),
        ("effective_bits", [18.0, 14.0, 10.0, 6.0, 2.0]),
    ],
)
def test_each_component_is_monotone(key: str, values: list[float]) -> None:
    scores = [Q.quality_score({**BASE, key: v}) for v in values]
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
    assert all(0.0 < c <= 1.0 for c in Q.quality_components({**BASE, key: values[-1]}).values())


def test_weights_sum_to_one_and_bp_range() -> None:
    assert sum(Q.WEIGHTS.values()) == pytest.approx(1.0)
    assert set(Q.WEIGHTS) == set(Q.quality_components(BASE))
    worst = {**BASE, "floor_margin_db": 0.0, "bandwidth_hz": 0.0, "flat_top_ratio": 1.0, "crest_db": 0.0}
    assert 0 <= Q.quality_bp(worst) < 300
    assert 9500 <= Q.quality_bp(BASE) <= 10000


def test_deterministic_across_runs_and_threads(rendered: dict[str, Path]) -> None:
    x = mp3_upload(rendered["joplin"], 128)
    first = Q.quality_measures(x, SR)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        second = Q.quality_measures(x, SR)
    finally:
        torch.set_num_threads(old)
    assert Q.quality_bp(first) == Q.quality_bp(second)
    assert Q.quality_measures(x, SR) == first


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Q.quality_measures(np.zeros((2, 100), np.float32), SR)
    with pytest.raises(ValueError):
        Q.quality_measures(np.array([np.nan] * 5000, np.float32), SR)
