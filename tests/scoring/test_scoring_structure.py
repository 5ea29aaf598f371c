"""Structure descriptors (scoring.structure) against worked examples and the invariances they promise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring import melody
from scoring import structure as st
from scoring import testsignals as ts
from scoring.features import HOP, extract_features, frame_features
from scoring.testsignals import click_track, tone, white_noise

SR = 22050
FPS = SR / HOP


def _chord_steps(labels: list[int], steps_each: int) -> np.ndarray:
    """Unit chroma steps holding the given triads (0..11 major, 12..23 minor) for `steps_each` steps each."""
    rows = []
    for lab in labels:
        root, third = lab % 12, 4 if lab < 12 else 3
        v = np.full(12, 0.05)
        v[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
        rows += [v / np.linalg.norm(v)] * steps_each
    return np.array(rows)


def test_transition_tokens_are_root_movements_with_qualities() -> None:
    # C major -> G major is a rise of a fifth between majors; A minor (12 + 9) -> C major a minor third up.
    assert st.transition_token(0, 7) == "M|7|M"
    assert st.transition_token(21, 0) == "m|3|M"
    # Transposing both chords keeps the token (key invariance).
    assert st.transition_token(2, 9) == st.transition_token(0, 7)


def test_chord_events_merge_runs_and_drop_passing_steps() -> None:
    steps = _chord_steps([0, 0, 7, 21], 3)
    passing = _chord_steps([5], 1)  # one step of F major: shorter than MIN_RUN_STEPS, not an event
    seq = np.concatenate((steps[:6], passing, steps[6:]))
    labels, durs = st.chord_events(seq, np.ones(len(seq), bool))
    assert labels.tolist() == [0, 7, 21]
    assert durs.tolist() == [6, 3, 3]


def test_stm_matches_a_hand_computed_ppm_c_blend() -> None:
    # History C, E-minor-free example: events [0, 4, 0]; predict 4 (E major) after 0 with orders 0..2.
    counts: dict[tuple[int, ...], np.ndarray] = {}
    seq = [0, 4, 0]
    for i, s in enumerate(seq):
        for k in range(st.STM_ORDER + 1):
            if i >= k:
                counts.setdefault(tuple(seq[i - k : i]), np.zeros(st.N_CHORDS))[s] += 1
    p = st._stm_distribution(counts, seq, prev=0)
    # Uniform over the 23 chords other than the previous one; order 0 ({4: 1} once 0 is excluded):
    # (1 + 1/23) / 2 = 12/23; order 1, context (0,) = {4: 1}: (1 + 12/23) / 2 = 35/46; order 2 context (4, 0)
    # has never been seen.
    assert p[4] == pytest.approx(35 / 46, rel=1e-12)
    assert p[0] == 0.0
    assert p.sum() == pytest.approx(1.0, rel=1e-12)


def test_information_content_falls_on_a_loop_and_stays_high_on_random_chords() -> None:
    loop = np.array([0, 7] * 30)
    rng = np.random.default_rng(3)
    rand = [int(rng.integers(24))]
    while len(rand) < 60:
        c = int(rng.integers(24))
        if c != rand[-1]:
            rand.append(c)
    ic_loop, _ = st.information_content(loop)
    ic_rand, _ = st.information_content(np.array(rand))
    assert ic_loop[-20:].mean() < 0.5
    assert ic_rand.mean() > 3.0
    assert ic_rand.mean() < math.log2(23) + 1.0


def test_repetition_and_persistence_tell_loops_from_random_steps() -> None:
    rng = np.random.default_rng(0)
    loop = np.tile(_chord_steps([0, 5, 7, 0], 4), (12, 1))
    rand = rng.random((loop.shape[0], 12))
    rand /= np.linalg.norm(rand, axis=1, keepdims=True)
    ones = np.ones(loop.shape[0], bool)
    assert st.repetition(loop, ones, 17) > 0.9
    assert st.repetition(rand, ones, 17) < 0.2
    assert st.persistence(loop, ones, 1) > 0.5
    assert abs(st.persistence(rand, ones, 4)) < 0.1


def test_static_material_repeats_itself() -> None:
    held = _chord_steps([0], 80)
    ones = np.ones(80, bool)
    assert st.repetition(held, ones, 17) == pytest.approx(1.0)


def test_tonal_clarity_is_low_for_noise_and_high_for_a_chord() -> None:
    noise = frame_features(white_noise(10.0, amp=0.2, seed=1).astype(np.float32), SR)
    chord = frame_features(tone((60.0, 64.0, 67.0), 10.0, n_harmonics=4).astype(np.float32), SR)
    assert st.tonal_clarity(noise["chroma_power"]) < 0.3
    assert st.tonal_clarity(chord["chroma_power"]) > 0.6


def test_rhythm_scale_transform_is_tempo_invariant() -> None:
    def desc(bpm: float, accent_every: int) -> np.ndarray:
        x = click_track(bpm, 30.0).astype(np.float64)
        # An accent pattern (every n-th click louder) gives the rhythm a shape beyond the pulse.
        period = int(round(60.0 / bpm * SR))
        for k in range(0, x.size, period * accent_every):
            x[k : k + 200] *= 3.0
        fr = frame_features((0.3 * x / np.abs(x).max()).astype(np.float32), SR)
        return st.rhythm_scale_transform(fr["onset_env"], FPS)

    slow, fast = desc(100.0, 3), desc(125.0, 3)
    other = desc(100.0, 4)
    assert float(slow @ fast) > 0.97
    assert float(slow @ fast) > float(slow @ other)


def test_structure_vector_is_unit_and_sized() -> None:
    fr = frame_features(tone((57.0, 60.0, 64.0), 12.0, n_harmonics=4).astype(np.float32), SR)
    s = st.describe(fr["chroma_power"], fr["onset_env"], FPS)
    assert s.vector.shape == (st.STRUCTURE_DIM,)
    assert np.linalg.norm(s.vector) == pytest.approx(1.0)
    assert set(s.scalars) >= {"ic_mean", "repetition_16s", "persistence_4", "tonal_clarity"}


def test_metrical_repetition_is_high_for_a_repeating_bar_and_low_for_random_onsets() -> None:
    rng = np.random.default_rng(4)
    n = int(FPS * 30)
    bar = np.zeros(int(FPS * 2.0))  # a 2 s bar with an irregular rhythm inside it
    bar[[0, 9, 21, 30, 52, 70]] = [1.0, 0.5, 0.8, 0.4, 0.9, 0.6]
    metred = np.tile(bar, n // bar.size + 1)[:n]
    random_onsets = np.zeros(n)
    random_onsets[rng.choice(n, size=int(np.count_nonzero(metred)), replace=False)] = rng.random(
        int(np.count_nonzero(metred))
    )
    assert st.metrical_repetition(metred, FPS) > 0.9
    assert st.metrical_repetition(random_onsets, FPS) < 0.3
    assert st.metrical_repetition(np.zeros(n), FPS) == 0.0


def test_the_upper_voice_chroma_leaves_out_only_the_bins_below_c3() -> None:
    # Expected values: the full chroma filterbank itself (librosa's, checked in test_scoring_features), and
    # C3's lower edge a quarter-tone below 130.81 Hz.
    from scoring import dsp
    from scoring.transforms import N_FFT, TREBLE_FMIN_HZ

    assert pytest.approx(130.8128 * 2 ** (-1 / 24), rel=1e-5) == TREBLE_FMIN_HZ
    full = dsp.chroma_filterbank(SR, N_FFT)
    treble = dsp.chroma_filterbank(SR, N_FFT, fmin=TREBLE_FMIN_HZ)
    freqs = np.arange(full.shape[1]) * SR / N_FFT
    below = freqs < 127.14
    assert below.sum() == 12  # bins 0..11 (118.4 Hz is the last; 129.2 Hz the first kept)
    assert not treble[:, below].any()
    np.testing.assert_array_equal(treble[:, ~below], full[:, ~below])


def test_a_loud_sub_bass_hides_the_chords_from_the_full_chroma_but_not_from_the_upper_voices() -> None:
    # Six chords that do not repeat within the bar, one every 2 s, over a held A#1 (58 Hz) drone as loud as
    # the chords' peak: the STFT's bins around 58 Hz lie 3 semitones apart, so the drone smears over half the
    # pitch-class circle. The upper voices' view must read what the same song reads with no drone at all.
    progression = ((0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14), (2, 5, 9), (4, 7, 11))
    song = ts.chord_song(seconds=30.0, progression=progression, beats_per_chord=4, drums=False)
    droned = 0.3 * song + ts.sine(ts.midi_to_hz(34), 30.0, amp=0.3)
    clean, hidden = (
        extract_features([(0.9 * x / np.abs(x).max()).astype(np.float32)])[0].scalars for x in (song, droned)
    )
    assert clean["n_events"] >= 12  # 15 chords in 30 s
    assert clean["chord_coverage"] > 0.9  # every step but the edges holds a chord
    assert hidden["n_events"] <= clean["n_events"] / 3 and hidden["chord_coverage"] < 0.3
    for key in ("n_events", "chord_coverage", "ic_mean", "ic_late", "entropy_mean"):
        assert hidden[st.TREBLE_PREFIX + key] == pytest.approx(clean[key], rel=0.1, abs=0.1), key


def test_harmony_scalars_are_describes_scalars_from_the_chroma() -> None:
    fr = frame_features(ts.chord_song(seconds=20.0).astype(np.float32), SR)
    whole = st.describe(fr["chroma_power"], fr["onset_env"], FPS).scalars
    chroma_only = st.harmony_scalars(fr["chroma_power"], FPS)
    assert set(whole) - set(chroma_only) == {"metrical_repetition"}
    assert all(whole[k] == v for k, v in chroma_only.items())


def test_pitched_seconds_count_the_steps_of_a_tone_and_none_of_noise_or_silence() -> None:
    # 10 s at 22,050 Hz: 1 + 220500 // 512 = 431 frames, so (431 - 20) // 10 + 1 = 42 steps of 10 hops each.
    step_s = st.STEP_FRAMES * HOP / 22050.0
    fps = 22050.0 / HOP
    sine = frame_features(ts.sine(440.0, 10.0).astype(np.float32))["chroma_power"]
    assert st.pitched_seconds(sine, fps) == pytest.approx(42 * step_s)
    noise = frame_features(white_noise(10.0, amp=0.3).astype(np.float32))["chroma_power"]
    assert st.pitched_seconds(noise, fps) == 0.0
    # A step's weight is a smooth step of its contrast, so no float32 difference can flip it: half way
    # (contrast 0.45, the weakest pitch class at 55 % of the strongest) every step counts 1/2.
    lo, hi = st.PITCHED_CONTRAST
    half_way = np.full((12, 431), 1.0 - (lo + hi) / 2)
    half_way[0] = 1.0
    assert st.pitched_seconds(half_way, fps) == pytest.approx(21 * step_s)
    # 4 s of a tone then 6 s of silence: only the steps that hold the tone count (a step overlapping the
    # edge holds it too: 20-hop windows every 10 hops, so ceil(4 s / step) + 1 steps at most).
    half = np.concatenate((ts.sine(440.0, 4.0), np.zeros(6 * 22050))).astype(np.float32)
    got = st.pitched_seconds(frame_features(half)["chroma_power"], fps)
    assert 4.0 - step_s <= got <= 4.0 + 2 * step_s


def test_evidence_counts_a_held_chord_for_its_first_seconds_and_a_lone_partial_not_at_all() -> None:
    step_s = st.STEP_FRAMES * HOP / 22050.0
    lo, hi = st.HOLD_SECONDS

    def seconds(x: np.ndarray) -> tuple[float, float]:
        cp = frame_features(x.astype(np.float32))["chroma_power"]
        return st.pitched_seconds(cp, FPS), st.evidence_seconds(cp, FPS)

    # A 440 Hz sine names no triad and its power sits in one pitch class (leaking a little into the next):
    # pitched all along, yet no evidence of harmony.
    pitched, evidence = seconds(ts.sine(440.0, 10.0))
    assert pitched == pytest.approx(42 * step_s) and evidence == 0.0

    # A C-major chord held for 30 s is one chord event: it counts fully for `lo` seconds, then along the
    # falling half of a smooth step, whose area is (hi - lo) / 2. Steps sample it every step_s from its
    # start, which adds up to one step.
    pitched, evidence = seconds(tone((60.0, 64.0, 67.0), 30.0, n_harmonics=6))
    assert pitched > 29.0
    assert lo + (hi - lo) / 2 - step_s <= evidence <= lo + (hi - lo) / 2 + step_s

    # Chords that change every 1.5 s, never cycling, are never held long enough to lose any of it:
    # I IV V vi, ii V I, IV V iii vi, ii V I.
    prog = [C, F, G, AM, DM, G, C, F, G, EM, AM, DM, G, C]
    moving = np.concatenate([tone(c, 1.5, n_harmonics=6) for c in prog])
    pitched, evidence = seconds(moving)
    assert evidence == pytest.approx(pitched, abs=step_s) and pitched > 20.0


C, F, G = (60.0, 64.0, 67.0), (65.0, 69.0, 72.0), (67.0, 71.0, 74.0)
AM, DM, EM = (57.0, 60.0, 64.0), (62.0, 65.0, 69.0), (64.0, 67.0, 71.0)
FS = (66.0, 70.0, 73.0)


def test_loop_continuations_on_worked_label_sequences() -> None:
    """Worked by hand: which events only continue a loop (period 2..4, 3 cycles, chords held >= 1 s), here
    with a melody moving inside every chord, so two cycles are never enough."""
    c, g, f, am, e = 0, 7, 5, 21, 4
    two_s = np.full(8, 2.0)

    def loops(labels: list[int], seconds: np.ndarray) -> list[bool]:
        return st.loop_continuations(np.array(labels), seconds, np.ones(len(labels), bool)).tolist()

    # C G C G C G C G: period 2, four cycles; only the first C restarts the hold clock.
    assert loops([c, g] * 4, two_s) == [False] + [True] * 7
    # A phrase, then the loop: the loop's own first event (C at index 2) restarts the clock.
    assert loops([am, e, c, g, c, g, c, g], two_s) == [False, False, False, True, True, True, True, True]
    # Two cycles and a half of C G are not yet a loop, nor is a four-chord phrase heard twice.
    assert not any(loops([c, g, c, g, c], two_s[:5]))
    assert not any(loops([c, am, f, g] * 2, two_s))
    # ... but three times it is: period 4, events 1..11 continue it.
    assert loops([c, am, f, g] * 3 + [e], np.full(13, 2.0)) == [False] + [True] * 11 + [False]
    # A pedal whose neighbour chord comes back for 0.5 s each time is a melody over a pedal, not a loop.
    assert not any(loops([f, 6] * 4, np.array([2.0, 0.5] * 4)))
    # The median, not the shortest: one C cut to 0.5 s by the end of the track leaves the loop a loop.
    assert loops([c, g] * 4, np.array([2.0] * 7 + [0.5])) == [False] + [True] * 7


def test_loop_continuations_take_two_cycles_when_no_melody_moves_over_them() -> None:
    """Worked by hand: `LOOP_CYCLES_UNSUNG` cycles make a loop when no event but the run's first is sung."""
    c, g, f, am, e = 0, 7, 5, 21, 4
    phrase = np.array([c, am, f, g] * 2)
    quiet = np.zeros(8, bool)
    # A four-chord phrase heard twice with nothing over it: a loop from its second event.
    assert st.loop_continuations(phrase, np.full(8, 3.0), quiet).tolist() == [False] + [True] * 7
    # The run's first event may carry the melody that led into it ...
    first = quiet.copy()
    first[0] = True
    assert st.loop_continuations(phrase, np.full(8, 3.0), first).tolist() == [False] + [True] * 7
    # ... but a melody moving over any later chord makes it a phrase stated twice.
    for k in range(1, 8):
        sung = quiet.copy()
        sung[k] = True
        assert not st.loop_continuations(phrase, np.full(8, 3.0), sung).any(), k
    # Three chords twice, after a phrase that is sung: the loop is the last six events.
    labels = np.array([am, e, c, f, g, c, f, g])
    sung = np.array([True, True, True, False, False, False, False, False])
    got = st.loop_continuations(labels, np.full(8, 3.0), sung)
    assert got.tolist() == [False, False, False, True, True, True, True, True]
    # Two cycles and a half of a two-chord loop are a loop now; one and a half are not; chords of 0.5 s
    # are still a melody's neighbour notes.
    assert st.loop_continuations(np.array([c, g, c, g, c]), np.full(5, 3.0), np.zeros(5, bool)).any()
    assert not st.loop_continuations(np.array([c, g, c]), np.full(3, 3.0), np.zeros(3, bool)).any()
    assert not st.loop_continuations(np.array([f, 6] * 4), np.array([2.0, 0.5] * 4), np.zeros(8, bool)).any()


