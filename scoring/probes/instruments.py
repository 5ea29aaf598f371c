"""The General MIDI programs and SoundFonts the probes are played with, and which SoundFonts are installed."""

from __future__ import annotations

from pathlib import Path

from scoring.probes.probe import ProbeUnavailable

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
