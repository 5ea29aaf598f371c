"""Structural novelty -> novelty_bp in 0..10000: typicality on an inverted U, originality vs the catalogue,
gated by coherence (noise is not novelty).

Moderate atypicality is rewarded (Askin & Mauskapf 2017): the distance of a track's embedding from
its declared genre's reference centroid, in units of that genre's own spread, scores highest around
`Z_PEAK` and low both when the track is a textbook example and when it is far outside the genre.
Originality is the distance to the nearest catalogued track (exact kNN), so near-copies earn nothing.
Originality multiplies the typicality term, and both are multiplied by a coherence gate built from
key clarity, pulse clarity, repetition and noise-likeness, so that noise, which is far from
everything, does not score as novel.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from scoring.errors import ScoringError

NOVELTY_VERSION = "ami-novelty/1"
REFERENCE_VERSION = "ami-genre-ref/1"

Z_PEAK = 1.5
"""Normalised genre distance at which typicality peaks (1.5 x the genre's own RMS spread)."""
Z_WIDTH = 0.7
"""Width of the inverted U in natural-log units of z."""
ORIGINALITY_SCALE = 0.05
"""Cosine distance to the nearest catalogued track at which originality reaches 1 - 1/e."""
TYPICALITY_FLOOR = 0.5
"""Share of the score that does not depend on typicality: a very typical but original, coherent track still
earns half."""


class GenreError(ScoringError):
    """The declared genre is not in the genre reference, or the reference file is missing or damaged."""


@dataclass(frozen=True)
class GenreStats:
    """Reference statistics of one genre in embedding space.

    Attributes:
        centroid: unit mean direction of the genre's embeddings, [D] float64.
        spread: RMS cosine distance of the genre's tracks to the centroid (> 0).
        count: number of reference tracks.
    """

    centroid: np.ndarray
    spread: float
    count: int


@dataclass(frozen=True)
class GenreReference:
    """All genres' statistics, the feature version they were built with, and a digest of the file."""

    genres: dict[str, GenreStats]
    feature_version: str
    digest: str

    def names(self) -> list[str]:
        return sorted(self.genres)


def parse_reference(raw: bytes) -> GenreReference:
    """Parse a genre reference JSON document (see scripts/build_genre_reference.py for its layout)."""
    try:
        doc = json.loads(raw)
        if doc.get("version") != REFERENCE_VERSION:
            raise GenreError(f"genre reference is {doc.get('version')!r}, expected {REFERENCE_VERSION}")
        genres: dict[str, GenreStats] = {}
        for name, g in doc["genres"].items():
            c = np.asarray(g["centroid"], dtype=np.float64)
            n = float(np.linalg.norm(c))
            if not n > 0 or not float(g["spread"]) > 0:
                raise GenreError(f"genre {name!r} in the reference has a zero centroid or spread")
            genres[name] = GenreStats(c / n, float(g["spread"]), int(g["count"]))
        feature_version = str(doc["feature_version"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GenreError(f"genre reference is damaged: {exc}") from exc
    if not genres:
        raise GenreError("genre reference holds no genres")
    return GenreReference(genres, feature_version, "sha256:" + hashlib.sha256(raw).hexdigest()[:16])


@lru_cache(maxsize=4)
def load_reference(path: str | None = None) -> GenreReference:
    """The shipped reference (scoring/data/genre_reference.json), or the file at ``path``."""
    try:
        if path is None:
            raw = resources.files("scoring").joinpath("data/genre_reference.json").read_bytes()
        else:
            raw = Path(path).read_bytes()
    except OSError as exc:
        raise GenreError(f"genre reference not found ({exc}); run scripts/build_genre_reference.py") from exc
    return parse_reference(raw)


def typicality(z: float) -> float:
    """Inverted U on the normalised genre distance z >= 0.

    ``T(z) = exp(-(ln(z / Z_PEAK))^2 / (2 Z_WIDTH^2))`` for z > 0, and 0 at z = 0; T = 1 at z = Z_PEAK,
    about 0.3 at z = Z_PEAK / 2.3 or 2.3 Z_PEAK.
    """
    if z <= 0:
        return 0.0
    return math.exp(-(math.log(z / Z_PEAK) ** 2) / (2.0 * Z_WIDTH**2))


def genre_distance(embedding: np.ndarray, genre: str | None, reference: GenreReference) -> tuple[str, float]:
    """Normalised distance ``z = (1 - cos(e, mu_g)) / s_g`` to the declared genre g.

    With no declared genre, the genre with the smallest z is used (the track is judged against the style it is
    closest to). Returns (genre used, z).

    Raises:
        GenreError: the declared genre is not in the reference.
    """
    e = np.asarray(embedding, dtype=np.float64)
    e = e / max(math.sqrt(math.fsum((e * e).tolist())), 1e-300)

    def z_of(stats: GenreStats) -> float:
        if stats.centroid.shape != e.shape:
            raise GenreError(
                f"genre reference has dimension {stats.centroid.shape[0]}, embedding {e.shape[0]}"
            )
        # fsum: an order-independent sum, so BLAS threading cannot move a published score.
        return max(0.0, 1.0 - math.fsum((e * stats.centroid).tolist())) / stats.spread

    if genre is not None:
        if genre not in reference.genres:
            raise GenreError(f"unknown genre {genre!r}; known genres: {', '.join(reference.names())}")
        return genre, z_of(reference.genres[genre])
    return min(((name, z_of(s)) for name, s in sorted(reference.genres.items())), key=lambda t: t[1])


def originality(nearest_similarity: float | None) -> float:
    """``O = 1 - exp(-(1 - s1) / ORIGINALITY_SCALE)`` with s1 the cosine similarity of the nearest catalogued
    (or earlier) track; O = 1 with an empty catalogue. A transcode (s1 ~ 1.0) gives ~0, an unrelated piece of
    the same style (s1 ~ 0.9) ~0.86."""
    if nearest_similarity is None:
        return 1.0
    d = max(0.0, 1.0 - float(nearest_similarity))
    return 1.0 - math.exp(-d / ORIGINALITY_SCALE)


def coherence(scalars: Mapping[str, float]) -> float:
    """Coherence gate in [0, 1]: ``G = tonal * (0.5 + 0.5 * structure) * clean``.

    - tonal = clip((key_clarity - 0.2) / 0.4, 0, 1): pitched, key-centred material (noise has ~0);
    - structure = max(clip(pulse_clarity / 0.3, 0, 1), repetition_ratio): a clear pulse or recurring sections;
    - clean = 1 / (1 + (spectral_flatness / 0.1)^2): noise-like spectra (flatness of white noise ~0.56) close
      the gate.
    """
    tonal = min(1.0, max(0.0, (float(scalars["key_clarity"]) - 0.2) / 0.4))
    structure = max(
        min(1.0, max(0.0, float(scalars["pulse_clarity"]) / 0.3)),
        min(1.0, max(0.0, float(scalars["repetition_ratio"]))),
    )
    clean = 1.0 / (1.0 + (max(0.0, float(scalars["spectral_flatness"])) / 0.1) ** 2)
    return tonal * (0.5 + 0.5 * structure) * clean


@dataclass(frozen=True)
class NoveltyResult:
    """Novelty with its parts (all in [0, 1] except z and the basis points)."""

    novelty_bp: int
    genre: str
    z: float
    typicality: float
    originality: float
    coherence: float


def novelty(
    embedding: np.ndarray,
    scalars: Mapping[str, float],
    genre: str | None,
    nearest_similarity: float | None,
    reference: GenreReference | None = None,
) -> NoveltyResult:
    """``novelty_bp = round(10000 * G * O(s1) * (F + (1 - F) * T(z)))`` with F = TYPICALITY_FLOOR.

    Originality multiplies (a copy of a catalogued track is not novel however atypical it is), typicality
    shapes the rest on the inverted U, and the coherence gate G multiplies everything.

    Args:
        embedding: [D] track embedding (normalised here).
        scalars: the track's scalar features (key_clarity, pulse_clarity, repetition_ratio,
            spectral_flatness).
        genre: declared genre or None (nearest genre is used).
        nearest_similarity: cosine similarity to the nearest catalogued/earlier track, None when there
            is none.
        reference: genre reference; the shipped one by default.
    """
    ref = reference if reference is not None else load_reference()
    used, z = genre_distance(embedding, genre, ref)
    t = typicality(z)
    o = originality(nearest_similarity)
    g = coherence(scalars)
    value = g * o * (TYPICALITY_FLOOR + (1.0 - TYPICALITY_FLOOR) * t)
    bp = int(min(10000, max(0, round(10000.0 * value))))
    return NoveltyResult(bp, used, z, t, o, g)
