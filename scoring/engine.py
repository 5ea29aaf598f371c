"""Public scoring API: canonical audio -> published, versioned, committed scores (novelty, quality, gate).

The worker and validators call `score_track` / `score_batch`. A batch is taken in mint order: each track is
checked against the catalogue and against the tracks before it in the batch (duplicate gate and originality),
and its score records the root hash of exactly that set (`catalogue_root`), so a validator can rebuild it.

Duplicate gate (thresholds measured on 5 real FluidSynth renders x 5 variants and 20 unrelated pairs, see
docs/scoring.md):
- duplicate_of X: Chromaprint similarity >= `DUPLICATE_FP` (transcodes/gain 0.993..1.000; 5 % tempo change
  0.73..0.85; +1 semitone 0.54..0.69; unrelated 0.50..0.60), or identical canonical PCM;
- derivative_of X: chroma 2D-FT cosine >= `DERIVATIVE_C2D` and embedding cosine >= `DERIVATIVE_EMB` (shifted
  copies: 2D-FT 0.933..0.998, embedding 0.990..1.000; other pieces of the same style, same instrument, 86
  pairs: 2D-FT <= 0.908, embedding <= 0.985; other styles: 2D-FT <= 0.872, embedding <= 0.936).
Candidates are the `CANDIDATES` exact nearest catalogue entries by embedding plus every earlier batch track.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from scoring.catalog import Catalogue, chain_root, stored_rows, unit_rows
from scoring.decode import CanonicalAudio
from scoring.errors import ScoringError
from scoring.fingerprint import fingerprint_pcm, similarity
from scoring.novelty import GenreReference, load_reference, novelty
from scoring.quality import quality_bp
from scoring.versions import MODEL_VERSION, SCORE_VERSION, versions

if TYPE_CHECKING:
    from scoring.features import TrackFeatures

DUPLICATE_FP = 0.95
DERIVATIVE_C2D = 0.92
DERIVATIVE_EMB = 0.98
CANDIDATES = 10
GATE_VERSION = "ami-dupgate/1"


@dataclass(frozen=True)
class TrackInput:
    """One track to score: its id (token id, CID or file name), canonical audio, declared genre."""

    track_id: str
    audio: CanonicalAudio
    genre: str | None = None


@dataclass(frozen=True)
class PublishedScore:
    """What the worker publishes for one track and what a validator recomputes.

    Attributes:
        pcm_sha256: hex SHA-256 of the canonical PCM.
        features_sha256: `TrackFeatures.digest()` (hex) of the quantised features: the worker's informational
            digest, not committed and never compared (float features differ across devices; ami-agreement/1).
        catalogue_root: hex root hash of the catalogue plus the earlier batch tracks it was measured against.
        novelty_bp, quality_bp: scores in basis points, 0..10000.
        duplicate_of, derivative_of: id of the earlier track this one duplicates / derives from, else None.
        versions: every stage's version string (`scoring.versions.versions()` plus the gate).
        commitment: 32 bytes, see `commitment`.
        model_version: u32 `MODEL_VERSION` published on chain.
        details: unpublished diagnostics (novelty parts, quality inputs, best matches); not committed.
    """

    pcm_sha256: str
    features_sha256: str
    catalogue_root: str
    novelty_bp: int
    quality_bp: int
    duplicate_of: str | None
    derivative_of: str | None
    versions: dict[str, str]
    commitment: bytes
    model_version: int = MODEL_VERSION
    details: dict[str, object] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (commitment as hex)."""
        return {
            "pcm_sha256": self.pcm_sha256,
            "features_sha256": self.features_sha256,
            "catalogue_root": self.catalogue_root,
            "novelty_bp": self.novelty_bp,
            "quality_bp": self.quality_bp,
            "duplicate_of": self.duplicate_of,
            "derivative_of": self.derivative_of,
            "versions": self.versions,
            "commitment": self.commitment.hex(),
            "model_version": self.model_version,
        }


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "little") + data


