"""Structural novelty -> novelty_bp in 0..10000: originality against the catalogue, gated by how composed the
track's structure is (an inverted U over information content, learned from composed vs degenerate music).

``novelty_bp = round(10000 * O(s1) * G(M) * P * T * E)``, G, P, T and E read in the harmony view that pays
most:
- O (originality): distance of the track's structural embedding (`scoring.structure`: harmony, tonality,
  rhythm, form; no timbre) to the nearest catalogued track, by exact kNN; a near-copy earns nothing.
- M (coherence): a logistic model over structural scalars (IDyOM-style information content and its square,
  repetition at 4 s, harmonic persistence, tonal clarity, bar-level rhythmic repetition, event rate),
  fitted by `scripts/build_coherence_model.py` on composed music vs loops, shuffles, random notes, tones and
  noise (a training split disjoint from the validity benchmark). The squared IC term lets the fit find the
  inverted U of the psychology of music (Berlyne's Wundt curve; Askin & Mauskapf 2017 for popularity): too
  predictable (loops, tones) and too unpredictable (random notes, shuffles) both score low.
- G: a smooth step that gives full credit once M says "composed" with some confidence, so that instrument or
  mixing differences of one composition do not move the score.
- P: the lower arm of the inverted U made explicit: a piece whose second half has become fully predictable
  (loops, held tones: under ~0.4 bit per chord change) carries no new structure.
- Two views of the harmony: M and P are read from the chroma of the whole spectrum and from the upper voices'
  chroma alone (`scoring.transforms.TREBLE_FMIN_HZ`, C3, up), and the view with the larger G x P x T counts,
  T being the trust in the view. Below C3 the STFT cannot tell neighbouring semitones apart, so a loud bass
  smears over half the pitch-class circle and can hide the chords above it (a sub-bass under a jingle's
  chords left no chord at all); the bass line still carries the harmony of most music, so the whole spectrum
  is the first view (T = 1). The treble view is trusted only where it reads chords over most of the track,
  and over at least as much of it as the whole spectrum does (`view_trust`): otherwise it has lost harmony
  rather than found it, and a loop or low noise could read there as a few surprising chords.
- E (evidence): the share of novelty a track holds enough music to earn, from its seconds of pitched material
  that show harmony (`structure.evidence_seconds`; `EVIDENCE_SECONDS`, 8 to 20 s). Nothing here can tell 6 s
  of random notes from 6 s of a composition, and neither silence, noise, a held chord, a sine nor a slow
  vamp around them is music. Each view counts its own seconds.

The creator's declared genre never enters the score (it is recorded, and the nearest style of the genre
reference is reported), so declaring a genre, rightly or wrongly, can neither raise nor lower novelty.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from scoring.errors import ScoringError
from scoring.structure import TREBLE_PREFIX, smoothstep

NOVELTY_VERSION = "ami-novelty/5"
REFERENCE_VERSION = "ami-genre-ref/1"
COHERENCE_VERSION = "ami-coherence/7"

ORIGINALITY_SCALE = 0.05
"""Cosine distance to the nearest catalogued track at which originality reaches 1 - 1/e."""
COHERENCE_LOW = 0.05
COHERENCE_HIGH = 0.6
"""G rises smoothly from 0 at M = COHERENCE_LOW to 1 at M = COHERENCE_HIGH."""
PREDICTABLE_BITS = (0.4, 1.2)
"""P rises smoothly from 0 to 1 as the information content of the second half (bits per chord change) goes
from 0.4 to 1.2: a piece that has become fully predictable (a loop, a held tone) restates itself and carries
no new structure. Composed music measured here stays above 1.5 bits; loops fall below 0.1."""
COHERENCE_FEATURES: tuple[str, ...] = (
    "ic_mean",
    "ic_mean_sq",
    "ic_late",
    "entropy_mean",
    "repetition_4s",
    "persistence_1",
    "persistence_2",
    "persistence_4",
    "tonal_clarity",
    "metrical_repetition",
    "log_events_per_s",
    "surprising_leap",
    "beat_continuity",
)
"""The coherence model's inputs (`scoring.structure` and `scoring.melody`). The share of voiced steps is not
one: silence says nothing about structure, and as an input it let gaps cut into random notes lift them to full
novelty (coherence model 2)."""
"""Inputs of the coherence model, in order (see `coherence_inputs`)."""


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


def coherence_inputs(scalars: Mapping[str, float]) -> list[float]:
    """The coherence model's inputs from a track's scalars, in `COHERENCE_FEATURES` order (ic_mean_sq is
    ic_mean squared; log_events_per_s is log2(1 + events_per_s))."""
    ic = float(scalars["ic_mean"])
    values = {
        "ic_mean_sq": ic * ic,
        "log_events_per_s": math.log2(1.0 + max(0.0, float(scalars["events_per_s"]))),
    }
    return [float(values[k]) if k in values else float(scalars[k]) for k in COHERENCE_FEATURES]


@dataclass(frozen=True)
class CoherenceModel:
    """Standardisation and logistic weights of the coherence model, with a digest of the file."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    digest: str


