"""Real-music probe sets: corpus renders and soundtrack excerpts, and one piece across instrumentations."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from scoring.probes.cache import ProbeCache
from scoring.probes.instruments import (
    CHOIR,
    CLARINET,
    FLUTE,
    GUITAR,
    ORGAN,
    PIANO,
    STRINGS,
    VIBES,
    available_soundfonts,
)
from scoring.probes.probe import Probe, _attempt
from scoring.probes.renders import REAL_WORKS, CorpusWork, _work, render_work
from scoring.probes.soundtracks import SOUNDTRACKS, soundtrack_excerpt


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


def whole_soundtrack_probes(
    n: int,
    *,
    max_seconds: float = 900.0,
    cache: ProbeCache | str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Probe]:
    """The first ``n`` soundtrack files here as a creator would upload them: the whole active part (up to
    ``max_seconds``, the longest upload `scoring.decode` accepts), not an excerpt. Named ``whole/<name>``,
    labelled with the genre; ``meta["kind"]`` is ``"soundtrack_whole"``."""
    out: list[Probe] = []
    for track in SOUNDTRACKS:
        if len(out) >= n:
            break
        pcm = _attempt(
            partial(soundtrack_excerpt, track, max_seconds, start_fraction=0.0, cache=cache), skipped
        )
        if pcm is None:
            continue
        meta: dict[str, object] = {"kind": "soundtrack_whole", "package": track.package}
        out.append(Probe(f"whole/{track.name}", "real", track.genre, pcm, meta=meta))
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
