"""Corpus scores and note lists rendered through FluidSynth to canonical PCM (the rendered real music)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring.corpus import RenderError, SamplePiece, render_midi, render_piece
from scoring.decode import decode_file
from scoring.probes.cache import ProbeCache, _cache
from scoring.probes.instruments import _QUARTET, CHOIR, FLUTE, ORGAN, PIANO, VIOLIN, soundfont_path
from scoring.probes.probe import SR, ProbeUnavailable


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
