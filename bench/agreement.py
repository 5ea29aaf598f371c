"""CPU-vs-CUDA agreement run under ami-agreement/1, GPU scoring throughput and exact kNN rate (gpu_check.sh).

A worker scores generated music on one device (CUDA by default), a validator rescores it on another (CPU),
and `scoring.agreement.compare_runs` judges every published score. Printed figures: findings (must be 0),
max |d novelty| and |d quality| in bp, verdict changes (inside the guard band or not), commitments
reproduced, tampers 1 bp past a tolerance found; the worker's scoring throughput in multiples of real time
(goal 2,000x on a GPU); exact kNN queries/s over a 1e6 x 512 catalogue resident on the device (goal 20,000/s).

Runs where only torch, numpy and scipy are installed: it imports scoring.* only. What that machine lacks is
said, not crashed on: without soundfile/soxr nothing is decoded (tracks are synthesised directly as canonical
PCM, and stand-in modules let scoring.engine import, so DECODER_VERSION reads "absent" on both sides);
without fpcalc, Chromaprint fingerprints are empty on both sides (the duplicate gate then decides by the
chroma 2D-FT and embedding cosines only).

    python bench/agreement.py [--tracks 200] [--seconds 6] [--worker cuda] [--validator cpu]
                              [--knn-rows 1000000] [--knn-dim 512] [--json PATH]

Exit status: 0 when there is no finding, 1 when there is one, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, bench/ comes first on sys.path and bench/scoring.py would shadow the scoring package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import torch  # noqa: E402

from scoring.agreement import compare_runs, library_differences  # noqa: E402
from scoring.fingerprint import fingerprint_pcm  # noqa: E402
from scoring.knn import exact_topk  # noqa: E402
from scoring.testsignals import varied_music  # noqa: E402

# scoring.decode and scoring.engine (which imports it) need soundfile and soxr, optional here: imported
# inside the functions below, after `stand_in_decoders` has put stand-ins where those are missing.

REALTIME_GOAL = 2000.0
KNN_GOAL_QPS = 20_000.0


def say(msg: str) -> None:
    print(msg, flush=True)


def stand_in_decoders() -> list[str]:
    """Let scoring.engine import where soundfile/soxr are missing; returns what is missing (said aloud)."""
    missing = []
    for name, attr in (("soundfile", "__libsndfile_version__"), ("soxr", "__version__")):
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            setattr(stub, attr, "absent")
            sys.modules[name] = stub
            missing.append(name)
    return missing


def score_run(tracks: list[Any], device: str, fingerprints: dict[str, np.ndarray], chunk: int) -> list[Any]:
    """`score_batch` in mint order, `chunk` tracks at a time, against a catalogue that grows as it goes."""
    import scoring.engine as engine  # after stand_in_decoders (see the note at the imports)

    engine.fingerprint_pcm = lambda pcm, sr, *a, **k: fingerprints[engine_hash(pcm)]  # type: ignore[assignment]
    cat = engine.new_catalogue()
    out: list[Any] = []
    for start in range(0, len(tracks), chunk):
        out += engine.score_batch(tracks[start : start + chunk], cat, device=device, add_to_catalogue=True)
    return out


def engine_hash(pcm: np.ndarray) -> str:
    from scoring.decode import pcm_sha256  # after stand_in_decoders (see the note at the imports)

    return pcm_sha256(pcm)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def knn_rate(rows: int, dim: int, device: str, queries: int = 1024, k: int = 10) -> float:
    """Exact top-k queries/s with the catalogue resident on `device` (best of 3 after a warm-up)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    db = torch.randn(rows, dim, generator=gen, dtype=torch.float32)
    db = torch.nn.functional.normalize(db, dim=1).to(device)
    q = torch.nn.functional.normalize(torch.randn(queries, dim, generator=gen), dim=1).numpy()
    exact_topk(db, q, k, device=device)
    best = float("inf")
    for _ in range(3):
        sync(device)
        t0 = time.perf_counter()
        exact_topk(db, q, k, device=device)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return queries / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--worker", default="cuda", help="the worker's device (default cuda)")
    ap.add_argument("--validator", default="cpu", help="the validator's device (default cpu)")
    ap.add_argument("--chunk", type=int, default=32, help="tracks per score_batch call")
    ap.add_argument("--knn-rows", type=int, default=1_000_000)
    ap.add_argument("--knn-dim", type=int, default=512)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)

    figures: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        figures["gpu"] = torch.cuda.get_device_name(0)
    elif args.worker.startswith("cuda"):
        say("CANNOT RUN on this machine: CUDA is not available (torch sees no GPU); use --worker cpu")
        return 2
    missing = stand_in_decoders()
    if missing:
        say(
            f"NOT RUN here: decoding (missing {', '.join(missing)}); tracks are synthesised as canonical PCM,"
            " DECODER_VERSION reads 'absent' on both sides"
        )
    figures["missing"] = list(missing)
    try:  # after stand_in_decoders (see the note at the imports)
        from scoring.decode import CanonicalAudio, pcm_sha256
        from scoring.engine import TrackInput
    except ImportError as exc:
        say(f"CANNOT RUN on this machine: scoring does not import ({exc})")
        return 2
    diffs = library_differences()
    figures["library_differences"] = diffs
    say("library versions off the pins: " + ("; ".join(diffs) if diffs else "none"))

    t0 = time.perf_counter()
    tracks = []
    for i, x in enumerate(varied_music(args.tracks, args.seconds, seed=10)):
        pcm = np.ascontiguousarray(x, dtype=np.float32)
        audio = CanonicalAudio(pcm, 22050, pcm_sha256(pcm), args.seconds, "wav")
        tracks.append(TrackInput(f"t{i:03d}", audio))
    audio_s = args.tracks * args.seconds
    say(f"{args.tracks} tracks x {args.seconds:g} s generated in {time.perf_counter() - t0:.1f} s")

    fingerprints: dict[str, np.ndarray] = {}
    if shutil.which("fpcalc") is None:
        say("NOT RUN here: Chromaprint (fpcalc missing); fingerprints are empty on both sides")
        figures["missing"].append("fpcalc")
        fingerprints = {t.audio.sha256: np.zeros(0, np.uint32) for t in tracks}
    else:
        t0 = time.perf_counter()
        fingerprints = {t.audio.sha256: fingerprint_pcm(t.audio.pcm, 22050) for t in tracks}
        figures["fpcalc_realtime_x"] = round(audio_s / (time.perf_counter() - t0), 1)

    results = {}
    for role, device in (("worker", args.worker), ("validator", args.validator)):
        score_run(tracks[: args.chunk], device, fingerprints, args.chunk)  # warm-up (kernels, allocator)
        sync(device)
        t0 = time.perf_counter()
        results[role] = score_run(tracks, device, fingerprints, args.chunk)
        sync(device)
        wall = time.perf_counter() - t0
        figures[f"{role}_device"] = device
        figures[f"{role}_realtime_x"] = round(audio_s / wall, 1)
        say(f"{role} on {device}: {audio_s / wall:,.0f}x real time ({wall:.1f} s for {audio_s:g} s of audio)")

    run = compare_runs(results["worker"], results["validator"])
    figures.update(
        tracks=run.tracks,
        published=run.published,
        findings=len(run.findings),
        max_abs_d_novelty_bp=run.max_novelty_diff,
        max_abs_d_quality_bp=run.max_quality_diff,
        verdict_flips=run.verdict_flips,
        borderline_flips=run.borderline_flips,
        target_changes=run.target_changes,
        commitments_equal=run.commitments_equal,
        tampers=run.tampers,
        tampers_found=run.tampers_found,
    )
    say(
        f"agreement {args.worker} worker vs {args.validator} validator: {run.tracks} tracks,"
        f" {run.published} published, findings {len(run.findings)},"
        f" max |d novelty| {run.max_novelty_diff} bp, max |d quality| {run.max_quality_diff} bp,"
        f" verdict flips {run.verdict_flips} ({run.borderline_flips} in the guard band),"
        f" commitments equal {run.commitments_equal}/{run.published},"
        f" tampers found {run.tampers_found}/{run.tampers}"
    )
    for i, f in run.findings[:10]:
        say(f"  finding on t{i:03d}: {f.kind.value}: {f.detail}")
    rt = figures["worker_realtime_x"]
    say(f"worker scoring throughput: {rt:,.0f}x real time = {rt / REALTIME_GOAL:.2f} of the 2,000x goal")

    knn_device = args.worker if args.worker.startswith("cuda") else "cpu"
    rows = args.knn_rows
    try:
        qps = knn_rate(rows, args.knn_dim, knn_device)
    except RuntimeError as exc:  # out of memory on a small device: say so, keep the other figures
        say(f"NOT RUN: exact kNN over {rows} x {args.knn_dim} on {knn_device} ({exc})")
    else:
        figures["knn_qps"] = round(qps)
        figures["knn"] = f"{rows} x {args.knn_dim} on {knn_device}"
        say(
            f"exact kNN {rows:,} x {args.knn_dim} on {knn_device}: {qps:,.0f} queries/s ="
            f" {qps / KNN_GOAL_QPS:.2f} of the 20,000/s goal"
        )
    line = json.dumps(figures, sort_keys=True)
    say(line)
    if args.json is not None:
        args.json.write_text(line + "\n")
    return 1 if run.findings else 0


if __name__ == "__main__":
    sys.exit(main())
