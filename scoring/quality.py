"""Technical quality of canonical PCM as a listener ranks degradations -> quality_bp (ami-quality/2).

Every measure is relative to the track itself, so a gain change does not move the score: the noise floor
against the music, the bandwidth as the highest frequency still clear of the track's own floor, codec damage
as spectral holes and as coefficients zeroed on an MP3 frame grid, clipping as flat tops at the track's own
peak, compression and saturation as the crest factor, bit depth as the number of distinct sample values.

`quality_measures` computes the raw measures from canonical PCM (mono float32 at 22,050 Hz from
`scoring.decode`; transforms in float32, statistics in float64; numpy and torch only; deterministic);
`quality_components` maps each to (0, 1]; `quality_score` is their weighted geometric mean and `quality_bp`
quantises it to 0..10000.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np
import torch

QUALITY_VERSION = "ami-quality/2"

N_FFT = 2048
HOP = 1024
SMOOTH_BINS = 9
"""Moving average along frequency (97 Hz) before the floor statistics; every third bin is then kept."""
ACTIVE_DB = 50.0
"""A frame is active when its power is within this many dB of the track's 95th-percentile frame power."""
FLOOR_PERCENTILE = 10.0
"""Per-bin percentile over active frames taken as the track's own floor."""
FLOOR_CAP_DB = 30.0
"""Per-bin cap of the floor margin: a bin 30 dB clear of its floor is as clean as it needs to be."""
BANDWIDTH_REL_DB = 60.0
"""Bandwidth: the long-term spectrum must stay within this many dB of its own maximum ..."""
BANDWIDTH_FLOOR_DB = 6.0
"""... and this many dB above the track's own floor at that frequency."""
CODEC_LO_HZ, CODEC_HI_HZ = 3000.0, 10000.0
"""Range where codec damage is looked for (capped below at 0.95 x the measured bandwidth)."""
HOLE_DB = 30.0
"""A short-time cell this many dB under its frame's median in the codec range is a hole."""
MDCT_N = 288
"""MP3 granule at this rate: 576 samples of a 44.1 kHz stream (long-block MDCT of 2 x 288 samples)."""
ZERO_REL = 1e-5
"""An MDCT coefficient counts as quantised to zero when its power is 50 dB under its frame's largest."""

WEIGHTS: dict[str, float] = {
    "noise": 0.25,
    "bandwidth": 0.25,
    "codec": 0.15,
    "clipping": 0.10,
    "dynamics": 0.15,
    "bit_depth": 0.10,
}
"""Exponents of the weighted geometric mean (they sum to 1)."""

_FLOOR = 1e-6
_TINY = 1e-30


STFT_CHUNK_VALUES = 1 << 21
"""Spectrum values per chunk of frames in `stft_power`. Why chunks: at once, a 15-minute track's complex
spectrum, magnitude and float64 copies held 560 MB beside the 159 MB result; frames do not overlap in what
they compute, so the chunked result is the same bit for bit."""


