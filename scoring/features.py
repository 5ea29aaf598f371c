"""Model-free audio features of canonical PCM, batched in torch (CUDA when present, CPU otherwise).

One STFT per track (Hann, 2048 points, hop 512, zero-padded centred frames) feeds every spectral feature:
mel power (128 Slaney bands), MFCC (20, orthonormal DCT-II of the 80 dB-floored log mel), chroma (Ellis
filterbank, per-frame max-normalised), spectral centroid, flatness and 99 % roll-off. The onset envelope is
the mean positive log-mel flux; tempo comes from its autocorrelation tempogram with a log-normal prior around
120 BPM, beats from Ellis' dynamic programme. Loudness is ITU-R BS.1770-4 (K-weighting, 400 ms blocks,
absolute and relative gates), loudness range follows EBU Tech 3342, true peak uses 4x oversampling.
Beat-synchronous chroma and MFCC give a self-similarity matrix (repetition ratio, Foote boundaries) and the
2D Fourier magnitude of chroma patches.

The STFT, filterbank products and FIR filters run in float32 (the fast path on CPU and GPU); every per-frame
result and statistic is float64. CPU and GPU (and thread counts, and batch shapes) then differ by ~1e-7
relative, far below the quantisation of `TrackFeatures.digest`; the CPU path is the reference. The sequential
parts (beat DP, peak picking, self-similarity) run in numpy per track.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from scoring import dsp, structure
from scoring._rate import SAMPLE_RATE
from scoring.errors import FeatureError

__all__ = [
    "CHROMA_2DFT_SHAPE",
    "EMBEDDING_DIM",
    "FEATURE_VERSION",
    "FeatureError",
    "TrackFeatures",
    "extract_features",
    "frame_features",
    "resolve_device",
]

FEATURE_VERSION: str = "ami-features/2"

N_FFT = 2048
HOP = 512
N_MELS = 128
N_MFCC = 20
TOP_DB = 80.0
SILENCE_DBFS = -60.0
CLIP_LEVEL = 0.999
"""|sample| at or above this (about -0.01 dBFS) counts as full scale for clipping runs."""
CLIP_RUN = 3
PATCH_BEATS = 75
CHROMA_2DFT_SHAPE: tuple[int, int] = (12, PATCH_BEATS // 2 + 1)
EMBEDDING_DIM: int = structure.STRUCTURE_DIM
MIN_SECONDS = 1.0
CPU_BATCH_SAMPLES = 1 << 21
"""Padded samples per batch on CPU (~95 s at 22.05 kHz): short tracks share a call, long ones go alone."""
COMPUTE_DTYPE = torch.float64
SPECTRAL_DTYPE = torch.float32
"""STFT, filterbank products and FIR filtering run in float32 (twice as fast, and what a GPU does best);
per-frame results and every statistic over frames are float64."""

ONSET_MIN_DB = 1.0
PULSE_DEPTH_DB = 1.0
K_WEIGHTING_TAPS = 4096
_TEMPOGRAM_WIN = 384
_TEMPOGRAM_HOP = 4
_TIGHTNESS = 100.0
_FOOTE_HALF = 16
_REPEAT_LEN = 8
_REPEAT_THRESHOLD = 0.5


@dataclass
class TrackFeatures:
    """Features of one track.

    Attributes:
        scalars: named scalar features (units in the names: _hz, _db, _dbfs, _lufs, _lu, _bpm, _s; the
            rest are ratios in 0..1 or counts); see docs/scoring-features.md.
        chroma_2dft: [12, 38] float32, L2-normalised median 2D Fourier magnitude of 75-beat chroma patches
            (DC removed); invariant to transposition (circular chroma shift) and to tempo (beat-synchronous).
        embedding: [EMBEDDING_DIM] float32, L2-normalised structural vector for kNN (`scoring.structure`:
            key-invariant chord-change vocabulary, tonal DFT profile, tempo-invariant rhythm, structure
            scalars); no timbre, so the same composition on other instruments lands close.
        beat_chroma: [12, n_beats] float32 beat-synchronous chroma, each column max-normalised.
        boundaries_s: Foote novelty segment boundaries in seconds.
        beat_times_s: beat positions in seconds.
        chroma_steps: [N, 12] float32 unit chroma steps every 0.232 s (`scoring.structure.chroma_steps`),
            what the derivative gate aligns.
        voiced_steps: [N] bool, steps with signal.
    """

    scalars: dict[str, float]
    chroma_2dft: np.ndarray
    embedding: np.ndarray
    beat_chroma: np.ndarray
    boundaries_s: list[float]
    beat_times_s: list[float] = field(default_factory=list)
    chroma_steps: np.ndarray = field(default_factory=lambda: np.zeros((0, 12), np.float32))
    voiced_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def digest(self) -> str:
        """SHA-256 (hex) of a canonical JSON of the quantised features and `FEATURE_VERSION`.

        Scalars are rounded to 4 significant digits, embedding and chroma_2dft to 1e-3: CPU/GPU and
        thread-count differences (~1e-7 relative) stay far below these steps (a value sitting exactly on a
        rounding edge could still flip; the CPU digest is the reference).
        """
        payload = {
            "version": FEATURE_VERSION,
            "scalars": {k: _sig(v, 4) for k, v in sorted(self.scalars.items())},
            "embedding": np.rint(self.embedding.astype(np.float64) * 1000).astype(np.int64).tolist(),
            "chroma_2dft": np.rint(self.chroma_2dft.astype(np.float64) * 1000)
            .astype(np.int64)
            .ravel()
            .tolist(),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def _sig(value: float, digits: int) -> str:
    if not math.isfinite(value):
        return repr(value)
    if value == 0:
        return "0"
    return f"{value:.{digits - 1}e}"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device` as given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def extract_features(
    tracks: Sequence[np.ndarray],
    sample_rate: int = SAMPLE_RATE,
    device: str | torch.device | None = None,
    batch_size: int = 8,
) -> list[TrackFeatures]:
    """Compute `TrackFeatures` for each mono PCM track, in input order.

    Args:
        tracks: 1-D float arrays (nominal range [-1, 1]), each at least `MIN_SECONDS` long.
        sample_rate: rate of every track in Hz (the canonical 22050 Hz for anything that is compared).
        device: torch device; None picks CUDA when available, else CPU.
        batch_size: most tracks per batch; tracks are grouped by length so padding stays small. On CPU a
            batch also stops at CPU_BATCH_SAMPLES padded samples (results never depend on the batching).

    Raises:
        FeatureError: a track is not 1-D, has non-finite samples or is too short, or the rate is unusable.
    """
    if not 8000 <= int(sample_rate) <= 192000:
        raise FeatureError(f"sample rate {sample_rate} Hz; 8000 to 192000 Hz are accepted")
    if batch_size < 1:
        raise FeatureError(f"batch_size must be at least 1, got {batch_size}")
    arrays: list[np.ndarray] = []
    for i, track in enumerate(tracks):
        arr = np.asarray(track)
        if arr.ndim != 1:
            raise FeatureError(f"track {i} has shape {arr.shape}; a 1-D mono array is required")
        if not np.issubdtype(arr.dtype, np.floating):
            raise FeatureError(f"track {i} has dtype {arr.dtype}; float samples in [-1, 1] are required")
        if arr.shape[0] < MIN_SECONDS * sample_rate:
            raise FeatureError(
                f"track {i} lasts {arr.shape[0] / sample_rate:.2f} s; at least {MIN_SECONDS:g} s are required"
            )
        if not np.all(np.isfinite(arr)):
            raise FeatureError(f"track {i} holds NaN or infinite samples; finite samples are required")
        arrays.append(arr)
    dev = resolve_device(device)
    order = sorted(range(len(arrays)), key=lambda i: (-arrays[i].shape[0], i))
    # On CPU a batch buys no parallelism, and big temporaries cost page faults (measured: 8 x 3-minute tracks
    # in one batch took 1.8x the CPU time of one at a time), so CPU batches stop at CPU_BATCH_SAMPLES.
    cap = CPU_BATCH_SAMPLES if dev.type == "cpu" else None
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size:
            longest = arrays[batches[-1][0]].shape[0]
            if cap is None or (len(batches[-1]) + 1) * longest <= cap:
                batches[-1].append(i)
                continue
        batches.append([i])
    results: list[TrackFeatures | None] = [None] * len(arrays)
    with torch.inference_mode():
        for idx in batches:
            for i, feats in zip(
                idx, _extract_batch([arrays[i] for i in idx], int(sample_rate), dev), strict=True
            ):
                results[i] = feats
    return [r for r in results if r is not None]


# ------------------------------------------------------------------------------------------------------
# Batched torch stages


def _spectral_frames(x: torch.Tensor, sr: int, chunk_frames: int = 1024) -> dict[str, torch.Tensor]:
    """All per-frame spectral quantities from one STFT pass, computed in frame chunks to bound memory.

    Returns tensors over T = 1 + N // HOP frames: mel [B, 128, T] (power), chroma_raw [B, 12, T] (power),
    centroid [B, T] (Hz, magnitude-weighted), flatness [B, T], rolloff [B, T] (Hz, 99 % of magnitude),
    rms [B, T], and energy [B] (sum of squares of each row, float64).
    """
    b, n = x.shape
    dev, dt, st = x.device, COMPUTE_DTYPE, SPECTRAL_DTYPE
    n_frames = 1 + n // HOP
    xp = F.pad(x.to(st), (N_FFT // 2, N_FFT // 2))
    window = torch.hann_window(N_FFT, periodic=True, dtype=st, device=dev)
    # Mel and chroma filterbanks side by side: one product per chunk reads the power spectrum once.
    banks_np = np.concatenate((dsp.mel_filterbank(sr, N_FFT, N_MELS), dsp.chroma_filterbank(sr, N_FFT))).T
    banks_fb = torch.as_tensor(np.ascontiguousarray(banks_np), dtype=st, device=dev)
    freqs = torch.linspace(0.0, sr / 2.0, N_FFT // 2 + 1, dtype=st, device=dev)
    freqs_ones = torch.stack((freqs, torch.ones_like(freqs)), dim=1)
    out = {
        "mel": torch.empty(b, N_MELS, n_frames, dtype=dt, device=dev),
        "chroma_raw": torch.empty(b, 12, n_frames, dtype=dt, device=dev),
        "centroid": torch.empty(b, n_frames, dtype=dt, device=dev),
        "flatness": torch.empty(b, n_frames, dtype=dt, device=dev),
        "rolloff": torch.empty(b, n_frames, dtype=dt, device=dev),
    }
    # Frame RMS (unwindowed 2048-sample centred frames, zeros outside the track): a frame is exactly the
    # four hop blocks around its centre, so one pass of block energies serves every frame.
    hop_energy = _block_energy(x.to(st), HOP)
    out["energy"] = hop_energy.sum(-1)
    per_hop = F.pad(hop_energy, (N_FFT // (2 * HOP), N_FFT // (2 * HOP)))
    out["rms"] = (per_hop.unfold(-1, N_FFT // HOP, 1)[:, :n_frames].sum(-1) / N_FFT).sqrt()
    for t0 in range(0, n_frames, chunk_frames):
        t1 = min(n_frames, t0 + chunk_frames)
        frames = xp[:, t0 * HOP : (t1 - 1) * HOP + N_FFT].unfold(-1, N_FFT, HOP)
        spec = torch.fft.rfft(frames * window, dim=-1)
        power = spec.real.square() + spec.imag.square()
        del spec
        mag = power.sqrt()
        banks = power @ banks_fb
        out["mel"][:, :, t0:t1] = banks[..., :N_MELS].transpose(1, 2)
        out["chroma_raw"][:, :, t0:t1] = banks[..., N_MELS:].transpose(1, 2)
        moments = mag @ freqs_ones  # [..., 0] = sum f |X|, [..., 1] = sum |X|
        mag_sum = moments[..., 1]
        out["centroid"][:, t0:t1] = torch.where(mag_sum > 0, moments[..., 0] / mag_sum.clamp_min(1e-30), 0.0)
        floored = power.clamp_min(1e-10)
        out["flatness"][:, t0:t1] = torch.exp(floored.log().mean(-1)) / floored.mean(-1)
        out["rolloff"][:, t0:t1] = freqs[_rolloff_bin(mag, 0.99)]
    return out


def _rolloff_bin(mag: torch.Tensor, fraction: float, block: int = 32) -> torch.Tensor:
    """Index of the first bin where the cumulative magnitude reaches `fraction` of the total, per frame.

    Two-level search (why: a full cumsum over 1025 bins was the slowest step of the spectral pass): cumulative
    sums of 32-bin block totals find the block, one cumsum inside that block finds the bin. Bins past the last
    whole block (the Nyquist bin) form one final block of their own.
    """
    n_bins = mag.shape[-1]
    n_full = n_bins // block
    blocks = mag[..., : n_full * block].unflatten(-1, (n_full, block))  # a view, no copy
    block_cum = torch.cat((blocks.sum(-1), mag[..., n_full * block :].sum(-1, keepdim=True)), -1).cumsum(-1)
    threshold = fraction * block_cum[..., -1:]
    blk = (block_cum[..., :n_full] < threshold).sum(-1)  # n_full: the tail block
    inner = blk.clamp_max(n_full - 1)
    before = torch.where(inner > 0, block_cum.gather(-1, (inner - 1).clamp_min(0)[..., None])[..., 0], 0.0)
    idx = inner[..., None, None].expand(*inner.shape, 1, block)
    inside = blocks.gather(-2, idx)[..., 0, :].cumsum(-1) + before[..., None]
    in_block = inner * block + (inside < threshold).sum(-1).clamp_max(block - 1)
    tail = n_full * block + (block_cum[..., n_full:-1] < threshold).sum(-1)
    return torch.where(blk < n_full, in_block, tail.clamp_max(n_bins - 1))


def _fir_filter(x: torch.Tensor, h: torch.Tensor, delay: int = 0, seg_group: int = 16) -> torch.Tensor:
    """FIR filter y[n] = sum_k h[k] x[n + delay - k] by overlap-save FFT blocks (bounded memory); same length
    as x. delay = len(h) // 2 makes a centred (zero-phase) filter line up with its input."""
    b, n = x.shape
    k = h.shape[0]
    nfft = 1 << max(15, math.ceil(math.log2(4 * k)))
    block = nfft - k + 1
    n_seg = math.ceil(n / block)
    xp = F.pad(x, (k - 1 - delay, n_seg * block - n + delay))
    # Padded length is exactly (n_seg - 1) * block + nfft, so the view holds n_seg overlapping segments.
    segs = xp.unfold(-1, nfft, block)
    spec_h = torch.fft.rfft(h, n=nfft)
    out = torch.empty(b, n_seg * block, dtype=x.dtype, device=x.device)
    for g in range(0, n_seg, seg_group):
        part = segs[:, g : g + seg_group]
        y = torch.fft.irfft(torch.fft.rfft(part, n=nfft) * spec_h, n=nfft)[..., k - 1 : k - 1 + block]
        out[:, g * block : (g + part.shape[1]) * block] = y.reshape(b, -1)
    return out[:, :n]


