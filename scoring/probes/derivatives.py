"""Derivative probe sets: a source piece and its variants (instrument, key, tempo, excerpt, MP3, gain)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from scoring.probes.cache import ProbeCache, _cache
from scoring.probes.ffmpeg import ffmpeg_binary, rubberband_filter
from scoring.probes.instruments import FLUTE, GUITAR, PIANO, STRINGS, available_soundfonts
from scoring.probes.ladders import mp3_roundtrip
from scoring.probes.probe import SR, Probe, _attempt
from scoring.probes.renders import CorpusWork, _work, render_work
from scoring.probes.soundtracks import Soundtrack, soundtrack_excerpt


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
    ffmpeg = ffmpeg_binary()
    digest = hashlib.sha256(np.asarray(pcm, dtype=np.float32).tobytes()).hexdigest()
    recipe: dict[str, object] = {"pcm": digest, "tempo": tempo, "semitones": semitones}
    return _cache(cache).get(
        "stretch",
        f"{name}.x{tempo}.t{semitones}",
        recipe,
        partial(rubberband_filter, ffmpeg, pcm, tempo, semitones),
    )


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
