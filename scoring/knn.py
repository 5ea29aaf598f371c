"""Exact maximum-inner-product search over float32 rows (torch matmul by row blocks, a top-k per block and a
merge; CUDA when present), and the one normalisation of stored and query embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.errors import CatalogError

DEFAULT_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class Neighbour:
    """One search hit: catalogue position, entry id, and inner product with the query."""

    index: int
    id: str
    score: float


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm, computed in float64 and rounded once to float32 (zero rows stay zero).

    The one normalisation used for stored embeddings and for queries, so that every path gets the same float32
    bits from the same raw vector.
    """
    a = np.asarray(x, dtype=np.float64)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    norms = np.linalg.norm(a2, axis=1, keepdims=True)
    out = np.where(norms > 0, a2 / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
    return out.reshape(a.shape)


UNIT_TOLERANCE = 1e-6


def stored_rows(x: np.ndarray) -> np.ndarray:
    """Exactly the float32 rows `Catalogue.add` stores for raw rows ``x``.

    A row whose float64 norm is within `UNIT_TOLERANCE` of 1 is kept bit for bit; any other row goes through
    `unit_rows`. The map is idempotent (its outputs are unit within the tolerance), so re-adding stored
    embeddings (a catalogue prefix, a validator's replay) reproduces the same bits.
    """
    a = np.asarray(x, dtype=np.float32)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    norms = np.linalg.norm(a2.astype(np.float64), axis=1)
    keep = np.abs(norms - 1.0) <= UNIT_TOLERANCE
    out = np.where(keep[:, None], a2, unit_rows(a2)).astype(np.float32)
    return out.reshape(a.shape)


def pick_device(device: str | None) -> str:
    """`device`, or CUDA when present and the CPU otherwise."""
    import torch  # heavy: only a search needs it, and CLI commands open catalogues without searching

    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def exact_topk(
    database: Any,
    queries: np.ndarray,
    k: int,
    device: str | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum-inner-product search.

    ``score[q, j] = <queries[q], database[idx[q, j]]>``, the k largest per query in descending order (tie
    order is not guaranteed across devices; scores agree to float32 rounding).

    Args:
        database: [N, D] float32 numpy array, or a float32 torch tensor already resident on its device (then
            ``device`` is ignored; used to keep a large catalogue on the GPU between searches).
        queries: [Q, D] float32.
        k: neighbours per query; clipped to N.
        device: torch device string; None picks CUDA when available.
        block_rows: database rows per matmul block (memory: block_rows x Q floats).

    Returns:
        (scores [Q, k'] float32, indices [Q, k'] int64) with k' = min(k, N).
    """
    import torch  # heavy: see pick_device

    qs = np.ascontiguousarray(queries, dtype=np.float32)
    if isinstance(database, torch.Tensor):
        db_t: torch.Tensor = database
        dev = db_t.device
    else:
        db_np = np.ascontiguousarray(database, dtype=np.float32)
        db_t = torch.from_numpy(db_np)
        dev = torch.device(pick_device(device))
    if qs.ndim != 2 or db_t.ndim != 2 or qs.shape[1] != db_t.shape[1]:
        raise CatalogError(f"query shape {qs.shape} does not match catalogue shape {tuple(db_t.shape)}")
    n = int(db_t.shape[0])
    kk = min(int(k), n)
    if kk <= 0 or qs.shape[0] == 0:
        return np.zeros((qs.shape[0], 0), np.float32), np.zeros((qs.shape[0], 0), np.int64)
    with torch.inference_mode():
        q = torch.from_numpy(qs).to(dev)
        best_s: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for start in range(0, n, block_rows):
            block = db_t[start : start + block_rows].to(dev)
            sims = q @ block.T
            kb = min(kk, sims.shape[1])
            s, i = torch.topk(sims, kb, dim=1)
            i = i + start
            if best_s is None or best_i is None:
                best_s, best_i = s, i
            else:
                cat_s = torch.cat([best_s, s], dim=1)
                cat_i = torch.cat([best_i, i], dim=1)
                s2, pos = torch.topk(cat_s, kk, dim=1)
                best_s, best_i = s2, torch.gather(cat_i, 1, pos)
        assert best_s is not None and best_i is not None
        return best_s.cpu().numpy(), best_i.cpu().numpy().astype(np.int64)
