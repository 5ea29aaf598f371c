"""Public scoring API: canonical audio -> published, versioned, committed scores (novelty, quality, gate).

The worker and validators call `score_track` / `score_batch`. A batch is taken in mint order: each track is
checked against the catalogue and against the tracks before it in the batch (duplicate gate and originality),
and its score records the root hash of exactly that set (`catalogue_root`), so a validator can rebuild it.

The gate (`duplicate_gate`), against candidates in mint order:
- duplicate_of X: identical canonical PCM, or Chromaprint similarity >= `DUPLICATE_FP` (transcodes and gain
  0.99..1.00, unrelated music 0.50..0.65);
- derivative_of X: the same composition in another key, tempo (0.8..1.25), instrumentation, or an excerpt of
  15 s or more, by a `scoring.derivative.match` score at or above its window's threshold
  (`scoring.derivative.threshold`: 0.62 for 15 s, falling to 0.54 for the 30 s window of longer tracks)
  with the window's change correlation at or above `scoring.derivative.CHANGE_THRESHOLD`;
- the EARLIEST matching mint is named, whatever the similarities of later copies.
Candidates: the `CANDIDATES` exact nearest catalogue entries by structural embedding, the catalogue entries
sharing the most harmony landmarks (`scoring.derivative.LandmarkIndex`), and every earlier batch track.
"""

from __future__ import annotations

import hashlib
import json
import math
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from scoring import derivative
from scoring.catalog import Catalogue, chain_root, stored_rows, unit_rows
from scoring.decode import CanonicalAudio
from scoring.errors import ScoringError
from scoring.features import (
    CHROMA_2DFT_SHAPE,
    EMBEDDING_DIM,
    FEATURE_VERSION,
    TrackFeatures,
    extract_features,
)
from scoring.fingerprint import fingerprint_pcm, similarity
from scoring.novelty import GenreReference, load_reference, novelty, view_scalars
from scoring.quality import quality_bp, quality_components, quality_measures
from scoring.versions import MODEL_VERSION, SCORE_VERSION, versions

DUPLICATE_FP = 0.95
CANDIDATES = 10
GATE_VERSION = "ami-dupgate/2"


OVERLAP_MAX_SECONDS = 300.0
"""Per-track work runs beside the feature pass only for batches whose longest track is at most this long:
the quality measures and the features both hold the whole track's spectrogram, and a 900 s track (the
longest `scoring.decode` accepts) peaked at 1105 MiB with the two overlapped against 887 MiB one after the
other (`bench/scoring.py`'s memory probe)."""

T = TypeVar("T")


def beside_features(
    pcms: Sequence[np.ndarray],
    sample_rate: int,
    per_track: Callable[[np.ndarray], T],
    device: str | None = None,
    batch_size: int = 8,
) -> tuple[list[TrackFeatures], list[T]]:
    """`extract_features` of a batch, and ``per_track(pcm)`` of each of its tracks on a second thread while
    torch computes the features (when no track is longer than `OVERLAP_MAX_SECONDS`; else after them).

    Why a thread: the quality measures are numpy and small torch transforms, much of it on one core, and the
    Chromaprint fingerprint is an `fpcalc` child process, while the feature pass leaves cycles free between
    its own multi-threaded steps. Every one of them is a deterministic function of the PCM alone, so the
    results are those of calling them one after the other, bit for bit (tests/scoring/test_scoring_engine.py).

    Raises:
        Whatever either side raises (the other is finished first, so no thread outlives the call).
    """
    longest = max((np.asarray(p).shape[0] for p in pcms), default=0)
    if longest > OVERLAP_MAX_SECONDS * sample_rate:
        feats = extract_features(list(pcms), sample_rate, device, batch_size)
        return feats, [per_track(p) for p in pcms]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ami-beside") as pool:
        pending = pool.submit(lambda: [per_track(p) for p in pcms])
        feats = extract_features(list(pcms), sample_rate, device, batch_size)
        return feats, pending.result()


def features_and_quality(
    pcms: Sequence[np.ndarray], sample_rate: int, device: str | None = None, batch_size: int = 8
) -> tuple[list[TrackFeatures], list[dict[str, float]]]:
    """`extract_features` of a batch and `quality_measures` of each track beside it (`beside_features`):
    what `bench/scoring.py` times against librosa. Overlapping the two cut its quick run (4 x 30 s, 2 cores)
    from 0.31..0.36 s to 0.25..0.27 s wall."""
    return beside_features(pcms, sample_rate, lambda p: quality_measures(p, sample_rate), device, batch_size)


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
    """A gate candidate: id, mint order (catalogue position, then batch order), PCM hash, embedding,
    fingerprint and chroma steps."""

    track_id: str
    order: int
    pcm_sha256: str
    embedding: np.ndarray
    fingerprint: np.ndarray
    steps: np.ndarray


