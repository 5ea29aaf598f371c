"""Real test music: music21 corpus pieces rendered through FluidSynth (General MIDI) to WAV, with a style.

Used by the genre reference build (scripts/build_genre_reference.py), by the tests, and for the worker's demo
tracks. Nothing is downloaded: music21 ships the scores and Debian's `fluid-soundfont-gm` ships the SoundFont.
Rendering is reproducible: same piece, options and FluidSynth build give the same samples (reverb and chorus
are off because they add nothing to the tests and cost time).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from scoring.errors import ScoringError

SOUNDFONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
RENDER_SAMPLE_RATE = 44100
DEFAULT_QPM = 100.0


class RenderError(ScoringError):
    """A piece could not be rendered (unknown name, missing FluidSynth or SoundFont, FluidSynth failure)."""


@dataclass(frozen=True)
class SamplePiece:
    """One corpus piece with its style label and the General MIDI programs its parts are played with.

    Attributes:
        name: unique short id, e.g. ``"bach_bwv66_6"``.
        style: genre label, e.g. ``"bach_chorale"``.
        corpus_path: music21 corpus path (``corpus.parse`` argument).
        number: tune number inside an ABC collection, ``None`` for single-work files.
        programs: GM program (0..127) per part, cycled when the piece has more parts.
        qpm: tempo in quarter notes per minute used when the score has no metronome mark of its own.
    """

    name: str
    style: str
    corpus_path: str
    number: int | None
    programs: tuple[int, ...]
    qpm: float = DEFAULT_QPM


def _p(
    name: str, style: str, path: str, number: int | None, programs: tuple[int, ...], qpm: float
) -> SamplePiece:
    return SamplePiece(name, style, path, number, programs, qpm)


_ORGAN, _PIANO, _VIOLIN, _VIOLA, _CELLO, _FLUTE, _CHOIR = 19, 0, 40, 41, 42, 73, 52
_QUARTET = (_VIOLIN, _VIOLIN, _VIOLA, _CELLO)

# Several styles, several pieces each, so that genre statistics have more than one point per style.
SAMPLE_PIECES: tuple[SamplePiece, ...] = (
    _p("bach_bwv66_6", "bach_chorale", "bach/bwv66.6", None, (_ORGAN,), 80),
    _p("bach_bwv7_7", "bach_chorale", "bach/bwv7.7", None, (_ORGAN,), 80),
    _p("bach_bwv10_7", "bach_chorale", "bach/bwv10.7", None, (_ORGAN,), 80),
    _p("bach_bwv11_6", "bach_chorale", "bach/bwv11.6", None, (_ORGAN,), 80),
    _p("folk_altdeu10_1", "folk_song", "essenFolksong/altdeu10", 1, (_FLUTE,), 110),
    _p("folk_altdeu10_2", "folk_song", "essenFolksong/altdeu10", 2, (_FLUTE,), 110),
    _p("folk_altdeu10_3", "folk_song", "essenFolksong/altdeu10", 3, (_FLUTE,), 110),
    _p("folk_altdeu10_4", "folk_song", "essenFolksong/altdeu10", 4, (_FLUTE,), 110),
    _p(
        "haydn_op74no1_m1",
        "string_quartet",
        "haydn/opus74no1/movement1",
        None,
        (_VIOLIN, _VIOLIN, _VIOLA, _CELLO),
        120,
    ),
    _p("mozart_k155_m1", "string_quartet", "mozart/k155/movement1", None, _QUARTET, 120),
    _p("mozart_k156_m1", "string_quartet", "mozart/k156/movement1", None, _QUARTET, 120),
    _p(
        "beethoven_op18no1_m1",
        "string_quartet",
        "beethoven/opus18no1/movement1",
        None,
        (_VIOLIN, _VIOLIN, _VIOLA, _CELLO),
        120,
    ),
    _p("joplin_maple_leaf", "ragtime_piano", "joplin/maple_leaf_rag", None, (_PIANO,), 90),
    _p("berlin_ragtime", "ragtime_piano", "leadSheet/berlinAlexandersRagtime", None, (_PIANO,), 110),
    _p("monteverdi_3_1", "madrigal", "monteverdi/madrigal.3.1", None, (_CHOIR,), 90),
    _p("monteverdi_3_2", "madrigal", "monteverdi/madrigal.3.2", None, (_CHOIR,), 90),
    _p("monteverdi_3_3", "madrigal", "monteverdi/madrigal.3.3", None, (_CHOIR,), 90),
)

STYLES: tuple[str, ...] = tuple(dict.fromkeys(p.style for p in SAMPLE_PIECES))


def find_piece(name_or_style: str | SamplePiece) -> SamplePiece:
    """Return the piece called ``name_or_style``, or the first piece of that style (a SamplePiece as is).

    Raises:
        RenderError: no piece or style has that name.
    """
    if isinstance(name_or_style, SamplePiece):
        return name_or_style
    for piece in SAMPLE_PIECES:
        if piece.name == name_or_style:
            return piece
    for piece in SAMPLE_PIECES:
        if piece.style == name_or_style:
            return piece
    known = ", ".join(STYLES)
    raise RenderError(f"unknown piece or style {name_or_style!r}; styles: {known}")


def find_soundfont() -> Path:
    """Path of the General MIDI SoundFont, or RenderError when none is installed."""
    for path in SOUNDFONT_CANDIDATES:
        if path.is_file():
            return path
    raise RenderError("no General MIDI SoundFont found (install Debian package fluid-soundfont-gm)")


def _prepare_score(
    piece: SamplePiece, quarters: float | None, transpose: int, tempo_scale: float, program: int | None
):  # type: ignore[no-untyped-def]
    # music21 is slow to import (seconds); only the renderer needs it, so it is imported here.
    from music21 import corpus, stream

    parsed = (
        corpus.parse(piece.corpus_path, number=piece.number)
        if piece.number
        else corpus.parse(piece.corpus_path)
    )
    score = parsed.scores[0] if isinstance(parsed, stream.Opus) else parsed
    if quarters is not None and score.highestTime > quarters:
        score = _cut_score(score, quarters)
    _own_signature_copies(score)
    if transpose:
        score = score.transpose(transpose)
    _set_tempo_and_programs(score, piece, tempo_scale, program)
    return score


def _cut_score(score, quarters: float):  # type: ignore[no-untyped-def]
    """The measures up to the one starting at `quarters`; cutting in the score (not only the audio) keeps
    MIDI export fast for long movements."""
    from music21 import bar, repeat, spanner, stream  # slow to import: see _prepare_score

    last_number = None
    for measure in score.parts[0].getElementsByClass(stream.Measure):
        last_number = measure.number
        if measure.offset >= quarters:
            break
    if last_number is None:
        return score
    score = score.measures(0, last_number)
    # A cut can leave a repeat without its end; MIDI export would refuse to expand it.
    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = None
    for element in list(score.recurse().getElementsByClass((repeat.RepeatExpression, spanner.RepeatBracket))):
        element.activeSite.remove(element)
    return score


def _own_signature_copies(score) -> None:  # type: ignore[no-untyped-def]
    """music21's ABC reader can put one TimeSignature/KeySignature object into several measures; MIDI export
    then refuses to insert it twice into its conductor track, so every repeat gets its own copy."""
    from music21 import key, meter, stream  # slow to import: see _prepare_score

    seen: set[int] = set()
    for measure in score.recurse().getElementsByClass(stream.Measure):
        for element in list(measure.getElementsByClass((meter.TimeSignature, key.KeySignature))):
            if id(element) in seen:
                measure.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def _set_tempo_and_programs(  # type: ignore[no-untyped-def]
    score, piece: SamplePiece, tempo_scale: float, program: int | None
) -> None:
    """One metronome mark (the piece's tempo times `tempo_scale`) and one GM program per part."""
    from music21 import instrument, tempo  # slow to import: see _prepare_score

    for mark in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)
    score.parts[0].insert(0, tempo.MetronomeMark(number=piece.qpm * tempo_scale))
    for index, part in enumerate(score.parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        inst = instrument.Instrument()
        inst.midiProgram = program if program is not None else piece.programs[index % len(piece.programs)]
        part.insert(0, inst)


def _renderer(soundfont: str | Path | None) -> tuple[str, Path]:
    """(FluidSynth executable, SoundFont path), or RenderError naming what to install."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise RenderError("fluidsynth not found on PATH (install Debian package fluidsynth)")
    font = find_soundfont() if soundfont is None else Path(soundfont)
    if not font.is_file():
        raise RenderError(f"SoundFont {font} not found")
    return fluidsynth, font


def _write_peak_normalised(audio: np.ndarray, out_path: str | Path, rate: int, what: str) -> Path:
    """Write `audio` as a 16-bit WAV peak-normalised to -1 dBFS (parent folders created); RenderError when it
    is silent."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        raise RenderError(f"{what} rendered to silence")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), audio * (10 ** (-1.0 / 20.0) / peak), rate, subtype="PCM_16")
    return out


def _fluidsynth_raw(
    fluidsynth: str, soundfont: Path, midi_path: Path, sample_rate: int, n_bytes: int
) -> bytes:
    """Stereo s16le samples from FluidSynth, at most ``n_bytes``.

    FluidSynth's file renderer does not always stop at the end of the MIDI file (some music21 exports make it
    render forever), so we read raw samples from its stdout and stop it once we have what the score needs.
    """
    proc = subprocess.Popen(
        [
            fluidsynth,
            "-ni",
            "-q",
            "-R",
            "0",
            "-C",
            "0",
            "-g",
            "0.5",
            "-r",
            str(sample_rate),
            "-T",
            "raw",
            "-O",
            "s16",
            "-E",
            "little",
            "-F",
            "-",
            str(soundfont),
            str(midi_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    chunks: list[bytes] = []
    got = 0
    try:
        while got < n_bytes:
            chunk = proc.stdout.read(min(1 << 20, n_bytes - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    data = b"".join(chunks)
    if len(data) < 4 * sample_rate:
        raise RenderError(f"fluidsynth produced only {len(data)} bytes for {midi_path.name}")
    return data[: len(data) // 4 * 4]


def render_piece(
    name_or_style: str | SamplePiece,
    out_path: str | Path,
    seconds: float | None = None,
    program: int | None = None,
    *,
    transpose: int = 0,
    tempo_scale: float = 1.0,
    sample_rate: int = RENDER_SAMPLE_RATE,
    soundfont: str | Path | None = None,
) -> Path:
    """Render a corpus piece to a 16-bit stereo WAV file.

    Args:
        name_or_style: a ``SamplePiece``, its name, or a style label (then the style's first piece).
        out_path: WAV file to write (parent folders are created).
        seconds: keep only the first ``seconds`` of audio (None: the whole piece).
        program: GM program (0..127) for every part, overriding the piece's own instruments.
        transpose: semitones to transpose the score by (derivative works in tests).
        tempo_scale: factor on the tempo in quarter notes per minute (1.05 = 5 % faster).
        sample_rate: output rate in Hz.
        soundfont: SoundFont file (.sf2/.sf3) to play it with (None: the General MIDI one, `find_soundfont`).

    Returns:
        ``out_path`` as a Path. The audio is peak-normalised to -1 dBFS so every render has the same level.

    Raises:
        RenderError: unknown piece, missing FluidSynth/SoundFont, or FluidSynth failed.
    """
    piece = find_piece(name_or_style)
    if program is not None and not 0 <= program <= 127:
        raise RenderError(f"GM program must be 0..127, got {program}")
    if tempo_scale <= 0:
        raise RenderError(f"tempo_scale must be positive, got {tempo_scale}")
    fluidsynth, font = _renderer(soundfont)
    qpm = piece.qpm * tempo_scale
    # Some slack so the cut lands in audio, not in the score.
    quarters = None if seconds is None else seconds * qpm / 60.0 + 8.0
    score = _prepare_score(piece, quarters, transpose, tempo_scale, program)
    score_seconds = float(score.highestTime) * 60.0 / qpm + 2.0
    want_seconds = score_seconds if seconds is None else min(seconds, score_seconds)
    want_bytes = int(round(want_seconds * sample_rate)) * 4
    with tempfile.TemporaryDirectory(prefix="ami-render-") as tmp:
        midi_path = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi_path))
        raw = _fluidsynth_raw(fluidsynth, font, midi_path, sample_rate, want_bytes)
    audio = np.frombuffer(raw, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0
    if seconds is not None:
        audio = audio[: int(round(seconds * sample_rate))]
    return _write_peak_normalised(audio, out_path, sample_rate, f"piece {piece.name}")


def render_midi(
    midi_path: str | Path,
    out_path: str | Path,
    seconds: float,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = RENDER_SAMPLE_RATE,
) -> Path:
    """Render a MIDI file (e.g. written from a music21 stream) to a 16-bit stereo WAV, like `render_piece`.

    Args:
        midi_path: the Standard MIDI File to play.
        out_path: WAV file to write (parent folders are created).
        seconds: length of audio to keep, in seconds (FluidSynth is stopped there).
        soundfont: SoundFont file (None: the General MIDI one, `find_soundfont`).
        sample_rate: output rate in Hz.

    Returns:
        ``out_path`` as a Path, peak-normalised to -1 dBFS like every render.

    Raises:
        RenderError: missing FluidSynth/SoundFont, FluidSynth failed, or the MIDI file renders to silence.
    """
    fluidsynth, font = _renderer(soundfont)
    want_bytes = int(round(seconds * sample_rate)) * 4
    raw = _fluidsynth_raw(fluidsynth, font, Path(midi_path), sample_rate, want_bytes)
    audio = np.frombuffer(raw, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768.0
    return _write_peak_normalised(audio, out_path, sample_rate, Path(midi_path).name)
