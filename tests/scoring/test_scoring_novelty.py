"""Novelty: inverted U on genre distance, originality vs the catalogue, coherence gate, reference loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoring import testsignals as ts
from scoring.decode import SAMPLE_RATE
from scoring.features import EMBEDDING_DIM, FEATURE_VERSION, extract_features
from scoring.novelty import (
    Z_PEAK,
    GenreError,
    coherence,
    genre_distance,
    load_reference,
    novelty,
    originality,
    parse_reference,
    typicality,
)


def test_absent_style_beats_near_copy(variant_scores) -> None:
    # catalogue holds bach + mozart; a madrigal is a style it lacks, bach_mp3 / bach_up1 are near-copies
    absent = variant_scores["madrigal"].novelty_bp
    assert absent > variant_scores["bach_mp3"].novelty_bp
    assert absent > variant_scores["bach_up1"].novelty_bp
    assert variant_scores["bach_mp3"].details["originality"] < 0.05
    assert variant_scores["madrigal"].details["originality"] > 0.5


def test_inverted_u() -> None:
    zs = [0.0, Z_PEAK / 4, Z_PEAK / 2, Z_PEAK, Z_PEAK * 2, Z_PEAK * 4]
    t = [typicality(z) for z in zs]
    assert t[0] == 0.0 and t[3] == pytest.approx(1.0)
    assert t[0] < t[1] < t[2] < t[3] > t[4] > t[5]


def test_originality_monotone_and_empty_catalogue() -> None:
    sims = [1.0, 0.99, 0.95, 0.9, 0.5]
    values = [originality(s) for s in sims]
    assert values[0] == 0.0 and all(a < b for a, b in zip(values, values[1:], strict=False))
    assert originality(None) == 1.0


def test_noise_is_not_novel() -> None:
    noise, song = extract_features(
        [
            ts.white_noise(20.0, SAMPLE_RATE, amp=0.3).astype(np.float32),
            ts.chord_song(seconds=20.0, sr=SAMPLE_RATE).astype(np.float32),
        ],
        SAMPLE_RATE,
    )
    assert coherence(noise.scalars) < 0.1 < 0.8 < coherence(song.scalars)
    # noise is far from everything (originality 1 against any catalogue) and still scores low
    n = novelty(noise.embedding, noise.scalars, None, None)
    s = novelty(song.embedding, song.scalars, None, None)
    assert n.originality == 1.0 and n.novelty_bp < 1000 < s.novelty_bp


def test_genre_distance_and_unknown_genre() -> None:
    ref = load_reference()
    assert ref.feature_version == FEATURE_VERSION
    assert set(ref.names()) >= {"bach_chorale", "folk_song", "string_quartet", "madrigal", "ragtime_piano"}
    centroid = ref.genres["bach_chorale"].centroid
    assert genre_distance(centroid, "bach_chorale", ref) == ("bach_chorale", pytest.approx(0.0, abs=1e-9))
    assert genre_distance(centroid, None, ref)[0] == "bach_chorale"
    with pytest.raises(GenreError, match="unknown genre 'polka'"):
        genre_distance(centroid, "polka", ref)


def test_reference_is_validated() -> None:
    good = {
        "version": "ami-genre-ref/1",
        "feature_version": "f",
        "genres": {"a": {"centroid": [1.0] + [0.0] * (EMBEDDING_DIM - 1), "spread": 0.1, "count": 3}},
    }
    assert parse_reference(json.dumps(good).encode()).names() == ["a"]
    for broken in (
        b"{",
        json.dumps({**good, "version": "x"}).encode(),
        json.dumps({**good, "genres": {}}).encode(),
        json.dumps({**good, "genres": {"a": {"centroid": [0.0], "spread": 0.1, "count": 1}}}).encode(),
    ):
        with pytest.raises(GenreError):
            parse_reference(broken)
    with pytest.raises(GenreError, match="not found"):
        load_reference("/nonexistent/genre_reference.json")


def test_declared_genre_changes_typicality(variant_scores, audio) -> None:
    feats = extract_features([audio["folk"].pcm], SAMPLE_RATE)[0]
    own = novelty(feats.embedding, feats.scalars, "folk_song", 0.5)
    other = novelty(feats.embedding, feats.scalars, "string_quartet", 0.5)
    assert own.z < other.z
    assert 0 <= own.novelty_bp <= 10000 and 0 <= other.novelty_bp <= 10000
