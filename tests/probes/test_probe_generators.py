"""Each probe generator makes what it says: transpositions roll the pitch classes, tempo variants change the
duration, MP3 bitrates differ, loops repeat, shuffles permute the source's slices, noise has its slope,
ladder steps do what they claim, the cache returns the same samples. Tiny sizes throughout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from scoring import probes as P
from scoring.probes import negatives
from scoring.testsignals import tone
from tests.probes.conftest import FOLK

SR = P.SR


def _spectral_distance_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |difference| of the Welch power spectra in dB, 50 Hz..10 kHz (insensitive to a codec's delay)."""
    f, pa = signal.welch(a, SR, nperseg=4096)
    _, pb = signal.welch(b, SR, nperseg=4096)
    keep = (f > 50) & (f < 10000)
    return float(np.mean(np.abs(10 * np.log10(pa[keep] + 1e-20) - 10 * np.log10(pb[keep] + 1e-20))))


def _best_roll(source: np.ndarray, variant: np.ndarray) -> int:
    """The n in 0..11 for which the source's pitch-class profile rolled by n best matches the variant's."""
    ps, pv = P.pitch_class_profile(source), P.pitch_class_profile(variant)
    return int(np.argmax([np.corrcoef(np.roll(ps, n), pv)[0, 1] for n in range(12)]))


# --------------------------------------------------------------------------------------------- renders


def test_render_is_canonical_cached_and_reproducible(cache: P.ProbeCache, tmp_path) -> None:
    x = P.render_work(FOLK, 8.0, cache=cache)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 8 * SR
    assert 0.5 < float(np.max(np.abs(x))) <= 1.0
    assert cache.path("render", "x", {}).parent.is_dir()
    stored = [f for f in (cache.root / "render").glob("*.npy") if np.array_equal(np.load(f), x)]
    assert len(stored) == 1
    # A second cache folder renders it again from scratch: the same samples (FluidSynth is deterministic).
    again = P.render_work(FOLK, 8.0, cache=P.ProbeCache(tmp_path / "other"))
    np.testing.assert_array_equal(x, again)
    # A hit is read back without calling the maker.
    recipe = {"k": 1}
    cache.get("unit", "x", recipe, lambda: np.ones(4, np.float32))
    got = cache.get("unit", "x", recipe, lambda: pytest.fail("cache miss on a stored recipe"))
    np.testing.assert_array_equal(got, np.ones(4, np.float32))


def test_transposition_rolls_the_pitch_classes(derivative_set) -> None:
    source, variants = derivative_set
    trans = {v.meta["detail"]: v for v in variants if v.label == "transpose"}
    assert set(trans) == {"+2", "-3"}
    n = min(len(source.pcm), len(trans["+2"].pcm))
    assert _best_roll(source.pcm[:n], trans["+2"].pcm[:n]) == 2
    assert _best_roll(source.pcm[:n], trans["-3"].pcm[:n]) == 12 - 3


def test_tempo_variant_changes_the_duration_by_its_factor(cache: P.ProbeCache) -> None:
    # A whole reel (32 quarter notes), not tiled (min_seconds=0): its sounding length scales with 1 / tempo.
    lengths = {}
    for factor in (1.0, 0.8, 1.25):
        x = P.render_work("ryans_you_bet_reel", 60.0, tempo=factor, min_seconds=0.0, cache=cache)
        assert len(x) < 40 * SR
        a, b = P.active_span(x, SR, floor_db=-30.0, window_s=0.05)
        lengths[factor] = (b - a) / SR
    assert lengths[0.8] / lengths[1.0] == pytest.approx(1 / 0.8, rel=0.05)
    assert lengths[1.25] / lengths[1.0] == pytest.approx(1 / 1.25, rel=0.05)