def test_sung_events_count_notes_inside_a_chord_away_from_its_changes() -> None:
    """Worked by hand: events starting at steps 0, 13 and 26 of 39; a note at frame f lies in step f // 10,
    and counts when it is more than `SUNG_MARGIN_STEPS` steps from its event's first step and from the next
    event's."""
    onsets = np.array([0, 13, 26])
    assert st.SUNG_MARGIN_STEPS == 1 and st.STEP_FRAMES == 10

    def sung(*frames: int) -> list[bool]:
        return st._sung_events(onsets, 39, np.array(frames, dtype=np.int64)).tolist()

    assert sung() == [False, False, False]
    # Steps 0 and 1 of an event are its change; so is the step before the next event (12, 25, 38).
    assert sung(0, 19, 125) == [False, False, False]
    assert sung(20) == [True, False, False]  # step 2
    assert sung(119) == [True, False, False]  # step 11
    assert sung(150, 379) == [False, True, True]  # steps 15 and 37


def test_evidence_counts_a_bare_four_chord_loop_heard_twice_once_and_a_sung_one_fully() -> None:
    """C Am F G, 3 s a chord, twice (24 s): bare, it is a loop (two cycles, no melody over it) and counts like
    one held chord; with a melody of four notes to a chord over it, it is a phrase heard twice and every
    pitched second counts."""
    step_s = st.STEP_FRAMES * HOP / 22050.0
    lo, hi = st.HOLD_SECONDS
    chords = [C, AM, F, G] * 2
    bare = np.concatenate([tone(c, 3.0, amp=0.1, n_harmonics=6) for c in chords])
    # Each chord's own tones an octave up, one every 0.75 s, louder than the chord: a tune that moves over it.
    tune = np.concatenate(
        [tone((c[k % 3] + 12.0,), 0.75, amp=0.4, n_harmonics=6) for c in chords for k in (0, 1, 2, 1)]
    )
    n = min(bare.size, tune.size)
    for x, sung in ((bare[:n], False), (bare[:n] + tune[:n], True)):
        fr = frame_features(x.astype(np.float32))
        notes = melody.note_changes(fr["semitone_power"], FPS)
        pitched = st.pitched_seconds(fr["chroma_power"], FPS)
        evidence = st.evidence_seconds(fr["chroma_power"], FPS, notes)
        assert pitched > 23.0
        if sung:
            assert notes.size >= 24
            assert evidence == pytest.approx(pitched, abs=step_s)
        else:
            assert notes.size == 0
            assert lo + (hi - lo) / 2 - step_s <= evidence <= lo + (hi - lo) / 2 + step_s


