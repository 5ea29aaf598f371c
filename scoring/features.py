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

import contextlib
import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from scoring import derivative, dsp, intervals, melody, salience, structure
from scoring._rate import SAMPLE_RATE
from scoring.errors import FeatureError
from scoring.frame_stats import (
    PATCH_BEATS,
    beat_sync,
    beat_track,
    chroma_2dft,
    gaussian_smooth,
    loudness,
    onset_peaks,
    self_similarity,
    tempo_bpm,
)
from scoring.transforms import (
    COMPUTE_DTYPE,
    HOP,
    N_FFT,
    N_MELS,
    SPECTRAL_DTYPE,
    TOP_DB,
    block_energy,
    fir_filter,
    spectral_frames,
    track_frames,
    true_peak,
)

__all__ = [
    "CHROMA_2DFT_SHAPE",
    "HOP",
    "N_FFT",
    "N_MELS",
    "TOP_DB",
    "EMBEDDING_DIM",
    "FEATURE_VERSION",
    "FeatureError",
    "TrackFeatures",
    "extract_features",
    "frame_features",
    "resolve_device",
]

FEATURE_VERSION: str = "ami-features/11"

N_MFCC = 20
SILENCE_DBFS = -60.0
CLIP_LEVEL = 0.999
"""|sample| at or above this (about -0.01 dBFS) counts as full scale for clipping runs."""
CLIP_RUN = 3
CHROMA_2DFT_SHAPE: tuple[int, int] = (12, PATCH_BEATS // 2 + 1)
EMBEDDING_DIM: int = structure.STRUCTURE_DIM
MIN_SECONDS = 1.0
CPU_BATCH_SAMPLES = 1 << 21
"""Padded samples per batch on CPU (~95 s at 22.05 kHz): short tracks share a call, long ones go alone."""
PULSE_DEPTH_DB = 1.0
K_WEIGHTING_TAPS = 4096


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
        chroma_steps: [N, 24] float32 unit steps every 0.232 s: pitch-class profiles of the harmonic
            salience in a bass and a treble register (`scoring.derivative.gate_steps`), what the derivative
            gate aligns and its landmarks are drawn from.
        voiced_steps: [N] bool, steps with signal.
    """

    scalars: dict[str, float]
    chroma_2dft: np.ndarray
    embedding: np.ndarray
    beat_chroma: np.ndarray
    boundaries_s: list[float]
    beat_times_s: list[float] = field(default_factory=list)
    chroma_steps: np.ndarray = field(default_factory=lambda: np.zeros((0, salience.GATE_WIDTH), np.float32))
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


@functools.cache
def _thread_pools() -> Any | None:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # the scoring core runs on torch and numpy alone (as on the GPU machine)
        return None
    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Holds numpy's BLAS (OpenBLAS) to one thread for the block.

    Why: the per-track numpy steps of the feature pass make many small matrix products. With a second BLAS
    thread each of them wakes a worker that then spins, taking the core that torch's own threads or the
    quality measures beside them (`scoring.engine.beside_features`) were using: on 2 cores the quick
    `bench/scoring.py` batch (4 x 30 s, best and median of 12 passes) took 0.67..0.87 s CPU for 0.34..0.45 s
    wall, and 0.56..0.73 s for 0.30..0.41 s held to one. The products are blocked over their outputs, never
    split along a sum, so every result is the same bit for bit (tests/scoring/test_scoring_features.py). The
    limit is process-wide while it lasts; two threads that overlap it can leave BLAS at one thread, which
    changes no result.
    """
    pools = _thread_pools()
    if pools is None:
        return contextlib.nullcontext()
    limited: contextlib.AbstractContextManager[object] = pools.limit(limits=1, user_api="blas")
    return limited


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
    with torch.inference_mode(), one_blas_thread():
        for idx in batches:
            for i, feats in zip(
                idx, _extract_batch([arrays[i] for i in idx], int(sample_rate), dev), strict=True
            ):
                results[i] = feats
    return [r for r in results if r is not None]


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
        spec = spectral_frames(x, int(sample_rate))
        dct = torch.as_tensor(np.array(dsp.dct_matrix(N_MELS, N_MFCC)), dtype=COMPUTE_DTYPE, device=x.device)
        return track_frames(spec, 0, 1 + x.shape[1] // HOP, dct, keep_mel=True)


def _extract_batch(tracks: list[np.ndarray], sr: int, dev: torch.device) -> list[TrackFeatures]:
    lengths = [t.shape[0] for t in tracks]
    n_max = max(lengths)
    x = torch.zeros(len(tracks), n_max, dtype=SPECTRAL_DTYPE, device=dev)
    for i, t in enumerate(tracks):
        x[i, : t.shape[0]] = torch.from_numpy(np.asarray(t, dtype=np.float32)).to(dev)
    fps = sr / HOP

    spec = spectral_frames(x, sr)
    true_peaks = true_peak(x).cpu().numpy()
    kw_taps = np.array(dsp.k_weighting_fir(sr, K_WEIGHTING_TAPS))
    kw = torch.as_tensor(kw_taps, dtype=SPECTRAL_DTYPE, device=dev)
    weighted = fir_filter(x, kw, delay=kw.shape[0] // 2)
    # Loudness only needs energies of 100 ms blocks (400 ms and 3 s windows are sums of them); the partial
    # last block of each track is summed separately so the filter's ring-out past the end is not counted.
    tenth = int(round(0.1 * sr))
    energy_100ms = block_energy(weighted, tenth).cpu().numpy()
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
        frames = track_frames(spec, i, n_frames, dct)
        mfcc, env, chroma = frames["mfcc"], frames["onset_env"], frames["chroma"]
        tg_mean = frames["tempogram_mean"]

        rms = spec["rms"][i, :n_frames].cpu().numpy()
        voiced = rms >= 10 ** (SILENCE_DBFS / 20)
        if not voiced.any():
            voiced = np.ones_like(voiced)
        tempo = tempo_bpm(tg_mean, fps)
        beats = beat_track(env, tempo, fps)
        if beats.shape[0] < 4:
            # No usable pulse: structure is measured on a fixed half-second grid instead of beats.
            beats = np.arange(0, n_frames, max(1, int(round(0.5 * fps))), dtype=np.int64)
            beat_stability = 0.0
        else:
            ibi = np.diff(beats) / fps
            beat_stability = float(np.clip(1.0 - (ibi.std() / ibi.mean()) / 0.2, 0.0, 1.0))
        beat_times = beats / fps

        e = gaussian_smooth(env, 1.0)
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

        beat_chroma = beat_sync(chroma, beats)
        beat_chroma = beat_chroma / np.maximum(beat_chroma.max(axis=0, keepdims=True), 1e-12)
        mfcc_sync = beat_sync(mfcc[1:13], beats)
        repetition, bound_idx = self_similarity(beat_chroma, mfcc_sync)
        boundaries = [float(beat_times[j]) for j in bound_idx]
        onsets = onset_peaks(env, fps)
        duration = length / sr
        c2d = chroma_2dft(beat_chroma)

        blocks = energy_100ms[i, : -(-length // tenth)]
        loud, lra = loudness(blocks, tenth, length, sr)
        rms_all = math.sqrt(sumsq[i] / length)
        scalars = {
            "duration_s": duration,
            "loudness_lufs": loud,
            "loudness_range_lu": lra,
            "true_peak_dbfs": float(20 * np.log10(max(true_peaks[i], 1e-10))),
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
        phrases, notes = melody.phrases_and_changes(frames["semitone_power"], fps)
        struct = structure.describe(frames["chroma_power"], env, fps, notes)
        scalars.update(struct.scalars)
        treble = structure.harmony_scalars(frames["chroma_treble_power"], fps, notes)
        scalars.update({structure.TREBLE_PREFIX + k: v for k, v in treble.items()})
        transitions, leaps = melody.motion_of(phrases)
        surprising = melody.surprising_leaps(
            phrases, intervals.surprisal(phrases, intervals.load_interval_model())
        )
        gate_steps, gate_voiced = derivative.gate_steps(frames["semitone_power"])
        scalars["melodic_transitions"] = float(transitions)
        scalars["melodic_leap"] = melody.melodic_leap(transitions, leaps)
        scalars["surprising_leap"] = melody.melodic_leap(transitions, surprising)
        scalars["beat_continuity"] = melody.beat_continuity(frames["semitone_power"], beats, fps)
        emb = struct.vector.astype(np.float32)
        out.append(
            TrackFeatures(
                scalars=scalars,
                chroma_2dft=c2d.astype(np.float32),
                embedding=emb,
                beat_chroma=beat_chroma.astype(np.float32),
                boundaries_s=boundaries,
                beat_times_s=[float(t) for t in beat_times],
                chroma_steps=gate_steps.astype(np.float32),
                voiced_steps=gate_voiced,
            )
        )
    return out
