"""Novelty: originality vs the catalogue, the learned coherence (inverted U on information content), its gate,
the declared genre never scored, reference loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoring import testsignals as ts
from scoring.decode import SAMPLE_RATE
from scoring.features import EMBEDDING_DIM, FEATURE_VERSION, extract_features
from scoring.novelty import (
    COHERENCE_FEATURES,
    COHERENCE_HIGH,
    COHERENCE_LOW,
    GenreError,
    coherence,
    coherence_gate,
    coherence_inputs,
    genre_distance,
    load_coherence_model,
    load_reference,
    novelty,
    originality,
    parse_reference,
    read_harmony,
)


def test_absent_style_beats_near_copy(variant_scores) -> None:
    # catalogue holds bach + mozart; a madrigal is a style it lacks, bach_mp3 / bach_up1 are near-copies
    absent = variant_scores["madrigal"].novelty_bp
    assert absent > variant_scores["bach_mp3"].novelty_bp
    assert absent > variant_scores["bach_up1"].novelty_bp
    assert variant_scores["bach_mp3"].details["originality"] < 0.05
    assert variant_scores["madrigal"].details["originality"] > 0.5


def test_coherence_is_an_inverted_u_in_information_content() -> None:
    # Hold the other inputs at the training mean and move the information content of the piece as a whole
    # (mean, second half and the predictive entropy together, as they move in music): the fitted model must
    # rise and then fall (the Wundt curve), as the squared term's negative weight makes it.
    model = load_coherence_model()
    base = dict(zip(COHERENCE_FEATURES, model.mean.tolist(), strict=True))
    base["events_per_s"] = 2.0 ** base["log_events_per_s"] - 1.0
    ratio = base["entropy_mean"] / base["ic_mean"]
    ms = []
    for ic in (0.2, 1.5, 3.0, 5.0, 9.0):
        s = {**base, "ic_mean": ic, "ic_late": ic, "entropy_mean": ic * ratio}
        ms.append(coherence(s, model))
    peak = int(np.argmax(ms))
    assert 0 < peak < len(ms) - 1, ms
    assert all(a < b for a, b in zip(ms[: peak + 1], ms[1 : peak + 1], strict=False)), ms
    assert all(a > b for a, b in zip(ms[peak:], ms[peak + 1 :], strict=False)), ms


def test_coherence_matches_its_formula() -> None:
    model = load_coherence_model()
    s = {k: float(v) for k, v in zip(COHERENCE_FEATURES, model.mean + model.std, strict=True)}
    s["events_per_s"] = 2.0 ** s["log_events_per_s"] - 1.0
    s["ic_mean_sq"] = s["ic_mean"] ** 2
    x = (np.array(coherence_inputs(s)) - model.mean) / model.std
    expect = 1.0 / (1.0 + np.exp(-(model.bias + float(np.dot(x, model.weights)))))
    assert coherence(s, model) == pytest.approx(expect, rel=1e-12)


def test_coherence_gate_is_a_smooth_step() -> None:
    assert coherence_gate(0.0) == 0.0 and coherence_gate(1.0) == 1.0
    values = [coherence_gate(m / 100) for m in range(101)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert coherence_gate((COHERENCE_LOW + COHERENCE_HIGH) / 2) == pytest.approx(0.5)


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
    # noise is far from everything (originality 1 against any catalogue) and still scores low
    n = novelty(noise.embedding, noise.scalars, None, None)
    assert n.originality == 1.0 and n.novelty_bp < 1000
    assert coherence(noise.scalars) < coherence(song.scalars)


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


def test_declared_genre_never_changes_novelty(audio) -> None:
    feats = extract_features([audio["folk"].pcm], SAMPLE_RATE)[0]
    none = novelty(feats.embedding, feats.scalars, None, 0.5)
    right = novelty(feats.embedding, feats.scalars, "folk_song", 0.5)
    wrong = novelty(feats.embedding, feats.scalars, "string_quartet", 0.5)
    assert none.novelty_bp == right.novelty_bp == wrong.novelty_bp
    assert right.genre == "folk_song" and wrong.genre == "string_quartet"
    with pytest.raises(GenreError, match="unknown genre"):
        novelty(feats.embedding, feats.scalars, "polka", 0.5)


def test_a_piece_that_became_fully_predictable_scores_nothing() -> None:
    from scoring.novelty import PREDICTABLE_BITS, predictability_gate

    lo, hi = PREDICTABLE_BITS
    assert predictability_gate({"ic_late": 0.0}) == 0.0
    assert predictability_gate({"ic_late": lo}) == 0.0
    assert predictability_gate({"ic_late": (lo + hi) / 2}) == pytest.approx(0.5)
    assert predictability_gate({"ic_late": hi + 1}) == 1.0
    # a real two-chord loop: the short-term model predicts the second half almost perfectly
    loop = ts.chord_song(seconds=40.0, sr=SAMPLE_RATE, progression=((0, 4, 7), (7, 11, 14)), drums=False)
    f = extract_features([loop.astype(np.float32)], SAMPLE_RATE)[0]
    assert f.scalars["ic_late"] < lo
    assert novelty(f.embedding, f.scalars, None, None).novelty_bp == 0


def test_the_harmony_view_with_the_larger_gate_counts(audio) -> None:
    from scoring.novelty import evidence, predictability_gate, view_scalars
    from scoring.structure import TREBLE_PREFIX

    composed = extract_features([audio["folk"].pcm])[0].scalars
    plain = {k: v for k, v in composed.items() if not k.startswith(TREBLE_PREFIX)}
    m = coherence(plain)
    expected = coherence_gate(m) * predictability_gate(plain) * evidence(plain)
    assert expected > 0.5  # a folk tune reads as composed
    held = {
        **plain,
        "ic_mean": 0.0,
        "ic_late": 0.0,
        "entropy_mean": 0.0,
        "n_events": 0.0,
        "events_per_s": 0.0,
        "chord_coverage": 0.0,
    }

    # Chords hidden from the full view (as a loud bass hides them) and read by the upper voices: they count.
    hidden = {**held, **{TREBLE_PREFIX + k: v for k, v in plain.items()}}
    assert view_scalars(hidden, "treble")["ic_late"] == plain["ic_late"]
    r = read_harmony(hidden)
    assert r.view == "treble" and r.credit == pytest.approx(expected)
    assert r.coherence == pytest.approx(m)
    e = np.zeros(EMBEDDING_DIM, np.float32)
    e[0] = 1.0
    assert novelty(e, hidden, None, None).novelty_bp == round(10000 * expected)
    assert novelty(e, hidden, None, None).harmony.view == "treble"
    # The other way round the full view counts; with no twins, or both views held, it is the full view.
    shown = {**plain, **{TREBLE_PREFIX + k: v for k, v in held.items() if k in ("ic_mean", "ic_late")}}
    assert read_harmony(shown).view == "full" and read_harmony(shown).credit == pytest.approx(expected)
    assert read_harmony(plain).view == "full"
    both_held = {**held, **{TREBLE_PREFIX + k: v for k, v in held.items()}}
    assert read_harmony(both_held).view == "full" and read_harmony(both_held).credit == 0.0
    with pytest.raises(ValueError, match="unknown harmony view"):
        view_scalars(plain, "bass")


def test_the_treble_view_is_trusted_only_where_it_reads_chords_over_most_of_the_track() -> None:
    from scoring.novelty import TREBLE_COVERAGE, TREBLE_MARGIN, view_trust
    from scoring.probes.degenerate import _pink_like
    from scoring.structure import TREBLE_PREFIX

    def trust(full: float, treble: float) -> float:
        return view_trust({"chord_coverage": full, TREBLE_PREFIX + "chord_coverage": treble}, "treble")

    lo, hi = TREBLE_COVERAGE
    assert trust(0.0, 0.9) == 1.0 and trust(0.0, lo) == 0.0
    assert trust(0.0, (lo + hi) / 2) == pytest.approx(0.5)  # a smooth step is 1/2 half way
    m_lo, m_hi = TREBLE_MARGIN
    assert trust(0.9, 0.9 + m_hi) == 1.0 and trust(0.9, 0.9 + m_lo) == 0.0
    assert trust(0.9, 0.9 + (m_lo + m_hi) / 2) == pytest.approx(0.5)
    assert view_trust({"chord_coverage": 0.0}, "full") == 1.0

    # Brown noise with a 1 s gap every 6 s: its energy lies low, so the upper voices' chroma reads a few
    # chance chords, and untrusted that view would call some takes composed. Trusted as it is, none is.
    untrusted = []
    for seed in range(6):
        x = _pink_like(30.0, 2.0, seed).astype(np.float32)
        for k in range(0, x.size, 6 * SAMPLE_RATE):
            x[k + 5 * SAMPLE_RATE : k + 6 * SAMPLE_RATE] = 0.0
        s = extract_features([x])[0].scalars
        t = {**s, **{k[len(TREBLE_PREFIX) :]: v for k, v in s.items() if k.startswith(TREBLE_PREFIX)}}
        untrusted.append(coherence_gate(coherence(t)) * (t["ic_late"] > 1.2))
        assert s[TREBLE_PREFIX + "chord_coverage"] < lo
        assert read_harmony(s).credit == 0.0
    assert max(untrusted) > 0.5


def test_a_clip_too_short_to_show_structure_earns_nothing_however_it_is_padded(audio) -> None:
    from scoring.novelty import EVIDENCE_SECONDS, evidence
    from scoring.probes.degenerate import C_AM_F_G, C_AND_G, C_F_G, at_level, tone_probes, vamp

    lo, hi = EVIDENCE_SECONDS
    assert evidence({"evidence_s": lo}) == 0.0 and evidence({"evidence_s": hi}) == 1.0
    assert evidence({"evidence_s": (lo + hi) / 2}) == pytest.approx(0.5)  # a smooth step is 1/2 half way
    assert evidence({}) == 1.0

    # 6 s of random notes on the C-major scale, alone, then followed by 24 s of silence, of white noise
    # 30 dB under the notes, or of a held chord, a sine, a sweep or a slow loop of two, three or four chords
    # (C-G, C-F-G, C-Am-F-G, a chord every 3 s) 10 dB under them. The harmony alone reads some of them as
    # composed (structure takes time to show, and a quiet tone adds no chord to read); none holds enough
    # music to earn novelty.
    tones = {p.meta["signal"]: p.pcm for p in tone_probes(24.0)}
    scale = [60 + s for s in (0, 2, 4, 5, 7, 9, 11)] + [72 + s for s in (0, 2, 4, 5, 7, 9, 11, 12)]
    structure, padded_s = [], []
    scores: dict[str, list[int]] = {}
    kinds = ("alone", "silence", "noise", "chord", "sine", "sweep", "vamp", "loop3", "loop4")
    for seed in range(6):
        rng = np.random.default_rng(seed)
        notes = [
            ts.tone((scale[int(rng.integers(len(scale)))],), 0.3 * int(rng.integers(1, 4))) for _ in range(40)
        ]
        clip = np.concatenate(notes)[: 6 * SAMPLE_RATE] * 0.5
        pads = [np.zeros(24 * SAMPLE_RATE), at_level(ts.white_noise(24.0, amp=1.0, seed=seed), clip, -30.0)]
        pads += [at_level(tones[k], clip, -10.0) for k in ("chord_cmaj", "sine440", "sweep")]
        pads += [at_level(vamp(24.0, chords=c), clip, -10.0) for c in (C_AND_G, C_F_G, C_AM_F_G)]
        takes = [clip] + [np.concatenate((clip, pad)) for pad in pads]
        for kind, f in zip(kinds, extract_features([x.astype(np.float32) for x in takes]), strict=True):
            n = novelty(f.embedding, f.scalars, None, None)
            structure.append(n.harmony.structure)
            scores.setdefault(kind, []).append(n.novelty_bp)
            padded_s.append(f.scalars["pitched_s"])
    assert max(structure) > 0.5, structure
    assert max(padded_s) > hi  # the tones are pitched: the seconds of pitched material alone would pay them
    assert all(max(scores[k]) == 0 for k in ("alone", "silence", "noise", "sine")), scores
    # A held chord counts for its first seconds (`structure.HOLD_SECONDS`: 3 + 1.5 s and a step), a loop
    # as one held harmony (`structure.loop_continuations`: the loops of three and four chords sound 2.7 and
    # 2 cycles, with no melody over them), and a sweep names a chord now and then: 6 s + 4.6 s of evidence
    # is E = 0.125 at most, where the pitched seconds alone would give E = 1.
    held = ("chord", "sweep", "vamp", "loop3", "loop4")
    assert max(max(scores[k]) for k in held) <= 1500, scores

    # A 30 s render of a composition holds far more than enough.
    song = extract_features([audio["bach"].pcm])[0]
    assert song.scalars["evidence_s"] >= hi
    assert novelty(song.embedding, song.scalars, None, None).evidence == 1.0
