"""Benchmark: quality (ami-quality/2) along every degradation ladder, and its cost against feature extraction.

Prints, all measured in this run on this machine:
  * quality_bp per step and Spearman rho per ladder (target -1 from the first step) on FluidSynth renders of
    music21 pieces, with the ladders of tests/scoring/test_scoring_quality.py (MP3 from the 44.1 kHz stereo
    render, white and pink noise, clipping, bit depth, tanh, low-pass) and the ladders of
    `scoring.probes.LADDERS` (what bench/validity.py uses: MP3 from the canonical PCM);
  * the largest change of a -6 dB copy, in % of the score (target <= 1 %);
  * the same on excerpts of human-made game music whose Debian packages are installed (probes.SOUNDTRACKS);
  * CPU and wall time of `quality_measures` on a 3-minute track against `scoring.features.extract_features`
    of the same track (one torch thread, best of 3).

    .venv/bin/python bench/quality.py            # 3 pieces x 25 s, soundtracks if installed
    .venv/bin/python bench/quality.py --quick    # 1 piece, no soundtracks
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scipy.stats as st  # noqa: E402
import torch  # noqa: E402

from scoring import probes  # noqa: E402
from scoring import quality as Q  # noqa: E402
from scoring.corpus import render_piece  # noqa: E402
from scoring.decode import SAMPLE_RATE, decode_bytes, decode_file  # noqa: E402
from scoring.features import extract_features  # noqa: E402

PIECES = (("bach", "bach_bwv66_6"), ("mozart", "mozart_k155_m1"), ("joplin", "joplin_maple_leaf"))


def pink_noise(n: int, seed: int) -> np.ndarray:
    """Unit-RMS pink noise: white Gaussian noise shaped by 1/sqrt(f) in the FFT domain."""
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    k = np.arange(spec.size, dtype=np.float64)
    k[0] = 1.0
    out = np.fft.irfft(spec / np.sqrt(k), n)
    return np.asarray(out / np.std(out))


def mp3_upload(wav: Path, kbps: int) -> np.ndarray:
    """A 44.1 kHz stereo WAV as a creator's MP3 upload: ffmpeg libmp3lame CBR, decoded by scoring.decode."""
    cmd = ["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", f"{kbps}k"]
    out = subprocess.run([*cmd, "-f", "mp3", "-"], check=True, capture_output=True)
    return decode_bytes(out.stdout).pcm


def with_noise(x: np.ndarray, snr_db: float, pink: bool, seed: int = 7) -> np.ndarray:
    """``x`` plus white or pink Gaussian noise at ``snr_db`` under the track's RMS."""
    noise = pink_noise(x.size, seed) if pink else np.random.default_rng(seed).standard_normal(x.size)
    rms = math.sqrt(float(np.mean(np.asarray(x, np.float64) ** 2)))
    return (x + noise * rms * 10 ** (-snr_db / 20)).astype(np.float32)


def build_ladders(wav: Path) -> dict[str, list[np.ndarray]]:
    """Every ladder of the quality brief from one render, first step = the best (canonical PCM, float32):
    MP3 lossless > 128 > 64 > 32 kbps; white noise clean > 40 > 30 > 20 > 10 > 0 dB SNR; pink 40 > .. > 0 dB;
    hard clipping at drive 1 (peak at full scale) .. 8; 16 > 12 > 8 > 6 bits; tanh drive 0 (clean) .. 8;
    low-pass 11 > 8 > 5 > 3 kHz."""
    x = decode_file(wav).pcm
    x64 = x.astype(np.float64)
    peak = float(np.max(np.abs(x64)))
    return {
        "mp3": [x] + [mp3_upload(wav, kbps) for kbps in (128, 64, 32)],
        "white": [x] + [with_noise(x, snr, False) for snr in (40, 30, 20, 10, 0)],
        "pink": [with_noise(x, snr, True) for snr in (40, 30, 20, 10, 0)],
        "clip": [np.clip(x64 * d / peak, -1, 1).astype(np.float32) for d in (1.0, 1.5, 2.0, 4.0, 8.0)],
        "bits": [probes.requantise(x, b) for b in (16, 12, 8, 6)],
        "tanh": [x] + [(np.tanh(d * x64 / peak) / math.tanh(d)).astype(np.float32) for d in (1, 2, 4, 8)],
        "lowpass": [probes.lowpass(x, c) for c in (11000.0, 8000.0, 5000.0, 3000.0)],
    }