def test_derivative_set_labels_and_exact_variants(derivative_set) -> None:
    source, variants = derivative_set
    assert source.name == f"source/{FOLK}"
    assert {v.label for v in variants} == set(P.VARIANT_CLASSES)
    assert all(v.source == source.name for v in variants)
    by = {f"{v.label}/{v.meta['detail']}": v for v in variants}
    n = 20 * SR
    np.testing.assert_array_equal(by["excerpt/start20s"].pcm, source.pcm[:n])
    np.testing.assert_array_equal(by["excerpt/end20s"].pcm, source.pcm[-n:])
    mid = (len(source.pcm) - n) // 2
    np.testing.assert_array_equal(by["excerpt/middle20s"].pcm, source.pcm[mid : mid + n])
    np.testing.assert_allclose(by["gain/-6dB"].pcm, source.pcm * 10 ** (-6 / 20), rtol=1e-6)
    # Other instruments and SoundFonts are other renders of the same notes: same length, other samples.
    for key in ("instrument/program0", "instrument/program48", "soundfont/timgm", "soundfont/musescore"):
        assert len(by[key].pcm) == len(source.pcm)
        assert not np.array_equal(by[key].pcm, source.pcm)
    # Tempo variants cover the same stretch of score, so they last seconds / factor.
    assert len(by["tempo/x0.8"].pcm) == pytest.approx(len(source.pcm) / 0.8, abs=SR)


# --------------------------------------------------------------------------------------------- degenerate


def test_audio_loop_repeats_exactly() -> None:
    rng = np.random.default_rng(0)
    src = rng.standard_normal(10 * SR).astype(np.float32) * 0.1
    x = P.loop_audio(src, 1.0, 2.0, 9.0)
    period = 2 * SR
    assert len(x) == 9 * SR
    np.testing.assert_array_equal(x[:period], x[period : 2 * period])
    np.testing.assert_array_equal(x[period : 2 * period], x[3 * period : 4 * period])
    # The unit is the source's slice (faded 3 ms at its ends).
    np.testing.assert_array_equal(x[100 : period - 100], src[SR + 100 : 3 * SR - 100])
    with pytest.raises(ValueError, match="does not fit"):
        P.loop_audio(src, 9.0, 2.0, 30.0)


def test_rendered_two_chord_loop_is_periodic(cache: P.ProbeCache) -> None:
    x = P.two_chord_loop(12.0, P.PIANO, qpm=100.0, cache=cache)
    bar = int(round(4 * 60.0 / 100.0 * SR))  # four beats at 100 qpm
    prof = [P.pitch_class_profile(x[i * bar : (i + 1) * bar], n_fft=4096) for i in range(4)]
    # Bars 0 and 2 hold C major (C, E, G), bars 1 and 3 G major (G, B, D): the pattern repeats every 2 bars.
    assert set(np.argsort(prof[0])[-3:]) == {0, 4, 7} and set(np.argsort(prof[1])[-3:]) == {7, 11, 2}
    assert np.corrcoef(prof[0], prof[2])[0, 1] > 0.98 and np.corrcoef(prof[1], prof[3])[0, 1] > 0.98
    assert np.corrcoef(prof[0], prof[1])[0, 1] < 0.8


def test_shuffle_is_a_permutation_of_the_source_slices() -> None:
    src = np.sin(np.arange(6 * SR) * 0.01).astype(np.float32) + np.linspace(0, 1, 6 * SR, dtype=np.float32)
    for slice_s in (0.5, (0.25, 1.0)):
        x, order = P.shuffle_slices(src, slice_s, seed=4)
        spans = sorted(order)
        assert spans[0][0] == 0 and all(b == c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))
        assert order != spans  # really reordered
        assert len(x) == spans[-1][1]
        pos = 0
        for a, b in order:
            inner = slice(pos + 64, pos + (b - a) - 64)  # inside the 3 ms fades
            np.testing.assert_array_equal(x[inner], src[a + 64 : b - 64])
            pos += b - a
        if isinstance(slice_s, tuple):
            lengths = [(b - a) / SR for a, b in order]
            assert min(lengths) >= 0.25 - 1e-3 and max(lengths) <= 1.0 + 1e-3


