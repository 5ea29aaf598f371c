"""Exact kNN benchmark: scoring.knn.exact_topk (torch) vs faiss-cpu IndexFlatIP, measured in the same run.

Prints one JSON object: queries/s of both on the same random unit vectors and queries, their ratio (target on
CPU: >= 0.8), the agreement of the returned neighbours, and, when CUDA is present, the torch GPU rate with the
catalogue resident on the GPU (target: >= 20,000 queries/s over 1e6 x 512).

    .venv/bin/python bench/scoring_knn.py [--n 1000000] [--dim 512] [--queries 256] [--k 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, bench/ comes first on sys.path and bench/scoring.py would shadow the scoring package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import torch  # noqa: E402

from scoring.knn import exact_topk  # noqa: E402


def _unit_rows(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + block.shape[0]] = block
    return out


def _best_rate(fn: Any, n_queries: int, repeats: int) -> float:
    fn()  # warm-up (thread pools, allocator)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_queries / best


def run(
    n_vectors: int = 1_000_000,
    dim: int = 512,
    n_queries: int = 256,
    k: int = 10,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure exact top-k queries/s of torch (CPU, and GPU when present) and faiss IndexFlatIP.

    Returns:
        dict with n_vectors, dim, n_queries, k, torch_cpu_qps, faiss_cpu_qps, ratio_torch_over_faiss,
        same_neighbours (fraction of identical index lists), thread counts, and torch_cuda_qps with CUDA.
    """
    import faiss  # heavy optional dependency (faiss-cpu, the baseline only): loaded when the benchmark runs

    rng = np.random.default_rng(seed)
    db = _unit_rows(rng, n_vectors, dim)
    queries = _unit_rows(rng, n_queries, dim)
    index = faiss.IndexFlatIP(dim)
    index.add(db)

    result: dict[str, Any] = {}

    def torch_cpu() -> None:
        result["torch"] = exact_topk(db, queries, k, device="cpu")

    def faiss_cpu() -> None:
        result["faiss"] = index.search(queries, k)

    out: dict[str, Any] = {
        "n_vectors": n_vectors,
        "dim": dim,
        "n_queries": n_queries,
        "k": k,
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
    }
    out["faiss_cpu_qps"] = round(_best_rate(faiss_cpu, n_queries, repeats), 1)
    out["torch_cpu_qps"] = round(_best_rate(torch_cpu, n_queries, repeats), 1)
    out["ratio_torch_over_faiss"] = round(out["torch_cpu_qps"] / out["faiss_cpu_qps"], 3)
    ti, fi = result["torch"][1], result["faiss"][1]
    out["same_neighbours"] = float(np.mean([set(a) == set(b) for a, b in zip(ti, fi, strict=True)]))
    if torch.cuda.is_available():
        db_gpu = torch.from_numpy(db).cuda()
        big_q = _unit_rows(rng, 8192, dim)

        def torch_gpu() -> None:
            exact_topk(db_gpu, big_q, k, block_rows=262_144)
            torch.cuda.synchronize()

        out["torch_cuda_qps"] = round(_best_rate(torch_gpu, big_q.shape[0], repeats), 1)
        out["device"] = torch.cuda.get_device_name(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="exact kNN: torch vs faiss-cpu IndexFlatIP")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.dim, args.queries, args.k, args.repeats), indent=1))


if __name__ == "__main__":
    main()
