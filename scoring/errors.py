"""Typed errors of the scoring engine: every rejected input says what is wrong and what is accepted."""

from __future__ import annotations

ACCEPTED_FORMATS = "WAV, FLAC, Ogg Vorbis, Opus or MP3"


class ScoringError(Exception):
    """Base class of every error raised by `scoring`."""


class AudioError(ScoringError):
    """The audio input cannot be turned into canonical PCM; the message says why and what is accepted."""


class UnsupportedFormat(AudioError):
    """The bytes are not one of the accepted containers/codecs."""


class CorruptAudio(AudioError):
    """The container is recognised but the stream is truncated, damaged or holds non-finite samples."""


class TooShort(AudioError):
    """The decoded audio is shorter than the minimum duration."""


class TooLong(AudioError):
    """The declared or decoded audio is longer than the maximum duration."""


class TooLarge(AudioError):
    """The encoded file is bigger than the maximum number of bytes."""


class SilentAudio(AudioError):
    """The decoded audio holds no signal above the silence threshold."""


class DecompressionBomb(AudioError):
    """A small file declares or decodes to far more samples than the limits allow."""


class DecodedTooLarge(DecompressionBomb):
    """The declared decoded size (channels x sample rate x seconds) is over the decoder's limit."""


class FeatureError(ScoringError):
    """Input to `scoring.features.extract_features` is not usable PCM (shape, dtype, NaN, length, rate)."""


class CatalogError(ScoringError):
    """The catalogue folder is missing, damaged, or an entry does not fit (wrong shape, duplicate id)."""