def commitment(
    pcm_sha256: str,
    catalogue_root: str,
    novelty_bp: int,
    quality_bp: int,
    duplicate_of: str | None,
    derivative_of: str | None,
    versions_: dict[str, str],
    model_version: int = MODEL_VERSION,
) -> bytes:
    """BLAKE2b-256 of the canonical encoding of a score (ami-agreement/1, docs/verification.md).

    ``blake2b(lp(SCORE_VERSION) || u32le(model_version) || pcm_sha256[32] || catalogue_root[32] ||
    u16le(novelty_bp) || u16le(quality_bp) || lp(duplicate_of) || lp(derivative_of) ||
    lp(json(versions, sort_keys, no spaces)), digest_size=32)`` where ``lp(x) = u32le(len(x)) || utf8(x)``
    and a missing id is the empty string (ids are never empty). Every committed field is exact on any device
    (no float feature digest), so a validator recomputes it from its own PCM hash, root and versions with the
    published novelty/quality: equality proves same audio, same catalogue, same code, and binds the bp values.
    """
    if not (0 <= novelty_bp <= 10000 and 0 <= quality_bp <= 10000):
        raise ScoringError(f"scores out of range: novelty {novelty_bp}, quality {quality_bp}")
    h = hashlib.blake2b(digest_size=32)
    h.update(_lp(SCORE_VERSION.encode()))
    h.update(int(model_version).to_bytes(4, "little"))
    for hx in (pcm_sha256, catalogue_root):
        raw = bytes.fromhex(hx)
        if len(raw) != 32:
            raise ScoringError(f"expected a 32-byte hex hash, got {hx!r}")
        h.update(raw)
    h.update(int(novelty_bp).to_bytes(2, "little"))
    h.update(int(quality_bp).to_bytes(2, "little"))
    h.update(_lp((duplicate_of or "").encode()))
    h.update(_lp((derivative_of or "").encode()))
    h.update(_lp(json.dumps(versions_, sort_keys=True, separators=(",", ":")).encode()))
    return h.digest()


@dataclass
class _Entry:
    track_id: str
    pcm_sha256: str
    embedding: np.ndarray
    c2d: np.ndarray
    fingerprint: np.ndarray


def duplicate_gate(
    fp: np.ndarray, c2d: np.ndarray, embedding: np.ndarray, pcm_sha256: str, candidates: Sequence[_Entry]
) -> tuple[str | None, str | None, dict[str, object]]:
    """(duplicate_of, derivative_of, best match figures) for one track against candidate entries.

    Duplicate: same canonical PCM or Chromaprint similarity >= DUPLICATE_FP (highest similarity wins, then the
    earliest entry). Derivative (only when no duplicate): chroma 2D-FT cosine >= DERIVATIVE_C2D and embedding
    cosine >= DERIVATIVE_EMB (highest 2D-FT cosine wins, then the earliest entry).
    """
    best_dup: tuple[float, int, str] | None = None
    best_der: tuple[float, int, str] | None = None
    figures: dict[str, object] = {}
    for order, cand in enumerate(candidates):
        fp_sim = 1.0 if cand.pcm_sha256 == pcm_sha256 else similarity(fp, cand.fingerprint)
        c2d_sim = exact_dot(c2d, cand.c2d)
        emb_sim = exact_dot(embedding, cand.embedding)
        figures[cand.track_id] = {"fp": round(fp_sim, 4), "c2d": round(c2d_sim, 4), "emb": round(emb_sim, 4)}
        if fp_sim >= DUPLICATE_FP and (best_dup is None or (fp_sim, -order) > (best_dup[0], -best_dup[1])):
            best_dup = (fp_sim, order, cand.track_id)
        if (
            c2d_sim >= DERIVATIVE_C2D
            and emb_sim >= DERIVATIVE_EMB
            and (best_der is None or (c2d_sim, -order) > (best_der[0], -best_der[1]))
        ):
            best_der = (c2d_sim, order, cand.track_id)
    if best_dup is not None:
        return best_dup[2], None, figures
    return None, (best_der[2] if best_der else None), figures


