"""Per-track numpy statistics over frame features: loudness and loudness range, tempo, beats, onsets,
beat-synchronous self-similarity (repetition, Foote boundaries) and the 2D Fourier magnitude of chroma
patches; sequential or small, so numpy on the CPU."""

from __future__ import annotations

import math

import numpy as np

PATCH_BEATS = 75
ONSET_MIN_DB = 1.0
_TIGHTNESS = 100.0
_FOOTE_HALF = 16
_REPEAT_LEN = 8
_REPEAT_THRESHOLD = 0.5


def loudness(energy: np.ndarray, tenth: int, length: int, sr: int) -> tuple[float, float]:
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


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(x, w / w.sum(), mode="same")


def tempo_bpm(tempogram_mean: np.ndarray, fps: float) -> float:
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


def beat_track(env: np.ndarray, tempo: float, fps: float) -> np.ndarray:
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
    local = gaussian_smooth(env / env.std(ddof=1), max(period / 32.0, 0.5))
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


def onset_peaks(env: np.ndarray, fps: float) -> np.ndarray:
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


def beat_sync(feat: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Mean of feat[:, b_k : b_{k+1}] for each beat k (the last beat runs to the end): [d, n_beats]."""
    edges = np.concatenate((beats, [feat.shape[1]]))
    csum = np.concatenate((np.zeros((feat.shape[0], 1)), np.cumsum(feat, axis=1)), axis=1)
    return (csum[:, edges[1:]] - csum[:, edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)


def zscore_rows(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)


def self_similarity(chroma_sync: np.ndarray, mfcc_sync: np.ndarray) -> tuple[float, np.ndarray]:
    """Repetition ratio and Foote novelty boundary indices (into beats) from the beat self-similarity matrix.

    S = cosine similarity of per-beat [z-scored chroma; z-scored MFCC 1..12]. Repetition: S averaged along
    diagonals over 8 beats; a beat repeats when some other 8-beat stretch at least 8 beats away has mean
    similarity >= 0.5; ratio = fraction of such beats. Foote: novelty = correlation of S with a
    Gaussian-tapered checkerboard kernel of 2 x 16 beats along the diagonal; boundaries = peaks that are
    maxima within +-8 beats and exceed mean + 0.5 std of the novelty curve.
    """
    n = chroma_sync.shape[1]
    feats = np.concatenate((zscore_rows(chroma_sync), zscore_rows(mfcc_sync)), axis=0)
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


def chroma_2dft(beat_chroma: np.ndarray) -> np.ndarray:
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