def stft_power(pcm: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """``|STFT|^2`` with a periodic Hann window of `n_fft` samples, hop `hop`, no centring (transform in
    float32 as in scoring.features, power in float64), computed `STFT_CHUNK_VALUES` at a time.

    Returns:
        [frames, 1 + n_fft / 2] float64, C-contiguous.
    """
    x = torch.from_numpy(np.ascontiguousarray(pcm, dtype=np.float32))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float32)
    n_frames = 1 + (x.numel() - n_fft) // hop
    per_chunk = max(1, STFT_CHUNK_VALUES // (n_fft // 2 + 1))
    power = np.empty((n_frames, n_fft // 2 + 1), dtype=np.float64)
    for f0 in range(0, n_frames, per_chunk):
        f1 = min(n_frames, f0 + per_chunk)
        part = x[f0 * hop : (f1 - 1) * hop + n_fft]
        spec = torch.stft(part, n_fft, hop, window=window, center=False, return_complex=True)
        power[f0:f1] = spec.abs().double().square().T.numpy()
    return power


def active_frames(power: np.ndarray, rel_db: float = ACTIVE_DB) -> np.ndarray:
    """Frames whose total power ``E_t >= P95_t(E) * 10^(-rel_db / 10)`` (bool [frames]); relative to the
    track's own loud frames, so the choice does not depend on the level."""
    energy = power.sum(axis=1)
    return np.asarray(energy >= np.percentile(energy, 95.0) * 10.0 ** (-rel_db / 10.0))


def smoothed_spectrogram(pcm: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrogram of the active frames (`stft_power`, `active_frames`), averaged over `SMOOTH_BINS`
    neighbouring bins, every third bin kept.

    Returns:
        ``(S, freqs)``: S [active frames, bins] float64 power; freqs [bins] in Hz.
    """
    power = stft_power(pcm)
    rows = np.flatnonzero(active_frames(power))
    width = SMOOTH_BINS
    n_bins = power.shape[1]
    smooth = np.empty((rows.size, -(-n_bins // 3)), dtype=np.float64)
    # Rows a chunk at a time (each row's average is its own), and only the kept bins' averages are formed:
    # the same values as smoothing every bin of every frame at once and then striding, without its four
    # full-size temporaries (530 MB for a 15-minute track).
    step = max(1, STFT_CHUNK_VALUES // n_bins)
    for r0 in range(0, rows.size, step):
        part = power[rows[r0 : r0 + step]]
        csum = np.cumsum(np.pad(part, ((0, 0), (width // 2 + 1, width // 2))), axis=1)
        smooth[r0 : r0 + step] = (csum[:, width::3] - csum[:, : csum.shape[1] - width : 3]) / width
    freqs = np.arange(n_bins) * sample_rate / N_FFT
    return smooth, freqs[::3]


def floor_margin_db(smooth: np.ndarray, freqs: np.ndarray, hole_hi_hz: float = CODEC_HI_HZ) -> float:
    """How far the music stands above its own floor, bin by bin over 100 Hz .. 10 kHz, in dB:
    ``mean_f min(30, 10 log10(mean_t S_tf / P10_t S'_tf))``.

    ``S`` is `smoothed_spectrogram`, ``P10_t`` the 10th percentile over time, and ``S'`` equals ``S``
    except in codec holes (CODEC_LO_HZ..`hole_hi_hz`, `HOLE_DB` under the frame's median there), which
    take the bin's median: a codec that removed the floor together with the music did not lower the floor.
    Music comes and goes in every bin, so its mean stands 10-25 dB above its 10th percentile; a stationary
    noise floor fills the quiet moments, and a bin the noise dominates reads ~2 dB (the spread of a 9-bin mean
    of exponential variables). Pure noise scores 2-4 dB whatever its colour or level.
    """
    keep = (freqs >= 100.0) & (freqs < 10000.0)
    sel = smooth[:, keep]
    if sel.size == 0:
        return 0.0
    in_codec = (freqs[keep] >= CODEC_LO_HZ) & (freqs[keep] < hole_hi_hz)
    floor_input = sel
    if np.count_nonzero(in_codec) >= 4:
        band = sel[:, in_codec]
        holes = band < np.median(band, axis=1, keepdims=True) * 10.0 ** (-HOLE_DB / 10.0)
        floor_input = sel.copy()
        floor_input[:, in_codec] = np.where(holes, np.median(band, axis=0, keepdims=True), band)
    floor = np.percentile(floor_input, FLOOR_PERCENTILE, axis=0)
    ratio = 10.0 * np.log10((sel.mean(axis=0) + _TINY) / (floor + _TINY))
    return float(np.mean(np.minimum(FLOOR_CAP_DB, ratio)))


def bandwidth_hz(smooth: np.ndarray, freqs: np.ndarray) -> float:
    """Highest frequency where the long-term spectrum ``L(f) = mean_t S_tf`` (S: `smoothed_spectrogram`)
    satisfies both ``L(f) >= max_f L * 10^(-60 / 10)`` (`BANDWIDTH_REL_DB`) and
    ``L(f) >= P10_t S_tf * 10^(6 / 10)`` (`BANDWIDTH_FLOOR_DB` over the track's own floor); the edge is
    interpolated linearly in dB between the last bin that passes and the next. Only bins >= 100 Hz count.
    """
    lo = int(np.searchsorted(freqs, 100.0))
    if smooth.shape[0] == 0 or lo >= freqs.size:
        return 0.0
    ltas = smooth.mean(axis=0)
    floor = np.percentile(smooth, FLOOR_PERCENTILE, axis=0)
    ref = ltas[lo:].max()
    margin_db = np.minimum(
        10.0 * np.log10((ltas + _TINY) / (ref * 10.0 ** (-BANDWIDTH_REL_DB / 10.0) + _TINY)),
        10.0 * np.log10((ltas + _TINY) / (floor * 10.0 ** (BANDWIDTH_FLOOR_DB / 10.0) + _TINY)),
    )
    above = np.nonzero(margin_db[lo:] >= 0.0)[0]
    if above.size == 0:
        return float(freqs[lo])
    k = lo + int(above[-1])
    if k + 1 >= freqs.size:
        return float(freqs[k])
    # margin[k] >= 0 > margin[k + 1]: the zero crossing lies between the two bins
    frac = margin_db[k] / (margin_db[k] - margin_db[k + 1])
    return float(freqs[k] + frac * (freqs[k + 1] - freqs[k]))


def spectral_hole_ratio(pcm: np.ndarray, sample_rate: int, hi_hz: float = CODEC_HI_HZ) -> float:
    """Share of short-time cells (Hann 256, hop 256) of the active frames in CODEC_LO_HZ..`hi_hz` whose power
    is `HOLE_DB` (30 dB) or more under their frame's median there: ``mean_tf [P_tf < median_f P_tf / 1000]``.

    A lossy codec zeroes whole scale-factor bands under the masking threshold, leaving holes that music
    itself, with its continuous spectra, rarely has (0.3-4 % of cells in the renders; MP3 at 64 kbps 7-28 %).
    """
    n = 256
    power = stft_power(pcm, n, n)
    freqs = np.arange(power.shape[1]) * sample_rate / n
    band = power[np.ix_(active_frames(power), (freqs >= CODEC_LO_HZ) & (freqs < hi_hz))]
    if band.shape[1] < 4 or band.shape[0] == 0:
        return 0.0
    return float(np.mean(band < np.median(band, axis=1, keepdims=True) * 10.0 ** (-HOLE_DB / 10.0)))


def _mdct_bins(sample_rate: int, hi_hz: float) -> np.ndarray:
    """MDCT bins k (of `MDCT_N`) whose centre ``(k + 1/2) sr / 2N`` lies in CODEC_LO_HZ..`hi_hz`."""
    k = np.arange(MDCT_N)
    fk = (k + 0.5) * sample_rate / (2 * MDCT_N)
    return k[(fk >= CODEC_LO_HZ) & (fk < hi_hz)]


def _mdct_window() -> np.ndarray:
    """The sine window ``w_n = sin(pi (n + 1/2) / 2N)``, n = 0..2N-1."""
    return np.sin(np.pi * (np.arange(2 * MDCT_N) + 0.5) / (2 * MDCT_N))


def _mdct_basis(sample_rate: int, hi_hz: float) -> np.ndarray:
    """Sine-window MDCT rows ``w_n cos(pi / N (n + 1/2 + N/2)(k + 1/2))`` for `_mdct_bins`: [K, 2N] float64
    with N = `MDCT_N`, read-only."""
    return _mdct_rows(*_bin_span(sample_rate, hi_hz))


def _bin_span(sample_rate: int, hi_hz: float) -> tuple[int, int]:
    """(first bin, count) of `_mdct_bins`, a contiguous run: what the cached rows and spectra are keyed on
    (each track's own band edge admits one of a few dozen bin sets)."""
    kb = _mdct_bins(sample_rate, hi_hz)
    return (int(kb[0]) if kb.size else 0), int(kb.size)


@functools.lru_cache(maxsize=64)
def _mdct_rows(first: int, count: int) -> np.ndarray:
    """`_mdct_basis` rows k = first .. first + count - 1, cached by `_bin_span` (the cosines cost 1.1 ms per
    track)."""
    n = np.arange(2 * MDCT_N)
    kb = np.arange(first, first + count)
    basis = np.cos(np.pi / MDCT_N * (n[None, :] + 0.5 + MDCT_N / 2.0) * (kb[:, None] + 0.5)) * _mdct_window()
    basis.setflags(write=False)
    return basis


def _zero_share(coef: np.ndarray) -> np.ndarray:
    """Per frame (all axes but the last), the share of coefficient powers under ``ZERO_REL`` times the frame's
    largest; NaN for an all-zero frame. Powers may be float32: the threshold is formed in float64 and each
    power is compared in float64, so the shares are those of the powers widened to float64."""
    ref = coef.max(axis=-1, keepdims=True).astype(np.float64)
    zero = (coef < ref * ZERO_REL).mean(axis=-1)
    return np.asarray(np.where(ref[..., 0] > 0.0, zero, np.nan))


@functools.lru_cache(maxsize=16)
def _basis_spectrum(first: int, count: int, n: int) -> torch.Tensor:
    """rfft over `n` points of each `_mdct_rows` row (float32), reused by every track of the same length
    class and bins: [K, n / 2 + 1] complex64."""
    return torch.fft.rfft(torch.from_numpy(_mdct_rows(first, count).astype(np.float32)), n)


def _mdct_every_start(seg: np.ndarray, sample_rate: int, hi_hz: float, starts: int) -> np.ndarray:
    """Squared MDCT coefficients (`_mdct_basis` rows) of the frames starting at every sample 0..`starts` - 1
    of `seg`, computed as one FFT cross-correlation per basis row (float32; ~3x fewer operations than a
    frame-by-basis product).

    Returns:
        [starts / MDCT_N, MDCT_N, K] float32: granule, offset within the granule, coefficient (only compared
        by `_zero_share`, which widens them; a float64 copy cost 3.7 ms per track).
    """
    n = seg.size
    spectrum = torch.fft.rfft(torch.from_numpy(seg.astype(np.float32)), n)
    rows = _basis_spectrum(*_bin_span(sample_rate, hi_hz), n)
    # correlation, not convolution: the conjugate of each basis row's spectrum
    corr = torch.fft.irfft(spectrum[None, :] * rows.conj(), n)[:, :starts]
    return corr.square().T.reshape(starts // MDCT_N, MDCT_N, -1).numpy()


def codec_zero_excess(pcm: np.ndarray, sample_rate: int, hi_hz: float = CODEC_HI_HZ) -> float:
    """Excess of zeroed MDCT coefficients on the codec's own frame grid: ``Z(o*) - median_o' Z(o')``.

    ``Z(o)`` is the share of CODEC_LO_HZ..hi_hz coefficients of a 576-sample sine-window MDCT (hop 288, the
    MP3 granule of a 44.1 kHz stream at this rate) more than 50 dB under their frame's largest, over frames
    starting at ``o + 288 j``. Music has no preferred grid, so Z hardly depends on o; an MP3's quantiser
    zeroed coefficients on exactly one grid, which shows as a 1-sample-sharp peak at o*. o* is searched over
    all 288 offsets on the loudest 0.5 s (float32, only to choose); Z is then measured in float64 on up to 600
    frames spread over the track at o* and at 4 offsets an eighth, a quarter, a half and three quarters of a
    granule away (the unbiased reference), so a search maximum alone does not read as a codec. Only 44.1 kHz
    MP3 lands on this integer grid; other codecs and rates show through `spectral_hole_ratio` only.
    """
    # Float32 samples, each widened to float64 where it is used (exactly): a float64 copy of the whole track
    # and of its squares held 320 MB for 15 minutes.
    x = np.asarray(pcm, dtype=np.float32)
    n2 = 2 * MDCT_N
    total = (x.size - n2) // MDCT_N
    basis = _mdct_basis(sample_rate, hi_hz)
    if total < 16 or basis.shape[0] < 4:
        return 0.0
    energy = _granule_energy(x, total)
    span = min(total - 1, max(4, int(0.5 * sample_rate) // MDCT_N))
    run = np.convolve(energy, np.ones(span), mode="valid")
    g0 = int(np.argmax(run[: total - span]))
    segment = x[g0 * MDCT_N : (g0 + span) * MDCT_N + n2].astype(np.float64)
    z = _zero_share(_mdct_every_start(segment, sample_rate, hi_hz, span * MDCT_N))
    best = int(np.nanargmax(np.nanmean(z, axis=0)))
    grid = np.unique(np.linspace(0, total - 2, min(600, total - 1)).astype(np.int64))
    grid = grid[energy[grid] >= np.median(energy) * 1e-3]
    offsets = (best + np.array([0, 36, 72, 144, 216])) % MDCT_N
    starts = grid[:, None] * MDCT_N + offsets[None, :]
    # Rows of a strided view rather than an index array of every sample (a quarter of the gather's time), and
    # torch's float64 product: the same values bit for bit on 567 probe tracks, 35 -> 16 ms per 30 s track.
    frames = torch.from_numpy(np.lib.stride_tricks.sliding_window_view(x, n2)[starts].astype(np.float64))
    coef = (frames @ torch.from_numpy(np.ascontiguousarray(basis.T))).square().numpy()
    zs = np.nanmean(_zero_share(coef), axis=0)
    return float(max(0.0, zs[0] - np.median(zs[1:])))


def _granule_energy(x: np.ndarray, total: int, per_chunk: int = 1 << 12) -> np.ndarray:
    """Sum of squares (float64) of each of the first `total` `MDCT_N`-sample granules of float32 `x`, a chunk
    of granules at a time: each granule's sum is its own, so the values are those of one pass over all."""
    out = np.empty(total, dtype=np.float64)
    for g0 in range(0, total, per_chunk):
        g1 = min(total, g0 + per_chunk)
        sq = np.square(x[g0 * MDCT_N : g1 * MDCT_N], dtype=np.float64)
        out[g0:g1] = np.add.reduceat(sq, np.arange(0, (g1 - g0) * MDCT_N, MDCT_N))
    return out


def flat_top_ratio(pcm: np.ndarray, rel: float = 0.999, min_run: int = 3) -> float:
    """Share of samples in runs of >= `min_run` consecutive samples with ``|x| >= rel * max|x|``.

    Clipping flattens the waveform at the track's own peak, wherever that peak sits (0 dBFS or, after a later
    gain change, below it); an unclipped peak is a single sample or a short rounded top.
    """
    # |x| in float32 is exact; the comparison widens each sample to float64 (a float64 threshold), so no
    # float64 copy of the track is made.
    mag = np.abs(np.asarray(pcm, dtype=np.float32))
    peak = np.float64(mag.max())
    if peak <= 0.0:
        return 0.0
    hot = np.concatenate([[False], mag >= np.float64(rel) * peak, [False]])
    edges = np.flatnonzero(np.diff(hot.astype(np.int8)))
    lengths = edges[1::2] - edges[::2]
    return float(lengths[lengths >= min_run].sum() / mag.size)


def crest_factor_db(pcm: np.ndarray) -> float:
    """``20 log10(P / RMS)`` with ``P`` the 99.99th percentile of ``|x|`` (a robust peak) and RMS over the
    whole track. Clipping, saturation and heavy limiting all lower it; gain leaves it unchanged."""
    x = np.asarray(pcm, dtype=np.float32)
    # One float64 array at a time (the squares, then |x| partitioned in place), not three.
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    if rms <= 0.0:
        return 0.0
    mag = np.abs(x).astype(np.float64)
    return float(20.0 * math.log10(float(np.percentile(mag, 99.99, overwrite_input=True)) / rms))


def effective_bits(pcm: np.ndarray, n_max: int = 1 << 18) -> float:
    """``log2`` of the number of distinct non-zero sample values among up to `n_max` evenly strided samples.

    A signal quantised to B bits takes at most 2^B values whatever its gain, so this reads the bit depth of
    the last quantiser (the histogram comb) independently of the level; continuous audio gives ~log2(n_max).
    """
    x = np.asarray(pcm, dtype=np.float32)
    step = max(1, x.size // n_max)
    sub = x[::step]
    sub = sub[sub != 0.0]
    if sub.size == 0:
        return 0.0
    return float(math.log2(_distinct_count(sub.view(np.uint32))))


def _distinct_count(bits: np.ndarray) -> int:
    """Number of distinct values of a uint32 array (here the bit patterns of non-zero finite float32 samples,
    which are equal exactly when the samples are).

    Written by hand because numpy's comparison sort bounds `effective_bits` (`np.unique` of 262,144 float32
    samples: 13.8 ms): an LSD radix sort of two 16-bit digits by numpy's stable (radix) argsort of uint16
    takes 5.6 ms and counts the same.
    """
    low = (bits & 0xFFFF).astype(np.uint16)
    high = (bits >> 16).astype(np.uint16)
    order = np.argsort(low, kind="stable")
    order = order[np.argsort(high[order], kind="stable")]
    ranked = bits[order]
    return int(np.count_nonzero(ranked[1:] != ranked[:-1])) + 1


def quality_measures(pcm: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Raw quality measures of canonical PCM (mono float32 at 22,050 Hz from `scoring.decode`).

    Args:
        pcm: [samples] mono PCM.
        sample_rate: its rate in Hz (22,050 for canonical audio; the MP3 grid search assumes it).

    Returns:
        ``floor_margin_db`` (dB, `floor_margin_db`), ``bandwidth_hz`` (Hz), ``hole_ratio`` (share of cells),
        ``codec_zero_excess`` (share of coefficients), ``flat_top_ratio`` (share of samples), ``crest_db``
        (dB), ``effective_bits`` (bits); none depends on the track's level.

    Raises:
        ValueError: `pcm` is not 1-D, is empty, or holds NaN/inf.
    """
    x = np.asarray(pcm)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"quality_measures needs finite 1-D mono PCM, got shape {x.shape}")
    smooth, freqs = smoothed_spectrogram(x, sample_rate)
    bandwidth = bandwidth_hz(smooth, freqs)
    # codec damage only where the track still has content: a low-pass is not a hole
    codec_hi = min(CODEC_HI_HZ, 0.95 * bandwidth)
    return {
        "floor_margin_db": floor_margin_db(smooth, freqs, codec_hi),
        "bandwidth_hz": bandwidth,
        "hole_ratio": spectral_hole_ratio(x, sample_rate, codec_hi),
        "codec_zero_excess": codec_zero_excess(x, sample_rate, codec_hi),
        "flat_top_ratio": flat_top_ratio(x),
        "crest_db": crest_factor_db(x),
        "effective_bits": effective_bits(x),
    }


def _logistic(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def quality_components(measures: Mapping[str, float]) -> dict[str, float]:
    """Quality components in (0, 1], each monotone in one measure of `quality_measures` (higher = better).

    With ``L(x) = 1 / (1 + exp(-x))``:

    - noise: ``L((M - 8) / 2.5)``, M = ``floor_margin_db`` (clean renders 10-22 dB -> 0.74-0.996; music at
      20 dB SNR ~ 9 dB -> 0.6; pure noise ~ 3 dB -> 0.12).
    - bandwidth: ``L((B - 6500) / 1000)``, B = ``bandwidth_hz`` (10.5 kHz -> 0.98, 8 kHz -> 0.82,
      5.5 kHz -> 0.27, 3 kHz -> 0.03).
    - codec: ``exp(-(max(0, Z - 0.005) / 0.3 + max(0, H - 0.05) / 0.15))``, Z = ``codec_zero_excess``,
      H = ``hole_ratio``; the dead zones hold music's own holes and the grid search's sampling noise.
    - clipping: ``1 / (1 + C / 0.002)``, C = ``flat_top_ratio``.
    - dynamics: ``L((D - 6) / 1.5)``, D = ``crest_db`` (music 11-20 dB -> 0.97-1; saturated 3 dB -> 0.12).
    - bit_depth: ``1 / (1 + 2^(6 - b))``, b = ``effective_bits`` (continuous ~18 -> 0.9998, 16-bit audio at
      a typical level ~14.5 -> 0.997, 8-bit ~7 -> 0.67).
    """
    m = measures
    codec_excess = max(0.0, m["codec_zero_excess"] - 0.005) / 0.3 + max(0.0, m["hole_ratio"] - 0.05) / 0.15
    comps = {
        "noise": _logistic((m["floor_margin_db"] - 8.0) / 2.5),
        "bandwidth": _logistic((m["bandwidth_hz"] - 6500.0) / 1000.0),
        "codec": math.exp(-codec_excess),
        "clipping": 1.0 / (1.0 + max(0.0, m["flat_top_ratio"]) / 0.002),
        "dynamics": _logistic((m["crest_db"] - 6.0) / 1.5),
        "bit_depth": 1.0 / (1.0 + 2.0 ** (6.0 - m["effective_bits"])),
    }
    return {k: min(1.0, max(_FLOOR, v)) for k, v in comps.items()}


def quality_score(measures: Mapping[str, float]) -> float:
    """``Q = prod_i q_i ** w_i`` over `quality_components` with `WEIGHTS`; Q in (0, 1]."""
    comps = quality_components(measures)
    return math.exp(sum(WEIGHTS[k] * math.log(v) for k, v in comps.items()))


def quality_bp(measures: Mapping[str, float]) -> int:
    """``round_half_even(10000 * Q)`` as an int in 0..10000 (Q from `quality_score`)."""
    return int(min(10000, max(0, round(10000.0 * quality_score(measures)))))
