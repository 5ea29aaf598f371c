"""Batched torch stages of the feature extractor: one STFT pass to mel, chroma and spectral rows, FIR
filtering, block energies, true peak, and the per-track frame features drawn from them (float32 transforms,
float64 results; CUDA when the batch lives there)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from scoring import dsp, salience

N_FFT = 2048
HOP = 512
N_MELS = 128
TOP_DB = 80.0
COMPUTE_DTYPE = torch.float64
SPECTRAL_DTYPE = torch.float32
"""STFT, filterbank products and FIR filtering run in float32 (twice as fast, and what a GPU does best);
per-frame results and every statistic over frames are float64."""
TEMPOGRAM_WIN = 384
TEMPOGRAM_HOP = 4
TREBLE_FMIN_HZ = 440.0 * 2.0 ** ((48 - 69 - 0.5) / 12)
"""Lower edge of C3 (127 Hz): the upper-voice chroma starts here. Below it the STFT's bins lie more than
1.5 semitones apart, so the chroma spreads each bass note over half the pitch-class circle, and a loud bass
(a sub-bass drone, an electronic kick tuned low) can hide the chords above it."""


CPU_CHUNK_ROWS = 1024
"""Frames of the whole batch per STFT chunk on CPU (`spectral_frames`). Why so few: each chunk's frame,
spectrum and power buffers (8 MiB of frames) then stay under glibc's mmap threshold (32 MiB at most) and are
reused from the heap; at 1024 frames per track, a batch of 4 mapped and page-faulted 33 MiB afresh for
every chunk (4 x 30 s on one thread: 151 -> 100 ms for the pass, on two 77 -> 58 ms; the same bits)."""
CUDA_CHUNK_FRAMES = 1024
"""Frames per track per STFT chunk on a GPU, where larger products run better and memory is the bound."""


def spectral_frames(x: torch.Tensor, sr: int, chunk_frames: int | None = None) -> dict[str, torch.Tensor]:
    """All per-frame spectral quantities from one STFT pass, computed in frame chunks to bound memory
    (`chunk_frames` per track; by default `CPU_CHUNK_ROWS` over the batch on CPU, `CUDA_CHUNK_FRAMES` else).

    Returns tensors over T = 1 + N // HOP frames: mel [B, 128, T] (power), chroma_raw [B, 12, T] (power),
    chroma_treble_raw [B, 12, T] (power, bins from `TREBLE_FMIN_HZ` up), semitone [B, S, T] (power per
    semitone, MIDI `salience.BANK_LOW`..`salience.BANK_HIGH`),
    centroid [B, T] (Hz, magnitude-weighted), flatness [B, T], rolloff [B, T] (Hz, 99 % of magnitude),
    rms [B, T], and energy [B] (sum of squares of each row, float64).
    """
    b, n = x.shape
    dev, dt, st = x.device, COMPUTE_DTYPE, SPECTRAL_DTYPE
    n_frames = 1 + n // HOP
    if chunk_frames is None:
        chunk_frames = max(16, CPU_CHUNK_ROWS // b) if dev.type == "cpu" else CUDA_CHUNK_FRAMES
    xp = F.pad(x.to(st), (N_FFT // 2, N_FFT // 2))
    window = torch.hann_window(N_FFT, periodic=True, dtype=st, device=dev)
    # Mel, chroma and semitone filterbanks side by side: one product per chunk reads the power spectrum once.
    semitones = dsp.semitone_filterbank(sr, N_FFT, salience.BANK_LOW, salience.BANK_HIGH)
    banks_np = np.concatenate(
        (
            dsp.mel_filterbank(sr, N_FFT, N_MELS),
            dsp.chroma_filterbank(sr, N_FFT),
            dsp.chroma_filterbank(sr, N_FFT, fmin=TREBLE_FMIN_HZ),
            semitones,
        )
    ).T
    banks_fb = torch.as_tensor(np.ascontiguousarray(banks_np), dtype=st, device=dev)
    freqs = torch.linspace(0.0, sr / 2.0, N_FFT // 2 + 1, dtype=st, device=dev)
    freqs_ones = torch.stack((freqs, torch.ones_like(freqs)), dim=1)
    out = {
        "mel": torch.empty(b, N_MELS, n_frames, dtype=dt, device=dev),
        "chroma_raw": torch.empty(b, 12, n_frames, dtype=dt, device=dev),
        "chroma_treble_raw": torch.empty(b, 12, n_frames, dtype=dt, device=dev),
        "semitone": torch.empty(b, semitones.shape[0], n_frames, dtype=dt, device=dev),
        "centroid": torch.empty(b, n_frames, dtype=dt, device=dev),
        "flatness": torch.empty(b, n_frames, dtype=dt, device=dev),
        "rolloff": torch.empty(b, n_frames, dtype=dt, device=dev),
    }
    # Frame RMS (unwindowed 2048-sample centred frames, zeros outside the track): a frame is exactly the
    # four hop blocks around its centre, so one pass of block energies serves every frame.
    hop_energy = block_energy(x.to(st), HOP)
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
        out["chroma_raw"][:, :, t0:t1] = banks[..., N_MELS : N_MELS + 12].transpose(1, 2)
        out["chroma_treble_raw"][:, :, t0:t1] = banks[..., N_MELS + 12 : N_MELS + 24].transpose(1, 2)
        out["semitone"][:, :, t0:t1] = banks[..., N_MELS + 24 :].transpose(1, 2)
        moments = mag @ freqs_ones  # [..., 0] = sum f |X|, [..., 1] = sum |X|
        mag_sum = moments[..., 1]
        out["centroid"][:, t0:t1] = torch.where(mag_sum > 0, moments[..., 0] / mag_sum.clamp_min(1e-30), 0.0)
        floored = power.clamp_min(1e-10)
        out["flatness"][:, t0:t1] = torch.exp(floored.log().mean(-1)) / floored.mean(-1)
        out["rolloff"][:, t0:t1] = freqs[rolloff_bin(mag, 0.99)]
    return out


def rolloff_bin(mag: torch.Tensor, fraction: float, block: int = 32) -> torch.Tensor:
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


def fir_filter(x: torch.Tensor, h: torch.Tensor, delay: int = 0, seg_group: int = 16) -> torch.Tensor:
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


def block_energy(x: torch.Tensor, block: int) -> torch.Tensor:
    """Sums of squares over consecutive `block`-sample blocks (the last one partial), as float64:
    [B, ceil(N / block)]. Float32 sums of a few thousand squares are exact to ~1e-7 relative."""
    n = x.shape[-1]
    n_full = n // block
    parts = [torch.linalg.vector_norm(x[:, : n_full * block].unflatten(-1, (n_full, block)), dim=-1).square()]
    if n % block:
        parts.append(torch.linalg.vector_norm(x[:, n_full * block :], dim=-1, keepdim=True).square())
    return torch.cat(parts, -1).to(COMPUTE_DTYPE)


def true_peak(x: torch.Tensor, factor: int = 4, block: int = 256, group: int = 4096) -> torch.Tensor:
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


def track_frames(
    spec: dict[str, torch.Tensor], i: int, n_frames: int, dct: torch.Tensor, keep_mel: bool = False
) -> dict[str, np.ndarray]:
    """Frame-level features of row i of a batch, as float64 numpy arrays over its n_frames frames.

    mfcc [20, T]; onset_env [T] (mean positive log-mel difference, shifted by the centring delay as librosa
    does); chroma [12, T] (per-frame max-normalised); chroma_power [12, T]; chroma_treble_power [12, T];
    semitone_power [S, T];
    tempogram_mean [384] (mean autocorrelation tempogram: Hann-windowed 384-frame windows every 4 frames, each
    normalised at lag 0); the per-frame rows of
    `spectral_frames`; with keep_mel also mel [128, T] (power) and log_mel (dB, floored TOP_DB below the
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
    half = TEMPOGRAM_WIN // 2
    env_pad = F.pad(env_t, (half, half))
    wins = env_pad.unfold(0, TEMPOGRAM_WIN, TEMPOGRAM_HOP)
    wins = wins * torch.hann_window(TEMPOGRAM_WIN, periodic=False, dtype=env_t.dtype, device=dev)
    ac = torch.fft.irfft(torch.fft.rfft(wins, n=2 * TEMPOGRAM_WIN).abs().square(), n=2 * TEMPOGRAM_WIN)
    ac = ac[:, :TEMPOGRAM_WIN]
    ac = torch.where(ac[:, :1] > 0, ac / ac[:, :1].clamp_min(1e-300), 0.0)
    out = {
        "mfcc": dct @ log_mel,
        "onset_env": env_t,
        "chroma": chroma,
        "chroma_power": chroma_raw,
        "chroma_treble_power": spec["chroma_treble_raw"][i, :, :n_frames],
        "semitone_power": spec["semitone"][i, :, :n_frames],
        "tempogram_mean": ac.mean(0),
    }
    for key in ("centroid", "flatness", "rolloff", "rms"):
        out[key] = spec[key][i, :n_frames]
    if keep_mel:
        out["mel"], out["log_mel"] = mel, log_mel
    return {k: v.cpu().numpy() for k, v in out.items()}
