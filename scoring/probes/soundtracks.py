"""Human-made game soundtracks shipped by Debian packages, and canonical PCM excerpts of them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring.decode import decode_bytes
from scoring.derivative import centred_cosine
from scoring.errors import AudioError
from scoring.probes.cache import ProbeCache, _cache
from scoring.probes.ffmpeg import decode_stereo, wav_bytes
from scoring.probes.probe import ProbeUnavailable


@dataclass(frozen=True)
class Soundtrack:
    """A human-made game music file shipped by a Debian package, with a rough genre label."""

    name: str
    package: str
    path: Path
    genre: str

    @property
    def lossless(self) -> bool:
        """True for a file whose decode is the music as made (tracker modules, FLAC, WAV); False for a lossy
        file (Ogg Vorbis, MP3), whose "original" has already been through a codec."""
        return self.path.suffix.lower() in LOSSLESS_SUFFIXES


LOSSLESS_SUFFIXES = frozenset({".it", ".mod", ".xm", ".s3m", ".flac", ".wav"})


def _st(name: str, package: str, path: str, genre: str) -> Soundtrack:
    return Soundtrack(name, package, Path(path), genre)


_DRAS = "/usr/share/scummvm/drascula/audio"
_HYPER = "/usr/share/hyperrogue/music"
_PINGUS = "/usr/share/games/pingus/data/music"
_LINC = "/usr/share/games/lincity-ng/music/default"
SOUNDTRACKS: tuple[Soundtrack, ...] = (
    _st("asc_frontiers", "asc-music", "/usr/share/games/asc/music/frontiers.mp3", "rock"),
    _st(
        "fb_mainzik_1p",
        "frozen-bubble-data",
        "/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg",
        "electronic",
    ),
    _st("hyper_caves", "hyperrogue-music", f"{_HYPER}/hr3-caves.ogg", "ambient"),
    _st("pingus_4", "pingus-data", f"{_PINGUS}/pingus-4.it", "chiptune"),
    _st("lincity_city_blues", "lincity-ng-data", f"{_LINC}/02 - Robert van Herk - City Blues.ogg", "blues"),
    _st("drascula_track1", "drascula-music", f"{_DRAS}/track1.ogg", "orchestral"),
    _st("asc_machine_wars", "asc-music", "/usr/share/games/asc/music/machine_wars.mp3", "rock"),
    _st("fb_introzik", "frozen-bubble-data", "/usr/share/games/frozen-bubble/snd/introzik.ogg", "electronic"),
    _st("hyper_graveyard", "hyperrogue-music", f"{_HYPER}/hr3-graveyard.ogg", "ambient"),
    _st("pingus_goin_march", "pingus-data", f"{_PINGUS}/goin_march.it", "chiptune"),
    _st("lincity_pronobozo", "lincity-ng-data", f"{_LINC}/01 - pronobozo - lincity.ogg", "electronic"),
    _st("drascula_track2", "drascula-music", f"{_DRAS}/track2.ogg", "orchestral"),
    _st("asc_time_to_strike", "asc-music", "/usr/share/games/asc/music/time_to_strike.mp3", "rock"),
    _st("hyper_laboratory", "hyperrogue-music", f"{_HYPER}/hr3-laboratory.ogg", "ambient"),
    _st("pingus_6", "pingus-data", f"{_PINGUS}/pingus-6.it", "chiptune"),
    _st(
        "lincity_architectural",
        "lincity-ng-data",
        f"{_LINC}/03 - Robert van Herk - Architectural Contemplations.ogg",
        "ambient",
    ),
    _st("hyper_hell", "hyperrogue-music", f"{_HYPER}/hr3-hell.ogg", "orchestral"),
    _st("pingus_3", "pingus-data", f"{_PINGUS}/pingus-3.it", "chiptune"),
)
"""Real soundtracks across genres (the order mixes genres; the benchmark takes the first n available).
Licences (each package's copyright file): asc-music GPL-2+, frozen-bubble-data GPL-2, hyperrogue-music
CC BY-SA / CC BY, pingus-data GPL-2, lincity-ng-data GPL-2 / CC BY-SA 2.0, drascula-music Drascula licence
(free redistribution, Debian main). Genre labels are rough: they say what the set spans, not ground truth."""

SOUNDTRACK_PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(s.package for s in SOUNDTRACKS))


def missing_soundtrack_packages() -> list[str]:
    """Debian packages of `SOUNDTRACKS` (and of the drascula set) none of whose files are installed here."""
    have = {s.package for s in SOUNDTRACKS if s.path.is_file()}
    if Path(_DRAS).is_dir():
        have.add("drascula-music")
    return [p for p in SOUNDTRACK_PACKAGES if p not in have]


def active_span(x: np.ndarray, rate: int, floor_db: float = -40.0, window_s: float = 0.5) -> tuple[int, int]:
    """(first, last) sample of the part of ``x`` (mono or [n, channels]) whose 0.5 s windows have an RMS
    within ``floor_db`` of the loudest window: some decoders pad tracker modules with minutes of silence."""
    mono = x.mean(axis=1) if x.ndim == 2 else x
    w = max(int(window_s * rate), 1)
    n = len(mono) // w
    if n == 0:
        return 0, 0
    rms = np.sqrt(np.mean(np.asarray(mono[: n * w], np.float64).reshape(n, w) ** 2, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (floor_db / 20.0)) if rms.max() > 0 else np.array([], int)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * w), int((loud[-1] + 1) * w)


def soundtrack_excerpt(
    track: Soundtrack,
    seconds: float,
    *,
    start_fraction: float = 0.25,
    min_seconds: float = 20.0,
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Canonical PCM of an excerpt of a soundtrack file (cached).

    ffmpeg decodes the file (tracker modules through libopenmpt) to 44.1 kHz stereo; leading and trailing
    silence is dropped (`active_span`); the excerpt is written as a 16-bit WAV, which
    `scoring.decode.decode_bytes` turns into canonical PCM, the path every upload takes.

    Args:
        track: the file.
        seconds: excerpt length in seconds (the whole active part when shorter).
        start_fraction: where the excerpt starts, as a fraction of the active part (skips intros), moved
            earlier when the excerpt would run past the end.
        min_seconds: files whose active part is shorter than this are refused (jingles, not pieces).

    Raises:
        ProbeUnavailable: the package is not installed, the file is too short, near-silent (peak under
            -40 dBFS) or cannot be decoded.
    """
    if not track.path.is_file():
        raise ProbeUnavailable(f"{track.name}: {track.path} missing (install Debian package {track.package})")
    recipe: dict[str, object] = {"path": str(track.path), "seconds": seconds, "start": start_fraction}

    def make() -> np.ndarray:
        stereo = decode_stereo(track.path)
        if float(np.max(np.abs(stereo))) < 0.01:
            raise ProbeUnavailable(f"{track.name} decodes near-silent here (peak under -40 dBFS)")
        a, b = active_span(stereo, 44100)
        if (b - a) / 44100 < min_seconds:
            raise ProbeUnavailable(
                f"{track.name} has {(b - a) / 44100:.1f} s of sound, under {min_seconds} s"
            )
        n = min(int(round(seconds * 44100)), b - a)
        start = a + max(0, min(int((b - a) * start_fraction), b - a - n))
        try:
            return decode_bytes(wav_bytes(stereo[start : start + n], 44100)).pcm
        except AudioError as exc:
            raise ProbeUnavailable(f"{track.name}: the excerpt was refused by the decoder: {exc}") from exc

    return _cache(cache).get("soundtrack", f"{track.name}.{seconds:g}s", recipe, make)


SAME_RECORDING = 0.4
"""`recording_similarity` at or above which two files are one recording (a remix or another master of it),
not two pieces. The Drascula soundtrack's track30 reads 0.67 against its track1; the other 464 pairs of
the package's files read 0.07 at most (docs/scoring.md, "Model 8")."""
_SEGMENT_S = 10.0
_FRAME_S = 0.0929


def _spectrogram(x: np.ndarray, rate: int) -> np.ndarray:
    """Audio (mono or [n, channels], mixed to mono) -> [frames, 256] log magnitudes below ~2.8 kHz, ~93 ms
    frames every `_hop` samples."""
    mono = np.asarray(x, np.float64)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    n = int(round(_FRAME_S * rate))
    if len(mono) < n:
        return np.zeros((0, 256))
    frames = np.lib.stride_tricks.sliding_window_view(mono, n)[:: _hop(rate)] * np.hanning(n)
    bins = int(round(2756.25 * n / rate))
    mags = np.abs(np.fft.rfft(frames, axis=1))[:, :bins]
    # fold to 256 bands whatever the rate, so two rates compare alike
    edges = np.linspace(0, bins, 257).astype(int)
    return np.log1p(10.0 * np.add.reduceat(mags, edges[:-1], axis=1))


def _hop(rate: int) -> int:
    return int(round(_FRAME_S * rate)) // 2


def _segment_correlation(sa: np.ndarray, sb: np.ndarray, rate: int) -> float:
    """Median over consecutive `_SEGMENT_S` segments of two spectrograms' `centred_cosine` (each band's
    mean over the segment removed: a shared instrumentation or mix is no evidence, only events at the same
    moments are); segments where either never changes are left out."""
    seg = int(_SEGMENT_S * rate / _hop(rate))
    m = min(len(sa), len(sb))
    found = (centred_cosine(sa[i : i + seg], sb[i : i + seg]) for i in range(0, m - seg + 1, seg))
    values = [v for v in found if v is not None]
    return float(np.median(values)) if values else 0.0


def recording_similarity(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    """How alike two recordings (mono or [n, channels]) move in step from their first sample: the median,
    over consecutive 10 s segments of their common length, of the correlation of their log-magnitude
    spectrograms with each band's segment mean removed (so a shared instrumentation counts for nothing;
    notes and attacks at the same moments do). The same recording remixed reads high; two pieces, even of
    one game and one composer, read near 0 (docs/scoring.md). 0.0 when they share no whole segment."""
    return _segment_correlation(_spectrogram(a, rate), _spectrogram(b, rate), rate)


def distinct_recordings(
    tracks: Iterable[Soundtrack], cache: ProbeCache | str | Path | None = None
) -> Iterator[Soundtrack]:
    """``tracks``, lazily, less each one whose `recording_similarity` with a track kept before it reaches
    `SAME_RECORDING` (it is that recording again). Pair values are cached as JSON in
    ``drascula_recordings.json``, so only a new pair decodes audio."""
    index_path = _cache(cache).root / "drascula_recordings.json"
    index: dict[str, float] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    spectra: dict[Path, np.ndarray] = {}

    def spectrum(t: Soundtrack) -> np.ndarray:
        if t.path not in spectra:
            try:
                spectra[t.path] = _spectrogram(decode_stereo(t.path), 44100)
            except ProbeUnavailable:  # nothing to compare: the excerpt maker reports the file itself
                spectra[t.path] = np.zeros((0, 256))
        return spectra[t.path]

    kept: list[Soundtrack] = []
    for t in tracks:
        keys = [(k, f"{k.path.name}|{t.path.name}") for k in kept]
        missing = [(k, key) for k, key in keys if key not in index]
        for k, key in missing:
            index[key] = round(_segment_correlation(spectrum(k), spectrum(t), 44100), 4)
        if missing:
            index_path.parent.mkdir(parents=True, exist_ok=True)
            index_path.write_text(json.dumps(index, sort_keys=True))
        if all(index[key] < SAME_RECORDING for _, key in keys):
            kept.append(t)
            yield t


def drascula_tracks() -> list[Soundtrack]:
    """Every piece of the Drascula soundtrack installed here (one game, one composer: a same-style set), in
    track order."""
    folder = Path(_DRAS)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("track*.ogg"), key=lambda p: int(p.stem.removeprefix("track") or 0))
    return [_st(f"drascula_{p.stem}", "drascula-music", str(p), "orchestral") for p in files]
