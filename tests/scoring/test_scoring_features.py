"""Feature extractor against independent references (librosa, pyloudnorm, scipy, numpy) with stated
tolerances.

Synthetic signals cover the edge cases; one real composition (a Bach chorale from music21's corpus rendered
through FluidSynth) checks that the pieces agree on music, not only on test tones.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import soxr
import torch

from scoring import testsignals as ts
from scoring.decode import SAMPLE_RATE, decode_file
from scoring.features import (
    CHROMA_2DFT_SHAPE,
    EMBEDDING_DIM,
    FEATURE_VERSION,
    FeatureError,
    TrackFeatures,
    extract_features,
    frame_features,
)

SR = SAMPLE_RATE
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for this module: the test machine's 2 cores are shared, and OpenMP threads that
    spin against other processes make small torch ops several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return ts.chord_song(60, 120, 20.0)


@pytest.fixture(scope="module")
def frames(song: np.ndarray) -> dict[str, np.ndarray]:
    return frame_features(song)


@pytest.fixture(scope="module")
def song32(song: np.ndarray) -> np.ndarray:
    return song.astype(np.float32)


@pytest.fixture(scope="module")
def synth() -> dict[str, TrackFeatures]:
    """Features of the synthetic corpus, computed in one batched call."""
    signals = {
        "song": ts.chord_song(60, 120, 20.0),
        "song_d": ts.chord_song(62, 120, 20.0),
        "song_transposed": ts.chord_song(63, 120, 20.0),
        "song_faster": ts.chord_song(60, 126, 20.0),
        "song_quiet": 0.5 * ts.chord_song(60, 120, 20.0),
        "minor": ts.chord_song(57, 96, 20.0, progression=((0, 3, 7), (8, 12, 15), (3, 7, 10), (7, 11, 14))),
        "noise": ts.white_noise(20.0, amp=0.1),
        "clicks": ts.click_track(120, 20.0),
        "held": ts.tone((60, 64, 67), 20.0),
        "two_part": ts.two_part_song(40.0),
        "with_silence": np.concatenate((np.zeros(10 * SR), ts.chord_song(60, 120, 20.0))),
    }
    names = list(signals)
    feats = extract_features([signals[n] for n in names], batch_size=4)
    return dict(zip(names, feats, strict=True))


# --- frame-level features vs librosa ----------------------------------------------------------------------


def test_mel_matches_librosa(frames: dict[str, np.ndarray], song32: np.ndarray) -> None:
    ref = librosa.feature.melspectrogram(y=song32, sr=SR, n_fft=2048, hop_length=512)
    assert frames["mel"].shape == ref.shape
    # librosa computes in float32: relative error to the spectrogram's peak below 1e-5.
    assert np.max(np.abs(frames["mel"] - ref)) / ref.max() < 1e-5


def test_mfcc_matches_librosa(frames: dict[str, np.ndarray], song32: np.ndarray) -> None:
    ref = librosa.feature.mfcc(y=song32, sr=SR, n_mfcc=20)
    assert frames["mfcc"].shape == ref.shape
    assert np.max(np.abs(frames["mfcc"] - ref)) < 1e-2  # coefficients reach ~450; float32 reference


def test_chroma_matches_librosa(frames: dict[str, np.ndarray], song32: np.ndarray) -> None:
    ref = librosa.feature.chroma_stft(y=song32, sr=SR, tuning=0.0)
    ours = frames["chroma"]
    cos = (ref * ours).sum(0) / (np.linalg.norm(ref, axis=0) * np.linalg.norm(ours, axis=0) + 1e-12)
    # Same Ellis filterbank formula written independently: per-frame cosine >= 0.97, mean >= 0.99.
    assert cos.min() > 0.97 and cos.mean() > 0.99


def test_onset_strength_matches_librosa(frames: dict[str, np.ndarray], song32: np.ndarray) -> None:
    ref = librosa.onset.onset_strength(y=song32, sr=SR)
    assert frames["onset_env"].shape == ref.shape
    assert np.max(np.abs(frames["onset_env"] - ref)) < 1e-3 * ref.max()


def test_spectral_shape_matches_librosa(frames: dict[str, np.ndarray], song32: np.ndarray) -> None:
    centroid = librosa.feature.spectral_centroid(y=song32, sr=SR)[0]
    flatness = librosa.feature.spectral_flatness(y=song32)[0]
    rolloff = librosa.feature.spectral_rolloff(y=song32, sr=SR, roll_percent=0.99)[0]
    rms = librosa.feature.rms(y=song32)[0]
    assert np.max(np.abs(frames["centroid"] - centroid)) < 0.05  # Hz
    assert np.max(np.abs(frames["flatness"] - flatness)) < 1e-5
    # Roll-off is a bin index: float32 vs float64 may flip a bin on a near-tie in a few frames at most.
    assert np.mean(frames["rolloff"] != rolloff) < 0.01
    assert np.max(np.abs(frames["rms"] - rms)) < 1e-6


# --- rhythm -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [100.0, 120.0, 150.0])
def test_tempo_and_beats_on_click_tracks(bpm: float) -> None:
    clicks = ts.click_track(bpm, 20.0, noise=0.01, seed=int(bpm))
    feats = extract_features([clicks])[0]
    ref_tempo = float(librosa.feature.tempo(y=clicks.astype(np.float32), sr=SR)[0])
    assert feats.scalars["tempo_bpm"] == pytest.approx(bpm, rel=0.015)
    assert feats.scalars["tempo_bpm"] == pytest.approx(ref_tempo, rel=0.05)  # librosa: integer-lag grid
    truth = np.arange(0.0, 20.0, 60.0 / bpm)
    beats = np.array(feats.beat_times_s)
    err = np.abs(beats[:, None] - truth[None, :]).min(axis=1)
    # The usual beat-tracking tolerance (mir_eval F-measure) is +-70 ms; frames are 23 ms apart.
    assert np.mean(err < 0.07) > 0.9
    _, ref_beats = librosa.beat.beat_track(y=clicks.astype(np.float32), sr=SR, units="time")
    err_ref = np.abs(beats[:, None] - ref_beats[None, :]).min(axis=1)
    assert np.mean(err_ref < 0.07) > 0.9
    assert feats.scalars["beat_stability"] > 0.8
    assert feats.scalars["pulse_clarity"] > 0.6  # noisy clicks, periods off the frame grid


def test_onset_rate_matches_librosa_onset_detect() -> None:
    clicks = ts.click_track(120, 20.0)
    feats = extract_features([clicks])[0]
    ref = librosa.onset.onset_detect(y=clicks.astype(np.float32), sr=SR)
    assert feats.scalars["onset_rate_hz"] == pytest.approx(2.0, abs=0.1)
    assert abs(feats.scalars["onset_rate_hz"] * 20.0 - len(ref)) <= 1


def test_pulse_clarity_separates_beats_from_noise_and_drones(synth: dict[str, TrackFeatures]) -> None:
    assert synth["clicks"].scalars["pulse_clarity"] > 0.7
    assert synth["song"].scalars["pulse_clarity"] > 0.5
    assert synth["noise"].scalars["pulse_clarity"] < 0.15
    assert synth["held"].scalars["pulse_clarity"] < 0.3


# --- loudness, peaks, dynamics -----------------------------------------------------------------------------


def _pyloudnorm_48k(x: np.ndarray) -> float:
    """BS.1770-4 reference: pyloudnorm with the standard's own 48 kHz filters on a very-high-quality
    upsample."""
    return float(
        pyloudnorm.Meter(48000, filter_class="DeMan").integrated_loudness(soxr.resample(x, SR, 48000, "VHQ"))
    )


@pytest.mark.parametrize(
    "name",
    ["song", "song_quiet", "minor", "with_silence"],
)
def test_integrated_loudness_matches_pyloudnorm(name: str, synth: dict[str, TrackFeatures]) -> None:
    signals = {
        "song": ts.chord_song(60, 120, 20.0),
        "song_quiet": 0.5 * ts.chord_song(60, 120, 20.0),
        "minor": ts.chord_song(57, 96, 20.0, progression=((0, 3, 7), (8, 12, 15), (3, 7, 10), (7, 11, 14))),
        "with_silence": np.concatenate((np.zeros(10 * SR), ts.chord_song(60, 120, 20.0))),
    }
    ours = synth[name].scalars["loudness_lufs"]
    assert ours == pytest.approx(_pyloudnorm_48k(signals[name]), abs=0.05)
    # pyloudnorm's default meter at our rate uses approximate filters: agreement within 0.15 LU.
    assert ours == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(signals[name]), abs=0.15)


def test_loudness_calibration_tone() -> None:
    # BS.1770: a 997 Hz sine at -20 dBFS (peak 0.1) reads -23.0 LUFS in one channel.
    feats = extract_features([ts.sine(997.0, 10.0, amp=0.1)])[0]
    assert feats.scalars["loudness_lufs"] == pytest.approx(-23.0, abs=0.05)
    assert feats.scalars["loudness_range_lu"] < 0.5


def test_loudness_range_of_two_levels() -> None:
    loud = ts.white_noise(30.0, amp=0.1, seed=1)
    soft = ts.white_noise(30.0, amp=0.1 * 10 ** (-10 / 20), seed=2)
    feats = extract_features([np.concatenate((loud, soft)), loud])
    # Half at one level, half 10 dB lower: the 10th..95th percentile spread is the 10 dB step.
    assert feats[0].scalars["loudness_range_lu"] == pytest.approx(10.0, abs=1.0)
    assert feats[1].scalars["loudness_range_lu"] < 1.0


def test_true_peak_matches_resample_poly(song: np.ndarray) -> None:
    # A sine at fs/4 sampled 45 degrees off its crest: sample peak is 3 dB below the true peak.
    tone = ts.sine(SR / 4, 6.0, amp=0.9, phase=np.pi / 4)
    feats = extract_features([tone, song])
    for x, f in zip((tone, song), feats, strict=True):
        ref = 20 * np.log10(np.max(np.abs(scipy.signal.resample_poly(x, 4, 1))))
        assert f.scalars["true_peak_dbfs"] == pytest.approx(ref, abs=0.2)
        assert f.scalars["true_peak_dbfs"] >= f.scalars["sample_peak_dbfs"]  # phase 0 is the samples
    assert feats[0].scalars["true_peak_dbfs"] == pytest.approx(20 * np.log10(0.9), abs=0.2)
    assert feats[0].scalars["sample_peak_dbfs"] == pytest.approx(20 * np.log10(0.9) - 3.01, abs=0.05)


def _clipping_reference(x: np.ndarray, level: float = 0.999, run: int = 3) -> float:
    """Fraction of samples in runs of >= run consecutive samples at |x| >= level (plain numpy run lengths)."""
    full = np.concatenate(([0], (np.abs(x) >= level).astype(np.int8), [0]))
    starts = np.flatnonzero(np.diff(full) == 1)
    ends = np.flatnonzero(np.diff(full) == -1)
    lengths = ends - starts
    return float(lengths[lengths >= run].sum() / x.shape[0])


def test_clipping_ratio_and_crest_factor_match_numpy(song: np.ndarray) -> None:
    gains = [1.0, 2.0, 4.0, 8.0]
    signals = [ts.clip(song, g) for g in gains]
    feats = extract_features(signals)
    ratios = [f.scalars["clipping_ratio"] for f in feats]
    for x, f in zip(signals, feats, strict=True):
        assert f.scalars["clipping_ratio"] == pytest.approx(_clipping_reference(x), abs=1e-12)
        crest = 20 * np.log10(np.max(np.abs(x)) / np.sqrt(np.mean(x**2)))
        assert f.scalars["crest_factor_db"] == pytest.approx(crest, abs=1e-6)
    assert ratios[0] == 0.0
    assert ratios[1] < ratios[2] < ratios[3]
    assert feats[0].scalars["crest_factor_db"] > feats[3].scalars["crest_factor_db"]


def test_silence_ratio(synth: dict[str, TrackFeatures]) -> None:
    assert synth["with_silence"].scalars["silence_ratio"] == pytest.approx(1 / 3, abs=0.02)
    assert synth["song"].scalars["silence_ratio"] < 0.02


def test_spectral_scalars_order_signals(synth: dict[str, TrackFeatures]) -> None:
    noise, held = synth["noise"].scalars, synth["held"].scalars
    assert noise["spectral_flatness"] > 0.3 > 0.01 > held["spectral_flatness"]
    assert noise["spectral_centroid_hz"] > 4000 > 1000 > held["spectral_centroid_hz"]
    assert noise["rolloff99_hz"] > 10000 > 2000 > held["rolloff99_hz"]


# --- harmony and structure ---------------------------------------------------------------------------------


def test_key_and_key_clarity(synth: dict[str, TrackFeatures]) -> None:
    assert synth["song"].scalars["key_index"] == 0  # C major
    assert synth["song_d"].scalars["key_index"] == 2  # D major
    assert synth["minor"].scalars["key_index"] == 12 + 9  # A minor
    assert synth["song"].scalars["key_clarity"] > 0.5
    assert synth["noise"].scalars["key_clarity"] < 0.1
    assert synth["song_d"].scalars["key_clarity"] == pytest.approx(
        synth["song"].scalars["key_clarity"], abs=0.05
    )


def test_repetition_and_foote_boundaries(synth: dict[str, TrackFeatures]) -> None:
    assert synth["song"].scalars["repetition_ratio"] > 0.6
    assert synth["noise"].scalars["repetition_ratio"] < 0.2
    bounds = synth["two_part"].boundaries_s
    assert bounds and min(abs(b - 20.0) for b in bounds) < 2.0
    assert synth["two_part"].scalars["n_segments"] == len(bounds) + 1


def test_chroma_2dft_is_key_and_tempo_invariant(synth: dict[str, TrackFeatures]) -> None:
    base = synth["song"].chroma_2dft
    assert base.shape == CHROMA_2DFT_SHAPE and base.dtype == np.float32
    assert np.linalg.norm(base) == pytest.approx(1.0, abs=1e-5)
    transposed = _cos(base, synth["song_transposed"].chroma_2dft)
    faster = _cos(base, synth["song_faster"].chroma_2dft)
    unrelated = max(_cos(base, synth[n].chroma_2dft) for n in ("minor", "noise", "clicks"))
    assert transposed > 0.98
    assert faster > 0.95
    assert unrelated < min(transposed, faster) - 0.05
    bc = synth["song"].beat_chroma
    assert bc.shape[0] == 12 and bc.shape[1] == len(synth["song"].beat_times_s)


def test_embedding_is_unit_and_gain_invariant(synth: dict[str, TrackFeatures]) -> None:
    emb = synth["song"].embedding
    assert emb.shape == (EMBEDDING_DIM,) and emb.dtype == np.float32
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    assert _cos(emb, synth["song_quiet"].embedding) > 0.999
    assert _cos(emb, synth["song_transposed"].embedding) > _cos(emb, synth["noise"].embedding)
    assert _cos(emb, synth["song_faster"].embedding) > _cos(emb, synth["clicks"].embedding)


# --- determinism, batching, errors -------------------------------------------------------------------------


def test_same_results_across_thread_counts_and_batches(song: np.ndarray) -> None:
    other = ts.white_noise(12.0, seed=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = extract_features([song])[0]
        torch.set_num_threads(2)
        two, _ = extract_features([song, other], batch_size=2)
    finally:
        torch.set_num_threads(threads)
    again = extract_features([song])[0]
    assert one.digest() == two.digest() == again.digest()
    np.testing.assert_allclose(one.embedding, two.embedding, atol=1e-6)
    for key, value in one.scalars.items():
        # float32 spectral path: sums may associate differently across threads and batch shapes.
        assert two.scalars[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert FEATURE_VERSION == "ami-features/11"


def test_stft_chunking_changes_no_bit(song: np.ndarray) -> None:
    # The CPU chunk budget (CPU_CHUNK_ROWS over the batch) only sets how many frames share one product: every
    # per-frame row must come out the same as with 1024 frames per track (the chunking before it) and with
    # an odd chunk that splits the track unevenly.
    from scoring.transforms import CPU_CHUNK_ROWS, spectral_frames

    x = torch.from_numpy(np.stack((song, ts.white_noise(song.size / SR, seed=9)))).float()
    assert 1 + x.shape[1] // 512 > CPU_CHUNK_ROWS // 2  # the default splits these tracks into chunks
    default = spectral_frames(x, SR)
    for chunk in (1024, 37):
        other = spectral_frames(x, SR, chunk_frames=chunk)
        assert default.keys() == other.keys()
        for key, value in default.items():
            assert torch.equal(value, other[key]), (chunk, key)


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def test_one_blas_thread_holds_while_extracting_and_changes_no_bit(
    song: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass holds numpy's BLAS to one thread (`one_blas_thread`) and restores it; with the limit taken
    away and two BLAS threads, every feature is the same bit for bit."""
    from threadpoolctl import threadpool_limits

    import scoring.features as features_module

    other = ts.two_part_song(16.0, bpm=96)
    inner = features_module._extract_batch
    seen: list[int] = []

    def spying(*args: object, **kwargs: object) -> list[TrackFeatures]:
        seen.append(_blas_threads())
        return inner(*args, **kwargs)  # type: ignore[arg-type]

    with threadpool_limits(limits=2, user_api="blas"):
        monkeypatch.setattr(features_module, "_extract_batch", spying)
        held = extract_features([song, other])
        assert seen and set(seen) == {1}
        assert _blas_threads() == 2
        monkeypatch.setattr(features_module, "_extract_batch", inner)
        monkeypatch.setattr(features_module, "one_blas_thread", contextlib.nullcontext)
        free = extract_features([song, other])
    for a, b in zip(held, free, strict=True):
        assert a.scalars == b.scalars
        for name in ("chroma_2dft", "embedding", "beat_chroma", "chroma_steps", "voiced_steps"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.boundaries_s == b.boundaries_s and a.beat_times_s == b.beat_times_s


def test_degenerate_signals_give_finite_features() -> None:
    signals = {
        "zeros": np.zeros(5 * SR),
        "dc": np.full(5 * SR, 0.5),
        "impulse": np.eye(1, 5 * SR, 2 * SR)[0],
        "square": np.sign(ts.sine(100.0, 5.0)),
        "one_second": ts.chord_song(seconds=1.0),
    }
    feats = dict(zip(signals, extract_features(list(signals.values())), strict=True))
    for name, f in feats.items():
        assert all(np.isfinite(v) for v in f.scalars.values()), name
        assert np.isfinite(f.embedding).all() and np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-5)
        assert np.isfinite(f.chroma_2dft).all() and np.isfinite(f.beat_chroma).all()
    assert feats["zeros"].scalars["loudness_lufs"] == -70.0
    assert feats["zeros"].scalars["silence_ratio"] == 1.0
    assert feats["zeros"].scalars["tempo_bpm"] == 0.0 and feats["zeros"].scalars["pulse_clarity"] == 0.0
    assert feats["impulse"].scalars["silence_ratio"] > 0.9


