"""The catalogue: minted tracks' identities and embeddings (+ chroma 2D-FT, Chromaprint), exact kNN, on disk.

Search is exact (every score that pays must be reproducible by a validator): float32 inner products by torch
matmul over row blocks, a top-k per block, and a merge; CUDA when present, CPU otherwise. Blocks bound memory
so that 1e6 x 512 vectors are searched without building a 1e6 x Q matrix at once.

Persistence is a folder: ``manifest.json`` (ids, PCM hashes, labels, count, root hash, the list of segments
with a SHA-256 of each segment's arrays) and ``<name>.<segment>.npy`` arrays. A save appends only the rows
added since the folder's state as a new segment (the worker saves after every track, so rewriting everything
each time would grow without bound), then replaces the manifest with ``os.replace``: a crash leaves either the
old or the new catalogue, never a mix.

`Catalogue.root_hash()` is a sequential hash over the entries' identities, (track id, SHA-256 of the
canonical PCM), in insertion order: a score records it so that a validator knows exactly which tracks the
novelty and the duplicate gate were measured against. It holds no float vector (ami-agreement/1,
docs/verification.md): the canonical PCM is decoded on the CPU by pinned code, so the root is the same bit
for bit on every device, and a validator recomputes the vectors from the audio itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scoring.catalog_root import chain_root, pcm_hash_hex, root_step
from scoring.errors import CatalogError
from scoring.knn import Neighbour, exact_topk, pick_device, stored_rows, unit_rows
from scoring.salience import GATE_WIDTH as STEP_WIDTH

__all__ = [
    "CATALOG_VERSION",
    "STEP_WIDTH",
    "CatalogError",
    "Catalogue",
    "Neighbour",
    "chain_root",
    "exact_topk",
    "steps_u8",
    "stored_rows",
    "unit_rows",
]

CATALOG_VERSION = "ami-catalog/4"
"""Version of the stored contents and of the root hash recipe (2: identity root over (id, pcm_sha256); 3: the
stored steps are salience pitch-class profiles, so a catalogue 2 cannot be matched against; 4: the steps
hold a bass and a treble profile, `STEP_WIDTH` values)."""

LAYOUT_VERSION = 3
"""Storage layout: manifest.json (with the PCM hashes) plus append-only, digested segments of .npy arrays."""
MAX_SEGMENTS = 64
"""Past this many segments a save rewrites everything as one (bounds the number of files)."""
_ARRAYS = ("embeddings", "chroma_2dft", "fp_lengths", "fp_items", "steps_lengths", "steps_items")


class Catalogue:
    """Minted tracks: ids and PCM hashes in insertion order, unit embeddings [N, D], chroma 2D-FT [N, C],
    fingerprints.

    Args:
        dim: embedding dimension D.
        c2d_dim: flattened chroma 2D-FT size C (0 when not stored).
    """

    def __init__(self, dim: int, c2d_dim: int = 0) -> None:
        if dim <= 0:
            raise CatalogError(f"embedding dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.c2d_dim = int(c2d_dim)
        self.ids: list[str] = []
        self.pcm_sha256: list[str] = []  # lower-case hex SHA-256 of each entry's canonical PCM
        self.labels: list[str | None] = []
        # Row buffers with spare capacity (doubling), so adding one track at a time stays amortised O(1).
        self._emb_buf = np.zeros((0, self.dim), np.float32)
        self._c2d_buf = np.zeros((0, self.c2d_dim), np.float32)
        self._fps: list[np.ndarray] = []
        # Chroma steps of each entry ([n, STEP_WIDTH] uint8, value x 255) for the derivative gate's alignment.
        self._steps: list[np.ndarray] = []
        self._index: dict[str, int] = {}
        self._root = hashlib.sha256(CATALOG_VERSION.encode()).digest()
        self._roots: list[bytes] = [self._root]  # root after i entries, for prefix checks
        self._resident: tuple[tuple[str, int], Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def _emb(self) -> np.ndarray:
        return self._emb_buf[: len(self.ids)]

    @property
    def _c2d(self) -> np.ndarray:
        return self._c2d_buf[: len(self.ids)]

    def _reserve(self, rows: int) -> None:
        if rows <= self._emb_buf.shape[0]:
            return
        cap = max(rows, 2 * self._emb_buf.shape[0], 16)
        n = len(self.ids)
        emb = np.zeros((cap, self.dim), np.float32)
        emb[:n] = self._emb_buf[:n]
        c2d = np.zeros((cap, self.c2d_dim), np.float32)
        c2d[:n] = self._c2d_buf[:n]
        self._emb_buf, self._c2d_buf = emb, c2d

    @property
    def embeddings(self) -> np.ndarray:
        """[N, D] float32 unit embeddings, insertion order (read-only view)."""
        view = self._emb.view()
        view.flags.writeable = False
        return view

    @property
    def chroma_2dft(self) -> np.ndarray:
        """[N, C] float32 flattened chroma 2D-FT rows (read-only view)."""
        view = self._c2d.view()
        view.flags.writeable = False
        return view

    def fingerprint(self, index: int) -> np.ndarray:
        """Chromaprint uint32 items of entry ``index`` (empty when none was stored)."""
        return self._fps[index]

    def steps(self, index: int) -> np.ndarray:
        """Gate steps of entry ``index``: float32 [n, `STEP_WIDTH`] in [0, 1] (stored at 1/255 steps)."""
        return self._steps[index].astype(np.float32) / 255.0

    def position(self, track_id: str) -> int | None:
        """Insertion position of ``track_id`` or None."""
        return self._index.get(track_id)

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        chroma_2dft: np.ndarray | None = None,
        fingerprints: Sequence[np.ndarray] | None = None,
        labels: Sequence[str | None] | None = None,
        *,
        pcm_sha256: Sequence[str],
        steps: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Append entries (all or nothing): rows are L2-normalised; an id already present is refused.

        Args:
            ids: entry ids (non-empty strings, unique in the catalogue).
            embeddings: [len(ids), D] raw embeddings (stored as `stored_rows`).
            chroma_2dft: [len(ids), C] rows, or None for zeros.
            fingerprints: Chromaprint uint32 items per entry, or None for none.
            labels: a label (genre) per entry, or None.
            pcm_sha256: hex SHA-256 of each entry's canonical PCM (`CanonicalAudio.sha256`); with the id it
                is what the root hash commits to.
            steps: gate steps per entry ([n, `STEP_WIDTH`] in [0, 1], or uint8 as `steps` returns x 255),
                or None.

        Raises:
            CatalogError: shapes do not match, an embedding is zero or non-finite, a PCM hash is not 32 bytes
                of hex, or an id repeats.
        """
        emb = (
            np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )
        if emb.shape[0] != len(ids):
            raise CatalogError(f"{len(ids)} ids but {emb.shape[0]} embeddings of dimension {self.dim}")
        if not np.all(np.isfinite(emb)):
            raise CatalogError("embeddings hold NaN or infinite values")
        if np.any(np.linalg.norm(emb.astype(np.float64), axis=1) <= 0):
            raise CatalogError("an embedding is all zeros")
        emb = stored_rows(emb)
        if chroma_2dft is None:
            c2d = np.zeros((len(ids), self.c2d_dim), np.float32)
        else:
            c2d = np.asarray(chroma_2dft, dtype=np.float32).reshape(len(ids), -1)
            if c2d.shape[1] != self.c2d_dim:
                raise CatalogError(
                    f"chroma 2D-FT has {c2d.shape[1]} values per entry, expected {self.c2d_dim}"
                )
        fps = (
            [np.zeros(0, np.uint32)] * len(ids)
            if fingerprints is None
            else [np.asarray(f, dtype=np.uint32).reshape(-1) for f in fingerprints]
        )
        labs = [None] * len(ids) if labels is None else list(labels)
        empty = np.zeros((0, STEP_WIDTH), np.uint8)
        sts = [empty] * len(ids) if steps is None else [steps_u8(x) for x in steps]
        if len(sts) != len(ids):
            raise CatalogError("ids and chroma steps differ in length")
        if len(fps) != len(ids) or len(labs) != len(ids) or len(pcm_sha256) != len(ids):
            raise CatalogError("ids, fingerprints, labels and PCM hashes differ in length")
        pcms = [pcm_hash_hex(h) for h in pcm_sha256]
        seen = set(self._index)
        for track_id in ids:
            if not isinstance(track_id, str) or not track_id:
                raise CatalogError(f"entry id must be a non-empty string, got {track_id!r}")
            if track_id in seen:
                raise CatalogError(f"id {track_id!r} is already in the catalogue")
            seen.add(track_id)
        root = self._root
        roots = []
        for track_id, pcm in zip(ids, pcms, strict=True):
            root = root_step(root, track_id, pcm)
            roots.append(root)
        start = len(self.ids)
        self._reserve(start + len(ids))
        self._emb_buf[start : start + len(ids)] = emb
        self._c2d_buf[start : start + len(ids)] = c2d
        self._fps.extend(fps)
        self._steps.extend(sts)
        self.labels.extend(labs)
        self.pcm_sha256.extend(pcms)
        for j, track_id in enumerate(ids):
            self.ids.append(track_id)
            self._index[track_id] = start + j
        self._root = root
        self._roots.extend(roots)

    def root_hash(self) -> str:
        """Hex SHA-256 chain over the entries' identities in insertion order.

        ``h_0 = SHA256(utf8(CATALOG_VERSION))``; ``h_i = SHA256(h_{i-1} || u32le(len(id_utf8)) || id_utf8 ||
        pcm_sha256_i[32 bytes])``; the root is ``hex(h_N)``. No float enters it, so every device agrees.
        """
        return self._root.hex()

    def search(self, queries: np.ndarray, k: int, device: str | None = None) -> list[list[Neighbour]]:
        """Exact cosine top-k of each query row against the catalogue (queries are L2-normalised first)."""
        q = unit_rows(np.asarray(queries, dtype=np.float64).reshape(-1, self.dim))
        scores, idx = exact_topk(self._device_matrix(device), q, k, device=device)
        return [
            [Neighbour(int(i), self.ids[int(i)], float(s)) for s, i in zip(srow, irow, strict=True)]
            for srow, irow in zip(scores, idx, strict=True)
        ]

    def _device_matrix(self, device: str | None) -> Any:
        """The embeddings as numpy on CPU, or as a tensor kept resident on an accelerator between searches
        (rebuilt when the catalogue grows), so a GPU search does not copy the whole catalogue each time."""
        dev = pick_device(device)
        if dev == "cpu":
            return self._emb
        import torch  # heavy: only a GPU search needs it (see scoring.knn.pick_device)

        key = (dev, len(self))
        if self._resident is None or self._resident[0] != key:
            self._resident = (key, torch.from_numpy(self._emb).to(dev))
        return self._resident[1]

    def stats(self) -> dict[str, object]:
        """Counts and hash for `ami catalog stats`."""
        counts: dict[str, int] = {}
        for label in self.labels:
            key = label or "(none)"
            counts[key] = counts.get(key, 0) + 1
        return {
            "entries": len(self),
            "dim": self.dim,
            "c2d_dim": self.c2d_dim,
            "root_hash": self.root_hash(),
            "version": CATALOG_VERSION,
            "labels": dict(sorted(counts.items())),
        }

    # ------------------------------------------------------------------ persistence

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write the catalogue to ``folder`` atomically.

        When the folder holds a prefix of this catalogue (same ids and root hash at its count), only the new
        rows are written, as one more segment; otherwise (or past `MAX_SEGMENTS`) everything is rewritten as
        one segment. Segment files are written first, then the manifest is replaced with ``os.replace``, then
        unreferenced files are removed: a crash leaves the old or the new catalogue, never a mix.
        """
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        # One writer at a time per folder (two processes would otherwise pick the same segment number).
        with open(root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                self._save_locked(root)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _save_locked(self, root: Path) -> None:
        try:
            old = _read_manifest(root) if (root / "manifest.json").is_file() else None
        except CatalogError:
            old = None  # a damaged manifest is replaced by a full rewrite
        n = len(self)
        old_count = int(old["count"]) if old else 0
        appendable = (
            old is not None
            and old_count <= n
            and len(old["segments"]) < MAX_SEGMENTS
            and old["ids"] == self.ids[:old_count]
            and old["root_hash"] == self._roots[old_count].hex()
        )
        next_id = int(old["next_segment"]) if old else 1
        if appendable and old is not None:
            segments = list(old["segments"])
            start = old_count
        else:
            segments, start = [], 0
        if n > start or not segments:
            digest = self._write_segment(root, next_id, start, n)
            segments.append({"id": next_id, "count": n - start, "sha256": digest})
            next_id += 1
        manifest = {
            "version": CATALOG_VERSION,
            "layout": LAYOUT_VERSION,
            "count": n,
            "dim": self.dim,
            "c2d_dim": self.c2d_dim,
            "root_hash": self.root_hash(),
            "segments": segments,
            "next_segment": next_id,
            "ids": self.ids,
            "pcm_sha256": self.pcm_sha256,
            "labels": self.labels,
        }
        data = json.dumps(manifest, indent=1).encode()
        _atomic_write(root / "manifest.json", lambda fh: fh.write(data))
        keep = {f"{name}.{seg['id']}.npy" for seg in segments for name in _ARRAYS}
        for path in root.glob("*.npy"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _write_segment(self, root: Path, seg_id: int, start: int, stop: int) -> str:
        """Write rows start..stop as segment ``seg_id``; returns the segment digest (`_segment_digest`)."""
        fps = self._fps[start:stop]
        sts = self._steps[start:stop]
        arrays = {
            "embeddings": self._emb[start:stop],
            "chroma_2dft": self._c2d[start:stop],
            "fp_lengths": np.array([f.size for f in fps], dtype=np.int64),
            "fp_items": np.concatenate(fps) if fps else np.zeros(0, np.uint32),
            "steps_lengths": np.array([x.shape[0] for x in sts], dtype=np.int64),
            "steps_items": np.concatenate(sts) if sts else np.zeros((0, STEP_WIDTH), np.uint8),
        }
        for name, arr in arrays.items():
            _atomic_write(root / f"{name}.{seg_id}.npy", lambda fh, a=arr: np.save(fh, a))
        return _segment_digest(*arrays.values())

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Catalogue:
        """Read a saved catalogue and check its root hash and every segment's digest.

        The root hash covers ids and PCM hashes only, so the arrays are checked against the SHA-256 the
        manifest records for each segment: a damaged embedding file is refused, never searched.

        Raises:
            CatalogError: folder or files missing, shapes inconsistent, a segment digest or the recomputed
                root hash differs.
        """
        root = Path(folder)
        manifest = _read_manifest(root)
        count = int(manifest["count"])
        dim, c2d_dim = int(manifest["dim"]), int(manifest["c2d_dim"])
        embs: list[np.ndarray] = []
        c2ds: list[np.ndarray] = []
        fps: list[np.ndarray] = []
        steps: list[np.ndarray] = []
        try:
            for seg in manifest["segments"]:
                sid, n = int(seg["id"]), int(seg["count"])
                emb = np.load(root / f"embeddings.{sid}.npy", allow_pickle=False)
                c2d = np.load(root / f"chroma_2dft.{sid}.npy", allow_pickle=False)
                lengths = np.load(root / f"fp_lengths.{sid}.npy", allow_pickle=False)
                items = np.load(root / f"fp_items.{sid}.npy", allow_pickle=False)
                st_len = np.load(root / f"steps_lengths.{sid}.npy", allow_pickle=False)
                st_items = np.load(root / f"steps_items.{sid}.npy", allow_pickle=False)
                if (
                    emb.shape != (n, dim)
                    or c2d.shape != (n, c2d_dim)
                    or lengths.shape != (n,)
                    or int(lengths.sum()) != items.size
                    or st_len.shape != (n,)
                    or st_items.shape != (int(st_len.sum()), STEP_WIDTH)
                ):
                    raise CatalogError(
                        f"catalogue in {root} is inconsistent (segment {sid} does not match the manifest)"
                    )
                if _segment_digest(emb, c2d, lengths, items, st_len, st_items) != seg["sha256"]:
                    raise CatalogError(
                        f"catalogue in {root} is damaged (segment {sid} fails its SHA-256 check); rebuild it"
                    )
                bounds = np.concatenate([[0], np.cumsum(lengths)])
                fps.extend(items[bounds[i] : bounds[i + 1]] for i in range(n))
                sb = np.concatenate([[0], np.cumsum(st_len)])
                steps.extend(st_items[sb[i] : sb[i + 1]] for i in range(n))
                embs.append(emb)
                c2ds.append(c2d)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"catalogue arrays in {root} are missing or damaged: {exc}") from exc
        if (
            len(fps) != count
            or len(manifest["ids"]) != count
            or len(manifest["labels"]) != count
            or len(manifest["pcm_sha256"]) != count
        ):
            raise CatalogError(f"catalogue in {root} is inconsistent (counts do not match the manifest)")
        cat = cls(dim, c2d_dim)
        if count:
            cat.add(
                list(manifest["ids"]),
                np.concatenate(embs),
                np.concatenate(c2ds),
                fps,
                list(manifest["labels"]),
                pcm_sha256=list(manifest["pcm_sha256"]),
                steps=steps,
            )
        if cat.root_hash() != manifest["root_hash"]:
            raise CatalogError(f"catalogue in {root} fails its root hash check")
        return cat

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike[str], dim: int, c2d_dim: int) -> Catalogue:
        """Load the catalogue in ``folder`` or return an empty one (nothing is written until `save`)."""
        if (Path(folder) / "manifest.json").is_file():
            cat = cls.load(folder)
            if cat.dim != dim or cat.c2d_dim != c2d_dim:
                raise CatalogError(
                    f"catalogue in {folder} holds dim {cat.dim}/{cat.c2d_dim}, expected {dim}/"
                    f"{c2d_dim} (feature version changed? rebuild it)"
                )
            return cat
        return cls(dim, c2d_dim)


def steps_u8(x: np.ndarray) -> np.ndarray:
    """Gate steps as stored: uint8 [n, `STEP_WIDTH`] (float input in [0, 1] is rounded half to even after
    x 255).

    Raises:
        CatalogError: the steps do not hold `STEP_WIDTH` values each.
    """
    a = np.asarray(x)
    if a.size and (a.ndim != 2 or a.shape[1] != STEP_WIDTH):
        raise CatalogError(f"chroma steps of shape {a.shape}; [n, {STEP_WIDTH}] are required")
    if a.dtype == np.uint8:
        out = a.reshape(-1, STEP_WIDTH)
    else:
        out = np.rint(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
        out = out.reshape(-1, STEP_WIDTH)
    return np.ascontiguousarray(out)


def _segment_digest(*arrays: np.ndarray) -> str:
    """SHA-256 over a segment's arrays (dtype, shape and little-endian bytes of each, in order)."""
    h = hashlib.sha256()
    for arr in arrays:
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CatalogError(f"no catalogue in {root} (manifest.json missing)") from exc
    except (OSError, ValueError) as exc:
        raise CatalogError(f"catalogue manifest {path} is unreadable: {exc}") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("version") != CATALOG_VERSION
        or manifest.get("layout") != LAYOUT_VERSION
    ):
        raise CatalogError(
            f"catalogue manifest {path} is not a {CATALOG_VERSION} layout {LAYOUT_VERSION} one"
            f" (it says {manifest.get('version') if isinstance(manifest, dict) else None!r}); an older"
            " catalogue holds what an earlier scoring model stored (catalogue 1: no PCM hashes; 2: chromagram"
            " steps; 3: steps of one register) and cannot be upgraded in place: rebuild it from the audio"
            " (`ami catalog build` for a catalogue of files, `ami rebuild-catalogue` for a worker's)"
        )
    return manifest


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
