"""Benchmark: the scoring feature extractor vs a straightforward librosa implementation, in one run.

Prints, all measured in this run on this machine:
  * tracks/s and real-time factor of what the scorer computes from PCM, `scoring.engine.features_and_quality`:
    `scoring.features.extract_features` (torch, batched; CPU unless a CUDA device is present or --device says
    otherwise) with `scoring.quality.quality_measures` of each track on a second thread beside it, vs a plain
    librosa/pyloudnorm/scipy implementation of the same set:
    model 1's features, the structure (the same numpy code on librosa's chroma and onset envelope), the
    melodic motion and the gate's salience steps (the same numpy code on a librosa STFT's semitones),
    quality measures (librosa STFTs, plain numpy MDCT products); "straightforward" calls every librosa
    feature on the waveform as its documentation shows, "shared-STFT" reuses one transform (hand-optimised);
    ratio target >= 5x the straightforward one on CPU;
  * peak memory (RSS high-water mark of a fresh subprocess) for decoding a track and computing its features
    and quality measures as the engine does (target < 1 GB): a 5-minute track (the longest whose quality
    measures run beside the features), a 15-minute one (the longest accepted), and 15 minutes of 96 kHz
    stereo (the most samples accepted, `scoring.decode.MAX_DECODED_SAMPLES`); 2 minutes with --quick;
  * if bench/scoring_knn.py exists: its exact-kNN section (`run(n_vectors, dim) -> dict`).

    .venv/bin/python bench/scoring.py            # 8 x 180 s tracks, 3 memory probes, kNN 1e6 x 128
    .venv/bin/python bench/scoring.py --quick    # about a minute: 4 tracks x 30 s, 2-minute memory probe

Each implementation runs one untimed pass; then they take turns for REPEATS rounds, and each one's fastest
timed pass counts (`interleaved_best`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring import derivative, dsp, intervals, melody, salience, structure  # noqa: E402
from scoring import quality as q  # noqa: E402
from scoring import testsignals as ts  # noqa: E402
from scoring.decode import SAMPLE_RATE  # noqa: E402
from scoring.transforms import TREBLE_FMIN_HZ  # noqa: E402

SR = SAMPLE_RATE
_SEMITONES = dsp.semitone_filterbank(SR, 2048, salience.BANK_LOW, salience.BANK_HIGH)


def make_tracks(n: int, seconds: float) -> list[np.ndarray]:
    """Varied synthetic music: chord songs in several keys/tempi/modes, a two-part song, noise."""
    out: list[np.ndarray] = []
    for i in range(n):
        kind = i % 4
        if kind == 3:
            out.append(ts.two_part_song(seconds, bpm=100 + 7 * i))
        elif kind == 2:
            out.append(
                0.5 * ts.chord_song(55 + i, 90 + 5 * i, seconds, drums=False)
                + ts.white_noise(seconds, amp=0.02, seed=i)
            )
        else:
            out.append(ts.chord_song(57 + i, 100 + 6 * i, seconds, seed=i))
    return out


def librosa_features(y: np.ndarray, sr: int = SR, shared_stft: bool = False) -> dict[str, object]:
    """The same feature set written with librosa, pyloudnorm, scipy and numpy.

    shared_stft=False is the straightforward version (every librosa feature called on the waveform, as its
    documentation shows); shared_stft=True computes one STFT and passes spectrograms around (hand-optimised).
    """
    import librosa

    y32 = y.astype(np.float32)
    # What each librosa call is given: the waveform (straightforward) or a spectrogram computed once.
    mag: dict[str, np.ndarray] = {"y": y32}
    power: dict[str, np.ndarray] = {"y": y32}
    mel_db: dict[str, np.ndarray] = {"y": y32}
    if shared_stft:
        spec = np.abs(librosa.stft(y32, n_fft=2048, hop_length=512))
        mag, power = {"S": spec}, {"S": spec**2}
        mel_db = {"S": librosa.power_to_db(librosa.feature.melspectrogram(**power, sr=sr))}
    else:
        librosa.feature.melspectrogram(y=y32, sr=sr)
    mfcc = librosa.feature.mfcc(**mel_db, sr=sr, n_mfcc=20)
    chroma = librosa.feature.chroma_stft(**power, sr=sr)
    onset = librosa.onset.onset_strength(**mel_db, sr=sr)
    chroma_power = librosa.feature.chroma_stft(**power, sr=sr, norm=None)
    pulse: dict[str, np.ndarray] = {"onset_envelope": onset} if shared_stft else {"y": y32}
    tempo, beats = librosa.beat.beat_track(**pulse, sr=sr)
    onsets = librosa.onset.onset_detect(**pulse, sr=sr)
    spectral = [
        librosa.feature.spectral_centroid(**mag, sr=sr),
        librosa.feature.spectral_flatness(**mag),
        librosa.feature.spectral_rolloff(**mag, sr=sr, roll_percent=0.99),
        librosa.feature.rms(**mag),
    ]
    out = _common_tail(y, sr, chroma, mfcc, beats)
    out.update(tempo=tempo, onsets=len(onsets), spectral=[float(np.mean(v)) for v in spectral])
    # The structure (chord steps, information content, repetition, rhythm; the harmony again on the upper
    # voices' chroma), the melodic motion with its surprising leaps and the gate's salience steps: librosa
    # has no function for these, so both sides run the same numpy code, here on librosa's chroma, onset
    # envelope and a semitone spectrum folded from its STFT.
    stft_power = power["S"] if shared_stft else np.abs(librosa.stft(y32, n_fft=2048, hop_length=512)) ** 2
    semitone_power = _SEMITONES @ stft_power
    phrases, notes = melody.phrases_and_changes(semitone_power, sr / 512)
    out["structure"] = structure.describe(chroma_power, onset, sr / 512, notes).vector
    low = librosa.fft_frequencies(sr=sr, n_fft=2048)[:, None] < TREBLE_FMIN_HZ
    treble_power = np.where(low, 0.0, stft_power)
    treble = librosa.feature.chroma_stft(S=treble_power, sr=sr, norm=None)
    out["treble"] = structure.harmony_scalars(treble, sr / 512, notes)
    model = intervals.load_interval_model()
    out["melody"] = (
        melody.motion_of(phrases),
        melody.surprising_leaps(phrases, intervals.surprisal(phrases, model)),
    )
    out["gate_steps"] = derivative.gate_steps(semitone_power)[0]
    out["quality"] = librosa_quality(y32, sr, shared_stft)
    return out


def librosa_quality(y: np.ndarray, sr: int, shared_stft: bool) -> dict[str, float]:
    """Model 2's quality measures with librosa's STFT and plain float64 numpy frame-by-basis products for the
    MP3-grid MDCT; the statistics over the spectrograms (percentiles, medians, counts) are the same numpy code
    as `scoring.quality` on both sides. shared_stft=True reuses one transform for the smoothed spectrogram."""
    import librosa
    import scipy.ndimage

    power = (np.abs(librosa.stft(y, n_fft=q.N_FFT, hop_length=q.HOP, center=False)) ** 2).T.astype(np.float64)
    power = power[q.active_frames(power)]
    smooth = scipy.ndimage.uniform_filter1d(power, q.SMOOTH_BINS, axis=1, mode="constant")[:, ::3]
    freqs = (np.arange(power.shape[1]) * sr / q.N_FFT)[::3]
    bandwidth = q.bandwidth_hz(smooth, freqs)
    codec_hi = min(q.CODEC_HI_HZ, 0.95 * bandwidth)
    short = (np.abs(librosa.stft(y, n_fft=256, hop_length=256, center=False)) ** 2).T.astype(np.float64)
    f256 = np.arange(short.shape[1]) * sr / 256
    band = short[q.active_frames(short)][:, (f256 >= q.CODEC_LO_HZ) & (f256 < codec_hi)]
    holes = 0.0
    if band.shape[1] >= 4 and band.shape[0] > 0:
        holes = float(np.mean(band < np.median(band, axis=1, keepdims=True) * 10.0 ** (-q.HOLE_DB / 10.0)))
    return {
        "floor_margin_db": q.floor_margin_db(smooth, freqs, codec_hi),
        "bandwidth_hz": bandwidth,
        "hole_ratio": holes,
        "codec_zero_excess": _codec_zero_excess_plain(y.astype(np.float64), sr, codec_hi),
        "flat_top_ratio": q.flat_top_ratio(y),
        "crest_db": q.crest_factor_db(y),
        "effective_bits": q.effective_bits(y),
    }


def _codec_zero_excess_plain(x: np.ndarray, sr: int, hi_hz: float) -> float:
    """`scoring.quality.codec_zero_excess` as its docstring reads: every start of the loudest 0.5 s framed
    with librosa and multiplied by the MDCT basis, then the same measure at the best offset."""
    import librosa

    n, n2 = q.MDCT_N, 2 * q.MDCT_N
    total = (x.size - n2) // n
    basis = q._mdct_basis(sr, hi_hz)
    if total < 16 or basis.shape[0] < 4:
        return 0.0
    energy = np.add.reduceat(x[: total * n] ** 2, np.arange(0, total * n, n))
    span = min(total - 1, max(4, int(0.5 * sr) // n))
    g0 = int(np.argmax(np.convolve(energy, np.ones(span), mode="valid")[: total - span]))
    segment = x[g0 * n : (g0 + span) * n + n2]
    frames = librosa.util.frame(segment, frame_length=n2, hop_length=1)[:, : span * n]
    z = q._zero_share(((frames.T @ basis.T) ** 2).reshape(span, n, -1))
    best = int(np.nanargmax(np.nanmean(z, axis=0)))
    grid = np.unique(np.linspace(0, total - 2, min(600, total - 1)).astype(np.int64))
    grid = grid[energy[grid] >= np.median(energy) * 1e-3]
    starts = grid[:, None] * n + ((best + np.array([0, 36, 72, 144, 216])) % n)[None, :]
    zs = np.nanmean(q._zero_share((x[starts[..., None] + np.arange(n2)] @ basis.T) ** 2), axis=0)
    return float(max(0.0, zs[0] - np.median(zs[1:])))


def _common_tail(y: np.ndarray, sr: int, chroma: np.ndarray, mfcc: np.ndarray, beats: np.ndarray) -> dict:
    """Loudness, peaks, structure and 2DFT: the parts librosa has no function for, written plainly."""
    import librosa
    import pyloudnorm
    import scipy.signal

    meter = pyloudnorm.Meter(sr)
    loudness = meter.integrated_loudness(y)
    # Loudness range: K-weight once with pyloudnorm's filters, then 3 s windows every 100 ms (EBU Tech 3342).
    weighted = y
    for stage in meter._filters.values():
        weighted = stage.apply_filter(weighted)
    csum = np.concatenate(([0.0], np.cumsum(weighted**2)))
    starts = np.arange(0, len(y) - 3 * sr, sr // 10)
    short_term = -0.691 + 10 * np.log10((csum[starts + 3 * sr] - csum[starts]) / (3 * sr) + 1e-12)
    lra = np.percentile(short_term, 95) - np.percentile(short_term, 10)
    true_peak = np.max(np.abs(scipy.signal.resample_poly(y, 4, 1)))
    full = np.abs(y) >= 0.999
    clipped = np.convolve(full, np.ones(3), "same")
    sync_chroma = librosa.util.sync(chroma, beats)
    sync_mfcc = librosa.util.sync(mfcc, beats)
    feats = librosa.util.normalize(np.vstack([sync_chroma, sync_mfcc[1:13]]), axis=0)
    rec = librosa.segment.recurrence_matrix(feats, mode="affinity", sym=True)
    sim = feats.T @ feats
    half = 16
    grid = np.arange(2 * half) - half + 0.5
    taper = np.exp(-0.5 * (grid[:, None] ** 2 + grid[None, :] ** 2) / (half / 2) ** 2)
    kernel = np.sign(np.outer(grid, grid)) * taper
    padded = np.pad(sim, half)
    novelty = np.array(
        [np.sum(padded[i : i + 2 * half, i : i + 2 * half] * kernel) for i in range(sim.shape[0])]
    )
    bounds = librosa.util.peak_pick(novelty, pre_max=8, post_max=8, pre_avg=8, post_avg=8, delta=0.0, wait=8)
    patches = [sync_chroma[:, i : i + 75] for i in range(0, max(1, sync_chroma.shape[1] - 75), 8)]
    c2d = np.median([np.abs(np.fft.rfft2(p, s=(12, 75))) for p in patches], axis=0)
    key = np.corrcoef(np.vstack([chroma.mean(axis=1), np.eye(12)]))[0]
    return {
        "loudness": loudness,
        "lra": lra,
        "true_peak": true_peak,
        "clip": clipped.mean(),
        "rec": rec.sum(),
        "bounds": len(bounds),
        "c2d": c2d,
        "key": key,
    }


REPEATS = 5
"""Timed rounds after the untimed first one; each side's fastest pass counts (as timeit does): on a shared
machine the others measure the neighbours."""


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved_best(
    passes: dict[str, Callable[[], object]], repeats: int = REPEATS
) -> dict[str, tuple[float, float, float]]:
    """Per name, (wall, CPU) seconds of the fastest of `repeats` passes, and the wall seconds of its untimed
    first pass.

    The sides take turns, one pass each per round, rather than one side's passes and then the other's: a
    neighbour's load on this shared host lasts tens of seconds, and taking turns puts it on both sides of the
    ratio (measured: three quick runs in a row read 2.92x, 5.66x and 4.53x when ours ran first and librosa
    after it).
    """
    cold = {name: _timed(fn)[0] for name, fn in passes.items()}
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):
        for name, fn in passes.items():
            best[name] = min(best.get(name, (math.inf, math.inf)), _timed(fn))
    return {name: (*best[name], cold[name]) for name in passes}


def ours_pass(tracks: list[np.ndarray], device: str | None, batch_size: int) -> Callable[[], None]:
    """One pass of the features and the quality measures of all tracks, as the engine computes them
    (`features_and_quality`).

    The first pass is not timed: the worker's scorer is one long-lived process, so what a mint costs is the
    steady state; the first pass pays the page faults of fresh buffers, FFT plans and the CUDA context once.
    """
    import torch

    from scoring.engine import features_and_quality

    pcms = [y.astype(np.float32) for y in tracks]  # canonical PCM is float32

    def one_pass() -> None:
        features_and_quality(pcms, SR, device=device, batch_size=batch_size)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return one_pass


def librosa_pass(tracks: list[np.ndarray], shared_stft: bool) -> Callable[[], None]:
    """One pass of the librosa implementation over all tracks (numba JIT, FFT plans and fresh buffers are
    paid in the untimed first pass, as ours)."""

    def one_pass() -> None:
        for y in tracks:
            librosa_features(y, shared_stft=shared_stft)

    return one_pass


_MEMORY_PROBE = """
import sys
sys.path.insert(0, {root!r})
from scoring.decode import decode_file
from scoring.engine import features_and_quality
path = {path!r}
def hwm():
    # VmHWM (not ru_maxrss, which Linux carries across exec from the parent) is this process's own peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm()