def _block_energy(x: torch.Tensor, block: int) -> torch.Tensor:
    """Sums of squares over consecutive `block`-sample blocks (the last one partial), as float64:
    [B, ceil(N / block)]. Float32 sums of a few thousand squares are exact to ~1e-7 relative."""
    n = x.shape[-1]
    n_full = n // block
    parts = [torch.linalg.vector_norm(x[:, : n_full * block].unflatten(-1, (n_full, block)), dim=-1).square()]
    if n % block:
        parts.append(torch.linalg.vector_norm(x[:, n_full * block :], dim=-1, keepdim=True).square())
    return torch.cat(parts, -1).to(COMPUTE_DTYPE)


def _true_peak(x: torch.Tensor, factor: int = 4, block: int = 256, group: int = 4096) -> torch.Tensor:
    """Largest |sample| of the `factor`x oversampled signal (BS.1770-4 Annex 2 style), per row: [B].

    Polyphase form of zero-stuffing + interpolation FIR h: output 4q + p = sum_j h[4j + p] x[q - j], one
    conv1d with `factor` output channels. Why not over the whole signal: conv1d with so few channels is slow,
    and almost all of it is provably useless. Any output in a block of `block` positions is at most
    max_p sum_j |h[4j + p]| times the block's largest input |sample|; blocks whose bound is below a true-peak
    value already found (the block holding the sample peak) cannot hold the maximum and are skipped. The
    result is exactly the full computation's.
    """
    h = np.array(dsp.oversampling_fir(factor))
    taps = h.shape[0] // factor
    poly = h.reshape(taps, factor)
    l1 = float(np.abs(poly).sum(axis=0).max())
    # conv1d correlates: weight[p, 0, i] multiplies x[q - (taps - 1 - i)], so it holds
    # h[factor * (taps - 1 - i) + p].
    w = torch.as_tensor(poly[::-1].T.copy()[:, None, :], dtype=SPECTRAL_DTYPE, device=x.device)
    b, n = x.shape
    span = block + taps - 1
    n_blocks = -(-(n + taps - 1) // block)
    xp = F.pad(x.to(SPECTRAL_DTYPE), (taps - 1, n_blocks * block - n))
    windows = xp.unfold(-1, span, block)  # [B, n_blocks, span] view: block k's inputs
    bound = torch.linalg.vector_norm(windows, ord=math.inf, dim=-1) * l1
    rows = torch.arange(b, device=x.device)
    first = windows[rows, bound.argmax(-1)]
    found = F.conv1d(first[:, None, :], w).abs().amax(dim=(1, 2))
    keep_b, keep_k = torch.nonzero(bound >= found[:, None], as_tuple=True)
    peak = found.clone()
    for s in range(0, keep_b.shape[0], group):
        kb, kk = keep_b[s : s + group], keep_k[s : s + group]
        y = F.conv1d(windows[kb, kk][:, None, :], w).abs().amax(dim=(1, 2))
        peak = peak.scatter_reduce(0, kb, y, reduce="amax")
    return peak.to(COMPUTE_DTYPE)


# ------------------------------------------------------------------------------------------------------
# Per-track numpy stages (sequential or small)


def _loudness(energy: np.ndarray, tenth: int, length: int, sr: int) -> tuple[float, float]:
    """Integrated loudness (LUFS) and loudness range (LU) from sums of K-weighted squares over 100 ms blocks.

    BS.1770-4: 400 ms blocks every 100 ms, L_j = -0.691 + 10 log10(mean square); absolute gate -70 LUFS,
    relative gate 10 LU below the power mean of the absolutely gated blocks; result = loudness of the power
    mean of the blocks above both gates (-70 LUFS when none). Block count and the division of a truncated
    last block by the full 400 ms follow pyloudnorm. EBU Tech 3342 LRA: 3 s windows every 100 ms, gates
    -70 LUFS and -20 LU, LRA = 95th - 10th percentile of the gated short-term loudness (0 with < 2 windows).

    Args:
        energy: [ceil(length / tenth)] float64 block sums of squares (tenth = samples per 100 ms).
    """
    cum = np.concatenate(([0.0], np.cumsum(energy)))
    n_tenths = energy.shape[0]
    n_blocks = max(int(np.round((length / sr - 0.4) / 0.1)) + 1, 0)
    j = np.arange(n_blocks)
    z = (cum[np.minimum(j + 4, n_tenths)] - cum[np.minimum(j, n_tenths)]) / (4 * tenth)
    with np.errstate(divide="ignore"):
        block_l = -0.691 + 10 * np.log10(z)
    above_abs = block_l >= -70.0
    integrated = -70.0
    if above_abs.any():
        gamma_r = -0.691 + 10 * np.log10(z[above_abs].mean()) - 10.0
        gated = (block_l > gamma_r) & above_abs
        if gated.any():
            integrated = max(-70.0, float(-0.691 + 10 * np.log10(z[gated].mean())))
    starts = np.arange(0, length // tenth - 30 + 1)
    lra = 0.0
    if starts.shape[0] >= 2:
        st_z = (cum[starts + 30] - cum[starts]) / (30 * tenth)
        with np.errstate(divide="ignore"):
            st_l = -0.691 + 10 * np.log10(st_z)
        st_abs = st_l >= -70.0
        if st_abs.sum() >= 2:
            gamma = -0.691 + 10 * np.log10(st_z[st_abs].mean()) - 20.0
            kept = st_l[st_abs & (st_l >= gamma)]
            if kept.shape[0] >= 2:
                lra = float(np.percentile(kept, 95) - np.percentile(kept, 10))
    return integrated, lra


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(x, w / w.sum(), mode="same")


def _tempo(tempogram_mean: np.ndarray, fps: float) -> float:
    """Tempo (BPM) = argmax over lags of log1p(1e6 tempogram) + log-normal prior (120 BPM, 1 octave), refined
    by parabolic interpolation between lags; 0.0 when the envelope has no periodicity."""
    lags = np.arange(tempogram_mean.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore"):
        bpm = 60.0 * fps / lags
    score = (
        np.log1p(1e6 * np.maximum(tempogram_mean, 0.0)) - 0.5 * ((np.log2(bpm) - np.log2(120.0)) / 1.0) ** 2
    )
    score[(bpm > 320.0) | (bpm < 30.0) | ~np.isfinite(bpm)] = -np.inf
    if not np.isfinite(score).any() or tempogram_mean[1:].max() <= 0:
        return 0.0
    best = int(np.argmax(score))
    lag = float(best)
    if 1 <= best < score.shape[0] - 1 and np.isfinite(score[best - 1]) and np.isfinite(score[best + 1]):
        a, c, e = score[best - 1], score[best], score[best + 1]
        denom = a - 2 * c + e
        if denom < 0:
            lag = best + 0.5 * (a - e) / denom
    return float(60.0 * fps / lag)


def _beat_track(env: np.ndarray, tempo: float, fps: float) -> np.ndarray:
    """Ellis (2007) dynamic-programming beat tracker; returns beat frame indices.

    cumscore[i] = local[i] + max(0, max_j cumscore[j] - TIGHTNESS log^2((i - j) / P)), j in [i - 2P, i - P/2],
    P = 60 fps / tempo; local = Gaussian-smoothed (sigma P/32) onset envelope / its std. Back-tracked from the
    last strong local maximum; weak leading/trailing beats (local < half the RMS at beats) are trimmed. Rows
    of a block of P/2 frames only depend on earlier blocks, so each block is one vectorised numpy step.
    """
    n = env.shape[0]
    if tempo <= 0 or n < 8 or env.std() <= 0:
        return np.zeros(0, dtype=np.int64)
    period = 60.0 * fps / tempo
    local = _smooth(env / env.std(ddof=1), max(period / 32.0, 0.5))
    dmin = max(1, int(round(period / 2)))
    dmax = max(dmin + 1, int(round(2 * period)))
    d = np.arange(dmin, dmax + 1)
    txcost = -_TIGHTNESS * np.log(d / period) ** 2
    cum = np.zeros(n)
    back = np.full(n, -1, dtype=np.int64)
    for s in range(0, n, dmin):
        rows = np.arange(s, min(n, s + dmin))
        j = rows[:, None] - d[None, :]
        cand = np.where(j >= 0, cum[np.maximum(j, 0)] + txcost[None, :], -np.inf)
        best = cand.argmax(axis=1)
        best_val = cand[np.arange(rows.shape[0]), best]
        take = best_val > 0
        cum[rows] = local[rows] + np.where(take, best_val, 0.0)
        back[rows] = np.where(take, j[np.arange(rows.shape[0]), best], -1)
    peaks = np.flatnonzero((cum[1:-1] >= cum[:-2]) & (cum[1:-1] > cum[2:])) + 1
    if peaks.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    med = np.median(cum[peaks])
    last = int(peaks[cum[peaks] >= 0.5 * med][-1])
    beats = [last]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    out = np.array(beats[::-1], dtype=np.int64)
    if out.shape[0] > 2:
        thr = 0.5 * np.sqrt(np.mean(local[out] ** 2))
        keep = np.flatnonzero(local[out] >= thr)
        if keep.shape[0] > 0:
            out = out[keep[0] : keep[-1] + 1]
    return out


def _onset_peaks(env: np.ndarray, fps: float) -> np.ndarray:
    """Onset frames by librosa-style peak picking on the min-max normalised envelope: local max over
    [-30 ms, +0], at least 0.07 above the mean over [-100 ms, +100 ms], at least ONSET_MIN_DB (dB of mean
    log-mel flux) above the median envelope, and 30 ms after the previous onset."""
    span = env.max() - env.min()
    if span <= 0:
        return np.zeros(0, dtype=np.int64)
    x = (env - env.min()) / span
    pre_max, post_max = int(0.03 * fps), 1
    pre_avg, post_avg = int(0.10 * fps), int(0.10 * fps) + 1
    wait = int(0.03 * fps)
    n = x.shape[0]
    pad_max = np.pad(x, (pre_max, post_max), constant_values=-np.inf)
    mx = np.lib.stride_tricks.sliding_window_view(pad_max, pre_max + post_max + 1)[:n].max(axis=1)
    csum = np.concatenate(([0.0], np.cumsum(x)))
    lo = np.maximum(np.arange(n) - pre_avg, 0)
    hi = np.minimum(np.arange(n) + post_avg, n)
    avg = (csum[hi] - csum[lo]) / (hi - lo)
    # Unlike librosa, a peak must also rise ONSET_MIN_DB above the median flux: a steady tone's tiny
    # fluctuations are not onsets once min-max normalisation blows them up.
    strong = env - np.median(env) >= ONSET_MIN_DB
    cand = np.flatnonzero((x == mx) & (x >= avg + 0.07) & strong)
    picked: list[int] = []
    for c in cand:
        if not picked or c > picked[-1] + wait:
            picked.append(int(c))
    return np.array(picked, dtype=np.int64)


def _beat_sync(feat: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Mean of feat[:, b_k : b_{k+1}] for each beat k (the last beat runs to the end): [d, n_beats]."""
    edges = np.concatenate((beats, [feat.shape[1]]))
    csum = np.concatenate((np.zeros((feat.shape[0], 1)), np.cumsum(feat, axis=1)), axis=1)
    return (csum[:, edges[1:]] - csum[:, edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)


def _structure(chroma_sync: np.ndarray, mfcc_sync: np.ndarray) -> tuple[float, np.ndarray]:
    """Repetition ratio and Foote novelty boundary indices (into beats) from the beat self-similarity matrix.

    S = cosine similarity of per-beat [z-scored chroma; z-scored MFCC 1..12]. Repetition: S averaged along
    diagonals over 8 beats; a beat repeats when some other 8-beat stretch at least 8 beats away has mean
    similarity >= 0.5; ratio = fraction of such beats. Foote: novelty = correlation of S with a
    Gaussian-tapered checkerboard kernel of 2 x 16 beats along the diagonal; boundaries = peaks that are
    maxima within +-8 beats and exceed mean + 0.5 std of the novelty curve.
    """
    n = chroma_sync.shape[1]
    feats = np.concatenate((_zscore_rows(chroma_sync), _zscore_rows(mfcc_sync)), axis=0)
    feats = feats / (np.linalg.norm(feats, axis=0, keepdims=True) + 1e-12)
    sim = feats.T @ feats
    rep = 0.0
    m = n - _REPEAT_LEN + 1
    if m > 2 * _REPEAT_LEN:
        smooth = sum(sim[k : k + m, k : k + m] for k in range(_REPEAT_LEN)) / _REPEAT_LEN
        ii, jj = np.indices((m, m))
        smooth = np.where(np.abs(ii - jj) >= _REPEAT_LEN, smooth, -np.inf)
        rep = float(np.mean(smooth.max(axis=1) >= _REPEAT_THRESHOLD))
    half = _FOOTE_HALF
    if n < 2 * half:
        return rep, np.zeros(0, dtype=np.int64)
    grid = np.arange(2 * half) - half + 0.5
    taper = np.exp(-0.5 * (grid[:, None] ** 2 + grid[None, :] ** 2) / (0.5 * half) ** 2)
    kernel = np.sign(grid[:, None] * grid[None, :]) * taper
    kernel /= np.abs(kernel).sum()
    padded = np.pad(sim, half)
    base = np.arange(n)[:, None, None]
    a = np.arange(2 * half)[None, :, None]
    bb = np.arange(2 * half)[None, None, :]
    novelty = np.einsum("nab,ab->n", padded[base + a, base + bb], kernel)
    win = 8
    padded_nov = np.pad(novelty, win, constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded_nov, 2 * win + 1).max(axis=1)
    thr = novelty.mean() + 0.5 * novelty.std()
    peaks = np.flatnonzero((novelty >= local_max) & (novelty > thr))
    peaks = peaks[(peaks >= half // 2) & (peaks <= n - half // 2)]
    return rep, peaks


def _chroma_2dft(beat_chroma: np.ndarray) -> np.ndarray:
    """Median over 75-beat patches (hop 8) of |rfft2(patch)| with the DC term zeroed, L2-normalised: [12,
    38]."""
    n = beat_chroma.shape[1]
    if n < PATCH_BEATS:
        patches = [np.pad(beat_chroma, ((0, 0), (0, PATCH_BEATS - n)))]
    else:
        starts = list(range(0, n - PATCH_BEATS + 1, 8))
        if starts[-1] != n - PATCH_BEATS:
            starts.append(n - PATCH_BEATS)
        patches = [beat_chroma[:, s : s + PATCH_BEATS] for s in starts]
    mags = np.abs(np.fft.rfft2(np.stack(patches), axes=(1, 2)))
    med = np.median(mags, axis=0)
    med[0, 0] = 0.0
    norm = np.linalg.norm(med)
    return med / norm if norm > 0 else med


def _track_frames(
    spec: dict[str, torch.Tensor], i: int, n_frames: int, dct: torch.Tensor, keep_mel: bool = False
) -> dict[str, np.ndarray]:
    """Frame-level features of row i of a batch, as float64 numpy arrays over its n_frames frames.

    mfcc [20, T]; onset_env [T] (mean positive log-mel difference, shifted by the centring delay as librosa
    does); chroma [12, T] (per-frame max-normalised); tempogram_mean [384] (mean autocorrelation tempogram:
    Hann-windowed 384-frame windows every 4 frames, each normalised at lag 0); the per-frame rows of
    `_spectral_frames`; with keep_mel also mel [128, T] (power) and log_mel (dB, floored TOP_DB below the
    max).
    """
    dev = spec["mel"].device
    mel = spec["mel"][i, :, :n_frames]
    log_mel = 10.0 * torch.log10(mel.clamp_min(1e-10))
    log_mel = torch.maximum(log_mel, log_mel.max() - TOP_DB)
    flux = F.relu(log_mel[:, 1:] - log_mel[:, :-1]).mean(0)
    env_t = F.pad(flux, (1 + N_FFT // (2 * HOP), 0))[:n_frames]
    chroma_raw = spec["chroma_raw"][i, :, :n_frames]
    peak = chroma_raw.amax(0, keepdim=True)
    chroma = torch.where(peak > 0, chroma_raw / peak.clamp_min(1e-300), 0.0)
    half = _TEMPOGRAM_WIN // 2
    env_pad = F.pad(env_t, (half, half))
    wins = env_pad.unfold(0, _TEMPOGRAM_WIN, _TEMPOGRAM_HOP)
    wins = wins * torch.hann_window(_TEMPOGRAM_WIN, periodic=False, dtype=env_t.dtype, device=dev)
    ac = torch.fft.irfft(torch.fft.rfft(wins, n=2 * _TEMPOGRAM_WIN).abs().square(), n=2 * _TEMPOGRAM_WIN)
    ac = ac[:, :_TEMPOGRAM_WIN]
    ac = torch.where(ac[:, :1] > 0, ac / ac[:, :1].clamp_min(1e-300), 0.0)
    out = {
        "mfcc": dct @ log_mel,
        "onset_env": env_t,
        "chroma": chroma,
        "chroma_power": chroma_raw,
        "tempogram_mean": ac.mean(0),
    }
    for key in ("centroid", "flatness", "rolloff", "rms"):
        out[key] = spec[key][i, :n_frames]
    if keep_mel:
        out["mel"], out["log_mel"] = mel, log_mel
    return {k: v.cpu().numpy() for k, v in out.items()}


def frame_features(
    track: np.ndarray, sample_rate: int = SAMPLE_RATE, device: str | torch.device | None = None
) -> dict[str, np.ndarray]:
    """Frame-level intermediate features of one track (for inspection and reference tests).

    Returns float64 arrays over T = 1 + len(track) // HOP frames: mel [128, T] (power), log_mel, mfcc [20, T],
    chroma [12, T], onset_env [T], centroid [T] (Hz), flatness [T], rolloff [T] (Hz, 99 %), rms [T], and
    tempogram_mean [384].
    """
    x = torch.as_tensor(np.asarray(track, dtype=np.float32), device=resolve_device(device))[None]
    with torch.inference_mode():
        spec = _spectral_frames(x, int(sample_rate))
        dct = torch.as_tensor(np.array(dsp.dct_matrix(N_MELS, N_MFCC)), dtype=COMPUTE_DTYPE, device=x.device)
        return _track_frames(spec, 0, 1 + x.shape[1] // HOP, dct, keep_mel=True)


def _extract_batch(tracks: list[np.ndarray], sr: int, dev: torch.device) -> list[TrackFeatures]:
    lengths = [t.shape[0] for t in tracks]
    n_max = max(lengths)
    x = torch.zeros(len(tracks), n_max, dtype=SPECTRAL_DTYPE, device=dev)
    for i, t in enumerate(tracks):
        x[i, : t.shape[0]] = torch.from_numpy(np.asarray(t, dtype=np.float32)).to(dev)
    fps = sr / HOP

    spec = _spectral_frames(x, sr)
    true_peak = _true_peak(x).cpu().numpy()
    kw_taps = np.array(dsp.k_weighting_fir(sr, K_WEIGHTING_TAPS))
    kw = torch.as_tensor(kw_taps, dtype=SPECTRAL_DTYPE, device=dev)
    weighted = _fir_filter(x, kw, delay=kw.shape[0] // 2)
    # Loudness only needs energies of 100 ms blocks (400 ms and 3 s windows are sums of them); the partial
    # last block of each track is summed separately so the filter's ring-out past the end is not counted.
    tenth = int(round(0.1 * sr))
    energy_100ms = _block_energy(weighted, tenth).cpu().numpy()
    for i, length in enumerate(lengths):
        if length % tenth:
            tail = weighted[i, (length // tenth) * tenth : length]
            energy_100ms[i, length // tenth] = float(tail.square().sum(dtype=COMPUTE_DTYPE))
    del weighted
    full = (x >= CLIP_LEVEL) | (x <= -CLIP_LEVEL)
    runs = full[:, :-2] & full[:, 1:-1] & full[:, 2:]
    in_run = torch.zeros_like(full)
    for k in range(CLIP_RUN):
        in_run[:, k : n_max - 2 + k] |= runs
    clipped = in_run.sum(-1).cpu().numpy()
    peak = torch.linalg.vector_norm(x, ord=math.inf, dim=-1).to(COMPUTE_DTYPE).cpu().numpy()
    sumsq = spec["energy"].cpu().numpy()
    del full, runs, in_run
    dct = torch.as_tensor(np.array(dsp.dct_matrix(N_MELS, N_MFCC)), dtype=COMPUTE_DTYPE, device=dev)

    out: list[TrackFeatures] = []
    for i, length in enumerate(lengths):
        n_frames = 1 + length // HOP
        frames = _track_frames(spec, i, n_frames, dct)
        mfcc, env, chroma = frames["mfcc"], frames["onset_env"], frames["chroma"]
        tg_mean = frames["tempogram_mean"]

        rms = spec["rms"][i, :n_frames].cpu().numpy()
        voiced = rms >= 10 ** (SILENCE_DBFS / 20)
        if not voiced.any():
            voiced = np.ones_like(voiced)
        tempo = _tempo(tg_mean, fps)
        beats = _beat_track(env, tempo, fps)
        if beats.shape[0] < 4:
            # No usable pulse: structure is measured on a fixed half-second grid instead of beats.
            beats = np.arange(0, n_frames, max(1, int(round(0.5 * fps))), dtype=np.int64)
            beat_stability = 0.0
        else:
            ibi = np.diff(beats) / fps
            beat_stability = float(np.clip(1.0 - (ibi.std() / ibi.mean()) / 0.2, 0.0, 1.0))
        beat_times = beats / fps

        e = _smooth(env, 1.0)
        e = e - e.mean()
        acf = np.fft.irfft(np.abs(np.fft.rfft(e, n=2 * e.shape[0])) ** 2)[: e.shape[0]]
        pulse = 0.0
        if acf[0] > 0:
            lag_lo, lag_hi = int(fps * 60 / 300), min(int(fps * 60 / 30), e.shape[0] - 1)
            lagv = np.arange(lag_lo, lag_hi + 1)
            unbiased = acf[lagv] / acf[0] * e.shape[0] / (e.shape[0] - lagv)
            # Periodicity only counts as pulse when the envelope's peaks stand out (95th percentile minus
            # median >= PULSE_DEPTH_DB): beating partials of a held chord are periodic but are not a beat.
            depth = float(np.percentile(env, 95) - np.median(env))
            pulse = float(np.clip(unbiased.max(), 0.0, 1.0) * min(1.0, depth / PULSE_DEPTH_DB))

        chroma_mean = chroma[:, voiced].mean(axis=1)
        key_clarity, key_index, key_corr = 0.0, -1, 0.0
        contrast = 1.0 - chroma_mean.min() / max(chroma_mean.max(), 1e-12)
        if chroma_mean.std() > 1e-9:
            zc = (chroma_mean - chroma_mean.mean()) / chroma_mean.std()
            corr = dsp.key_profiles() @ zc / 12.0
            key_index = int(np.argmax(corr))
            key_corr = float(corr[key_index])
            # Weighted by the pitch-class contrast: noise has an almost flat chroma whose small ripple still
            # correlates with some key profile.
            key_clarity = float(
                np.clip(key_corr - np.median(corr), 0.0, 1.0) * np.clip((contrast - 0.2) / 0.3, 0, 1)
            )

        beat_chroma = _beat_sync(chroma, beats)
        beat_chroma = beat_chroma / np.maximum(beat_chroma.max(axis=0, keepdims=True), 1e-12)
        mfcc_sync = _beat_sync(mfcc[1:13], beats)
        repetition, bound_idx = _structure(beat_chroma, mfcc_sync)
        boundaries = [float(beat_times[j]) for j in bound_idx]
        onsets = _onset_peaks(env, fps)
        duration = length / sr
        c2d = _chroma_2dft(beat_chroma)

        blocks = energy_100ms[i, : -(-length // tenth)]
        loud, lra = _loudness(blocks, tenth, length, sr)
        rms_all = math.sqrt(sumsq[i] / length)
        scalars = {
            "duration_s": duration,
            "loudness_lufs": loud,
            "loudness_range_lu": lra,
            "true_peak_dbfs": float(20 * np.log10(max(true_peak[i], 1e-10))),
            "sample_peak_dbfs": float(20 * np.log10(max(peak[i], 1e-10))),
            "rms_dbfs": float(20 * np.log10(max(rms_all, 1e-10))),
            "clipping_ratio": float(clipped[i] / length),
            "crest_factor_db": float(20 * np.log10(max(peak[i], 1e-10) / max(rms_all, 1e-10))),
            "silence_ratio": float(1.0 - voiced.mean()) if (rms >= 10 ** (SILENCE_DBFS / 20)).any() else 1.0,
            "spectral_centroid_hz": float(spec["centroid"][i, :n_frames].cpu().numpy()[voiced].mean()),
            "spectral_flatness": float(spec["flatness"][i, :n_frames].cpu().numpy()[voiced].mean()),
            "rolloff99_hz": float(np.percentile(spec["rolloff"][i, :n_frames].cpu().numpy()[voiced], 95)),
            "tempo_bpm": tempo,
            "beat_stability": beat_stability,
            "pulse_clarity": pulse,
            "key_clarity": key_clarity,
            "key_index": float(key_index),
            "key_correlation": key_corr,
            "repetition_ratio": repetition,
            "n_segments": float(len(boundaries) + 1),
            "n_beats": float(beats.shape[0]),
            "onset_rate_hz": float(onsets.shape[0] / duration),
        }
        struct = structure.describe(frames["chroma_power"], env, fps)
        scalars.update(struct.scalars)
        emb = struct.vector.astype(np.float32)
        out.append(
            TrackFeatures(
                scalars=scalars,
                chroma_2dft=c2d.astype(np.float32),
                embedding=emb,
                beat_chroma=beat_chroma.astype(np.float32),
                boundaries_s=boundaries,
                beat_times_s=[float(t) for t in beat_times],
                chroma_steps=struct.steps.astype(np.float32),
                voiced_steps=struct.voiced,
            )
        )
    return out
