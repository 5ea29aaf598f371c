"""Canonical decode: accepted audio files to mono float32 PCM at one fixed rate, with the PCM's SHA-256.

One pinned path, so that every node and validator gets the same bytes from the same file:
libsndfile (through `soundfile`) decodes WAV, FLAC, Ogg Vorbis, Opus and MP3 to float64 in fixed-size blocks;
channels are averaged to mono in float64; `soxr` resamples to `SAMPLE_RATE` at a fixed quality, block by block
as the stream is decoded; the result is cast to float32. `DECODER_VERSION` records this path (and the library
versions that produce it).

Every limit is checked as early as it can be: the byte size before anything is read, the declared frame count
before any sample is decoded (a small file that claims a huge length is a decompression bomb), and the decoded
count block by block against a hard cap (a file that decodes to more than it declared). Nothing is unbounded.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from scoring._rate import SAMPLE_RATE
from scoring.errors import (
    ACCEPTED_FORMATS,
    AudioError,
    CorruptAudio,
    DecodedTooLarge,
    DecompressionBomb,
    SilentAudio,
    TooLarge,
    TooLong,
    TooShort,
    UnsupportedFormat,
)

__all__ = ["DECODER_VERSION", "SAMPLE_RATE", "CanonicalAudio", "decode_bytes", "decode_file", "pcm_sha256"]

SOXR_QUALITY = "HQ"
DECODER_VERSION: str = (
    f"ami-decode/1 libsndfile-{sf.__libsndfile_version__} soxr-{soxr.__version__}-{SOXR_QUALITY}"
)

DEFAULT_MAX_BYTES = 200 * 2**20
DEFAULT_MIN_SECONDS = 5.0
DEFAULT_MAX_SECONDS = 900.0

SILENCE_PEAK_DBFS = -60.0
"""A track whose absolute peak stays below this level (dBFS) holds no usable signal."""

# Float WAV/FLAC may exceed full scale a little; values far beyond it are garbage, not audio.
MAX_PEAK = 16.0
MAX_CHANNELS = 8
MIN_SOURCE_RATE = 8000
MAX_SOURCE_RATE = 384000

# Largest ratio of declared 16-bit PCM bytes to file bytes that a real codec reaches. Opus at 6 kbit/s on
# 48 kHz stereo is ~256:1; beyond this a file over the length limit is treated as a bomb, not a long song.
BOMB_RATIO = 300.0

MAX_DECODED_SAMPLES = 2 * 96_000 * 900
"""Most samples (channels x frames) a file may declare: 15 min of 96 kHz stereo (bounds decoder memory)."""

_BLOCK_FRAMES = 1 << 16
# The decoded length may exceed the declared one by this much (MP3/Vorbis frame counts are estimates).
_LENGTH_SLACK_S = 2.0
# Shortfall below the declared length that counts as truncation (MP3 frame counts are estimates).
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_REL = 0.01

# libsndfile (major format, subtype) pairs we accept, and the name recorded as `source_format`.
_ACCEPTED: dict[tuple[str, str | None], str] = {
    ("WAV", None): "wav",
    ("WAVEX", None): "wav",
    ("FLAC", None): "flac",
    ("OGG", "VORBIS"): "ogg-vorbis",
    ("OGG", "OPUS"): "opus",
    ("MP3", None): "mp3",
}


@dataclass(frozen=True)
class CanonicalAudio:
    """Decoded audio in canonical form.

    Attributes:
        pcm: mono samples, float32, shape [n], nominal range [-1, 1].
        sample_rate: always `SAMPLE_RATE` (Hz).
        sha256: hex SHA-256 of `pcm` as little-endian float32 bytes.
        duration_s: n / sample_rate, in seconds.
        source_format: one of "wav", "flac", "ogg-vorbis", "opus", "mp3".
    """

    pcm: np.ndarray
    sample_rate: int
    sha256: str
    duration_s: float
    source_format: str


def pcm_sha256(pcm: np.ndarray) -> str:
    """Hex SHA-256 of a PCM array as contiguous little-endian float32 bytes."""
    return hashlib.sha256(np.ascontiguousarray(pcm, dtype="<f4").tobytes()).hexdigest()


def _sniff(data: bytes) -> str | None:
    """Name the container from its magic bytes, or None: tells 'corrupt' from 'not audio we take'."""
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        # The first packet names the codec; Ogg also carries FLAC, Speex, Theora... which we do not take.
        if len(data) > 27 and len(data) >= 27 + data[26] + 8:
            packet = data[27 + data[26] : 27 + data[26] + 8]
            if not (packet.startswith(b"\x01vorbis") or packet.startswith(b"OpusHead")):
                return "ogg-other"
        return "ogg"
    if data[:3] == b"ID3":
        return "mp3"
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0:
        return "mp3"
    return None


def _check_wav_complete(data: bytes) -> None:
    """Raise CorruptAudio when the RIFF 'data' chunk declares more bytes than the file holds.

    libsndfile silently shortens such files, so truncation is only visible in the header.
    """
    if data[:4] != b"RIFF":
        return
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            # 0 and 0xFFFFFFFF mark streamed WAVs of unknown length; the decoded-length cap handles those.
            if size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data):
                raise CorruptAudio(
                    f"truncated WAV: the data chunk declares {size} bytes but only {len(data) - pos - 8} "
                    f"are present; send the complete file ({ACCEPTED_FORMATS})"
                )
            return
        pos += 8 + size + (size & 1)
    raise CorruptAudio(f"WAV file without a complete data chunk; send a valid {ACCEPTED_FORMATS} file")


def _check_ogg_complete(data: bytes) -> None:
    """Raise CorruptAudio unless the last Ogg page is whole and carries the end-of-stream flag."""
    last = data.rfind(b"OggS")
    if last < 0 or last + 27 > len(data):
        raise CorruptAudio("truncated Ogg stream: the last page header is cut off; send the complete file")
    header_type = data[last + 5]
    n_segments = data[last + 26]
    table_end = last + 27 + n_segments
    if table_end > len(data) or table_end + sum(data[last + 27 : table_end]) > len(data):
        raise CorruptAudio("truncated Ogg stream: the last page is cut off; send the complete file")
    if not header_type & 0x04:
        raise CorruptAudio("truncated Ogg stream: no end-of-stream page; send the complete file")


def _format_name(info_format: str, subtype: str) -> str | None:
    return _ACCEPTED.get((info_format, subtype)) or _ACCEPTED.get((info_format, None))


@dataclass(frozen=True)
class _Stream:
    """What an opened stream's header says: format name, channels, rate, declared frames (<= 0 or huge when
    the container does not know)."""

    source_format: str
    channels: int
    rate: int
    declared: int

    @property
    def unknown_length(self) -> bool:
        return self.declared <= 0 or self.declared >= 2**62


def _sniff_accepted(data: bytes, max_bytes: int) -> str:
    """The sniffed container of `data`, or the error that refuses it before anything is opened."""
    if len(data) > max_bytes:
        raise TooLarge(f"file is {len(data)} bytes; at most {max_bytes} bytes are accepted")
    if len(data) == 0:
        raise UnsupportedFormat(f"empty input; send a {ACCEPTED_FORMATS} file")
    sniffed = _sniff(data)
    if sniffed == "ogg-other":
        raise UnsupportedFormat(f"Ogg stream with a codec other than Vorbis or Opus; send {ACCEPTED_FORMATS}")
    if sniffed is None:
        raise UnsupportedFormat(
            f"not a recognised audio file (magic bytes {data[:4]!r}); send {ACCEPTED_FORMATS}"
        )
    return sniffed


def _check_header(handle: sf.SoundFile, data: bytes) -> _Stream:
    """The accepted `_Stream` of an opened file: format, channel count, rate, and a whole container."""
    source_format = _format_name(handle.format, handle.subtype)
    if source_format is None:
        raise UnsupportedFormat(
            f"format {handle.format}/{handle.subtype} is not accepted; send {ACCEPTED_FORMATS}"
        )
    stream = _Stream(source_format, handle.channels, handle.samplerate, handle.frames)
    if not 1 <= stream.channels <= MAX_CHANNELS:
        raise UnsupportedFormat(f"{stream.channels} channels; 1 to {MAX_CHANNELS} channels are accepted")
    if not MIN_SOURCE_RATE <= stream.rate <= MAX_SOURCE_RATE:
        raise UnsupportedFormat(
            f"sample rate {stream.rate} Hz; {MIN_SOURCE_RATE} to {MAX_SOURCE_RATE} Hz are accepted"
        )
    if source_format == "wav":
        _check_wav_complete(data)
    elif source_format in ("ogg-vorbis", "opus"):
        _check_ogg_complete(data)
    return stream


def _check_declared_size(stream: _Stream, size: int, max_seconds: float) -> None:
    """Refuse by the declared length and decoded size before decoding anything: 8 channels at 384 kHz for
    899 s is a 4.5 MB FLAC that decodes to gigabytes while every other limit holds."""
    if stream.unknown_length:
        return
    declared, channels, rate = stream.declared, stream.channels, stream.rate
    if declared > int(max_seconds * rate) + 1:
        ratio = declared * channels * 2 / size
        if ratio > BOMB_RATIO:
            raise DecompressionBomb(
                f"{size}-byte file declares {declared / rate:.1f} s of {channels}-channel audio "
                f"({ratio:.0f}x expansion); at most {max_seconds:g} s are accepted"
            )
        raise TooLong(f"audio lasts {declared / rate:.1f} s; at most {max_seconds:g} s are accepted")
    if declared * channels > MAX_DECODED_SAMPLES:
        raise DecodedTooLarge(
            f"{channels} channels x {rate} Hz x {declared / rate:.1f} s = {declared * channels} samples "
            f"to decode; at most {MAX_DECODED_SAMPLES} (e.g. 15 min of 96 kHz stereo) are accepted"
        )


def _overrun(stream: _Stream, got: int, size: int, max_seconds: float) -> AudioError:
    """The error for a stream that decodes past the hard cap after `got` frames."""
    declared, rate = stream.declared, stream.rate
    if stream.unknown_length and got * stream.channels * 2 / size <= BOMB_RATIO:
        return TooLong(
            f"stream of undeclared length runs past {max_seconds:g} s; at most {max_seconds:g} s are accepted"
        )
    if stream.unknown_length:
        return DecompressionBomb(
            f"{size}-byte stream of undeclared length decodes past {max_seconds:g} s "
            f"(over {BOMB_RATIO:g}x expansion); at most {max_seconds:g} s are accepted"
        )
    if got > declared + int(_LENGTH_SLACK_S * rate):
        return DecompressionBomb(
            f"stream decodes past its declared {declared / rate:.1f} s; the header lies; "
            f"send a valid {ACCEPTED_FORMATS} file"
        )
    return TooLong(f"audio runs past {max_seconds:g} s; at most {max_seconds:g} s are accepted")


@dataclass
class _Tally:
    """What the checks need of the decoded source-rate mono signal, gathered block by block: its frame count,
    its largest |sample|, and whether every sample was finite."""

    frames: int = 0
    peak: float = 0.0
    finite: bool = True


def _out_frames(frames: int, rate: int) -> int:
    """Room for the canonical samples of `frames` source frames (soxr's count, with a margin)."""
    return -(-frames * SAMPLE_RATE // rate) + 64


def _decode_canonical(
    handle: sf.SoundFile, stream: _Stream, size: int, max_seconds: float
) -> tuple[np.ndarray, _Tally]:
    """Decode block by block to mono float64, never past the declared length (plus slack) or the limit, and
    resample each block to `SAMPLE_RATE` as it arrives, keeping only the float32 result.

    Why block by block: the whole source-rate signal in float64 was 1.4 GB for the largest accepted input
    (15 min of 192 kHz mono; peak RSS 2.9 GB with its temporaries). soxr's stream gives the same samples, bit
    for bit, as resampling the whole signal at once (tests/scoring/test_scoring_decode.py). After a block
    that is not finite nothing more is resampled: `_check_decoded` refuses the stream.
    """
    cap_frames = int(max_seconds * stream.rate) + 1
    if stream.unknown_length:
        hard_cap, first = cap_frames, _BLOCK_FRAMES
    else:
        hard_cap = min(cap_frames, stream.declared + int(_LENGTH_SLACK_S * stream.rate))
        first = stream.declared
    resampler = (
        soxr.ResampleStream(stream.rate, SAMPLE_RATE, 1, dtype="float64", quality=SOXR_QUALITY)
        if stream.rate != SAMPLE_RATE
        else None
    )
    out = np.empty(_out_frames(min(hard_cap, first), stream.rate), dtype=np.float32)
    filled = 0
    tally = _Tally()

    def keep(canonical: np.ndarray) -> None:
        nonlocal out, filled
        if filled + canonical.shape[0] > out.shape[0]:
            grown = max(2 * out.shape[0], filled + canonical.shape[0])
            out = np.resize(
                out, max(filled + canonical.shape[0], min(_out_frames(hard_cap, stream.rate), grown))
            )
        out[filled : filled + canonical.shape[0]] = canonical
        filled += canonical.shape[0]

    try:
        while True:
            block = handle.read(_BLOCK_FRAMES, dtype="float64", always_2d=True)
            if block.shape[0] == 0:
                break
            if tally.frames + block.shape[0] > hard_cap:
                raise _overrun(stream, tally.frames + block.shape[0], size, max_seconds)
            tally.frames += block.shape[0]
            if not tally.finite:
                continue
            mono = block.mean(axis=1)
            if not np.all(np.isfinite(mono)):
                tally.finite = False
                continue
            tally.peak = max(tally.peak, float(np.max(np.abs(mono))))
            keep(mono if resampler is None else resampler.resample_chunk(mono))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudio(
            f"damaged {stream.source_format} stream ({exc}); send a valid {ACCEPTED_FORMATS} file"
        ) from exc
    if resampler is not None and tally.finite:
        keep(resampler.resample_chunk(np.empty(0, dtype=np.float64), last=True))
    return out[:filled], tally


def _check_decoded(tally: _Tally, stream: _Stream, min_seconds: float, max_seconds: float) -> None:
    """Refuse a decoded signal that is truncated, not finite, too short or long, out of range or silent."""
    filled, rate, declared = tally.frames, stream.rate, stream.declared
    if not stream.unknown_length:
        tolerance = max(_TRUNCATION_SLACK_S * rate, _TRUNCATION_SLACK_REL * declared)
        if filled < declared - tolerance:
            raise CorruptAudio(
                f"truncated {stream.source_format} stream: decoded {filled / rate:.2f} s of the declared "
                f"{declared / rate:.2f} s; send the complete file"
            )
    if not tally.finite:
        raise CorruptAudio("stream holds NaN or infinite samples; send finite PCM")
    duration = filled / rate
    if duration < min_seconds:
        raise TooShort(f"audio lasts {duration:.2f} s; at least {min_seconds:g} s are required")
    if duration > max_seconds:
        raise TooLong(f"audio lasts {duration:.1f} s; at most {max_seconds:g} s are accepted")
    peak = tally.peak
    if peak > MAX_PEAK:
        raise CorruptAudio(f"float samples reach {peak:.3g}; samples within +-{MAX_PEAK:g} are accepted")
    if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
        level = f"{20 * np.log10(peak):.1f} dBFS" if peak > 0 else "digital silence"
        raise SilentAudio(f"peak level is {level}; a signal above {SILENCE_PEAK_DBFS:g} dBFS is required")


def decode_bytes(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> CanonicalAudio:
    """Decode an encoded audio file held in memory to `CanonicalAudio`.

    Args:
        data: the file's bytes (WAV, FLAC, Ogg Vorbis, Opus or MP3).
        max_bytes: largest accepted file size in bytes.
        min_seconds: shortest accepted duration in seconds.
        max_seconds: longest accepted duration in seconds.

    Raises:
        TooLarge, UnsupportedFormat, CorruptAudio, DecompressionBomb, TooLong, TooShort, SilentAudio
        (all subclasses of `scoring.errors.AudioError`).
    """
    sniffed = _sniff_accepted(data, max_bytes)
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise CorruptAudio(
            f"cannot open the {sniffed} stream ({exc}); send a valid {ACCEPTED_FORMATS} file"
        ) from exc
    with handle:
        stream = _check_header(handle, data)
        _check_declared_size(stream, len(data), max_seconds)
        pcm, tally = _decode_canonical(handle, stream, len(data), max_seconds)
    _check_decoded(tally, stream, min_seconds, max_seconds)
    pcm = np.ascontiguousarray(pcm)
    return CanonicalAudio(
        pcm=pcm,
        sample_rate=SAMPLE_RATE,
        sha256=pcm_sha256(pcm),
        duration_s=pcm.shape[0] / SAMPLE_RATE,
        source_format=stream.source_format,
    )


def decode_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> CanonicalAudio:
    """Decode an audio file on disk; the size limit is checked with stat() before the file is read."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise AudioError(
            f"cannot read {p}: {exc.strerror}; pass an existing {ACCEPTED_FORMATS} file"
        ) from exc
    # A FIFO, socket or device would block the read (or never end): only regular files are decoded.
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{p} is not a regular file; pass a {ACCEPTED_FORMATS} file")
    size = st.st_size
    if size > max_bytes:
        raise TooLarge(f"{p} is {size} bytes; at most {max_bytes} bytes are accepted")
    with p.open("rb") as fh:
        # Only what stat() reported is allocated (read(max_bytes + 1) would reserve the whole limit); a file
        # that grew since is read on, up to one byte past the limit, so the size check still sees it.
        data = fh.read(size + 1)
        if len(data) > size:
            data += fh.read(max_bytes + 1 - len(data))
    return decode_bytes(data, max_bytes=max_bytes, min_seconds=min_seconds, max_seconds=max_seconds)
