"""Canonical decode: every accepted format round-trips, every bad input gets its typed error, hashes
repeat."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from scoring import decode, errors
from scoring.decode import SAMPLE_RATE, CanonicalAudio, decode_bytes, decode_file, pcm_sha256
from scoring.testsignals import chord_song

SOURCE_RATE = 44100


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    """8 s of a chord progression, right channel at half level: [n, 2] float64 at 44.1 kHz."""
    mono = chord_song(60, 120, 8.0, sr=SOURCE_RATE) * 0.8
    return np.stack([mono, 0.5 * mono], axis=1)


@pytest.fixture(scope="module")
def encoded(stereo: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same audio in every accepted format (libsndfile encoders, plus ffmpeg's MP3 and Opus)."""
    d = tmp_path_factory.mktemp("enc")
    files = {
        "wav": d / "a.wav",
        "flac": d / "a.flac",
        "ogg-vorbis": d / "a.ogg",
        "opus": d / "a.opus",
        "mp3": d / "a.mp3",
    }
    # Integer samples, so that the two lossless files hold exactly the same PCM.
    ints = np.round(stereo * 32767).astype(np.int16)
    sf.write(files["wav"], ints, SOURCE_RATE, subtype="PCM_16")
    sf.write(files["flac"], ints, SOURCE_RATE, subtype="PCM_16")
    sf.write(files["ogg-vorbis"], stereo, SOURCE_RATE, format="OGG", subtype="VORBIS")
    sf.write(files["opus"], soxr.resample(stereo, SOURCE_RATE, 48000), 48000, format="OGG", subtype="OPUS")
    sf.write(files["mp3"], stereo, SOURCE_RATE, format="MP3", subtype="MPEG_LAYER_III")
    for name, args in (
        ("ffmpeg-mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("ffmpeg-opus", ["-c:a", "libopus"]),
    ):
        out = d / ("b.mp3" if name.endswith("mp3") else "b.opus")
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(files["wav"]), *args, str(out)], check=True
        )
        files[name] = out
    return files


def _reference(stereo: np.ndarray) -> np.ndarray:
    return soxr.resample(stereo.mean(axis=1), SOURCE_RATE, SAMPLE_RATE, quality="HQ")


def _write_wav(tmp_path: Path, x: np.ndarray, sr: int = SAMPLE_RATE, subtype: str = "PCM_16") -> Path:
    path = tmp_path / "x.wav"
    sf.write(path, x, sr, subtype=subtype)
    return path


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg-vorbis", "opus", "mp3", "ffmpeg-mp3", "ffmpeg-opus"])
def test_every_format_round_trips(fmt: str, encoded: dict[str, Path], stereo: np.ndarray) -> None:
    audio = decode_file(encoded[fmt])
    assert isinstance(audio, CanonicalAudio)
    assert audio.source_format == fmt.removeprefix("ffmpeg-")
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.pcm.dtype == np.float32 and audio.pcm.ndim == 1
    assert audio.duration_s == pytest.approx(8.0, abs=0.1)
    assert audio.sha256 == pcm_sha256(audio.pcm)
    ref = _reference(stereo)
    n = min(ref.shape[0], audio.pcm.shape[0])
    if fmt in ("wav", "flac"):
        # Lossless 16-bit: only the quantisation step separates us from the float reference.
        assert np.max(np.abs(audio.pcm[:n] - ref[:n])) < 1e-4
    else:
        # Lossy codecs: same level (within 1 dB) and the same spectrum shape (codec delay does not matter).
        level = 20 * np.log10(np.sqrt(np.mean(audio.pcm.astype(np.float64) ** 2)) / np.sqrt(np.mean(ref**2)))
        assert abs(level) < 1.0
        spec_a = np.abs(np.fft.rfft(audio.pcm[:n]))
        spec_r = np.abs(np.fft.rfft(ref[:n]))
        assert np.corrcoef(spec_a, spec_r)[0, 1] > 0.95


def test_same_file_same_hash_across_runs(encoded: dict[str, Path]) -> None:
    for fmt in ("flac", "mp3", "opus"):
        first, second = decode_file(encoded[fmt]), decode_file(encoded[fmt])
        assert first.sha256 == second.sha256
        assert np.array_equal(first.pcm, second.pcm)
    # The canonical PCM depends on the samples, not on the lossless container that carried them.
    assert decode_file(encoded["wav"]).sha256 == decode_file(encoded["flac"]).sha256