def duplicate_gate(
    fp: np.ndarray, steps: np.ndarray, pcm_sha256: str, candidates: Sequence[_Entry]
) -> tuple[str | None, str | None, dict[str, object]]:
    """(duplicate_of, derivative_of, figures) for one track against candidate entries.

    Duplicate: same canonical PCM or Chromaprint similarity >= `DUPLICATE_FP`. Derivative (only when no
    duplicate): `scoring.derivative.match` is a match (`Match.is_match`). In both cases the earliest
    mint (lowest ``order``) among the matching candidates is named. ``figures["gate"]`` holds the decision
    and its ``margin``: the deciding statistic minus its threshold (for "none", the largest such difference
    over all candidates, a negative number), which validators use as a guard band.
    """
    dups: list[tuple[int, str, float]] = []
    ders: list[tuple[int, str, float]] = []
    figures: dict[str, object] = {}
    closest = -math.inf
    for cand in sorted(candidates, key=lambda c: c.order):
        fp_sim = 1.0 if cand.pcm_sha256 == pcm_sha256 else similarity(fp, cand.fingerprint)
        m = derivative.match(steps, cand.steps)
        figures[cand.track_id] = {
            "fp": round(fp_sim, 4),
            "composition": round(m.score, 4),
            "shift": m.shift,
            "tempo": round(m.tempo, 3),
            "window_s": round(m.window_s, 2),
            "threshold": round(m.threshold, 4),
            "change": round(m.change, 4),
        }
        closest = max(closest, fp_sim - DUPLICATE_FP, m.margin)
        if fp_sim >= DUPLICATE_FP:
            dups.append((cand.order, cand.track_id, fp_sim - DUPLICATE_FP))
        if m.is_match:
            ders.append((cand.order, cand.track_id, m.margin))
    if dups:
        _, name, margin = min(dups)
        figures["gate"] = {"decision": "duplicate", "of": name, "margin": round(margin, 4)}
        return name, None, figures
    if ders:
        _, name, margin = min(ders)
        figures["gate"] = {"decision": "derivative", "of": name, "margin": round(margin, 4)}
        return None, name, figures
    figures["gate"] = {"decision": "none", "margin": None if closest == -math.inf else round(closest, 4)}
    return None, None, figures


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
    """`scoring.versions.versions()` plus the duplicate gate's and the composition matcher's versions."""
    out = versions()
    out["duplicate_gate"] = GATE_VERSION
    out["derivative"] = derivative.DERIVATIVE_VERSION
    return out


# Weak keys: an index lives as long as its catalogue object (a validator's replay prefixes come and go).
_LANDMARKS: weakref.WeakKeyDictionary[Catalogue, derivative.LandmarkIndex] = weakref.WeakKeyDictionary()