def probe_ladders(x: np.ndarray) -> dict[str, list[np.ndarray]]:
    """`scoring.probes.LADDERS` applied to canonical PCM (the validity bench's definition)."""
    return {
        f"v:{name}": [probes.degrade(x, name, param) for _, param in steps]
        for name, steps in probes.LADDERS.items()
    }


def report(label: str, ladders: dict[str, list[np.ndarray]]) -> tuple[int, int, float]:
    """Print each ladder's quality_bp and rho; returns (ladders, ladders with rho = -1, worst -6 dB %)."""
    gain = np.float32(10 ** (-6 / 20))
    ok = 0
    worst = 0.0
    for name, steps in ladders.items():
        bp = [Q.quality_bp(Q.quality_measures(s, SAMPLE_RATE)) for s in steps]
        rho = float(st.spearmanr(np.arange(len(bp)), bp).statistic)
        ok += int(rho <= -1 + 1e-9)
        for s in steps:
            a = Q.quality_score(Q.quality_measures(s, SAMPLE_RATE))
            b = Q.quality_score(Q.quality_measures((s * gain).astype(np.float32), SAMPLE_RATE))
            worst = max(worst, 100 * abs(b - a) / a)
        flag = "" if rho <= -1 + 1e-9 else "   <-- not monotone"
        print(f"  {label:24s} {name:14s} rho {rho:+.2f}  {' > '.join(str(v) for v in bp)}{flag}")
    return len(ladders), ok, worst


def timing(pcm: np.ndarray) -> None:
    """CPU and wall seconds of quality_measures vs extract_features on the same track (best of 3)."""

    def best(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        runs = []
        for _ in range(3):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            runs.append((time.process_time() - c0, time.perf_counter() - w0))
        return min(runs)

    q_cpu, q_wall = best(lambda: Q.quality_measures(pcm, SAMPLE_RATE))
    f_cpu, f_wall = best(lambda: extract_features([pcm], SAMPLE_RATE, device="cpu"))
    minutes = pcm.size / SAMPLE_RATE / 60
    print(f"\ntime per {minutes:.1f}-minute track (1 torch thread, best of 3):")
    print(f"  quality_measures   {q_cpu:6.3f} CPU-s  {q_wall:6.3f} wall-s")
    print(f"  extract_features   {f_cpu:6.3f} CPU-s  {f_wall:6.3f} wall-s   (ratio {q_cpu / f_cpu:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one piece, no soundtracks")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each render")
    args = parser.parse_args()
    torch.set_num_threads(1)
    totals = [0, 0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        track = None
        for key, piece in PIECES[:1] if args.quick else PIECES:
            wav = render_piece(piece, Path(tmp) / f"{key}.wav", seconds=args.seconds)
            x = decode_file(wav).pcm
            track = x if track is None else track
            print(f"{key} ({piece}, {x.size / SAMPLE_RATE:.0f} s):")
            for ladders in (build_ladders(wav), probe_ladders(x)):
                n, ok, worst = report(key, ladders)
                totals = [totals[0] + n, totals[1] + ok, max(totals[2], worst)]
        if not args.quick:
            for sound in probes.SOUNDTRACKS:
                try:
                    x = probes.soundtrack_excerpt(sound, args.seconds)
                except probes.ProbeUnavailable:
                    continue
                print(f"{sound.name} ({sound.package}, {sound.genre}, {x.size / SAMPLE_RATE:.0f} s excerpt):")
                n, ok, worst = report(sound.name, probe_ladders(x))
                totals = [totals[0] + n, totals[1] + ok, max(totals[2], worst)]
        print(f"\nladders with rho = -1: {totals[1]} / {totals[0]};  largest -6 dB change: {totals[2]:.3f} %")
        assert track is not None
        reps = int(math.ceil(180 * SAMPLE_RATE / track.size))
        timing(np.tile(track, reps)[: 180 * SAMPLE_RATE])


if __name__ == "__main__":
    main()
