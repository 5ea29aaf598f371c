"""Validity probe sets for the scoring benchmark: labelled real, degenerate, degraded and derivative audio.

Every probe is canonical PCM (mono float32 at `SAMPLE_RATE`, 22,050 Hz) with a label, built deterministically:
- real (`real`): music21 corpus scores rendered through FluidSynth (`renders`) on several General MIDI
  programs and SoundFonts (`instruments`), and excerpts of human-made game soundtracks that Debian ships
  (`soundtracks`, `SOUNDTRACKS`);
- degenerate (`degenerate`): loops, shuffled slices, random notes on a scale grid, tones, noise;
- quality ladders (`ladders`): MP3 bitrates, noise floor, hard clipping, bit depth, tanh distortion, low-pass,
  and -6 dB copies;
- derivatives of a source piece (`derivatives`: other instrument / SoundFont, transposition, tempo, excerpt,
  MP3, gain) and same-style negatives (`negatives`: distinct Bach chorales, folk reels and jigs, distinct
  pieces of one game soundtrack).
The slow steps (FluidSynth renders, soundtrack decodes, MP3 round trips, Rubber Band stretches; the ffmpeg
runs are in `ffmpeg`) are cached as ``.npy`` files under a cache folder (`cache`, default ``.ami/probes``),
keyed by a hash of the recipe and `PROBES_VERSION`; numpy transforms of cached audio are recomputed, which is
cheaper than reading them. `metrics` holds the two rank metrics the benchmark reports: `auc_mann_whitney` and
`spearman_rho`. This package re-exports the public names of its modules.
"""

from __future__ import annotations

from scoring.probes.cache import DEFAULT_CACHE, ProbeCache
from scoring.probes.degenerate import (
    _pink_like,
    degenerate_probes,
    loop_audio,
    noise_probes,
    random_notes,
    shuffle_slices,
    tone_probes,
    two_chord_loop,
)
from scoring.probes.derivatives import VARIANT_CLASSES, derivative_probes, rubberband, soundtrack_derivatives
from scoring.probes.ffmpeg import encode_mp3
from scoring.probes.instruments import (
    _QUARTET,
    CELLO,
    CHOIR,
    CLARINET,
    FLUTE,
    GUITAR,
    INSTRUMENTS,
    ORGAN,
    PIANO,
    SOUNDFONT_PACKAGES,
    SOUNDFONTS,
    STRINGS,
    VIBES,
    VIOLA,
    VIOLIN,
    available_soundfonts,
    missing_soundfont_packages,
    soundfont_path,
)
from scoring.probes.ladders import (
    LADDERS,
    add_noise,
    degrade,
    hard_clip,
    ladder_probes,
    lowpass,
    mp3_roundtrip,
    requantise,
    tanh_drive,
)
from scoring.probes.metrics import auc_mann_whitney, pitch_class_profile, spearman_rho
from scoring.probes.negatives import (
    BEAT_AGREEMENT,
    SHARED_INCIPIT_INTERVALS,
    SHARED_PHRASE_INTERVALS,
    BeatGrid,
    beat_agreement,
    beat_grid,
    distinct_chorales,
    folk_tunes,
    longest_shared_run,
    negative_probes,
    one_tune,
)
from scoring.probes.probe import PROBES_VERSION, SR, Probe, ProbeUnavailable
from scoring.probes.real import instrumentation_probes, real_probes, whole_soundtrack_probes
from scoring.probes.renders import REAL_WORKS, CorpusWork, render_notes, render_work
from scoring.probes.soundtracks import (
    LOSSLESS_SUFFIXES,
    SOUNDTRACK_PACKAGES,
    SOUNDTRACKS,
    Soundtrack,
    active_span,
    drascula_tracks,
    missing_soundtrack_packages,
    soundtrack_excerpt,
)

__all__ = [
    "_pink_like",
    "_QUARTET",
    "active_span",
    "add_noise",
    "auc_mann_whitney",
    "available_soundfonts",
    "CELLO",
    "CHOIR",
    "CLARINET",
    "CorpusWork",
    "DEFAULT_CACHE",
    "degenerate_probes",
    "degrade",
    "derivative_probes",
    "distinct_chorales",
    "longest_shared_run",
    "one_tune",
    "BEAT_AGREEMENT",
    "BeatGrid",
    "beat_agreement",
    "beat_grid",
    "SHARED_INCIPIT_INTERVALS",
    "SHARED_PHRASE_INTERVALS",
    "drascula_tracks",
    "encode_mp3",
    "FLUTE",
    "folk_tunes",
    "GUITAR",
    "hard_clip",
    "instrumentation_probes",
    "INSTRUMENTS",
    "ladder_probes",
    "LADDERS",
    "loop_audio",
    "LOSSLESS_SUFFIXES",
    "lowpass",
    "missing_soundfont_packages",
    "missing_soundtrack_packages",
    "mp3_roundtrip",
    "negative_probes",
    "noise_probes",
    "ORGAN",
    "PIANO",
    "pitch_class_profile",
    "Probe",
    "ProbeCache",
    "PROBES_VERSION",
    "ProbeUnavailable",
    "random_notes",
    "real_probes",
    "whole_soundtrack_probes",
    "REAL_WORKS",
    "render_notes",
    "render_work",
    "requantise",
    "rubberband",
    "shuffle_slices",
    "SOUNDFONT_PACKAGES",
    "soundfont_path",
    "SOUNDFONTS",
    "Soundtrack",
    "soundtrack_derivatives",
    "soundtrack_excerpt",
    "SOUNDTRACK_PACKAGES",
    "SOUNDTRACKS",
    "spearman_rho",
    "SR",
    "STRINGS",
    "tanh_drive",
    "tone_probes",
    "two_chord_loop",
    "VARIANT_CLASSES",
    "VIBES",
    "VIOLA",
    "VIOLIN",
]