def _landmark_index(catalogue: Catalogue) -> derivative.LandmarkIndex:
    """The catalogue's landmark index, kept per catalogue object and extended as the catalogue grows (entries
    are only ever appended, so the first ``len(index)`` positions are already in)."""
    index = _LANDMARKS.get(catalogue)
    if index is None:
        index = _LANDMARKS[catalogue] = derivative.LandmarkIndex()
    for pos in range(len(index), len(catalogue)):
        index.add(pos, derivative.landmarks(catalogue.steps(pos)))
    return index


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
    sr = items[0].audio.sample_rate
    feats, per_track = beside_features(
        [it.audio.pcm for it in items],
        sr,
        lambda pcm: (quality_measures(pcm, sr), fingerprint_pcm(pcm, sr)),
        device,
        batch_size,
    )
    vers = all_versions()
    root = catalogue.root_hash()
    earlier: list[_Entry] = []
    results: list[PublishedScore] = []
    raw_all = _raw_embeddings(feats)
    emb_all = stored_rows(raw_all)
    hits = catalogue.search(emb_all, CANDIDATES, device=device) if len(catalogue) else [[] for _ in items]
    index = _landmark_index(catalogue)
    base = len(catalogue)
    for i, (it, f) in enumerate(zip(items, feats, strict=True)):
        emb = emb_all[i]
        measures, fp = per_track[i]
        positions = {h.index for h in hits[i]}
        # The query's landmarks from its steps at the catalogue's stored resolution, as its own entry will be.
        stored_steps = np.rint(np.clip(f.chroma_steps.astype(np.float64), 0.0, 1.0) * 255.0) / 255.0
        positions.update(index.candidates(derivative.landmarks(stored_steps)))
        cands = [
            _Entry(
                catalogue.ids[p],
                p,
                catalogue.pcm_sha256[p],
                catalogue.embeddings[p],
                catalogue.fingerprint(p),
                catalogue.steps(p),
            )
            for p in sorted(positions)
        ] + earlier
        dup, der, figures = duplicate_gate(fp, f.chroma_steps, it.audio.sha256, cands)
        # Exact float64 similarities of the float32 kNN hits: thread counts and devices sum float32 products
        # in different orders, which could flip a rounded score; exact_dot cannot.
        sims = [exact_dot(emb, c.embedding) for c in cands]
        nearest = max(sims) if sims else None
        nov = novelty(emb, f.scalars, it.genre, nearest, ref)
        qbp = quality_bp(measures)
        fsha = f.digest()
        com = commitment(it.audio.sha256, root, nov.novelty_bp, qbp, dup, der, vers)
        seen = view_scalars(f.scalars, nov.harmony.view)  # the evidence of the view that counted
        details: dict[str, object] = {
            "genre": nov.genre,
            "genre_z": round(nov.z, 4),
            "originality": round(nov.originality, 4),
            "coherence": round(nov.harmony.coherence, 4),
            "coherence_gate": round(nov.harmony.gate, 4),
            "predictability_gate": round(nov.harmony.predictability, 4),
            "harmony_view": nov.harmony.view,
            "harmony_view_trust": round(nov.harmony.trust, 4),
            "evidence": round(nov.evidence, 4),
            "pitched_s": round(seen["pitched_s"], 2),
            "evidence_s": round(seen["evidence_s"], 2),
            "information_content_bits": round(f.scalars["ic_mean"], 3),
            "repetition_16s": round(f.scalars["repetition_16s"], 3),
            "nearest_similarity": None if nearest is None else round(nearest, 4),
            "quality": {k: round(v, 4) for k, v in quality_components(measures).items()},
            "gate": figures.pop("gate"),
            "matches": figures,
        }
        results.append(
            PublishedScore(
                it.audio.sha256, fsha, root, nov.novelty_bp, qbp, dup, der, vers, com, MODEL_VERSION, details
            )
        )
        earlier.append(_Entry(it.track_id, base + i, it.audio.sha256, emb, fp, f.chroma_steps))
        root = chain_root(root, it.track_id, it.audio.sha256)
    if add_to_catalogue:
        catalogue.add(
            [e.track_id for e in earlier],
            raw_all,
            np.stack([_unit(f.chroma_2dft.ravel()) for f in feats]),
            [e.fingerprint for e in earlier],
            [it.genre for it in items],
            pcm_sha256=[e.pcm_sha256 for e in earlier],
            steps=[f.chroma_steps for f in feats],
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
    if not items:
        return
    ids = [it.track_id for it in items]
    if len(set(ids)) != len(ids) or any(catalogue.position(i) is not None for i in ids):
        raise ScoringError("track ids must be unique and not yet in the catalogue")
    sr = items[0].audio.sample_rate
    feats, fps = beside_features(
        [it.audio.pcm for it in items], sr, lambda pcm: fingerprint_pcm(pcm, sr), device, batch_size
    )
    catalogue.add(
        ids,
        _raw_embeddings(feats),
        np.stack([_unit(f.chroma_2dft.ravel()) for f in feats]),
        fps,
        [it.genre for it in items],
        pcm_sha256=[it.audio.sha256 for it in items],
        steps=[f.chroma_steps for f in feats],
    )


def new_catalogue() -> Catalogue:
    """An empty catalogue with the current feature dimensions."""
    return Catalogue(EMBEDDING_DIM, CHROMA_2DFT_SHAPE[0] * CHROMA_2DFT_SHAPE[1])


def open_catalogue(folder: str | None) -> Catalogue:
    """The catalogue saved in ``folder`` (empty when the folder holds none; None gives an empty one)."""
    if folder is None:
        return new_catalogue()
    return Catalogue.open_or_create(folder, EMBEDDING_DIM, CHROMA_2DFT_SHAPE[0] * CHROMA_2DFT_SHAPE[1])