audio = decode_file(path)
feats, measures = features_and_quality([audio.pcm], audio.sample_rate, device={device!r})
peak = hwm()
print(base, peak, audio.duration_s)
"""


def memory_probe(
    seconds: float, device: str | None, rate: int = 44100, channels: int = 2
) -> tuple[float, float, float]:
    """(RSS after imports, peak RSS, duration) in MiB / s: a fresh interpreter decodes a FLAC of `seconds` at
    `rate` with `channels` channels and computes its features and quality measures (`features_and_quality`).

    At 44.1 kHz the audio is a chord song; at other rates a chord progression of two sines per 10 s block,
    written block by block (a chord song at 96 kHz for 15 minutes would take the bench itself gigabytes).
    """
    import soundfile as sf

    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "long.flac")
        if rate == 44100:
            x = ts.chord_song(60, 120, seconds, sr=44100)
            sf.write(path, np.stack([x, 0.7 * x][:channels], axis=1), 44100, subtype="PCM_16")
            del x
        else:
            with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16", format="FLAC") as fh:
                gains = 0.7 ** np.arange(channels)
                for b, t0 in enumerate(range(0, int(seconds * rate), 10 * rate)):
                    t = (t0 + np.arange(min(10 * rate, int(seconds * rate) - t0))) / rate
                    f0 = 220.0 * 2 ** ((b * 5 % 12) / 12)
                    y = 0.2 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 1.5 * f0 * t)
                    fh.write(y[:, None] * gains)
        code = _MEMORY_PROBE.format(root=str(ROOT), path=path, device=device)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    base, peak, dur = out.split()
    return int(base) / 1024, int(peak) / 1024, float(dur)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about one minute in all")
    parser.add_argument("--tracks", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--device", default=None, help="torch device for ours (default: CUDA if present)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads for ours (default: torch's)"
    )
    parser.add_argument("--memory-seconds", type=float, default=None)
    parser.add_argument("--knn-vectors", type=int, default=None)
    parser.add_argument("--knn-dim", type=int, default=128)
    parser.add_argument("--skip-librosa", action="store_true", help="GPU runs: skip the slow CPU baseline")
    parser.add_argument("--skip-knn", action="store_true", help="skip the kNN section")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--json", action="store_true", help="also print one JSON line with every figure")
    args = parser.parse_args()
    n_tracks = args.tracks or (4 if args.quick else 8)
    seconds = args.seconds or (30.0 if args.quick else 180.0)
    # Full runs probe the longest track whose quality measures overlap the features (the engine's
    # OVERLAP_MAX_SECONDS), the longest the decoder accepts, where they run one after the other, and the
    # most samples it accepts (MAX_DECODED_SAMPLES: that length at 96 kHz in stereo).
    # Each probe: (seconds, source rate, channels).
    if args.memory_seconds:
        mem_probes: tuple[tuple[float, int, int], ...] = ((args.memory_seconds, 44100, 2),)
    elif args.quick:
        mem_probes = ((120.0, 44100, 2),)
    else:
        from scoring.decode import DEFAULT_MAX_SECONDS, MAX_DECODED_SAMPLES
        from scoring.engine import OVERLAP_MAX_SECONDS

        largest_rate = MAX_DECODED_SAMPLES // (2 * int(DEFAULT_MAX_SECONDS))
        mem_probes = (
            (OVERLAP_MAX_SECONDS, 44100, 2),
            (DEFAULT_MAX_SECONDS, 44100, 2),
            (DEFAULT_MAX_SECONDS - 1, largest_rate, 2),
        )
    knn_vectors = args.knn_vectors or (100_000 if args.quick else 1_000_000)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"audio: {n_tracks} tracks x {seconds:.0f} s")
    tracks = make_tracks(n_tracks, seconds)
    audio_s = n_tracks * seconds
    results: dict[str, object] = {"device": device, "tracks": n_tracks, "seconds_per_track": seconds}

    passes = {"ours": ours_pass(tracks, device, args.batch_size)}
    if not args.skip_librosa:
        passes["librosa"] = librosa_pass(tracks, shared_stft=False)
        passes["librosa_shared"] = librosa_pass(tracks, shared_stft=True)
    timings = interleaved_best(passes)
    ours, ours_cpu, ours_cold = timings["ours"]
    results.update(
        ours_s=ours,
        ours_cpu_s=ours_cpu,
        ours_cold_s=ours_cold,
        ours_tracks_per_s=n_tracks / ours,
        ours_realtime=audio_s / ours,
    )
    print(
        f"ours                     : {ours:7.2f} s wall ({ours_cpu:7.2f} s CPU) = "
        f"{n_tracks / ours:7.2f} tracks/s, {audio_s / ours:8.1f}x real time "
        f"(cold first pass {ours_cold:.2f} s)"
    )
    if not args.skip_librosa:
        for label, key in (("straightforward", "librosa"), ("shared-STFT", "librosa_shared")):
            base, base_cpu, _ = timings[key]
            results.update(
                {
                    f"{key}_s": base,
                    f"{key}_cpu_s": base_cpu,
                    f"{key}_realtime": audio_s / base,
                    f"{key}_speedup": base / ours,
                    f"{key}_speedup_cpu": base_cpu / ours_cpu,
                }
            )
            print(
                f"librosa ({label:15s}): {base:7.2f} s wall ({base_cpu:7.2f} s CPU) = "
                f"{n_tracks / base:7.2f} tracks/s, {audio_s / base:8.1f}x real time; ours is "
                f"{base / ours:.2f}x faster (wall), {base_cpu / ours_cpu:.2f}x (CPU time)"
            )
        print("target: >= 5x the straightforward librosa implementation on CPU")

    if args.skip_memory:
        print("memory  : skipped (--skip-memory)")
    else:
        peaks: dict[str, float] = {}
        for mem_seconds, rate, channels in mem_probes:
            rss_base, rss_peak, dur = memory_probe(mem_seconds, device, rate, channels)
            source = f"{rate / 1000:g} kHz x {channels}"
            peaks[f"{dur:.0f} s {source}"] = rss_peak
            results.update(rss_after_imports_mib=rss_base)
            print(
                f"memory  : {dur:.0f} s track ({source} FLAC) decoded + featurised + quality measures: peak "
                f"RSS {rss_peak:.0f} MiB (after imports {rss_base:.0f} MiB; target < 1024 MiB)"
            )
        results.update(rss_peak_by_track_s_mib=peaks, rss_peak_mib=max(peaks.values()))

    knn_path = ROOT / "bench" / "scoring_knn.py"
    if args.skip_knn:
        print("kNN     : skipped (--skip-knn)")
    elif knn_path.is_file():
        spec = importlib.util.spec_from_file_location("scoring_knn", knn_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        knn = module.run(knn_vectors, args.knn_dim)
        results["knn"] = knn
        print(f"kNN     : {knn_vectors} x {args.knn_dim}: {knn}")
    else:
        print("kNN     : bench/scoring_knn.py not present; skipped")
    if args.json:
        print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
