"""How expected a melody's intervals are (`scoring.intervals`): the piece's own model on a worked example, the
corpus' model and IDyOM's combination of the two, and the surprising leaps of `scoring.melody` that follow
from them, read from audio the test makes (an arpeggio against random notes)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import coherence_candidates as C
from scoring import intervals, melody
from scoring.errors import ScoringError
from scoring.ppm import entropy_weighted
from tests.scoring.test_scoring_melody import SCALE, _phrases, _played


def _notes(notes: list[int], note_s: float = 0.25) -> list[np.ndarray]:
    """melodic_phrases of one harmonic tone per note, back to back (`_played`, `_phrases`)."""
    return _phrases(_played(notes, note_s))


def test_interval_bits_of_a_worked_example() -> None:
    # Intervals +4 +3 -3 -4 +4 +3, then a new phrase +4 +3, at order 1. With 49 symbols, by PPM's escape C
    # p = (c(x) + t * p_lower) / (n + t), worked by hand:
    #   +4: nothing heard, uniform 1/49
    #   +3: order 0 holds {+4}: (0 + 1/49) / 2 = 1/98; no order-1 context after +4 yet
    #   -3: order 0 {+4, +3}: (2/49) / 4 = 1/98;  -4: (3/49) / 6 = 1/98
    #   +4: order 0 {+4, +3, -3, -4}: (1 + 4/49) / 8 = 53/392; nothing heard after -4
    #   +3: order 0 (1 + 4/49) / 9 = 53/441, blended after +4, which was followed once by +3:
    #       (1 + 53/441) / 2 = 247/441
    #   new phrase, no context: +4: order 0 (2 + 4/49) / 10 = 51/245
    #   +3: order 0 (2 + 4/49) / 11 = 102/539; after +4 ({+3: 2}): (2 + 102/539) / 3 = 1180/1617
    phrases = [np.array([60, 64, 67, 64, 60, 64, 67]), np.array([48, 52, 55])]
    probabilities = [1 / 49, 1 / 98, 1 / 98, 1 / 98, 53 / 392, 247 / 441, 51 / 245, 1180 / 1617]
    bits = intervals.surprisal(phrases, order=1)
    np.testing.assert_allclose(bits, -np.log2(probabilities), rtol=1e-12)
    # No context of two intervals recurs here, so order 2 reads the same bits.
    np.testing.assert_allclose(intervals.surprisal(phrases, order=2), bits, rtol=1e-12)
    assert C.interval_ic(bits) == pytest.approx((bits.sum() + C.IC_PRIOR * C.IC_WEIGHT) / (8 + C.IC_WEIGHT))
    assert C.interval_ic(intervals.surprisal([])) == C.IC_PRIOR
    # Beyond two octaves an interval counts as two octaves: the same symbols, the same bits.
    np.testing.assert_array_equal(
        intervals.surprisal([np.array([40, 80, 40])]), intervals.surprisal([np.array([40, 64, 40])])
    )


def test_a_longer_context_predicts_a_repeated_motif() -> None:
    # A motif (+2 +2 -7 +2 +2) heard three times, joined by a semitone. Its first hearing has no context of
    # two or three intervals to go on, so both orders read it alike; its repeats cost fewer bits at order 3,
    # which has heard what follows (+2, -7), than at order 1, where +2 is followed by +2, -7 and +1 alike.
    motif = [60, 62, 64, 57, 59, 61]
    phrase = [np.array(motif + motif[1:] + motif[1:])]
    low, high = intervals.surprisal(phrase, order=3), intervals.surprisal(phrase, order=1)
    assert low[:5].tolist() == pytest.approx(high[:5].tolist())
    assert low[5:].sum() < high[5:].sum()


def test_an_arpeggio_leaps_more_than_random_notes_but_its_leaps_are_expected() -> None:
    # A repeating arpeggio (a menu theme's figure, a horn call) leaps on most note changes, more often than
    # random notes from two octaves of a scale, but its intervals return in one pattern, and they are ones
    # melodies commonly make (thirds, fourths, fifths, sixths).
    arpeggio = [60, 67, 76, 67, 60, 64, 72, 64, 57, 64, 72, 64, 55, 62, 71, 62] * 6
    rng = np.random.default_rng(5)
    random = [SCALE[int(rng.integers(len(SCALE)))] for _ in range(96)]
    model = intervals.load_interval_model()
    read = {}
    for name, notes in (("arpeggio", arpeggio), ("random", random)):
        phrases = _notes(notes)
        transitions, leaps = melody.motion_of(phrases)
        own, both = intervals.surprisal(phrases), intervals.surprisal(phrases, model)
        read[name] = (
            leaps / transitions,
            C.interval_ic(own),
            melody.surprising_leaps(phrases, own) / transitions,
            melody.surprising_leaps(phrases, both) / transitions,
        )
    assert read["arpeggio"][0] > read["random"][0], read
    # The notes the spectrum shows are the notes played: the audio reads as the written notes do.
    assert read["arpeggio"][1] == pytest.approx(
        C.interval_ic(intervals.surprisal([np.array(arpeggio)])), abs=0.3
    )
    assert read["arpeggio"][1] < read["random"][1] - 1.5, read
    # Surprising to the piece alone, or to the piece and the corpus together: few of the arpeggio's leaps,
    # many of random notes'.
    assert read["arpeggio"][2] < read["random"][2] - 0.2, read
    assert read["arpeggio"][3] < 0.1 < 0.3 < read["random"][3], read


def test_intervals_are_counted_after_each_context_within_each_melody() -> None:
    # Melodies C D E D and G A: intervals +2 +2 -2, then +2. At order 1, counted by hand:
    #   no context: +2 three times, -2 once; after +2: +2 once, -2 once. The second melody's +2 follows
    #   nothing: contexts do not cross from one melody to the next.
    counts = intervals.count_intervals([np.array([60, 62, 64, 62]), np.array([67, 69])], order=1)
    r = intervals.INTERVAL_RANGE
    assert sorted(counts) == [(), (r + 2,)]
    assert {int(i) - r: n for i, n in enumerate(counts[()]) if n} == {2: 3, -2: 1}
    assert {int(i) - r: n for i, n in enumerate(counts[(r + 2,)]) if n} == {2: 1, -2: 1}


def test_the_more_certain_model_counts_for_more() -> None:
    # A short-term model that knows nothing (uniform over 49 intervals: entropy log2 49) and a long-term one
    # sure of 7 intervals (uniform over them: log2 7, half the maximum). Their weights are 1 and 2, so an
    # interval of the seven gets (1/49 + 2/7) / 3 = 5/49 and any other (1/49) / 3 = 1/147.
    stm = np.full(49, 1 / 49)
    ltm = np.zeros(49)
    ltm[20:27] = 1 / 7
    combined = entropy_weighted(stm, ltm, np.log2(49))
    np.testing.assert_allclose(combined[20:27], 5 / 49, rtol=1e-12)
    np.testing.assert_allclose(np.delete(combined, np.arange(20, 27)), 1 / 147, rtol=1e-12)


def test_the_folksong_model_expects_steps_and_consonant_leaps() -> None:
    # Melodies move mostly by step (pitch proximity; Huron, Sweet Anticipation, 2006: most intervals of folk
    # melodies span two semitones or less), and leap by fourths, fifths and octaves far more than by a
    # tritone or a major seventh.
    model = intervals.load_interval_model()
    r = intervals.INTERVAL_RANGE
    heard = model[()]
    assert heard[r - 2 : r + 3].sum() > 0.6 * heard.sum()
    for consonant in (5, 7, 12):
        for dissonant in (6, 11):
            assert heard[r + consonant] > 3 * heard[r + dissonant], (consonant, dissonant)
    # The first interval of a piece, with nothing of the piece heard yet, costs what the corpus expects: a
    # step or a fourth less than chance among 49 intervals (log2 49 bits), a tritone more.
    first = {iv: intervals.surprisal([np.array([60, 60 + iv])], model)[0] for iv in (2, 5, 6, 11)}
    chance = intervals.surprisal([np.array([60, 62])])[0]
    assert chance == pytest.approx(np.log2(49))
    assert first[2] < first[5] < chance < first[6], first
    assert first[11] > first[5] + 1.0, first


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "damaged"),
        (b'{"version": "ami-intervals/0", "counts": {}}', "rerun scripts/build_interval_model.py"),
        (b'{"version": "ami-intervals/1", "counts": {"x y": {"2": 1}}}', "damaged"),
    ],
)
def test_a_damaged_or_stale_interval_model_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, raw: bytes, says: str
) -> None:
    monkeypatch.setattr(intervals, "_model_bytes", lambda: raw)
    intervals.load_interval_model.cache_clear()
    try:
        with pytest.raises(ScoringError, match=says):
            intervals.load_interval_model()
    finally:
        monkeypatch.undo()
        intervals.load_interval_model.cache_clear()
    # The shipped file reads again once the damage is gone: nothing was cached from the refusal.
    assert intervals.load_interval_model()[()].sum() > 400_000
