"""Duplicate gate on real renders: transcodes and gain changes are duplicates, key/tempo shifts derive."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.engine import (
    DERIVATIVE_C2D,
    DERIVATIVE_EMB,
    DUPLICATE_FP,
    TrackInput,
    _Entry,
    duplicate_gate,
    score_batch,
)


@pytest.mark.parametrize("key", ["bach_mp3", "bach_gain"])
def test_transcode_and_gain_are_duplicates(variant_scores, key: str) -> None:
    score = variant_scores[key]
    assert score.duplicate_of == "bach"
    assert score.derivative_of is None


@pytest.mark.parametrize(
    ("key", "source"), [("bach_up1", "bach"), ("bach_t105", "bach"), ("mozart_up1", "mozart")]
)
def test_pitch_and_tempo_shifts_are_derivatives(variant_scores, key: str, source: str) -> None:
    score = variant_scores[key]
    assert score.duplicate_of is None
    assert score.derivative_of == source


@pytest.mark.parametrize("key", ["folk", "madrigal", "joplin"])
def test_unrelated_tracks_are_originals(variant_scores, key: str) -> None:
    score = variant_scores[key]
    assert score.duplicate_of is None and score.derivative_of is None
    for figures in score.details["matches"].values():
        assert figures["fp"] < DUPLICATE_FP


def test_earlier_file_of_the_same_batch_is_found(audio) -> None:
    from scoring.engine import new_catalogue

    cat = new_catalogue()
    items = [TrackInput("first", audio["folk"]), TrackInput("second", audio["folk_mp3"])]
    first, second = score_batch(items, cat, device="cpu")
    assert first.duplicate_of is None and second.duplicate_of == "first"
    assert len(cat) == 0  # the snapshot is not changed unless asked


def _entry(name: str, fp: np.ndarray, c2d: np.ndarray, emb: np.ndarray) -> _Entry:
    return _Entry(name, "", emb, c2d, fp)


def test_gate_thresholds_and_precedence() -> None:
    rng = np.random.default_rng(0)
    fp = rng.integers(0, 2**32, 200, dtype=np.uint64).astype(np.uint32)
    other_fp = rng.integers(0, 2**32, 200, dtype=np.uint64).astype(np.uint32)
    c2d = np.ones(4) / 2.0
    emb = np.array([1.0, 0.0, 0.0])

    def rot(v: np.ndarray, cos: float) -> np.ndarray:
        out = np.zeros_like(v)
        out[0], out[1] = cos, np.sqrt(1 - cos * cos)
        return out

    c2d_far = np.array([0.5, 0.5, 0.5, -0.5])  # cosine 0.5 with c2d
    derivative = _entry("der", other_fp, c2d, rot(emb, DERIVATIVE_EMB + 0.01))
    weak_emb = _entry("weak", other_fp, c2d, rot(emb, DERIVATIVE_EMB - 0.05))
    weak_c2d = _entry("c2d", other_fp, c2d_far, emb)
    dup = _entry("dup", fp, c2d_far, rot(emb, 0.5))
    assert duplicate_gate(fp, c2d, emb, "x", [weak_emb, weak_c2d])[:2] == (None, None)
    assert duplicate_gate(fp, c2d, emb, "x", [weak_emb, derivative])[:2] == (None, "der")
    # a duplicate wins over a derivative whatever the order
    assert duplicate_gate(fp, c2d, emb, "x", [derivative, dup])[:2] == ("dup", None)
    # identical canonical PCM is a duplicate even without a fingerprint
    same = _Entry("same", "x", emb, c2d, np.zeros(0, np.uint32))
    assert duplicate_gate(fp, c2d, emb, "x", [same])[:2] == ("same", None)
    # the measured margins in docs/scoring.md
    assert 0.908 < DERIVATIVE_C2D < 0.933 and 0.936 < DERIVATIVE_EMB < 0.990 and 0.85 < DUPLICATE_FP < 0.993


def test_renders_are_reproducible_and_bad_requests_typed(tmp_path) -> None:
    from scoring.corpus import STYLES, RenderError, render_piece

    a = render_piece("folk_song", tmp_path / "a.wav", seconds=6.0)
    b = render_piece("folk_altdeu10_1", tmp_path / "b.wav", seconds=6.0)
    piano = render_piece("folk_song", tmp_path / "c.wav", seconds=6.0, program=0)
    assert a.read_bytes() == b.read_bytes() != piano.read_bytes()
    assert {"bach_chorale", "folk_song", "string_quartet", "ragtime_piano", "madrigal"} <= set(STYLES)
    with pytest.raises(RenderError, match="unknown piece or style"):
        render_piece("polka", tmp_path / "x.wav")
    with pytest.raises(RenderError, match="0..127"):
        render_piece("folk_song", tmp_path / "x.wav", program=128)


def test_two_chorales_in_the_same_style_are_not_derivatives(tmp_path) -> None:
    """The hardest measured pair: two Bach chorales, same organ, same tempo."""
    from scoring.corpus import SamplePiece, render_piece
    from scoring.decode import decode_file
    from scoring.engine import new_catalogue

    audio = []
    for bwv in ("bwv1.6", "bwv13.6"):
        piece = SamplePiece(bwv, "bach_chorale", f"bach/{bwv}", None, (19,), 80.0)
        audio.append(decode_file(render_piece(piece, tmp_path / f"{bwv}.wav", seconds=30.0)))
    first, second = score_batch(
        [TrackInput("bwv1.6", audio[0]), TrackInput("bwv13.6", audio[1])], new_catalogue(), device="cpu"
    )
    assert second.duplicate_of is None and second.derivative_of is None
    figures = second.details["matches"]["bwv1.6"]
    assert figures["c2d"] < DERIVATIVE_C2D and figures["fp"] < DUPLICATE_FP