@pytest.mark.parametrize(("rate", "channels"), [(96_000, 2), (48_000, 6), (SAMPLE_RATE, 1)])
def test_block_by_block_decode_is_the_one_shot_path_bit_for_bit(
    tmp_path: Path, rate: int, channels: int
) -> None:
    # The reference is the path the decoder version names, done at once: mono mean in float64 of the whole
    # signal, one soxr call over all of it, float32. The file spans several decode blocks, the last partial.
    n = max(int(7.3 * rate), 5 * decode._BLOCK_FRAMES + 123)
    x = np.random.default_rng(rate + channels).standard_normal((n, channels)) * 0.1
    path = tmp_path / "many_blocks.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    whole = sf.read(path, dtype="float64", always_2d=True)[0].mean(axis=1)
    if rate != SAMPLE_RATE:
        whole = soxr.resample(whole, rate, SAMPLE_RATE, quality="HQ")
    assert n > 4 * decode._BLOCK_FRAMES
    assert np.array_equal(decode_file(path).pcm, whole.astype(np.float32))


def test_decode_never_holds_the_source_rate_signal(tmp_path: Path) -> None:
    import tracemalloc

    # 60 s of 96 kHz stereo: the whole source-rate mono signal in float64 would be 46 MB. Decoding block by
    # block holds the file's bytes, one block, and the canonical float32 result (5.3 MB).
    rate, seconds = 96_000, 60.0
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / "long.flac"
    sf.write(path, np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    source_mono_bytes = t.size * 8
    del t, tone
    tracemalloc.start()
    try:
        audio = decode_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.duration_s == pytest.approx(seconds, abs=0.01)
    assert peak < path.stat().st_size + audio.pcm.nbytes + 16 * 2**20 < source_mono_bytes


def test_decoder_version_names_the_pinned_path() -> None:
    assert "libsndfile" in decode.DECODER_VERSION and "soxr" in decode.DECODER_VERSION


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg-vorbis", "opus", "mp3"])
def test_truncated_files_are_corrupt(fmt: str, encoded: dict[str, Path]) -> None:
    data = encoded[fmt].read_bytes()
    with pytest.raises(errors.CorruptAudio, match="truncated|damaged"):
        decode_bytes(data[: len(data) // 2])


def test_damaged_flac_is_corrupt(encoded: dict[str, Path]) -> None:
    data = bytearray(encoded["flac"].read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(errors.CorruptAudio):
        decode_bytes(bytes(data))


def test_header_only_files_are_corrupt(encoded: dict[str, Path]) -> None:
    for fmt in ("wav", "flac", "ogg-vorbis"):
        with pytest.raises(errors.CorruptAudio):
            decode_bytes(encoded[fmt].read_bytes()[:60])


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world, this is not audio at all" * 10, b"%PDF-1.7\n" + bytes(2000), bytes(range(256)) * 20],
)
def test_non_audio_is_unsupported(data: bytes) -> None:
    with pytest.raises(errors.UnsupportedFormat, match="WAV, FLAC"):
        decode_bytes(data)


def test_other_containers_are_unsupported(tmp_path: Path, stereo: np.ndarray) -> None:
    sf.write(tmp_path / "a.aiff", stereo, SOURCE_RATE, format="AIFF")
    with pytest.raises(errors.UnsupportedFormat):
        decode_file(tmp_path / "a.aiff")
    wav = tmp_path / "a.wav"
    sf.write(wav, stereo, SOURCE_RATE)
    oga = tmp_path / "a.oga"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "flac", "-f", "ogg", str(oga)],
        check=True,
    )
    with pytest.raises(errors.UnsupportedFormat, match="Ogg stream with a codec other than Vorbis or Opus"):
        decode_file(oga)


def test_silence_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(errors.SilentAudio, match="digital silence"):
        decode_file(_write_wav(tmp_path, np.zeros(SAMPLE_RATE * 6)))
    quiet = chord_song(seconds=6.0) * 10 ** (-70 / 20)
    with pytest.raises(errors.SilentAudio, match="-60"):
        decode_file(_write_wav(tmp_path, quiet, subtype="FLOAT"))


def test_too_short(tmp_path: Path) -> None:
    with pytest.raises(errors.TooShort, match="at least 5 s"):
        decode_file(_write_wav(tmp_path, chord_song(seconds=3.0)))


def test_too_long_declared_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 16 minutes of 8-bit 8 kHz noise: 7.7 MB, a plausible size, so it is long rather than a bomb.
    rng = np.random.default_rng(1)
    path = tmp_path / "long.wav"
    sf.write(path, rng.uniform(-0.5, 0.5, 16 * 60 * 8000), 8000, subtype="PCM_U8")

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("samples were decoded although the header already exceeds the limit")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(errors.TooLong, match="at most 900 s"):
        decode_file(path)


def test_too_long_with_small_limit(tmp_path: Path) -> None:
    with pytest.raises(errors.TooLong, match="at most 6 s"):
        decode_file(_write_wav(tmp_path, chord_song(seconds=8.0)), max_seconds=6.0)


def test_too_large_bytes_and_sparse_file(tmp_path: Path) -> None:
    data = _write_wav(tmp_path, chord_song(seconds=6.0)).read_bytes()
    with pytest.raises(errors.TooLarge, match="at most 1000 bytes"):
        decode_bytes(data, max_bytes=1000)
    sparse = tmp_path / "huge.wav"
    with sparse.open("wb") as fh:
        fh.write(data[:44])
        fh.truncate(200 * 2**20 + 1)
    with pytest.raises(errors.TooLarge, match="209715201 bytes"):
        decode_file(sparse)


def test_decompression_bomb_flac(tmp_path: Path) -> None:
    # 20 minutes of digital silence with a short tone: a few kB on disk, 1200 s declared.
    sr = 8000
    x = np.zeros(20 * 60 * sr)
    x[:sr] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    path = tmp_path / "bomb.flac"
    sf.write(path, x, sr, subtype="PCM_16")
    assert path.stat().st_size < 200_000
    with pytest.raises(errors.DecompressionBomb, match="expansion"):
        decode_file(path)


def test_stream_longer_than_declared_is_capped(tmp_path: Path) -> None:
    # A WAV whose data chunk size field lies low: libsndfile trusts the header, so the decode is bounded by it
    # and the extra bytes are ignored rather than decoded without limit.
    x = chord_song(seconds=10.0)
    path = _write_wav(tmp_path, x)
    data = bytearray(path.read_bytes())
    pos = data.find(b"data")
    declared = 6 * SAMPLE_RATE * 2
    data[pos + 4 : pos + 8] = declared.to_bytes(4, "little")
    audio = decode_bytes(bytes(data))
    assert audio.duration_s == pytest.approx(6.0, abs=0.01)


def test_non_finite_float_samples_are_corrupt(tmp_path: Path) -> None:
    x = chord_song(seconds=6.0).astype(np.float32)
    x[1000] = np.nan
    with pytest.raises(errors.CorruptAudio, match="NaN"):
        decode_file(_write_wav(tmp_path, x, subtype="FLOAT"))


def test_missing_file_is_an_audio_error(tmp_path: Path) -> None:
    with pytest.raises(errors.AudioError, match="cannot read"):
        decode_file(tmp_path / "nope.wav")


def test_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # nobody ever writes: opening it for reading would block forever
    with pytest.raises(errors.AudioError, match="not a regular file"):
        decode_file(fifo)
    with pytest.raises(errors.AudioError, match="not a regular file"):
        decode_file(tmp_path)


def test_every_error_is_typed_and_explains_what_is_accepted() -> None:
    for cls in (
        errors.UnsupportedFormat,
        errors.CorruptAudio,
        errors.TooShort,
        errors.TooLong,
        errors.TooLarge,
        errors.SilentAudio,
        errors.DecompressionBomb,
    ):
        assert issubclass(cls, errors.AudioError)
    with pytest.raises(errors.AudioError) as info:
        decode_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert "WAV, FLAC, Ogg Vorbis, Opus or MP3" in str(info.value)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg-vorbis", "opus", "mp3"])
def test_mutated_files_never_crash(fmt: str, encoded: dict[str, Path]) -> None:
    """Random byte damage (headers and payload alike) gives audio or a typed AudioError, nothing else."""
    data = encoded[fmt].read_bytes()
    rng = np.random.default_rng(sum(map(ord, fmt)))
    outcomes: set[str] = set()
    for trial in range(25):
        damaged = bytearray(data)
        # Odd trials hit the first 4 kB (headers, first frames), even trials anywhere.
        span = min(len(damaged), 4000) if trial % 2 else len(damaged)
        for pos in rng.integers(0, span, int(rng.integers(1, 20))):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            audio = decode_bytes(bytes(damaged))
        except errors.AudioError as exc:
            assert str(exc)
            outcomes.add(type(exc).__name__)
        else:
            assert np.all(np.isfinite(audio.pcm)) and audio.duration_s >= 5.0
            outcomes.add("decoded")
    assert outcomes


@pytest.mark.parametrize(
    "magic", [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS\x00\x02", b"ID3\x04\x00", b"\xff\xfb"]
)
def test_valid_magic_with_garbage_is_typed(magic: bytes) -> None:
    rng = np.random.default_rng(len(magic))
    for size in (0, 10, 1000, 100_000):
        with pytest.raises(errors.AudioError):
            decode_bytes(magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes())