def test_digest_changes_with_content(synth: dict[str, TrackFeatures]) -> None:
    digests = {f.digest() for f in synth.values()}
    assert len(digests) == len(synth)


def test_feature_core_imports_torch_and_numpy_only() -> None:
    code = (
        "import sys, scoring.features, scoring.dsp; "
        "print(sorted(m for m in ('soundfile', 'soxr', 'scipy', 'librosa') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_inputs_raise_feature_errors() -> None:
    good = ts.chord_song(seconds=3.0)
    with pytest.raises(FeatureError, match="1-D"):
        extract_features([np.stack([good, good])])
    with pytest.raises(FeatureError, match="at least 1 s"):
        extract_features([good[: SR // 2]])
    bad = good.copy()
    bad[10] = np.inf
    with pytest.raises(FeatureError, match="NaN or infinite"):
        extract_features([bad])
    with pytest.raises(FeatureError, match="float"):
        extract_features([(good * 1000).astype(np.int16)])
    with pytest.raises(FeatureError, match="sample rate"):
        extract_features([good], sample_rate=100)
    assert extract_features([]) == []


# --- one real composition ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chorale(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About 20 s of Bach's chorale BWV 66.6 (music21 corpus) rendered with FluidSynth's GM SoundFont."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        pytest.fail("fluidsynth and fluid-soundfont-gm are required (scripts/setup.sh installs them)")
    from music21 import corpus

    d = tmp_path_factory.mktemp("chorale")
    midi = d / "bwv66.6.mid"
    corpus.parse("bach/bwv66.6").write("midi", fp=str(midi))
    wav = d / "bwv66.6.wav"
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "44100", "-F", str(wav), str(SOUNDFONT), str(midi)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return decode_file(wav).pcm[: 20 * SR].astype(np.float64)


def test_real_piece_agrees_with_references(chorale: np.ndarray) -> None:
    feats = extract_features([chorale])[0]
    s = feats.scalars
    y32 = chorale.astype(np.float32)
    assert s["loudness_lufs"] == pytest.approx(_pyloudnorm_48k(chorale), abs=0.1)
    ref_centroid = float(np.mean(librosa.feature.spectral_centroid(y=y32, sr=SR)[0]))
    fr = frame_features(chorale)
    assert float(np.mean(fr["centroid"])) == pytest.approx(ref_centroid, rel=1e-4)
    ref_tempo = float(librosa.feature.tempo(y=y32, sr=SR)[0])
    ratio = s["tempo_bpm"] / ref_tempo
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.08  # same tempo or an octave apart
    ref_chroma = librosa.feature.chroma_stft(y=y32, sr=SR, tuning=0.0)
    assert _cos(fr["chroma"].mean(axis=1), ref_chroma.mean(axis=1)) > 0.995
    assert s["key_clarity"] > 0.3  # a tonal chorale
    assert s["silence_ratio"] < 0.1 and s["clipping_ratio"] == 0.0
    assert 0.0 <= s["repetition_ratio"] <= 1.0 and s["n_segments"] >= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_agree(song: np.ndarray) -> None:
    signals = [song, ts.white_noise(15.0, seed=3), ts.two_part_song(40.0)]
    cpu = extract_features(signals, device="cpu")
    gpu = extract_features(signals, device="cuda")
    for a, b in zip(cpu, gpu, strict=True):
        assert a.digest() == b.digest()
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-6)