@lru_cache(maxsize=1)
def load_coherence_model() -> CoherenceModel:
    """The shipped model (scoring/data/coherence_model.json, from scripts/build_coherence_model.py).

    Raises:
        ScoringError: the file is missing, damaged, or built for other inputs.
    """
    try:
        raw = resources.files("scoring").joinpath("data/coherence_model.json").read_bytes()
        doc = json.loads(raw)
        if doc["version"] != COHERENCE_VERSION or tuple(doc["features"]) != COHERENCE_FEATURES:
            raise ScoringError(
                f"coherence model is {doc['version']} over {doc['features']}; expected {COHERENCE_VERSION} "
                "over the current inputs: run scripts/build_coherence_model.py"
            )
        model = CoherenceModel(
            np.asarray(doc["mean"], np.float64),
            np.asarray(doc["std"], np.float64),
            np.asarray(doc["weights"], np.float64),
            float(doc["bias"]),
            "sha256:" + hashlib.sha256(raw).hexdigest()[:16],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScoringError(
            f"coherence model missing or damaged ({exc}); run scripts/build_coherence_model.py"
        ) from exc
    return model


def coherence(scalars: Mapping[str, float], model: CoherenceModel | None = None) -> float:
    """``M = 1 / (1 + exp(-(b + sum_i w_i (x_i - mu_i) / sigma_i)))`` over `coherence_inputs`; M in (0, 1).

    The sum is taken with math.fsum, so the summation order (threads, devices) cannot change it.
    """
    mdl = model if model is not None else load_coherence_model()
    x = (np.asarray(coherence_inputs(scalars)) - mdl.mean) / mdl.std
    z = mdl.bias + math.fsum((x * mdl.weights).tolist())
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def _smoothstep(x: float, lo: float, hi: float) -> float:
    return float(smoothstep(x, lo, hi))


def predictability_gate(scalars: Mapping[str, float]) -> float:
    """``P = smoothstep(ic_late; PREDICTABLE_BITS)``: the lower arm of the inverted U made explicit (the
    coherence model cannot extrapolate to material with no events at all, such as a pure tone)."""
    return _smoothstep(float(scalars["ic_late"]), *PREDICTABLE_BITS)


def coherence_gate(m: float) -> float:
    """``G(M) = s^2 (3 - 2 s)``, ``s = clip((M - COHERENCE_LOW) / (COHERENCE_HIGH - COHERENCE_LOW), 0, 1)``
    (a smooth step: continuous with its slope, so a tiny change of M never jumps the score)."""
    return _smoothstep(m, COHERENCE_LOW, COHERENCE_HIGH)


EVIDENCE_SECONDS = (8.0, 20.0)
"""Novelty's evidence E rises smoothly from 0 to 1 as the track's pitched material that shows harmony
(`structure.evidence_seconds`) goes from 8 to 20 s. Structure takes time to show: on 6 s excerpts of the
validity probes, real music against random notes read an AUC of 0.61 and random notes a median G x P x T of
0.88, against 0.92 at 20 s and 0.99 at 30 s (`bench/padding.py --lengths`); and 6 s of random notes followed
by 24 s of silence, quiet noise, one held chord, a sine or a sweep read as fully composed."""


def evidence(scalars: Mapping[str, float]) -> float:
    """``E = smoothstep(evidence_s; EVIDENCE_SECONDS)`` (1 when a track's scalars carry no ``evidence_s``, as
    a hand-made test's may not): the share of novelty a track holds enough music to earn."""
    if "evidence_s" not in scalars:
        return 1.0
    return _smoothstep(float(scalars["evidence_s"]), *EVIDENCE_SECONDS)


HARMONY_VIEWS: tuple[str, ...] = ("full", "treble")
"""The views of the harmony `novelty` reads, in order of preference on a tie."""
TREBLE_COVERAGE = (0.35, 0.55)
"""The treble view's trust rises smoothly from 0 to 1 as its chord events cover 35 % to 55 % of its voiced
steps: on noise whose energy lies low, the upper voices' chroma makes a few chance chords (11..27 % of the
steps of brown noise with gaps), where the music that view lifts covers 56..91 %."""
TREBLE_MARGIN = (-0.15, 0.0)
"""... and as its coverage goes from 0.15 below the full view's to the full view's: a view that reads fewer
chords than the whole spectrum has lost harmony the bass carried, not found hidden chords (a training loop
read 3 chord events there against 15 on the whole spectrum, and would have scored 10000)."""


def view_scalars(scalars: Mapping[str, float], view: str) -> Mapping[str, float]:
    """A track's scalars as one view of the harmony sees them: "full" as they are; "treble" with every
    scalar that has a `TREBLE_PREFIX` twin replaced by that twin."""
    if view == "full":
        return scalars
    if view != "treble":
        raise ValueError(f"unknown harmony view {view!r}; known: {', '.join(HARMONY_VIEWS)}")
    n = len(TREBLE_PREFIX)
    return {**scalars, **{k[n:]: v for k, v in scalars.items() if k.startswith(TREBLE_PREFIX)}}


@dataclass(frozen=True)
class HarmonyReading:
    """Coherence M, its gate G, the predictability gate P, the trust T in the view (`view_trust`) and the
    evidence E (`evidence`) as one view of the harmony reads them."""

    coherence: float
    gate: float
    predictability: float
    view: str
    trust: float = 1.0
    evidence: float = 1.0

    @property
    def structure(self) -> float:
        """G x P x T: how composed the view reads the track, whatever its length."""
        return self.gate * self.predictability * self.trust

    @property
    def credit(self) -> float:
        """G x P x T x E: the share of originality that novelty pays."""
        return self.structure * self.evidence


def view_trust(scalars: Mapping[str, float], view: str) -> float:
    """1 for the full view; for the treble view ``smoothstep(c_t; TREBLE_COVERAGE) x smoothstep(c_t - c_f;
    TREBLE_MARGIN)`` with c_t, c_f the chord coverage of the treble and the full view (1 when a track's
    scalars carry no coverage, as a hand-made test's may not)."""
    if view == "full":
        return 1.0
    full = view_scalars(scalars, "full")
    seen = view_scalars(scalars, view)
    if "chord_coverage" not in full or "chord_coverage" not in seen:
        return 1.0
    c_t, c_f = float(seen["chord_coverage"]), float(full["chord_coverage"])
    return _smoothstep(c_t, *TREBLE_COVERAGE) * _smoothstep(c_t - c_f, *TREBLE_MARGIN)


def read_harmony(
    scalars: Mapping[str, float], coherence_of: Callable[[Mapping[str, float]], float] = coherence
) -> HarmonyReading:
    """M, G, P, T and E in each of `HARMONY_VIEWS`; the reading with the larger G x P x T x E (the earlier
    view on a tie).
    ``coherence_of`` maps a view's scalars to M (the shipped model by default; benchmarks pass others)."""
    best: HarmonyReading | None = None
    for view in HARMONY_VIEWS:
        seen = view_scalars(scalars, view)
        m = coherence_of(seen)
        reading = HarmonyReading(
            m, coherence_gate(m), predictability_gate(seen), view, view_trust(scalars, view), evidence(seen)
        )
        if best is None or reading.credit > best.credit:
            best = reading
    assert best is not None
    return best


@dataclass(frozen=True)
class NoveltyResult:
    """Novelty with its parts: originality O, the reading of the harmony view that counted (M, G, P, T, E and
    the view), and the nearest style of the genre reference with its normalised distance z (reported, never
    scored)."""

    novelty_bp: int
    genre: str
    z: float
    originality: float
    harmony: HarmonyReading

    @property
    def evidence(self) -> float:
        """E of the harmony view that counted."""
        return self.harmony.evidence


def novelty(
    embedding: np.ndarray,
    scalars: Mapping[str, float],
    genre: str | None,
    nearest_similarity: float | None,
    reference: GenreReference | None = None,
) -> NoveltyResult:
    """``novelty_bp = round(10000 * O(s1) * max_v G(M_v) P_v T_v E_v)`` over the `HARMONY_VIEWS` v, see the
    module docstring.

    Args:
        embedding: [D] structural embedding (normalised here) for the style report.
        scalars: the track's scalar features (the `COHERENCE_FEATURES` inputs, and their `TREBLE_PREFIX`
            twins; without them the treble view reads as the full one).
        genre: declared genre or None; checked against the reference, reported, never scored.
        nearest_similarity: cosine similarity to the nearest catalogued/earlier track, None when none.
        reference: genre reference; the shipped one by default.

    Raises:
        GenreError: the declared genre is not in the reference.
    """
    ref = reference if reference is not None else load_reference()
    if genre is not None and genre not in ref.genres:
        raise GenreError(f"unknown genre {genre!r}; known genres: {', '.join(ref.names())}")
    style, z = genre_distance(embedding, None, ref)
    o = originality(nearest_similarity)
    h = read_harmony(scalars)
    bp = int(min(10000, max(0, round(10000.0 * o * h.credit))))
    return NoveltyResult(bp, genre if genre is not None else style, z, o, h)