def test_random_notes_stay_on_the_scale_grid(cache: P.ProbeCache) -> None:
    x = P.random_notes(10.0, P.FLUTE, seed=1, cache=cache)
    assert len(x) == 10 * SR
    prof = P.pitch_class_profile(x)
    c_major = [0, 2, 4, 5, 7, 9, 11]
    assert prof[c_major].sum() > 0.85
    # Another seed is another melody.
    y = P.random_notes(10.0, P.FLUTE, seed=2, cache=cache)
    assert not np.allclose(x, y)


def _slope_db_per_decade(x: np.ndarray) -> float:
    f, p = signal.welch(x, SR, nperseg=8192)
    keep = (f > 100) & (f < 8000)
    return float(np.polyfit(np.log10(f[keep]), 10 * np.log10(p[keep]), 1)[0])


def test_noise_colours_have_their_spectral_slopes() -> None:
    probes = {p.name.rsplit("/", 1)[1]: p for p in P.noise_probes(8.0)}
    assert _slope_db_per_decade(probes["white"].pcm) == pytest.approx(0.0, abs=1.0)
    assert _slope_db_per_decade(probes["pink"].pcm) == pytest.approx(-10.0, abs=1.0)
    assert _slope_db_per_decade(probes["brown"].pcm) == pytest.approx(-20.0, abs=1.5)
    assert all(p.label == "noise" and p.pcm.dtype == np.float32 for p in probes.values())


