"""Validity probe sets for the scoring benchmark: labelled real, degenerate, degraded and derivative audio.

Every probe is canonical PCM (mono float32 at `SAMPLE_RATE`, 22,050 Hz) with a label, built deterministically:
- real: music21 corpus scores rendered through FluidSynth on several General MIDI programs and SoundFonts, and
  excerpts of human-made game soundtracks that Debian ships (`SOUNDTRACKS`);
- degenerate: loops, shuffled slices, random notes on a scale grid, tones, noise;
- quality ladders: MP3 bitrates, noise floor, hard clipping, bit depth, tanh distortion, low-pass, and
  -6 dB copies;
- derivatives of a source piece (other instrument / SoundFont, transposition, tempo, excerpt, MP3, gain) and
  same-style negatives (distinct Bach chorales, folk reels and jigs, distinct pieces of one game soundtrack).
The slow steps (FluidSynth renders, soundtrack decodes, MP3 round trips, Rubber Band stretches) are cached
as ``.npy`` files under a cache folder (default ``.ami/probes``), keyed by a hash of the recipe and
`PROBES_VERSION`; numpy transforms of cached audio are recomputed, which is cheaper than reading them. Also
the two rank metrics the benchmark reports: `auc_mann_whitney` and `spearman_rho`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from scoring._rate import SAMPLE_RATE
from scoring.corpus import RenderError, SamplePiece, render_midi, render_piece
from scoring.decode import decode_bytes, decode_file
from scoring.errors import AudioError, ScoringError
from scoring.testsignals import midi_to_hz, sine, tone, white_noise

PROBES_VERSION = "ami-probes/1"
SR = SAMPLE_RATE
DEFAULT_CACHE = Path(".ami/probes")

# General MIDI programs (0-based) the probes are played with.
PIANO = 0
VIBES = 11
ORGAN = 19
GUITAR = 24
VIOLIN = 40
VIOLA = 41
CELLO = 42
STRINGS = 48
CHOIR = 52
CLARINET = 71
FLUTE = 73
INSTRUMENTS: dict[str, int] = {
    "piano": PIANO,
    "organ": ORGAN,
    "guitar": GUITAR,
    "strings": STRINGS,
    "choir": CHOIR,
    "flute": FLUTE,
    "violin": VIOLIN,
    "vibes": VIBES,
    "clarinet": CLARINET,
}
_QUARTET = (VIOLIN, VIOLIN, VIOLA, CELLO)

SOUNDFONTS: dict[str, tuple[Path, ...]] = {
    "fluid": (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/soundfonts/FluidR3_GM.sf2")),
    "timgm": (Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),),
    "musescore": (
        Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"),
        Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
    ),
}
"""Named General MIDI SoundFonts (Debian fluid-soundfont-gm, timgm6mb-soundfont,
musescore-general-soundfont-small); the first existing path of each is used."""

_FADE = 64  # samples (~3 ms) of raised-cosine fade at every cut, so cuts do not add clicks of their own


class ProbeUnavailable(ScoringError):
    """A probe's source (SoundFont, soundtrack package, corpus piece) is missing or could not be rendered."""


@dataclass(frozen=True)
class Probe:
    """One labelled probe.

    Attributes:
        name: unique id, e.g. ``"real/bach_bwv66_6@organ.fluid"``.
        group: ``"real"``, ``"degenerate"``, ``"ladder"``, ``"derivative"`` or ``"negative"``.
        label: class within the group: a degenerate class (``"loops"``...), a ladder name (``"mp3"``...), a
            variant class (``"transpose"``...), a style (``"bach_chorale"``...).
        pcm: mono float32 samples at `SR`, shape [n].
        source: name of the probe it was made from (ladders, derivatives, loops, shuffles), else None.
        step: position in a ladder (0 = the original), 0 otherwise.
        meta: recipe details (instrument, SoundFont, semitones, tempo factor, slice order...).
    """

    name: str
    group: str
    label: str
    pcm: np.ndarray
    source: str | None = None
    step: int = 0
    meta: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.pcm) / SR


# --------------------------------------------------------------------------------------------- metrics