def exact_dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two vectors, correctly rounded and platform independent: float32 x float32 products
    are exact in float64, and math.fsum sums them exactly, so no summation order can change the result."""
    return math.fsum((np.asarray(a, np.float64).ravel() * np.asarray(b, np.float64).ravel()).tolist())


def _unit(v: np.ndarray) -> np.ndarray:
    return unit_rows(np.asarray(v).reshape(-1))


def _raw_embeddings(feats: Sequence[TrackFeatures]) -> np.ndarray:
    """[N, D] float32 raw embeddings of the tracks, as `Catalogue.add` and `stored_rows` take them."""
    return np.stack([np.asarray(f.embedding, dtype=np.float32).reshape(-1) for f in feats])


def all_versions() -> dict[str, str]:
    """`scoring.versions.versions()` plus the duplicate gate's version."""
    out = versions()
    out["duplicate_gate"] = GATE_VERSION
    return out


def score_batch(
    items: Sequence[TrackInput],
    catalogue: Catalogue,
    device: str | None = None,
    reference: GenreReference | None = None,
    add_to_catalogue: bool = False,
    batch_size: int = 8,
) -> list[PublishedScore]:
    """Score tracks in mint order against the catalogue and the earlier tracks of the batch.

    Args:
        items: tracks in mint order; ids must be unique and not already in the catalogue.
        catalogue: the catalogue snapshot; unchanged unless ``add_to_catalogue``.
        device: torch device for features and kNN (None: CUDA when present). Published scores do not depend
            on it (float64 features, quantised outputs).
        reference: genre reference (default: the shipped one).
        add_to_catalogue: append the scored tracks (with their genre as label) to ``catalogue`` afterwards.
        batch_size: feature extraction batch size.

    Raises:
        ScoringError: duplicate ids, unknown genre, reference built for other features, fpcalc failure.
    """
    from scoring.features import FEATURE_VERSION, extract_features

    ref = reference if reference is not None else load_reference()
    if ref.feature_version != FEATURE_VERSION:
        raise ScoringError(
            f"genre reference was built for {ref.feature_version}, features are {FEATURE_VERSION}; "
            "rerun scripts/build_genre_reference.py"
        )
    ids = [it.track_id for it in items]
    if len(set(ids)) != len(ids):
        raise ScoringError("track ids in a batch must be unique")
    for track_id in ids:
        if not track_id:
            raise ScoringError("track id must be a non-empty string")
        if catalogue.position(track_id) is not None:
            raise ScoringError(f"track id {track_id!r} is already in the catalogue")
    for it in items:
        if it.genre is not None and it.genre not in ref.genres:
            raise ScoringError(f"unknown genre {it.genre!r}; known genres: {', '.join(ref.names())}")
    if not items:
        return []
    feats = extract_features([it.audio.pcm for it in items], items[0].audio.sample_rate, device, batch_size)
    vers = all_versions()
    root = catalogue.root_hash()
    earlier: list[_Entry] = []
    results: list[PublishedScore] = []
    raw_all = _raw_embeddings(feats)
    emb_all = stored_rows(raw_all)
    hits = catalogue.search(emb_all, CANDIDATES, device=device) if len(catalogue) else [[] for _ in items]
    for i, (it, f) in enumerate(zip(items, feats, strict=True)):
        emb, c2d = emb_all[i], _unit(f.chroma_2dft.ravel())
        fp = fingerprint_pcm(it.audio.pcm, it.audio.sample_rate)
        cands = [
            _Entry(
                h.id,
                "",
                catalogue.embeddings[h.index],
                catalogue.chroma_2dft[h.index],
                catalogue.fingerprint(h.index),
            )
            for h in hits[i]
        ] + earlier
        dup, der, figures = duplicate_gate(fp, c2d, emb, it.audio.sha256, cands)
        # Exact float64 re-ranking of the float32 kNN hits: thread counts and devices sum float32 products in
        # different orders, which could flip a rounded score; exact_dot cannot.
        sims = [exact_dot(emb, c.embedding) for c in cands]
        nearest = max(sims) if sims else None
        nov = novelty(emb, f.scalars, it.genre, nearest, ref)
        qbp = quality_bp(f.scalars)
        fsha = f.digest()
        com = commitment(it.audio.sha256, root, nov.novelty_bp, qbp, dup, der, vers)
        details: dict[str, object] = {
            "genre": nov.genre,
            "genre_z": round(nov.z, 4),
            "typicality": round(nov.typicality, 4),
            "originality": round(nov.originality, 4),
            "coherence": round(nov.coherence, 4),
            "nearest_similarity": None if nearest is None else round(nearest, 4),
            "matches": figures,
        }
        results.append(
            PublishedScore(
                it.audio.sha256, fsha, root, nov.novelty_bp, qbp, dup, der, vers, com, MODEL_VERSION, details
            )
        )
        earlier.append(_Entry(it.track_id, it.audio.sha256, emb, c2d, fp))
        root = chain_root(root, it.track_id, it.audio.sha256)
    if add_to_catalogue:
        catalogue.add(
            [e.track_id for e in earlier],
            raw_all,
            np.stack([e.c2d for e in earlier]),
            [e.fingerprint for e in earlier],
            [it.genre for it in items],
            pcm_sha256=[e.pcm_sha256 for e in earlier],
        )
    return results


