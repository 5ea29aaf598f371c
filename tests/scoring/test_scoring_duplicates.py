"""Duplicate gate on real renders: transcodes and gain changes are duplicates, key/tempo shifts derive, the
earliest mint is named, and the gate reports its margin for validators."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import derivative
from scoring.engine import (
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


def _entry(name: str, order: int, fp: np.ndarray, steps: np.ndarray, pcm: str = "") -> _Entry:
    return _Entry(name, order, pcm, np.zeros(3), fp, steps)


def test_gate_precedence_earliest_mint_and_margin() -> None:
    rng = np.random.default_rng(0)
    fp = rng.integers(0, 2**32, 200, dtype=np.uint64).astype(np.uint32)
    other_fp = rng.integers(0, 2**32, 200, dtype=np.uint64).astype(np.uint32)
    # 40 s of chroma steps following a random progression, and an unrelated one.
    steps = np.repeat(rng.random((45, 12)), 4, axis=0)
    unrelated = np.repeat(rng.random((45, 12)), 4, axis=0)
    source = _entry("source", 3, other_fp, steps)
    later_copy = _entry("later", 9, other_fp, steps)
    stranger = _entry("stranger", 1, other_fp, unrelated)
    dup, der, figures = duplicate_gate(fp, steps, "x", [later_copy, stranger, source])
    # both the source and its later copy match; the earlier mint is named, not the first candidate listed
    assert (dup, der) == (None, "source")
    assert figures["gate"]["decision"] == "derivative" and figures["gate"]["margin"] > 0
    src, other = figures["source"], figures["stranger"]
    assert src["composition"] >= src["threshold"] and other["composition"] < other["threshold"]
    # 40 s against 40 s: the long window and its threshold decide (docs/scoring.md)
    assert src["threshold"] == pytest.approx(derivative.LONG_THRESHOLD) and src["window_s"] >= 29.5
    # a duplicate wins over a derivative whatever the order; identical PCM is a duplicate even with no
    # fingerprint
    same = _entry("same", 12, np.zeros(0, np.uint32), unrelated, pcm="x")
    assert duplicate_gate(fp, steps, "x", [source, same])[:2] == ("same", None)
    assert duplicate_gate(fp, steps, "x", [_entry("fp", 5, fp, unrelated)])[:2] == ("fp", None)
    # nothing matches: the decision is none and the margin is the closest approach, below zero
    dup, der, figures = duplicate_gate(fp, unrelated[::-1], "y", [stranger])
    assert (dup, der) == (None, None) and figures["gate"]["decision"] == "none"
    assert figures["gate"]["margin"] < 0


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
    assert figures["composition"] < figures["threshold"] and figures["fp"] < DUPLICATE_FP
    assert second.details["gate"]["margin"] < 0