def test_evidence_counts_a_slow_vamp_as_one_held_harmony_and_a_flickering_pedal_fully() -> None:
    step_s = st.STEP_FRAMES * HOP / 22050.0
    lo, hi = st.HOLD_SECONDS

    def seconds(chords: list[tuple[float, float, float]], each_s: list[float]) -> tuple[float, float]:
        x = np.concatenate([tone(c, d, n_harmonics=6) for c, d in zip(chords, each_s, strict=True)])
        cp = frame_features(x.astype(np.float32))["chroma_power"]
        return st.pitched_seconds(cp, FPS), st.evidence_seconds(cp, FPS)

    # C and G alternating every 3 s for 24 s: a loop, counted like one held chord (the test above):
    # `lo` seconds, then the falling half of the smooth step, within a step.
    pitched, evidence = seconds([C, G] * 4, [3.0] * 8)
    assert pitched > 23.0
    assert lo + (hi - lo) / 2 - step_s <= evidence <= lo + (hi - lo) / 2 + step_s
    # An F pedal that flickers to F# major for 0.5 s every 2.5 s restarts the clock at each return: every
    # chord is heard for under 3 s, so all its pitched seconds count.
    pitched, evidence = seconds([F, FS] * 5, [2.0, 0.5] * 5)
    assert pitched > 12.0 and evidence == pytest.approx(pitched, abs=step_s)
