"""The catalogue map: a 2-D PCA projection of the track embeddings, k-means style clusters, emerging clusters.

Computed once per catalogue state (keyed by the manifest's root hash) in a thread, never per request, and kept
in memory with the unit embeddings for the "nearest in the catalogue" lists of the track pages.

- Projection: PCA by the eigenvectors of the embeddings' covariance (D x D: 100,000 x 128 takes well under
  a second), the two with the largest eigenvalues; the sign of each axis is fixed so that its largest
  loading is positive (the same catalogue always draws the same map).
- Style clusters: k-means (k = round(sqrt(n / 2)), 1..12) on the first PCA_DIMS components, seeded by
  k-means++ with a fixed seed, 25 Lloyd iterations; each cluster is named by its most common genre.
- Emerging: a cluster of at least EMERGING_MIN tracks whose share of recent tracks (minted in the last
  RECENT_EPOCHS epochs) is at least EMERGING_RATIO times the catalogue's share of recent tracks.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.catalog import Catalogue

PCA_DIMS = 16
RECENT_EPOCHS = 1
EMERGING_MIN = 2
EMERGING_RATIO = 1.5


def pca_2d(x: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project rows `x` [N, D] on the top-`dims` principal axes: ([N, dims] coordinates, [dims] variance
    share).

    Covariance C = (X - mean)^T (X - mean) / N, eigh(C), axes by decreasing eigenvalue, sign-fixed so the
    largest-magnitude loading of each axis is positive.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    dims = min(dims, d)
    if n == 0:
        return np.zeros((0, dims)), np.zeros(dims)
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / max(n, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:dims]
    axes = vecs[:, order]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(dims)])
    axes = axes * np.where(signs == 0, 1.0, signs)
    total = float(vals.clip(min=0).sum())
    share = vals[order].clip(min=0) / total if total > 0 else np.zeros(dims)
    return centred @ axes, share


def kmeans(x: np.ndarray, k: int, iters: int = 25, seed: int = 7) -> np.ndarray:
    """Cluster labels [N] of rows `x` by Lloyd's k-means from a k-means++ start with a fixed seed."""
    n = x.shape[0]
    k = max(1, min(k, n))
    if n == 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    centres = [x[int(rng.integers(n))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        idx = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(axis=1))
    c = np.stack(centres)
    labels = np.zeros(n, np.int64)
    for _ in range(iters):
        dist = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None, :]
        new = dist.argmin(axis=1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return labels


@dataclass
class MapData:
    """One catalogue state's map: points (token, x, y, cluster), clusters, and the embeddings by token."""

    key: str
    tokens: np.ndarray
    xy: np.ndarray
    cluster: np.ndarray
    clusters: list[dict[str, Any]]
    variance: list[float]
    unit: np.ndarray  # [N, D] float32 unit embeddings, catalogue order
    position: dict[int, int] = field(default_factory=dict)
    error: str | None = None
    figure: str | None = None  # the map's plotly JSON, rendered once with the map (pages.py)
    stamp: tuple[int, int] | None = None  # the manifest's (mtime_ns, size) the map was built from

    def nearest(self, token_id: int, k: int = 5) -> list[tuple[int, float]]:
        """The k catalogue tracks most similar to `token_id` (cosine of unit embeddings), best first."""
        i = self.position.get(token_id)
        if i is None or len(self.tokens) < 2:
            return []
        sims = self.unit @ self.unit[i]
        sims[i] = -np.inf
        top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        top = top[np.argsort(-sims[top])]
        return [(int(self.tokens[j]), float(sims[j])) for j in top if np.isfinite(sims[j])]


def _token(track_id: str) -> int | None:
    return int(track_id[6:]) if track_id.startswith("token:") and track_id[6:].isdigit() else None


def build_map(
    catalogue_dir: Path, tracks: dict[int, tuple[int, Any, Any, str, Any]], epoch_blocks: int
) -> MapData:
    """Load the catalogue folder and compute its map (blocking: run it in a thread)."""
    cat = Catalogue.load(catalogue_dir)
    keep = [(i, t) for i, tid in enumerate(cat.ids) if (t := _token(tid)) is not None]
    idx = np.array([i for i, _ in keep], np.int64)
    tokens = np.array([t for _, t in keep], np.int64)
    unit = np.ascontiguousarray(cat.embeddings[idx] if len(idx) else np.zeros((0, cat.dim), np.float32))
    labels = [cat.labels[i] for i in idx]
    reduced, _ = pca_2d(unit, PCA_DIMS)
    xy, variance = pca_2d(unit, 2)
    n = len(tokens)
    k = int(min(12, max(1, round((n / 2) ** 0.5))))
    cluster = kmeans(reduced, k) if n else np.zeros(0, np.int64)
    blocks = np.array([tracks.get(int(t), (0,))[0] for t in tokens], np.int64)
    latest_epoch = int(blocks.max()) // epoch_blocks if n else 0
    recent = blocks // epoch_blocks > latest_epoch - RECENT_EPOCHS
    base = float(recent.mean()) if n else 0.0
    clusters = []
    for j in range(int(cluster.max()) + 1 if n else 0):
        members = cluster == j
        size = int(members.sum())
        if not size:
            continue
        genres = Counter(g for g, m in zip(labels, members, strict=True) if m and g)
        top = genres.most_common(1)[0][0] if genres else "no declared genre"
        share = float(recent[members].mean())
        emerging = size >= EMERGING_MIN and 0 < base < 1 and share >= EMERGING_RATIO * base
        clusters.append(
            {
                "id": j,
                "size": size,
                "genre": top,
                "recent_share": round(share, 3),
                "emerging": bool(emerging),
                "centre": [float(v) for v in xy[members].mean(axis=0)],
            }
        )
    return MapData(
        key=cat.root_hash(),
        tokens=tokens,
        xy=xy,
        cluster=cluster,
        clusters=clusters,
        variance=[float(v) for v in variance],
        unit=unit,
        position={int(t): i for i, t in enumerate(tokens)},
    )


def catalogue_stamp(catalogue_dir: Path | None) -> tuple[int, int] | None:
    """The catalogue manifest's (mtime_ns, size): a stat, so checking for a new catalogue state costs no read
    (the worker replaces the manifest atomically on every save). None when there is no catalogue."""
    if catalogue_dir is None:
        return None
    try:
        st = (catalogue_dir / "manifest.json").stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class MapCache:
    """The latest MapData, rebuilt in a thread when the catalogue's manifest changes."""

    def __init__(self, catalogue_dir: Path | None) -> None:
        self.catalogue_dir = catalogue_dir
        self._data: MapData | None = None
        self._lock = threading.Lock()

    def current(self) -> MapData | None:
        return self._data

    def stale(self) -> bool:
        stamp = catalogue_stamp(self.catalogue_dir)
        return stamp is not None and (self._data is None or self._data.stamp != stamp)

    def refresh(
        self,
        tracks: dict[int, tuple[int, Any, Any, str, Any]],
        epoch_blocks: int,
        render: Callable[[MapData, dict[int, tuple[int, Any, Any, str, Any]]], str],
    ) -> MapData | None:
        """Rebuild when stale, with its figure (`render`) (blocking; one rebuild at a time). A catalogue that
        cannot be read gives a MapData whose `error` says why, in place of the map."""
        if self.catalogue_dir is None:
            return None
        with self._lock:
            if not self.stale():
                return self._data
            stamp = catalogue_stamp(self.catalogue_dir)
            try:
                data = build_map(self.catalogue_dir, tracks, epoch_blocks)
                data.figure = render(data, tracks)
                data.stamp = stamp
                self._data = data
            except Exception as exc:  # a damaged catalogue must not take the dashboard down: say why instead
                empty = np.zeros((0, 2))
                self._data = MapData(
                    "unreadable",
                    np.zeros(0, np.int64),
                    empty,
                    np.zeros(0, np.int64),
                    [],
                    [0.0, 0.0],
                    np.zeros((0, 1), np.float32),
                    error=f"{type(exc).__name__}: {exc}",
                    stamp=stamp,
                )
            return self._data