def auc_mann_whitney(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve that ``positives`` score above ``negatives``, by the Mann-Whitney U statistic.

    ``AUC = U / (n_pos * n_neg)`` with ``U = sum over pairs [p > n] + 0.5 [p == n]``: the probability that a
    random positive outscores a random negative, ties counted half. 1.0 = perfect separation, 0.5 = chance.

    Raises:
        ValueError: either set is empty.
    """
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUC needs at least one positive and one negative score")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1, dtype=np.float64)
    # Tied values share the mean of the ranks they occupy.
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: the Pearson correlation of the average ranks (ties share their mean rank).

    ``rho = cov(R(x), R(y)) / (sd(R(x)) sd(R(y)))``; without ties this is ``1 - 6 sum d_i^2 / (n (n^2 - 1))``.
    Returns NaN when either side is constant (no ranking to correlate).

    Raises:
        ValueError: lengths differ or fewer than 2 points.
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size or a.size < 2:
        raise ValueError(f"Spearman rho needs two equal-length series of >= 2 points, got {a.size}, {b.size}")
    ra, rb = _average_ranks(a) - (a.size + 1) / 2.0, _average_ranks(b) - (b.size + 1) / 2.0
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if denom == 0.0:
        return float("nan")
    return float((ra * rb).sum() / denom)


# --------------------------------------------------------------------------------------------- cache


class ProbeCache:
    """``.npy`` files of float32 PCM under ``root``, one per recipe (a JSON-able dict), written atomically."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else DEFAULT_CACHE

    def path(self, kind: str, name: str, recipe: dict[str, object]) -> Path:
        """Where the PCM for ``recipe`` lives: ``root/kind/name-<hash of version and recipe>.npy``."""
        blob = json.dumps({"v": PROBES_VERSION, **recipe}, sort_keys=True, default=str).encode()
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
        return self.root / kind / f"{safe}-{hashlib.sha256(blob).hexdigest()[:12]}.npy"

    def get(
        self, kind: str, name: str, recipe: dict[str, object], make: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The cached PCM for ``recipe``, made by ``make()`` and stored on a miss."""
        path = self.path(kind, name, recipe)
        if path.is_file():
            return np.load(path).astype(np.float32, copy=False)
        pcm = np.ascontiguousarray(make(), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, pcm)
        os.replace(tmp, path)
        return pcm


def _cache(cache: ProbeCache | str | Path | None) -> ProbeCache:
    return cache if isinstance(cache, ProbeCache) else ProbeCache(cache)


def _attempt(make: Callable[[], np.ndarray], skipped: list[str] | None) -> np.ndarray | None:
    """``make()``, or None when its probe is unavailable (the reason is appended to ``skipped``)."""
    try:
        return make()
    except ProbeUnavailable as exc:
        if skipped is not None:
            skipped.append(str(exc))
        return None


# --------------------------------------------------------------------------------------------- sources


def soundfont_path(name: str) -> Path:
    """The installed file of SoundFont ``name`` (a key of `SOUNDFONTS`).

    Raises:
        ProbeUnavailable: unknown name, or none of its paths exists (says which Debian package to install).
    """
    if name not in SOUNDFONTS:
        raise ProbeUnavailable(f"unknown SoundFont {name!r}; known: {', '.join(SOUNDFONTS)}")
    for path in SOUNDFONTS[name]:
        if path.is_file():
            return path
    raise ProbeUnavailable(f"SoundFont {name!r} is not installed (looked for {SOUNDFONTS[name][0]})")


SOUNDFONT_PACKAGES: dict[str, str] = {
    "fluid": "fluid-soundfont-gm",
    "timgm": "timgm6mb-soundfont",
    "musescore": "musescore-general-soundfont-small",
}
"""The Debian package that ships each of `SOUNDFONTS`."""


def missing_soundfont_packages() -> list[str]:
    """Debian packages of `SOUNDFONTS` that are not installed here (their renders are left out)."""
    return [SOUNDFONT_PACKAGES[n] for n, paths in SOUNDFONTS.items() if not any(p.is_file() for p in paths)]


def available_soundfonts() -> list[str]:
    """Names of the `SOUNDFONTS` installed here, in `SOUNDFONTS` order."""
    return [n for n, paths in SOUNDFONTS.items() if any(p.is_file() for p in paths)]


@dataclass(frozen=True)
class CorpusWork:
    """A music21 corpus score to render: id, style label, corpus path, tune number, own GM programs, tempo."""

    name: str
    style: str
    corpus_path: str
    number: int | None
    programs: tuple[int, ...]
    qpm: float
    beats_per_bar: int = 4


REAL_WORKS: tuple[CorpusWork, ...] = (
    CorpusWork("bach_bwv66_6", "bach_chorale", "bach/bwv66.6", None, (ORGAN,), 80),
    CorpusWork("haydn_op74no1_m1", "string_quartet", "haydn/opus74no1/movement1", None, _QUARTET, 120),
    CorpusWork("joplin_maple_leaf", "ragtime_piano", "joplin/maple_leaf_rag", None, (PIANO,), 90, 2),
    CorpusWork("palestrina_agnus_01", "renaissance_mass", "palestrina/Agnus_01", None, (CHOIR,), 90),
    CorpusWork("ryans_you_bet_reel", "folk_reel", "ryansMammoth/YouBetReel", None, (VIOLIN,), 110, 2),
    CorpusWork("mozart_k156_m1", "string_quartet", "mozart/k156/movement1", None, _QUARTET, 120),
    CorpusWork("essen_altdeu10_1", "folk_song", "essenFolksong/altdeu10", 1, (FLUTE,), 110),
    CorpusWork(
        "beethoven_op18no1_m1", "string_quartet", "beethoven/opus18no1/movement1", None, _QUARTET, 120, 3
    ),
    CorpusWork("bach_bwv7_7", "bach_chorale", "bach/bwv7.7", None, (ORGAN,), 80),
    CorpusWork("monteverdi_3_1", "madrigal", "monteverdi/madrigal.3.1", None, (CHOIR,), 90),
    CorpusWork(
        "schumann_op41no1_m1", "string_quartet", "schumann_robert/opus41no1/movement1", None, _QUARTET, 110
    ),
    CorpusWork(
        "ryans_yellow_stockings_jig", "folk_jig", "ryansMammoth/YellowStockingsJig", None, (FLUTE,), 100, 2
    ),
)
"""Corpus works of several styles; the benchmark takes the first n (the order mixes styles)."""


def _work(name_or_work: str | CorpusWork) -> CorpusWork:
    if isinstance(name_or_work, CorpusWork):
        return name_or_work
    for work in REAL_WORKS:
        if work.name == name_or_work:
            return work
    raise ProbeUnavailable(
        f"unknown corpus work {name_or_work!r}; known: {', '.join(w.name for w in REAL_WORKS)}"
    )


def _tile_to(pcm: np.ndarray, min_seconds: float) -> np.ndarray:
    """A short tune played again until it lasts ``min_seconds`` (folk tunes are a few bars long)."""
    n = int(round(min_seconds * SR))
    if len(pcm) >= n:
        return pcm
    reps = -(-n // len(pcm))
    return np.concatenate([pcm] * reps)


def render_work(
    work: str | CorpusWork,
    seconds: float,
    *,
    program: int | None = None,
    soundfont: str = "fluid",
    transpose: int = 0,
    tempo: float = 1.0,
    min_seconds: float = 20.0,
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Canonical PCM of a corpus work rendered through FluidSynth (cached).

    Args:
        work: a `CorpusWork` or the name of one in `REAL_WORKS`.
        seconds: audio kept from the start of the piece, in seconds (at the scaled tempo).
        program: GM program for every part (None: the work's own programs).
        soundfont: key of `SOUNDFONTS`.
        transpose: semitones, applied to the score before rendering.
        tempo: factor on the work's quarter notes per minute (re-rendered, not resampled).
        min_seconds: a piece shorter than this is played again until it is this long.
        cache: cache folder or `ProbeCache` (None: `DEFAULT_CACHE`).

    Returns:
        float32 mono at `SR`, shape [n], peak -1 dBFS before resampling.

    Raises:
        ProbeUnavailable: SoundFont not installed, or the piece failed to render.
    """
    w = _work(work)
    font = soundfont_path(soundfont)
    recipe: dict[str, object] = {
        "work": [w.corpus_path, w.number, list(w.programs), w.qpm],
        "seconds": seconds,
        "program": program,
        "soundfont": font.name,
        "transpose": transpose,
        "tempo": tempo,
        "min_seconds": min_seconds,
    }

    def make() -> np.ndarray:
        piece = SamplePiece(w.name, w.style, w.corpus_path, w.number, w.programs, w.qpm)
        with tempfile.TemporaryDirectory(prefix="ami-probe-") as tmp:
            try:
                wav = render_piece(
                    piece,
                    Path(tmp) / "r.wav",
                    seconds,
                    program,
                    transpose=transpose,
                    tempo_scale=tempo,
                    soundfont=font,
                )
            except RenderError as exc:
                raise ProbeUnavailable(f"could not render {w.name}: {exc}") from exc
            except Exception as exc:  # music21 raises many kinds on odd scores; a probe is skipped, not fatal
                raise ProbeUnavailable(f"could not render {w.name}: {type(exc).__name__}: {exc}") from exc
            pcm = decode_file(wav).pcm
        return _tile_to(pcm, min_seconds)[: int(round(seconds * SR))]

    tag = f"{w.name}@{program}.{soundfont}.t{transpose}.x{tempo}"
    return _cache(cache).get("render", tag, recipe, make)


def render_notes(
    notes: Sequence[tuple[tuple[int, ...], float]],
    qpm: float,
    program: int,
    seconds: float,
    *,
    soundfont: str = "fluid",
    name: str = "notes",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Canonical PCM of a note list rendered through FluidSynth (cached).

    Args:
        notes: (MIDI pitches sounding together, duration in quarter notes) in order; an empty tuple is a rest.
        qpm: tempo in quarter notes per minute.
        program: GM program (0..127).
        seconds: audio length kept, in seconds.
        soundfont: key of `SOUNDFONTS`.
        name: file name stem in the cache.
        cache: cache folder or `ProbeCache`.
    """
    font = soundfont_path(soundfont)
    recipe: dict[str, object] = {
        "notes": [[list(p), d] for p, d in notes],
        "qpm": qpm,
        "program": program,
        "seconds": seconds,
        "soundfont": font.name,
    }

    def make() -> np.ndarray:
        # music21 is slow to import; only rendering needs it.
        from music21 import chord, instrument, note, stream, tempo

        part = stream.Part()
        inst = instrument.Instrument()
        inst.midiProgram = program
        part.insert(0, inst)
        part.insert(0, tempo.MetronomeMark(number=qpm))
        for pitches, dur in notes:
            if not pitches:
                part.append(note.Rest(quarterLength=dur))
            elif len(pitches) == 1:
                part.append(note.Note(pitches[0], quarterLength=dur))
            else:
                part.append(chord.Chord(list(pitches), quarterLength=dur))
        with tempfile.TemporaryDirectory(prefix="ami-probe-") as tmp:
            midi = Path(tmp) / "n.mid"
            stream.Score([part]).write("midi", fp=str(midi))
            try:
                wav = render_midi(midi, Path(tmp) / "n.wav", seconds, soundfont=font)
            except RenderError as exc:
                raise ProbeUnavailable(f"could not render {name}: {exc}") from exc
            return decode_file(wav).pcm[: int(round(seconds * SR))]

    return _cache(cache).get("notes", name, recipe, make)


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


def _ffmpeg_decode(path: Path) -> np.ndarray:
    """The whole file as 44.1 kHz stereo float32 [n, 2] (ffmpeg; tracker modules through libopenmpt)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProbeUnavailable("ffmpeg not found on PATH (install Debian package ffmpeg)")
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-ac", "2", "-ar", "44100", "-f", "s16le", "-"],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0 or len(out.stdout) < 4 * 44100:
        raise ProbeUnavailable(f"ffmpeg could not decode {path}: {out.stderr.decode(errors='replace')[:200]}")
    return np.frombuffer(out.stdout, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0


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
        stereo = _ffmpeg_decode(track.path)
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
            return decode_bytes(_wav_bytes(stereo[start : start + n], 44100)).pcm
        except AudioError as exc:
            raise ProbeUnavailable(f"{track.name}: the excerpt was refused by the decoder: {exc}") from exc

    return _cache(cache).get("soundtrack", f"{track.name}.{seconds:g}s", recipe, make)


def drascula_tracks() -> list[Soundtrack]:
    """Every piece of the Drascula soundtrack installed here (one game, one composer: a same-style set)."""
    folder = Path(_DRAS)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("track*.ogg"), key=lambda p: int(p.stem.removeprefix("track") or 0))
    return [_st(f"drascula_{p.stem}", "drascula-music", str(p), "orchestral") for p in files]


# --------------------------------------------------------------------------------------------- real


def real_probes(
    n_works: int = 4,
    n_soundtracks: int = 4,
    *,
    seconds: float = 30.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """Real music: the first ``n_works`` of `REAL_WORKS` and the first ``n_soundtracks`` soundtracks here.

    Each corpus work is rendered once on its own programs; works cycle through the installed SoundFonts and
    every other work is also rendered on piano, so several instruments and SoundFonts take part. Labels are
    the work's style or the soundtrack's genre; ``meta["kind"]`` is ``"corpus"`` or ``"soundtrack"``.

    Args:
        skipped: when given, the reason each unavailable probe was left out is appended to it.
    """
    fonts = available_soundfonts() or ["fluid"]
    out: list[Probe] = []
    for i, work in enumerate(REAL_WORKS[:n_works]):
        font = fonts[i % len(fonts)]
        takes: list[tuple[int | None, str]] = [(None, font)]
        if i % 2 == 1:
            takes.append((PIANO, fonts[(i + 1) % len(fonts)]))
        for program, sfont in takes:
            inst = "own" if program is None else "piano"
            pcm = _attempt(
                partial(render_work, work, seconds, program=program, soundfont=sfont, cache=cache), skipped
            )
            if pcm is None:
                continue
            meta: dict[str, object] = {
                "kind": "corpus",
                "instrument": inst,
                "soundfont": sfont,
                "lossless": True,
            }
            out.append(Probe(f"real/{work.name}@{inst}.{sfont}", "real", work.style, pcm, meta=meta))
    taken = 0
    for track in SOUNDTRACKS:
        if taken >= n_soundtracks:
            break
        pcm = _attempt(partial(soundtrack_excerpt, track, seconds, cache=cache), skipped)
        if pcm is None:
            continue
        meta = {"kind": "soundtrack", "package": track.package, "lossless": track.lossless}
        out.append(Probe(f"real/{track.name}", "real", track.genre, pcm, meta=meta))
        taken += 1
    return out


# --------------------------------------------------------------------------------------------- degenerate


def _fade(pcm: np.ndarray, n: int = _FADE) -> np.ndarray:
    out = np.array(pcm, dtype=np.float32, copy=True)
    n = min(n, len(out) // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float64))).astype(np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def loop_audio(pcm: np.ndarray, start_s: float, loop_s: float, seconds: float) -> np.ndarray:
    """``pcm[start_s : start_s + loop_s]`` repeated back to back for ``seconds`` (edges faded by 3 ms)."""
    a = int(round(start_s * SR))
    n = int(round(loop_s * SR))
    if n <= 2 * _FADE or a + n > len(pcm):
        raise ValueError(f"loop {start_s}+{loop_s} s does not fit a {len(pcm) / SR:.1f} s source")
    unit = _fade(pcm[a : a + n])
    total = int(round(seconds * SR))
    return np.tile(unit, -(-total // n))[:total]


def shuffle_slices(
    pcm: np.ndarray, slice_s: float | tuple[float, float], seed: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The source cut into slices that are then put back in a random order.

    Args:
        pcm: source samples.
        slice_s: a fixed slice length in seconds (e.g. one beat), or (low, high) for random lengths.
        seed: RNG seed.

    Returns:
        (shuffled samples, the (start, end) sample ranges of the source in their new order). Every slice is
        faded in and out over 3 ms; the shuffled signal has the source's length (the tail shorter than a
        slice is dropped).
    """
    rng = np.random.default_rng(seed)
    bounds: list[tuple[int, int]] = []
    pos = 0
    while True:
        length = slice_s if isinstance(slice_s, (int, float)) else float(rng.uniform(slice_s[0], slice_s[1]))
        n = max(int(round(length * SR)), 4 * _FADE)
        if pos + n > len(pcm):
            break
        bounds.append((pos, pos + n))
        pos += n
    order = rng.permutation(len(bounds))
    new = [bounds[i] for i in order]
    return np.concatenate([_fade(pcm[a:b]) for a, b in new]), new


def random_notes(
    seconds: float,
    program: int,
    seed: int,
    *,
    qpm: float = 110.0,
    soundfont: str = "fluid",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Random pitches on a C-major scale grid (two octaves from C4), random eighth/quarter/half durations,
    one in six notes doubled a third below, rendered on GM ``program``: notes with no musical intent."""
    rng = np.random.default_rng(seed)
    scale = [60 + s for s in (0, 2, 4, 5, 7, 9, 11)] + [72 + s for s in (0, 2, 4, 5, 7, 9, 11, 12)]
    notes: list[tuple[tuple[int, ...], float]] = []
    total_q = seconds * qpm / 60.0 + 4.0
    t = 0.0
    while t < total_q:
        i = int(rng.integers(len(scale)))
        dur = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        pitches = (scale[i], scale[max(i - 2, 0)]) if rng.random() < 1 / 6 else (scale[i],)
        notes.append((pitches, dur))
        t += dur
    return render_notes(
        notes, qpm, program, seconds, soundfont=soundfont, name=f"random.{program}.{seed}", cache=cache
    )


def two_chord_loop(
    seconds: float,
    program: int,
    *,
    chords: tuple[tuple[int, ...], ...] = ((48, 60, 64, 67), (43, 59, 62, 67)),
    qpm: float = 100.0,
    soundfont: str = "fluid",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """Two chords (default C major, G major), one bar of four beats each, repeated for ``seconds``."""
    bars = int(math.ceil(seconds * qpm / 60.0 / 4.0)) + 1
    notes = [(chords[b % len(chords)], 4.0) for b in range(bars)]
    return render_notes(
        notes, qpm, program, seconds, soundfont=soundfont, name=f"loop2.{program}", cache=cache
    )


def _pink_like(seconds: float, exponent: float, seed: int) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), shaped in the frequency domain."""
    n = int(round(seconds * SR))
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / np.max(np.abs(x)) * 10 ** (-1.0 / 20.0)


def tone_probes(seconds: float = 30.0) -> list[Probe]:
    """Tones: a 440 Hz sine, a logarithmic 100 Hz..5 kHz sweep, a held C-major chord (harmonic tones), and a
    held A-minor chord with slow tremolo. Peak -1 dBFS."""
    t = np.arange(int(round(seconds * SR))) / SR
    peak = 10 ** (-1.0 / 20.0)
    items = {
        "sine440": sine(440.0, seconds),
        "sweep": signal.chirp(t, 100.0, seconds, 5000.0, method="logarithmic"),
        "chord_cmaj": tone((60.0, 64.0, 67.0), seconds, n_harmonics=6),
        "chord_amin_tremolo": tone((57.0, 60.0, 64.0), seconds, n_harmonics=6)
        * (1 + 0.3 * np.sin(2 * np.pi * 4 * t)),
    }
    out = []
    for name, x in items.items():
        pcm = (np.asarray(x) / np.max(np.abs(x)) * peak).astype(np.float32)
        out.append(Probe(f"degenerate/tones/{name}", "degenerate", "tones", pcm, meta={"signal": name}))
    return out


def noise_probes(seconds: float = 30.0, seed: int = 7) -> list[Probe]:
    """White, pink (1/f) and brown (1/f^2) noise, plus white noise at a lower level. Peak -1 dBFS."""
    out = []
    for name, expo in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        pcm = _pink_like(seconds, expo, seed).astype(np.float32)
        out.append(Probe(f"degenerate/noise/{name}", "degenerate", "noise", pcm, meta={"exponent": expo}))
    quiet = white_noise(seconds, amp=0.05, seed=seed + 1).astype(np.float32)
    out.append(Probe("degenerate/noise/white_quiet", "degenerate", "noise", quiet, meta={"exponent": 0.0}))
    return out


def degenerate_probes(
    n: int = 4,
    *,
    seconds: float = 60.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """``n`` probes of each degenerate class (labels "loops", "shuffles", "random_notes", "tones", "noise").

    - loops: alternately a 2-chord loop rendered on a GM instrument, and 1, 2 or 4 bars of a real render
      (`REAL_WORKS`) repeated; ``seconds`` long;
    - shuffles: a real piece (render or soundtrack) cut into beat-length slices (renders) or random 0.25-1 s
      slices (soundtracks), randomly permuted;
    - random_notes: `random_notes` on piano, organ, strings, flute...;
    - tones, noise: `tone_probes`, `noise_probes` (at most 4 of each exist; ``n`` caps them).
    """
    out: list[Probe] = []
    programs = [PIANO, ORGAN, STRINGS, FLUTE, GUITAR, VIBES, CLARINET, CHOIR]

    def note_skip(exc: Exception) -> None:
        if skipped is not None:
            skipped.append(str(exc))

    loops: list[Probe] = []
    for i in range(n):
        try:
            if i % 2 == 0:
                prog = programs[(i // 2) % len(programs)]
                pcm = two_chord_loop(seconds, prog, cache=cache)
                loops.append(
                    Probe(
                        f"degenerate/loops/2chord.{prog}",
                        "degenerate",
                        "loops",
                        pcm,
                        meta={"kind": "2-chord", "program": prog},
                    )
                )
            else:
                work = REAL_WORKS[(i // 2) % len(REAL_WORKS)]
                src = render_work(work, 30.0, cache=cache)
                bars = (1, 2, 4)[(i // 2) % 3]
                bar_s = work.beats_per_bar * 60.0 / work.qpm
                pcm = loop_audio(src, 2 * bar_s, bars * bar_s, seconds)
                loops.append(
                    Probe(
                        f"degenerate/loops/{work.name}.{bars}bar",
                        "degenerate",
                        "loops",
                        pcm,
                        source=f"real/{work.name}",
                        meta={"kind": "bars", "bars": bars},
                    )
                )
        except ProbeUnavailable as exc:
            note_skip(exc)
    out += loops
    for i in range(n):
        try:
            if i % 2 == 0:
                work = REAL_WORKS[(i // 2) % len(REAL_WORKS)]
                src = render_work(work, seconds, cache=cache)
                pcm, order = shuffle_slices(src, 60.0 / work.qpm, seed=100 + i)
                src_name = f"real/{work.name}"
            else:
                track = SOUNDTRACKS[(i // 2) % len(SOUNDTRACKS)]
                src = soundtrack_excerpt(track, seconds, cache=cache)
                pcm, order = shuffle_slices(src, (0.25, 1.0), seed=100 + i)
                src_name = f"real/{track.name}"
            out.append(
                Probe(
                    f"degenerate/shuffles/{src_name.split('/')[1]}.{i}",
                    "degenerate",
                    "shuffles",
                    pcm,
                    source=src_name,
                    meta={"slices": len(order)},
                )
            )
        except ProbeUnavailable as exc:
            note_skip(exc)
    for i in range(n):
        prog = programs[i % len(programs)]
        notes = _attempt(partial(random_notes, seconds, prog, seed=200 + i, cache=cache), skipped)
        if notes is None:
            continue
        out.append(
            Probe(
                f"degenerate/random_notes/{prog}.{i}",
                "degenerate",
                "random_notes",
                notes,
                meta={"program": prog, "seed": 200 + i},
            )
        )
    out += tone_probes(seconds)[:n]
    out += noise_probes(seconds)[:n]
    return out


# --------------------------------------------------------------------------------------------- ladders


def _wav_bytes(pcm: np.ndarray, rate: int = SR) -> bytes:
    with io.BytesIO() as buf:
        sf.write(buf, np.asarray(pcm, dtype=np.float32), rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()


def encode_mp3(pcm: np.ndarray, kbps: int) -> bytes:
    """MP3 bytes (ffmpeg libmp3lame, CBR ``kbps``) of canonical PCM, sent as 44.1 kHz stereo as a creator's
    upload would be (resampled with soxr, the channel duplicated)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProbeUnavailable("ffmpeg not found on PATH (install Debian package ffmpeg)")
    up = soxr.resample(np.asarray(pcm, dtype=np.float32), SR, 44100, quality="HQ")
    stereo = np.repeat(np.clip(up, -1.0, 1.0)[:, None], 2, axis=1)
    out = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "wav",
            "-i",
            "-",
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{kbps}k",
            "-f",
            "mp3",
            "-",
        ],
        input=_wav_bytes(stereo, 44100),
        capture_output=True,
        check=False,
    )
    if out.returncode != 0 or not out.stdout:
        raise ProbeUnavailable(f"ffmpeg/libmp3lame failed: {out.stderr.decode(errors='replace')[:200]}")
    return out.stdout


def mp3_roundtrip(
    pcm: np.ndarray, kbps: int, *, name: str = "pcm", cache: ProbeCache | str | Path | None = None
) -> np.ndarray:
    """Canonical PCM of `encode_mp3` decoded through `scoring.decode.decode_bytes` (cached by PCM hash)."""
    digest = hashlib.sha256(np.asarray(pcm, dtype=np.float32).tobytes()).hexdigest()
    recipe: dict[str, object] = {"pcm": digest, "kbps": kbps}
    return _cache(cache).get(
        "mp3", f"{name}.{kbps}k", recipe, lambda: decode_bytes(encode_mp3(pcm, kbps)).pcm
    )


def add_noise(pcm: np.ndarray, snr_db: float, seed: int = 11) -> np.ndarray:
    """``pcm`` plus white Gaussian noise whose power is the signal's power / 10^(snr_db/10)."""
    x = np.asarray(pcm, dtype=np.float64)
    rms = math.sqrt(float(np.mean(x * x)))
    noise = np.random.default_rng(seed).standard_normal(len(x)) * rms * 10 ** (-snr_db / 20.0)
    return (x + noise).astype(np.float32)


def hard_clip(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    """``pcm`` amplified by ``gain_db`` and hard-clipped at full scale (+-1)."""
    return np.clip(np.asarray(pcm, np.float64) * 10 ** (gain_db / 20.0), -1.0, 1.0).astype(np.float32)


def requantise(pcm: np.ndarray, bits: int) -> np.ndarray:
    """``pcm`` rounded to a ``bits``-bit signed grid (step 2^-(bits-1)), without dither."""
    scale = float(2 ** (bits - 1))
    return (np.round(np.asarray(pcm, np.float64) * scale) / scale).astype(np.float32)


def tanh_drive(pcm: np.ndarray, drive: float) -> np.ndarray:
    """Soft saturation ``tanh(drive x) / tanh(drive)``: same peak, more harmonic distortion as drive grows."""
    return (np.tanh(drive * np.asarray(pcm, np.float64)) / math.tanh(drive)).astype(np.float32)


def lowpass(pcm: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 8th-order Butterworth low-pass at ``cutoff_hz`` (the bandwidth of a dull transfer)."""
    sos = signal.butter(8, cutoff_hz, btype="low", fs=SR, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(pcm, np.float64)).astype(np.float32)


LADDERS: dict[str, tuple[tuple[str, float | None], ...]] = {
    "mp3": (("lossless", None), ("128k", 128), ("64k", 64), ("32k", 32)),
    "noise": (("clean", None), ("40dB", 40.0), ("30dB", 30.0), ("20dB", 20.0), ("10dB", 10.0)),
    "clipping": (("clean", None), ("+6dB", 6.0), ("+12dB", 12.0), ("+18dB", 18.0), ("+24dB", 24.0)),
    "bit_depth": (("16bit", 16), ("12bit", 12), ("8bit", 8), ("6bit", 6)),
    "distortion": (("clean", None), ("drive2", 2.0), ("drive4", 4.0), ("drive8", 8.0), ("drive16", 16.0)),
    "lowpass": (("11kHz", None), ("8kHz", 8000.0), ("5kHz", 5000.0), ("3kHz", 3000.0)),
}
"""Quality ladders: (step label, parameter) from the original (first step) to the worst. At the canonical
22,050 Hz rate the original's bandwidth is 11 kHz, and renders come from 16-bit WAVs."""


def degrade(
    pcm: np.ndarray,
    ladder: str,
    param: float | None,
    *,
    name: str = "pcm",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """One ladder step applied to ``pcm`` (``param`` None: the original, unchanged)."""
    if ladder not in LADDERS:
        raise ValueError(f"unknown ladder {ladder!r}; known: {', '.join(LADDERS)}")
    if param is None:
        return np.asarray(pcm, dtype=np.float32)
    if ladder == "mp3":
        return mp3_roundtrip(pcm, int(param), name=name, cache=cache)
    transforms: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
        "noise": add_noise,
        "clipping": hard_clip,
        "bit_depth": lambda x, b: requantise(x, int(b)),
        "distortion": tanh_drive,
        "lowpass": lowpass,
    }
    return transforms[ladder](pcm, float(param))


def ladder_probes(
    originals: Sequence[Probe],
    ladders: Sequence[str] | None = None,
    *,
    gain: bool = True,
    cache: ProbeCache | str | Path | None = None,
) -> list[Probe]:
    """Every ladder (default: all of `LADDERS`) on each original, plus (`gain`) each original's -6 dB copy.

    Returns probes with group "ladder", label = ladder name (or ``"gain_-6dB"``), ``source`` = the original's
    name and ``step`` = index in the ladder (0 = the original itself).
    """
    out: list[Probe] = []
    for orig in originals:
        stem = orig.name.split("/", 1)[-1]
        for ladder in ladders or list(LADDERS):
            for step, (label, param) in enumerate(LADDERS[ladder]):
                pcm = degrade(orig.pcm, ladder, param, name=stem, cache=cache)
                out.append(
                    Probe(
                        f"ladder/{stem}/{ladder}/{label}",
                        "ladder",
                        ladder,
                        pcm,
                        source=orig.name,
                        step=step,
                        meta={"param": param},
                    )
                )
        if not gain:
            continue
        quiet = (orig.pcm * np.float32(0.5)).astype(np.float32)
        out.append(Probe(f"ladder/{stem}/gain_-6dB", "ladder", "gain_-6dB", quiet, source=orig.name, step=1))
    return out


# --------------------------------------------------------------------------------------------- derivatives


def _variant_adder(
    variants: list[Probe], stem: str, source: str, skipped: list[str] | None
) -> Callable[[str, str, Callable[[], np.ndarray]], None]:
    """``add(label, detail, make)`` appends the variant ``make()`` gives to ``variants``, or notes why not."""

    def add(label: str, detail: str, make: Callable[[], np.ndarray]) -> None:
        pcm = _attempt(make, skipped)
        if pcm is not None:
            name = f"variant/{stem}/{label}/{detail}"
            variants.append(Probe(name, "derivative", label, pcm, source=source, meta={"detail": detail}))

    return add


VARIANT_CLASSES: tuple[str, ...] = (
    "instrument",
    "soundfont",
    "transpose",
    "tempo",
    "excerpt",
    "mp3",
    "gain",
)


def derivative_probes(
    work: str | CorpusWork,
    *,
    seconds: float = 60.0,
    full: bool = False,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> tuple[Probe, list[Probe]]:
    """A source render of a corpus work and its derivative variants (labels from `VARIANT_CLASSES`).

    Variants: the piece on other GM programs (piano, strings; full adds flute, guitar) and other SoundFonts;
    transposed by +2, -3 semitones (full: +-1..5), re-rendered from the score; tempo x0.8, 0.9, 1.1, 1.25,
    re-rendered and covering the same stretch of score (``seconds / factor`` long); 20 s excerpts from the
    start, middle and end (full adds 15 s and 30 s from the middle); an MP3 128 kbps transcode; gain -6 dB
    (full adds -12 dB and +3 dB clipped-free level change).

    Returns:
        (source probe, variants with ``source`` = the source's name and ``meta["detail"]``).
    """
    w = _work(work)
    src = render_work(w, seconds, cache=cache)
    src_name = f"source/{w.name}"
    source = Probe(src_name, "derivative", "source", src, meta={"work": w.name})
    fonts = available_soundfonts()
    variants: list[Probe] = []

    add = _variant_adder(variants, w.name, src_name, skipped)

    programs = [PIANO, STRINGS] + ([FLUTE, GUITAR] if full else [])
    for prog in programs:
        if prog not in w.programs:
            add("instrument", f"program{prog}", partial(render_work, w, seconds, program=prog, cache=cache))
    for font in fonts[1:]:
        add("soundfont", font, partial(render_work, w, seconds, soundfont=font, cache=cache))
    shifts = [s for k in range(1, 6) for s in (k, -k)] if full else [2, -3]
    for shift in shifts:
        add("transpose", f"{shift:+d}", partial(render_work, w, seconds, transpose=shift, cache=cache))
    for factor in (0.8, 0.9, 1.1, 1.25):
        # The variant covers the same stretch of score as the source, so it lasts seconds / factor.
        add("tempo", f"x{factor}", partial(render_work, w, seconds / factor, tempo=factor, cache=cache))
    lengths = [("start", 20.0), ("middle", 20.0), ("end", 20.0)]
    if full:
        lengths += [("middle", 15.0), ("middle", 30.0)]
    for where, length in lengths:
        n = int(round(length * SR))
        a = {"start": 0, "middle": (len(src) - n) // 2, "end": len(src) - n}[where]
        add("excerpt", f"{where}{length:g}s", partial(np.array, src[a : a + n], dtype=np.float32))
    add("mp3", "128k", partial(mp3_roundtrip, src, 128, name=w.name, cache=cache))
    for db in (-6.0,) + ((-12.0, 3.0) if full else ()):
        gained = np.clip(src * np.float32(10 ** (db / 20.0)), -1.0, 1.0).astype(np.float32)
        add("gain", f"{db:+g}dB", partial(np.array, gained, dtype=np.float32))
    return source, variants


def rubberband(
    pcm: np.ndarray,
    *,
    tempo: float = 1.0,
    semitones: int = 0,
    name: str = "pcm",
    cache: ProbeCache | str | Path | None = None,
) -> np.ndarray:
    """``pcm`` time-stretched by ``tempo`` (pitch kept) and pitch-shifted by ``semitones`` (duration kept)
    with ffmpeg's Rubber Band filter: how a "sped up" or re-keyed copy of recorded music is made (cached).

    Raises:
        ProbeUnavailable: ffmpeg or its rubberband filter is missing or failed.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProbeUnavailable("ffmpeg not found on PATH (install Debian package ffmpeg)")
    digest = hashlib.sha256(np.asarray(pcm, dtype=np.float32).tobytes()).hexdigest()
    recipe: dict[str, object] = {"pcm": digest, "tempo": tempo, "semitones": semitones}

    def make() -> np.ndarray:
        flt = f"rubberband=tempo={tempo}:pitch={2 ** (semitones / 12):.10f}"
        out = subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-f",
                "f32le",
                "-ar",
                str(SR),
                "-ac",
                "1",
                "-i",
                "-",
                "-af",
                flt,
                "-f",
                "f32le",
                "-ar",
                str(SR),
                "-ac",
                "1",
                "-",
            ],
            input=np.asarray(pcm, dtype="<f4").tobytes(),
            capture_output=True,
            check=False,
        )
        if out.returncode != 0 or not out.stdout:
            raise ProbeUnavailable(f"ffmpeg rubberband failed: {out.stderr.decode(errors='replace')[:200]}")
        return np.clip(np.frombuffer(out.stdout, dtype="<f4"), -1.0, 1.0)

    return _cache(cache).get("stretch", f"{name}.x{tempo}.t{semitones}", recipe, make)


def soundtrack_derivatives(
    track: Soundtrack,
    *,
    seconds: float = 60.0,
    full: bool = False,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> tuple[Probe, list[Probe]]:
    """A soundtrack excerpt as a source and the variants audio alone allows (there is no score to re-render):
    20 s excerpts from the start, middle and end; time-stretched x0.9, 1.1 (full: 0.8, 0.9, 1.1, 1.25) and
    pitch-shifted +2, -3 semitones (full: +-1..5) with `rubberband` (labels "tempo", "transpose", details
    "stretch..." / "shift..."); MP3 128 kbps; gain -6 dB."""
    src = soundtrack_excerpt(track, seconds, start_fraction=0.1, cache=cache)
    src_name = f"source/{track.name}"
    source = Probe(src_name, "derivative", "source", src, meta={"track": track.name})
    variants: list[Probe] = []

    add = _variant_adder(variants, track.name, src_name, skipped)

    n = int(round(20.0 * SR))
    for where, a in (("start", 0), ("middle", (len(src) - n) // 2), ("end", len(src) - n)):
        add("excerpt", f"{where}20s", partial(np.array, src[a : a + n], dtype=np.float32))
    for factor in (0.8, 0.9, 1.1, 1.25) if full else (0.9, 1.1):
        add("tempo", f"stretch{factor}", partial(rubberband, src, tempo=factor, name=track.name, cache=cache))
    for shift in [s for k in range(1, 6) for s in (k, -k)] if full else [2, -3]:
        add(
            "transpose",
            f"shift{shift:+d}",
            partial(rubberband, src, semitones=shift, name=track.name, cache=cache),
        )
    add("mp3", "128k", partial(mp3_roundtrip, src, 128, name=track.name, cache=cache))
    add("gain", "-6dB", partial(np.array, src * np.float32(0.5), dtype=np.float32))
    return source, variants


# --------------------------------------------------------------------------------------------- negatives


def _soprano_signature(corpus_path: str) -> str:
    """The first 16 melodic intervals of a chorale's top part: equal for two harmonisations of one tune."""
    from music21 import corpus  # slow to import; only this set needs it

    score = corpus.parse(corpus_path)
    pitches = [n.pitch.midi for n in score.parts[0].recurse().notes if n.isNote][:17]
    return ",".join(str(b - a) for a, b in zip(pitches, pitches[1:], strict=False))


def distinct_chorales(n: int, cache: ProbeCache | str | Path | None = None) -> list[str]:
    """Corpus paths of the first ``n`` Bach chorales (music21 iterator order) with distinct melodies.

    Many chorale tunes were harmonised by Bach more than once; two harmonisations of one tune are the same
    composition to a listener, so only the first of each melody is kept. Signatures are cached as JSON.
    """
    from music21 import corpus  # slow to import; only this set needs it

    c = _cache(cache)
    index_path = c.root / "chorale_signatures.json"
    index: dict[str, str] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    seen: set[str] = set()
    out: list[str] = []
    changed = False
    for path in corpus.chorales.Iterator(returnType="filename"):
        if len(out) >= n:
            break
        if path not in index:
            try:
                index[path] = _soprano_signature(path)
            except Exception:  # an unparsable chorale is left out of the set, not fatal
                index[path] = ""
            changed = True
        sig = index[path]
        if sig and sig not in seen:
            seen.add(sig)
            out.append(path)
    if changed:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        index_path.write_text(json.dumps(index, sort_keys=True))
    return out


def folk_tunes(n: int) -> list[str]:
    """Corpus paths of ``n`` reels and jigs from Ryan's Mammoth Collection in music21, alternating reel/jig in
    name order (distinct titles)."""
    from music21 import corpus  # slow to import; only this set needs it

    names = sorted(
        str(p).split("/corpus/")[1].rsplit(".", 1)[0]
        for p in corpus.corpora.CoreCorpus().getPaths()
        if "ryansMammoth" in str(p)
    )
    reels = [x for x in names if x.endswith("Reel")]
    jigs = [x for x in names if x.endswith("Jig")]
    out: list[str] = []
    for r, j in zip(reels, jigs, strict=False):
        out += [r, j]
    return out[:n]


def negative_probes(
    kind: str,
    n: int,
    *,
    seconds: float = 30.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """``n`` distinct same-style pieces rendered or cut the same way: ``kind`` is "bach_chorales" (organ,
    80 qpm), "folk_tunes" (violin, 110 qpm, a tune played again until 20 s) or "game_soundtrack" (pieces of
    the Drascula soundtrack of at least 20 s, a ``seconds`` excerpt from 25 % in). Label = ``kind``."""
    makers: list[tuple[str, Callable[[], np.ndarray]]]
    if kind == "game_soundtrack":
        makers = [(t.name, partial(soundtrack_excerpt, t, seconds, cache=cache)) for t in drascula_tracks()]
    elif kind in ("bach_chorales", "folk_tunes"):
        # Candidates beyond n stand in for the few scores music21 cannot expand (badly formed repeats).
        spare = n + 10 + n // 5
        works = (
            [
                CorpusWork(p.replace("/", "_"), kind, p, None, (ORGAN,), 80)
                for p in distinct_chorales(spare, cache)
            ]
            if kind == "bach_chorales"
            else [CorpusWork(p.split("/")[1], kind, p, None, (VIOLIN,), 110, 2) for p in folk_tunes(spare)]
        )
        makers = [(w.name, partial(render_work, w, seconds, cache=cache)) for w in works]
    else:
        raise ValueError(f"unknown negative set {kind!r}; known: bach_chorales, folk_tunes, game_soundtrack")
    out: list[Probe] = []
    for name, make in makers:
        if len(out) >= n:
            break
        pcm = _attempt(make, skipped)
        if pcm is not None:
            out.append(Probe(f"negative/{kind}/{name}", "negative", kind, pcm))
    return out


def instrumentation_probes(
    work: str | CorpusWork = "bach_bwv66_6",
    n: int = 6,
    *,
    seconds: float = 30.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """One piece on ``n`` instrument x SoundFont combinations (its own programs first, then piano, strings,
    organ, flute, choir, guitar, vibes, clarinet, cycling the installed SoundFonts); label = the work name."""
    w = _work(work)
    fonts = available_soundfonts() or ["fluid"]
    takes: list[tuple[int | None, str]] = [(None, f) for f in fonts]
    # A program the work already plays on every part would only repeat one of its own takes.
    others = [p for p in (PIANO, STRINGS, ORGAN, FLUTE, CHOIR, GUITAR, VIBES, CLARINET) if (p,) != w.programs]
    for k, prog in enumerate(others):
        takes.append((prog, fonts[k % len(fonts)]))
    out: list[Probe] = []
    for program, font in takes[:n]:
        pcm = _attempt(
            partial(render_work, w, seconds, program=program, soundfont=font, cache=cache), skipped
        )
        if pcm is None:
            continue
        inst = "own" if program is None else str(program)
        out.append(
            Probe(
                f"spread/{w.name}@{inst}.{font}",
                "real",
                w.name,
                pcm,
                meta={"program": program, "soundfont": font},
            )
        )
    return out


def pitch_class_profile(pcm: np.ndarray, n_fft: int = 8192) -> np.ndarray:
    """A 12-bin pitch-class profile of ``pcm`` (sum of STFT power per pitch class, 55 Hz..2 kHz, normalised to
    sum 1). Used by the tests to check that a transposition rolls the profile; not a scoring feature."""
    _, _, z = signal.stft(np.asarray(pcm, np.float64), fs=SR, nperseg=n_fft, noverlap=n_fft // 2)
    power = (np.abs(z) ** 2).sum(axis=1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SR)
    keep = (freqs >= 55.0) & (freqs <= 2000.0)
    pc = np.mod(np.round(12 * np.log2(freqs[keep] / midi_to_hz(69.0))) + 9, 12).astype(int)
    prof = np.bincount(pc, weights=power[keep], minlength=12)
    return prof / prof.sum()
