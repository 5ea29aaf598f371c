"""Session fixtures for the scoring tests: real FluidSynth renders of music21 pieces and their variants.

Rendered once per session (about 15 s): five styles, transposed / tempo-shifted re-renders, MP3 transcodes
and a gain change, plus a small catalogue and one scored batch that several test files read.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from scoring.corpus import render_piece
from scoring.decode import CanonicalAudio, decode_file, pcm_sha256

SECONDS = 30.0

# key -> (piece, transpose, tempo_scale)
RENDERS: dict[str, tuple[str, int, float]] = {
    "bach": ("bach_bwv66_6", 0, 1.0),
    "mozart": ("mozart_k155_m1", 0, 1.0),
    "folk": ("folk_altdeu10_1", 0, 1.0),
    "madrigal": ("monteverdi_3_1", 0, 1.0),
    "joplin": ("joplin_maple_leaf", 0, 1.0),
    "bach_up1": ("bach_bwv66_6", 1, 1.0),
    "bach_t105": ("bach_bwv66_6", 0, 1.05),
    "mozart_up1": ("mozart_k155_m1", 1, 1.0),
}
MP3S = ("bach", "folk")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """key -> audio file (WAV renders, MP3 transcodes as ``<key>_mp3``)."""
    root = tmp_path_factory.mktemp("renders")
    out: dict[str, Path] = {}
    for key, (piece, transpose, tempo) in RENDERS.items():
        out[key] = render_piece(
            piece, root / f"{key}.wav", seconds=SECONDS, transpose=transpose, tempo_scale=tempo
        )
    for key in MP3S:
        mp3 = root / f"{key}.mp3"
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(out[key]), "-b:a", "128k", str(mp3)], check=True
        )
        out[f"{key}_mp3"] = mp3
    return out


@pytest.fixture(scope="session")
def audio(rendered: dict[str, Path]) -> dict[str, CanonicalAudio]:
    """key -> canonical audio, plus ``bach_gain`` (the bach render 6 dB quieter)."""
    out = {key: decode_file(path) for key, path in rendered.items()}
    quiet = (out["bach"].pcm * np.float32(0.5)).astype(np.float32)
    out["bach_gain"] = replace(out["bach"], pcm=quiet, sha256=pcm_sha256(quiet))
    return out


@pytest.fixture(scope="session")
def catalogue_dir(audio: dict[str, CanonicalAudio], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved catalogue holding the bach and mozart renders (ids "bach", "mozart")."""
    from scoring.engine import TrackInput, add_tracks, new_catalogue

    cat = new_catalogue()
    add_tracks(
        cat,
        [
            TrackInput("bach", audio["bach"], "bach_chorale"),
            TrackInput("mozart", audio["mozart"], "string_quartet"),
        ],
        device="cpu",
    )
    folder = tmp_path_factory.mktemp("catalogue")
    cat.save(folder)
    return folder


VARIANTS = ("bach_mp3", "bach_gain", "bach_up1", "bach_t105", "mozart_up1", "folk", "madrigal", "joplin")


@pytest.fixture(scope="session")
def variant_scores(audio: dict[str, CanonicalAudio], catalogue_dir: Path) -> dict[str, object]:
    """key -> PublishedScore of each VARIANTS track scored in one batch against the bach+mozart catalogue."""
    from scoring.catalog import Catalogue
    from scoring.engine import TrackInput, score_batch

    cat = Catalogue.load(catalogue_dir)
    items = [TrackInput(key, audio[key], None) for key in VARIANTS]
    return dict(zip(VARIANTS, score_batch(items, cat, device="cpu"), strict=True))
