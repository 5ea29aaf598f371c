"""The derivative gate (scoring.derivative): the same composition in another key, tempo, timbre or as an
excerpt matches; other compositions of the same style do not; the landmark index finds the source."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import derivative as dv
from scoring import structure as st
from scoring.features import frame_features
from scoring.testsignals import tone

SR = 22050
# Two different progressions in one style: the same diatonic chords and harmonic rhythm, in another order.
PIECE_A = ((0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14), (4, 7, 11), (9, 12, 16), (2, 5, 9), (7, 11, 14))
PIECE_B = ((5, 9, 12), (0, 4, 7), (7, 11, 14), (9, 12, 16), (2, 5, 9), (5, 9, 12), (0, 4, 7), (4, 7, 11))


def _render(
    progression: tuple[tuple[int, ...], ...],
    *,
    tonic: float = 60.0,
    bpm: float = 100.0,
    harmonics: int = 4,
    decay: float | None = None,
    seconds: float = 40.0,
) -> np.ndarray:
    beat = 60.0 / bpm
    out = np.zeros(int(seconds * SR))
    k = 0
    while k * beat * 2 < seconds:
        chord = progression[k % len(progression)]
        seg = tone(tuple(tonic + c for c in chord), 2 * beat, SR, 0.4, harmonics, decay)
        i = int(k * 2 * beat * SR)
        j = min(out.size, i + seg.size)
        out[i:j] += seg[: j - i]
        k += 1
    return out.astype(np.float32)


def _steps(pcm: np.ndarray) -> np.ndarray:
    return st.chroma_steps(frame_features(pcm, SR)["chroma_power"])[0]


@pytest.fixture(scope="module")
def pieces() -> dict[str, np.ndarray]:
    src = _render(PIECE_A)
    return {
        "source": _steps(src),
        "other_timbre": _steps(_render(PIECE_A, harmonics=1, decay=0.4)),
        "transposed": _steps(_render(PIECE_A, tonic=63.0)),
        "slower": _steps(_render(PIECE_A, bpm=80.0, seconds=50.0)),
        "faster": _steps(_render(PIECE_A, bpm=125.0, seconds=32.0)),
        "excerpt": _steps(src[int(17 * SR) : int(34 * SR)]),
        "other_piece": _steps(_render(PIECE_B)),
        "other_piece_timbre": _steps(_render(PIECE_B, harmonics=1, decay=0.4)),
    }


@pytest.mark.parametrize("variant", ["other_timbre", "transposed", "slower", "faster", "excerpt"])
def test_variants_of_a_composition_match(pieces: dict[str, np.ndarray], variant: str) -> None:
    m = dv.match(pieces[variant], pieces["source"])
    assert m.is_match and m.score >= m.threshold, m
    if variant == "transposed":
        # Rendered three semitones up: the match reports the query 3 semitones above the reference.
        assert m.shift == 3


def test_variants_share_the_motion_as_well_as_the_sound(pieces: dict[str, np.ndarray]) -> None:
    # the same progression, whatever the timbre, key or tempo: the windows move alike, far above the
    # change condition
    for variant in ("other_timbre", "transposed", "slower", "faster", "excerpt"):
        assert dv.match(pieces[variant], pieces["source"]).change >= 0.85, variant


def test_change_correlation_worked_values() -> None:
    e = np.eye(12)
    up = np.stack([e[0], e[1]])  # C then C#
    # centred, both windows are (C - C#)/2 then (C# - C)/2: correlation 1; the other order: -1
    assert dv.change_correlation(up, up, 0) == pytest.approx(1.0)
    assert dv.change_correlation(up, up[::-1], 0) == pytest.approx(-1.0)
    # a sonority held through both steps (G under the query) is no motion at all
    assert dv.change_correlation(up + e[7], up, 0) == pytest.approx(1.0)
    # D then D#, taken down 2 semitones, is C then C#
    assert dv.change_correlation(np.stack([e[2], e[3]]), up, 2) == pytest.approx(1.0)
    assert dv.change_correlation(np.stack([e[2], e[3]]), up, 0) == pytest.approx(0.0)
    # two registers: the shift applies to each; a window that never changes correlates with nothing
    two = np.hstack([up, up[::-1]])
    raised = np.hstack([np.roll(up, 5, axis=1), np.roll(up[::-1], 5, axis=1)])
    assert dv.change_correlation(raised, two, 5) == pytest.approx(1.0)
    assert dv.change_correlation(np.tile(e[0], (2, 1)), up, 0) == 0.0


def _drone(seconds: float) -> np.ndarray:
    # D2 and A2, held, twice as loud as the chords above it
    return 2.0 * tone((50.0, 57.0), seconds, SR, 0.4, 4, None)[: int(seconds * SR)]


def test_a_shared_sonority_without_shared_motion_is_not_a_derivative() -> None:
    # Two tracks open with 50 s over one held drone, then move on to other music. Above the drone, one
    # plays piece A's progression and the other re-strikes one chord. Their windows share the drone's sound
    # (mean cosine over the threshold, which ami-derivative/4 called a derivative) and none of its motion.
    drone_a = _render(PIECE_A, seconds=50.0) + _drone(50.0)
    drone_held = _render(((0, 4, 7),), seconds=50.0) + _drone(50.0)
    a = _steps(np.concatenate((drone_a, _render(PIECE_B, seconds=20.0))))
    held = _steps(np.concatenate((drone_held, _render(PIECE_A, seconds=20.0))))
    m = dv.match(held, a)
    assert m.score >= m.threshold + 0.1 and m.change < dv.CHANGE_THRESHOLD
    assert not m.is_match and m.margin == pytest.approx(m.change - dv.CHANGE_THRESHOLD)
    # the first track on another timbre is the same music, and matches on both counts
    drone_a2 = _render(PIECE_A, harmonics=1, decay=0.4, seconds=50.0) + _drone(50.0)
    again = _steps(np.concatenate((drone_a2, _render(PIECE_B, harmonics=1, decay=0.4, seconds=20.0))))
    same = dv.match(again, a)
    assert same.is_match and same.change >= 0.85


def test_other_compositions_of_the_style_do_not_match(pieces: dict[str, np.ndarray]) -> None:
    for other in ("other_piece", "other_piece_timbre"):
        m = dv.match(pieces[other], pieces["source"])
        assert not m.is_match and m.margin < 0, (other, m)


def test_the_threshold_falls_linearly_from_the_short_window_to_the_long_one() -> None:
    # worked values: 0.62 up to 15 s, 0.54 from 30 s, halfway (22.5 s) 0.58
    assert dv.threshold(8.0) == dv.threshold(15.0) == pytest.approx(0.62)
    assert dv.threshold(22.5) == pytest.approx(0.58)
    assert dv.threshold(30.0) == dv.threshold(200.0) == pytest.approx(0.54)


def test_the_window_is_30_s_or_the_shorter_track(pieces: dict[str, np.ndarray]) -> None:
    step = dv._step_seconds()
    whole = dv.match(pieces["other_timbre"], pieces["source"])  # both 40 s: a 30 s window
    assert whole.window_s == pytest.approx(30.0, abs=step)
    assert whole.threshold == pytest.approx(dv.threshold(whole.window_s))
    part = dv.match(pieces["excerpt"], pieces["source"])  # a 17 s excerpt: a window of about its length
    assert 15.0 <= part.window_s <= 17.0 and part.threshold == pytest.approx(dv.threshold(part.window_s))


def test_a_shared_passage_followed_by_other_music_is_judged_on_the_long_window() -> None:
    # 15 s of piece A then 25 s of piece B, against piece A: a 15 s window would see A note for note; the
    # 30 s window holds 15 s of B, so the pair's mean similarity (0.58 here) falls well under the 15 s one
    # (1.0 up to rendering); it is still above the unrelated pair's, as B shares A's chords
    mixed = np.concatenate((_render(PIECE_A, seconds=15.0), _render(PIECE_B, seconds=25.0)))
    m = dv.match(_steps(mixed), _steps(_render(PIECE_A)))
    assert m.window_s == pytest.approx(30.0, abs=dv._step_seconds())
    other = dv.match(_steps(_render(PIECE_B)), _steps(_render(PIECE_A)))
    assert other.score < m.score < 0.75


def test_tracks_too_short_never_match(pieces: dict[str, np.ndarray]) -> None:
    short = pieces["source"][:20]  # ~4.6 s
    assert dv.match(short, pieces["source"]).score == -1.0


def test_landmark_index_finds_the_source_among_others(pieces: dict[str, np.ndarray]) -> None:
    index = dv.LandmarkIndex()
    index.add(0, dv.landmarks(pieces["other_piece"]))
    index.add(1, dv.landmarks(pieces["source"]))
    index.add(2, dv.landmarks(pieces["other_piece_timbre"]))
    for variant in ("transposed", "slower", "excerpt"):
        marks = dv.landmarks(pieces[variant])
        assert marks, variant
        assert index.candidates(marks)[0] == 1, variant


def test_landmarks_are_key_and_tempo_invariant(pieces: dict[str, np.ndarray]) -> None:
    base = set(dv.landmarks(pieces["source"]))
    for variant in ("transposed", "slower", "faster"):
        shared = base & set(dv.landmarks(pieces[variant]))
        assert len(shared) >= 0.8 * len(base), variant


def test_gate_steps_hold_one_unit_profile_per_register() -> None:
    pcm = _render(PIECE_A, seconds=12.0)
    steps, voiced = dv.gate_steps(frame_features(pcm, SR)["semitone_power"])
    assert steps.shape[1] == 24 and voiced.shape == (steps.shape[0],) and voiced.all()
    # each register's block is a unit vector scaled by 1/sqrt(2): the step is a unit vector
    for block in (steps[:, :12], steps[:, 12:]):
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), np.sqrt(0.5), rtol=1e-9)
    # the chords sit in C4..C5: the treble block's strongest class is a chord tone of the first chord (C E G)
    assert int(np.argmax(steps[0, 12:])) in (0, 4, 7)


def test_steps_of_another_width_are_refused(pieces: dict[str, np.ndarray]) -> None:
    wide = np.hstack([pieces["source"], pieces["source"]]) / np.sqrt(2)
    assert dv.match(wide, wide).score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot be compared"):
        dv.match(pieces["source"], wide)


# Twenty chords in no repeating order (a tonic triad on each of these roots), so a passage has one place.
WANDERING = tuple((r, r + 4, r + 7) for r in (0, 5, 2, 9, 4, 11, 7, 3, 10, 1, 8, 6, 0, 9, 2, 7, 5, 11, 4, 10))


def test_locate_finds_where_an_excerpt_was_cut_from() -> None:
    # 2-beat chords at 100 bpm: chord k starts at 1.2 k s; the excerpt is chords 10..19 (12 s to 24 s)
    src = _render(WANDERING, seconds=24.0)
    cut = src[int(12.0 * SR) :]
    for query, shift in ((cut, 0), (_render(WANDERING[10:], tonic=63.0, seconds=12.0), 3)):
        m = dv.match(_steps(query), _steps(src))
        assert m.is_match and m.shift == shift and m.tempo == 1.0
        at = dv.locate(_steps(query), _steps(src), m)
        assert at.ref_start_s == pytest.approx(12.0, abs=1.0)
        assert at.query_start_s == pytest.approx(0.0, abs=1.0)
        assert at.ref_end_s - at.ref_start_s == pytest.approx(m.window_s, abs=0.01)


def test_locate_takes_the_query_times_back_through_the_tempo() -> None:
    # the same chords at 80 bpm: chord k starts at 1.5 k s; cut from chord 6 (9 s), against the 100 bpm
    # render, where chord 6 starts at 7.2 s; the query's own times are 1.25x the reference's, and the gate
    # shrinks the query by the nearest factor of its grid (1.05^-5, "> 1: longer")
    slow = _render(WANDERING, bpm=80.0, seconds=30.0)
    query = slow[int(9.0 * SR) :]
    ref = _render(WANDERING, seconds=24.0)
    m = dv.match(_steps(query), _steps(ref))
    assert m.is_match and m.tempo == pytest.approx(1.05**-5)
    at = dv.locate(_steps(query), _steps(ref), m)
    assert at.ref_start_s - 7.2 == pytest.approx(at.query_start_s / 1.25, abs=1.0)
    assert (at.query_end_s - at.query_start_s) == pytest.approx(m.window_s / m.tempo, abs=0.01)


def test_locate_refuses_a_match_of_tracks_too_short(pieces: dict[str, np.ndarray]) -> None:
    short = pieces["source"][:20]
    m = dv.match(short, pieces["source"])
    with pytest.raises(ValueError, match="too short"):
        dv.locate(short, pieces["source"], m)