def test_tones_are_what_they_say() -> None:
    tones = {p.name.rsplit("/", 1)[1]: p.pcm for p in P.tone_probes(4.0)}
    f, p = signal.welch(tones["sine440"], SR, nperseg=8192)
    assert f[np.argmax(p)] == pytest.approx(440.0, abs=SR / 8192)
    prof = P.pitch_class_profile(tones["chord_cmaj"])
    assert set(np.argsort(prof)[-3:]) == {0, 4, 7}  # C, E, G
    # The log sweep runs 100 Hz -> 5 kHz: ~100-130 Hz in its first quarter second, ~3.9-5 kHz in its last.
    first = signal.welch(tones["sweep"][: SR // 4], SR, nperseg=2048)
    last = signal.welch(tones["sweep"][-SR // 4 :], SR, nperseg=2048)
    assert first[0][np.argmax(first[1])] < 300 < 3000 < last[0][np.argmax(last[1])]


def test_degenerate_probes_cover_every_class(cache: P.ProbeCache) -> None:
    skipped: list[str] = []
    probes = P.degenerate_probes(2, seconds=6.0, cache=cache, skipped=skipped)
    labels = [p.label for p in probes]
    assert not skipped
    for cls in ("loops", "shuffles", "random_notes", "tones", "noise", "clips"):
        assert labels.count(cls) == 2
    assert all(p.group == "degenerate" and p.pcm.dtype == np.float32 for p in probes)
    assert len({p.name for p in probes}) == len(probes)


# --------------------------------------------------------------------------------------------- ladders


def test_mp3_bitrates_really_differ(cache: P.ProbeCache) -> None:
    x = P.render_work(FOLK, 8.0, cache=cache)
    sizes = {k: len(P.encode_mp3(x, k)) for k in (128, 64, 32)}
    assert sizes[128] / sizes[64] == pytest.approx(2.0, rel=0.1)
    assert sizes[64] / sizes[32] == pytest.approx(2.0, rel=0.1)
    dist = [_spectral_distance_db(x, P.mp3_roundtrip(x, k, cache=cache)) for k in (128, 64, 32)]
    assert dist[0] < dist[1] < dist[2]


def test_ladder_steps_do_what_they_claim() -> None:
    rng = np.random.default_rng(9)
    x = (0.5 * np.sin(2 * np.pi * 220 * np.arange(4 * SR) / SR) + 0.05 * rng.standard_normal(4 * SR)).astype(
        np.float32
    )
    noisy = P.add_noise(x, 20.0)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((noisy - x).astype(np.float64) ** 2))
    assert snr == pytest.approx(20.0, abs=0.2)
    clipped = P.hard_clip(x, 12.0)
    assert float(np.max(np.abs(clipped))) == 1.0 and np.mean(np.abs(clipped) == 1.0) > 0.3
    six = P.requantise(x, 6)
    np.testing.assert_array_equal(six * 32, np.round(six * 32))
    assert len(np.unique(six)) <= 64
    driven = P.tanh_drive(x, 8.0)
    assert float(np.max(np.abs(driven))) == pytest.approx(float(np.tanh(8 * np.max(np.abs(x))) / np.tanh(8)))
    low = P.lowpass(x, 3000.0)
    f, p_in = signal.welch(x, SR, nperseg=4096)
    _, p_out = signal.welch(low, SR, nperseg=4096)
    band = f > 4500
    assert 10 * np.log10(p_out[band].sum() / p_in[band].sum()) < -30
    with pytest.raises(ValueError, match="unknown ladder"):
        P.degrade(x, "reverb", 1.0)


def test_ladder_probes_shape(cache: P.ProbeCache) -> None:
    orig = P.Probe("real/folk", "real", "folk_song", P.render_work(FOLK, 8.0, cache=cache))
    probes = P.ladder_probes([orig], ["bit_depth", "lowpass"], cache=cache)
    steps = {(p.label, p.step) for p in probes}
    assert steps == {("bit_depth", i) for i in range(4)} | {("lowpass", i) for i in range(4)} | {
        ("gain_-6dB", 1)
    }
    first = next(p for p in probes if p.label == "lowpass" and p.step == 0)
    np.testing.assert_array_equal(first.pcm, orig.pcm)  # the ladder starts at the original
    quiet = next(p for p in probes if p.label == "gain_-6dB")
    np.testing.assert_array_equal(quiet.pcm, orig.pcm * np.float32(0.5))


# ------------------------------------------------------------------------------- real and negatives


def test_real_probes_span_corpus_and_soundtracks(cache: P.ProbeCache) -> None:
    skipped: list[str] = []
    probes = P.real_probes(2, 2, seconds=6.0, cache=cache, skipped=skipped)
    assert not skipped, skipped
    kinds = [p.meta["kind"] for p in probes]
    assert kinds.count("soundtrack") == 2 and kinds.count("corpus") == 3  # the second work also on piano
    assert len({p.meta.get("soundfont") for p in probes if p.meta["kind"] == "corpus"}) >= 2
    assert all(len(p.pcm) == 6 * SR for p in probes)
    assert P.missing_soundtrack_packages() == [] and P.missing_soundfont_packages() == []


def test_soundtrack_excerpt_errors_name_the_package(tmp_path) -> None:
    ghost = P.Soundtrack("ghost", "ghost-music", tmp_path / "nope.ogg", "rock")
    with pytest.raises(P.ProbeUnavailable, match="install Debian package ghost-music"):
        P.soundtrack_excerpt(ghost, 10.0, cache=tmp_path)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((30 * 8000, 2)), 8000)
    with pytest.raises(P.ProbeUnavailable, match="near-silent"):
        P.soundtrack_excerpt(P.Soundtrack("silent", "x", silent, "none"), 10.0, cache=tmp_path)
    assert not list(tmp_path.rglob("*.npy"))  # nothing is cached for a refused probe


def test_unknown_names_get_clear_errors(cache: P.ProbeCache) -> None:
    with pytest.raises(P.ProbeUnavailable, match="known: fluid, timgm, musescore"):
        P.soundfont_path("nosuchfont")
    with pytest.raises(P.ProbeUnavailable, match="unknown corpus work"):
        P.render_work("nosuchwork", 5.0, cache=cache)
    with pytest.raises(ValueError, match="unknown negative set"):
        P.negative_probes("polkas", 2, cache=cache)


def test_distinct_chorales_have_distinct_melodies(cache: P.ProbeCache) -> None:
    paths = P.distinct_chorales(6, cache)
    assert len(paths) == 6 and len(set(paths)) == 6
    index = json.loads((cache.root / "chorale_sopranos.json").read_text())
    for i, a in enumerate(paths):
        assert index[a]
        for b in paths[i + 1 :]:
            assert not P.one_tune(index[a], index[b], P.SHARED_INCIPIT_INTERVALS), (a, b)
            assert P.longest_shared_run(index[a], index[b]) < P.SHARED_PHRASE_INTERVALS, (a, b)


def test_a_tune_printed_twice_under_two_names_counts_once(cache: P.ProbeCache) -> None:
    # Ryan's Mammoth prints one reel as ArbanaReel and as BenButlersReel (a shared run of 61 intervals)
    reels = ["ryansMammoth/ArbanaReel", "ryansMammoth/BenButlersReel", "ryansMammoth/BellsOfLewistonReel"]
    kept = negatives._distinct_melodies(reels, 3, "test_melodies.json", cache)
    assert kept == ["ryansMammoth/ArbanaReel", "ryansMammoth/BellsOfLewistonReel"]
    index = json.loads((cache.root / "test_melodies.json").read_text())
    assert P.longest_shared_run(index[reels[0]], index[reels[1]]) >= P.SHARED_PHRASE_INTERVALS


def test_a_fiddle_tune_varied_between_the_beats_counts_once(cache: P.ProbeCache) -> None:
    # Ryan's Mammoth prints one jig twice: BILLY O'ROURKE'S opens | dBB B>AB | dBB B>(gf/e/) | dBB B>(cB/A/)
    # | GEE E2 and COME UNDER MY PLADDIE | dBB BAB | dBB B2g | dBB BAB | GEE E2, with other pickups and
    # ornaments, so neither interval rule joins them; AcaciaReel is another tune
    paths = ["ryansMammoth/BillyORourkesJig", "ryansMammoth/ComeUnderMyPladdieJig", "ryansMammoth/AcaciaReel"]
    assert negatives._distinct_melodies(paths, 3, "test_fiddle.json", cache) == paths
    kept = negatives._distinct_melodies(paths, 3, "test_fiddle.json", cache, beats_name="test_beats.json")
    assert kept == [paths[0], paths[2]]
    billy, pladdie = (negatives.beat_grid(p) for p in paths[:2])
    # the beats of the ABC's first four full bars in E minor, read by hand: d B | d B | d B | G E
    assert billy.metre == pladdie.metre == "6/8"
    assert billy.pitches[:8] == pladdie.pitches[:8] == [74, 71, 74, 71, 74, 71, 67, 64]
    assert negatives.beat_agreement(billy, pladdie) >= P.BEAT_AGREEMENT
    grids = json.loads((cache.root / "test_beats.json").read_text())
    assert negatives.BeatGrid(*grids[paths[0]]) == billy  # cached for the next build


def test_beat_agreement_on_worked_examples() -> None:
    tune = [float(p) for p in np.random.default_rng(3).integers(55, 80, 30)]
    grid = negatives.BeatGrid("6/8", list(tune))
    assert negatives.beat_agreement(grid, grid) == 1.0
    # a fourth up, two beats later, every fourth beat changed: 18 of any 24 agree
    varied = [p + 5 for p in tune]
    for i in range(0, 30, 4):
        varied[i] += 1
    later = negatives.BeatGrid("6/8", [None, 50.0] + varied)
    assert negatives.beat_agreement(grid, later) == negatives.beat_agreement(later, grid) == 0.75
    varied[1] += 1  # one more changed beat in every window of 24 that starts at the first
    assert negatives.beat_agreement(grid, negatives.BeatGrid("6/8", varied[:24])) == 17 / 24
    assert negatives.beat_agreement(grid, negatives.BeatGrid("2/4", list(tune))) == 0.0  # another metre
    assert negatives.beat_agreement(grid, negatives.BeatGrid("6/8", tune[:23])) == 0.0  # under 24 beats
    silent = negatives.BeatGrid("6/8", [None] * 30)
    assert negatives.beat_agreement(silent, silent) == 0.0  # no note agrees with no note


def test_two_settings_of_one_hymn_tune_count_once(cache: P.ProbeCache) -> None:
    # bwv385 and bwv197.5 both set "Nun bitten wir den heiligen Geist"; their soprano lines differ in passing
    # notes throughout, so the shared-run rule alone keeps both; bwv269 is "Aus meines Herzens Grunde"
    paths = ["bach/bwv385", "bach/bwv197.5", "bach/bwv269"]
    assert negatives._distinct_melodies(paths, 3, "test_chorales.json", cache) == paths
    kept = negatives._distinct_melodies(paths, 3, "test_chorales.json", cache, negatives.chorale_tune)
    assert kept == ["bach/bwv385", "bach/bwv269"]
    assert negatives.chorale_tune("bach/bwv197.5") == ("nun", "bitten", "wir", "den", "heiligen", "geist")
    assert negatives.chorale_tune("bach/nosuch") is None


def test_one_hymn_tune_under_two_texts_counts_once(cache: P.ProbeCache) -> None:
    # bwv244.37 ("In allen meinen Taten") and bwv44.7 ("Nun ruhen alle Wälder") are both sung to Isaac's
    # "Innsbruck": the titles differ and a passing note breaks the run at 11 intervals, so only the
    # incipit rule tells; bwv144.3 is "Was Gott tut, das ist wohlgetan"
    paths = ["bach/bwv244.37", "bach/bwv44.7", "bach/bwv144.3"]
    plain = negatives._distinct_melodies(paths, 3, "test_incipits.json", cache, negatives.chorale_tune)
    assert plain == paths
    kept = negatives._distinct_melodies(
        paths, 3, "test_incipits.json", cache, negatives.chorale_tune, P.SHARED_INCIPIT_INTERVALS
    )
    assert kept == ["bach/bwv244.37", "bach/bwv144.3"]


def test_a_score_held_twice_under_two_numbers_gets_its_twins_verdict(cache: P.ProbeCache) -> None:
    # music21's bwv69.6 and bwv69.6-a print one soprano note for note ("Was Gott tut, das ist wohlgetan",
    # the catalogue's title of bwv69.6-a and bwv144.3); the catalogue titles bwv69.6 for another chorale
    paths = ["bach/bwv144.3", "bach/bwv69.6-a", "bach/bwv69.6"]
    kept = negatives._distinct_melodies(
        paths, 3, "test_twins.json", cache, negatives.chorale_tune, P.SHARED_INCIPIT_INTERVALS
    )
    assert kept == ["bach/bwv144.3"]
    melodies = json.loads((cache.root / "test_twins.json").read_text())
    assert melodies["bach/bwv69.6"] == melodies["bach/bwv69.6-a"]
    assert not P.one_tune(melodies["bach/bwv69.6"], melodies["bach/bwv144.3"], P.SHARED_INCIPIT_INTERVALS)


def test_a_chorale_melody_is_its_soprano_not_the_trumpets_above_it() -> None:
    # bwv69.6.xml (BWV 69's closing chorale) prints three trumpets and timpani above the choir: the first
    # trumpet opens down a semitone, up and up a fourth; the soprano's melody opens a semitone up and back
    melody = negatives._melody_intervals("bach/bwv69.6.xml")
    assert melody[:7] == [1, -1, -2, 2, 1, 2, 2]
    assert melody[:3] != [-1, 1, 5]


def test_one_tune_on_worked_examples() -> None:
    a = [3, -3, 1, -1, -2, -2, 4, 3, -5, -3, -2]  # two openings of the tonus peregrinus (bwv323, bwv324)
    b = [3, -3, 1, -1, -2, -2, 4, 3, -5, -5, 3]
    assert P.longest_shared_run(a, b) == 9
    assert P.one_tune(a, b, 9) and not P.one_tune(a, b) and not P.one_tune(a, b, 10)
    assert not P.one_tune(a[:8], b[:8], 9)  # too short to have an incipit of 9
    assert P.one_tune([0] + list(range(1, 13)), list(range(1, 13)))  # a 12-interval run anywhere


def test_same_tune_on_worked_examples() -> None:
    short, long = (
        ("meinen", "jesum", "laß", "ich", "nicht", "weil"),
        ("meinen", "jesum", "laß", "ich", "nicht", "weil", "er", "sich"),
    )
    assert negatives.same_tune(short, long) and negatives.same_tune(long, short)
    # one opening, two hymns: "Herr Jesu Christ, du hast bereit't" and "... du höchstes Gut"
    assert not negatives.same_tune(
        ("herr", "jesu", "christ", "du", "hast"), ("herr", "jesu", "christ", "du", "hochstes")
    )
    assert not negatives.same_tune(None, short) and not negatives.same_tune((), ())


def test_longest_shared_run_on_worked_examples() -> None:
    # "Werde munter": two settings' openings differ by one passing note, then run together for 5 intervals
    assert P.longest_shared_run([2, 2, -1, -3, 1, 2, 2], [2, 1, 1, -1, -3, 1, 2, 2]) == 5
    assert P.longest_shared_run([1, 2, 3], [4, 5]) == 0
    assert P.longest_shared_run([], [1]) == 0
    assert P.longest_shared_run([7, 7, 7], [7, 7]) == 2


def test_negative_sets(cache: P.ProbeCache) -> None:
    for kind in ("folk_tunes", "game_soundtrack"):
        probes = P.negative_probes(kind, 2, seconds=6.0, cache=cache)
        assert len(probes) == 2 and all(p.label == kind and len(p.pcm) == 6 * SR for p in probes)
        assert not np.array_equal(probes[0].pcm, probes[1].pcm)


def test_instrumentation_takes_are_distinct(cache: P.ProbeCache) -> None:
    probes = P.instrumentation_probes("bach_bwv66_6", 6, seconds=6.0, cache=cache)
    takes = [(p.meta["program"], p.meta["soundfont"]) for p in probes]
    # The organ chorale on its own program in each SoundFont, then piano, strings, flute (not organ again).
    assert takes[:3] == [(None, "fluid"), (None, "timgm"), (None, "musescore")]
    assert [t[0] for t in takes[3:]] == [P.PIANO, P.STRINGS, P.FLUTE]
    assert all(p.label == "bach_bwv66_6" for p in probes)
    for i in range(len(probes)):
        for j in range(i + 1, len(probes)):
            assert not np.array_equal(probes[i].pcm, probes[j].pcm)


def test_rubberband_stretches_and_shifts(cache: P.ProbeCache) -> None:
    chord = tone((60.0, 64.0, 67.0), 6.0, n_harmonics=3).astype(np.float32)
    faster = P.rubberband(chord, tempo=1.25, cache=cache)
    assert len(faster) / len(chord) == pytest.approx(1 / 1.25, rel=0.02)
    up = P.rubberband(chord, semitones=2, cache=cache)
    assert len(up) == pytest.approx(len(chord), rel=0.02)
    assert set(np.argsort(P.pitch_class_profile(up))[-3:]) == {2, 6, 9}  # C-E-G up a tone: D-F#-A


def test_soundtrack_derivatives(cache: P.ProbeCache) -> None:
    track = next(t for t in P.SOUNDTRACKS if t.name == "pingus_3")
    source, variants = P.soundtrack_derivatives(track, seconds=24.0, cache=cache)
    assert source.name == "source/pingus_3" and len(source.pcm) == 24 * SR
    details = sorted(f"{v.label}/{v.meta['detail']}" for v in variants)
    assert details == sorted(
        ["excerpt/start20s", "excerpt/middle20s", "excerpt/end20s", "tempo/stretch0.9", "tempo/stretch1.1",
         "transpose/shift+2", "transpose/shift-3", "mp3/128k", "gain/-6dB"]
    )  # fmt: skip
    by = {f"{v.label}/{v.meta['detail']}": v.pcm for v in variants}
    assert len(by["tempo/stretch1.1"]) / len(source.pcm) == pytest.approx(1 / 1.1, rel=0.02)
    np.testing.assert_array_equal(by["excerpt/end20s"], source.pcm[-20 * SR :])