def score_track(
    audio: CanonicalAudio,
    genre: str | None,
    catalogue: Catalogue,
    device: str | None = None,
    track_id: str | None = None,
    reference: GenreReference | None = None,
) -> PublishedScore:
    """Score one track against the catalogue (``track_id`` defaults to its PCM hash; used in the gate)."""
    item = TrackInput(track_id or f"pcm:{audio.sha256}", audio, genre)
    return score_batch([item], catalogue, device=device, reference=reference)[0]


def add_tracks(
    catalogue: Catalogue, items: Sequence[TrackInput], device: str | None = None, batch_size: int = 8
) -> None:
    """Append tracks to the catalogue without scoring them (catalogue building): features, fingerprint, add.

    Raises:
        ScoringError: an id repeats or is already present (nothing is added then).
    """
    from scoring.features import extract_features

    if not items:
        return
    ids = [it.track_id for it in items]
    if len(set(ids)) != len(ids) or any(catalogue.position(i) is not None for i in ids):
        raise ScoringError("track ids must be unique and not yet in the catalogue")
    feats = extract_features([it.audio.pcm for it in items], items[0].audio.sample_rate, device, batch_size)
    fps = [fingerprint_pcm(it.audio.pcm, it.audio.sample_rate) for it in items]
    catalogue.add(
        ids,
        _raw_embeddings(feats),
        np.stack([_unit(f.chroma_2dft.ravel()) for f in feats]),
        fps,
        [it.genre for it in items],
        pcm_sha256=[it.audio.sha256 for it in items],
    )


def new_catalogue() -> Catalogue:
    """An empty catalogue with the current feature dimensions."""
    from scoring.features import CHROMA_2DFT_SHAPE, EMBEDDING_DIM

    return Catalogue(EMBEDDING_DIM, CHROMA_2DFT_SHAPE[0] * CHROMA_2DFT_SHAPE[1])


def open_catalogue(folder: str | None) -> Catalogue:
    """The catalogue saved in ``folder`` (empty when the folder holds none; None gives an empty one)."""
    from scoring.features import CHROMA_2DFT_SHAPE, EMBEDDING_DIM

    if folder is None:
        return new_catalogue()
    return Catalogue.open_or_create(folder, EMBEDDING_DIM, CHROMA_2DFT_SHAPE[0] * CHROMA_2DFT_SHAPE[1])
