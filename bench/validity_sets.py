"""The validity benchmark's probe sets: their sizes (`QUICK`, `FULL`) and how `scoring.probes` makes them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from scoring import probes as P

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".ami" / "probes"
DEGENERATE_CLASSES = ("loops", "shuffles", "random_notes", "tones", "noise", "clips")
SAME_STYLE_SETS = ("bach_chorales", "folk_tunes", "game_soundtrack")
SECTIONS = ("novelty", "ladders", "derivatives", "spread")


@dataclass(frozen=True)
class Sizes:
    """How big each probe set is (see `QUICK` and `FULL`)."""

    real_works: int
    real_soundtracks: int
    real_seconds: float
    whole_soundtracks: int
    whole_seconds: float
    degenerate_n: int
    degenerate_seconds: float
    ladder_works: int
    ladder_soundtracks: int
    derivative_works: tuple[str, ...]
    derivative_soundtracks: int
    derivative_seconds: float
    derivative_full: bool
    chorales: int
    folk_tunes: int
    game_pieces: int
    negative_seconds: float
    spread_work: str
    spread_n: int


_QUICK_WORKS = ("joplin_maple_leaf", "haydn_op74no1_m1")
_SIZE_TABLE: dict[str, tuple[object, object]] = {
    # field of `Sizes`: (quick, full)
    "real_works": (6, len(P.REAL_WORKS)),
    "real_soundtracks": (6, len(P.SOUNDTRACKS)),
    "real_seconds": (30.0, 60.0),
    "whole_soundtracks": (6, len(P.SOUNDTRACKS)),
    "whole_seconds": (900.0, 900.0),
    "degenerate_n": (4, 12),
    "degenerate_seconds": (30.0, 60.0),
    "ladder_works": (1, 3),
    "ladder_soundtracks": (1, 3),
    "derivative_works": (
        _QUICK_WORKS,
        (*_QUICK_WORKS, "mozart_k156_m1", "beethoven_op18no1_m1", "schumann_op41no1_m1"),
    ),
    "derivative_soundtracks": (1, 3),
    "derivative_seconds": (60.0, 60.0),
    "derivative_full": (False, True),
    "chorales": (12, 400),
    "folk_tunes": (8, 100),
    "game_pieces": (8, 30),
    "negative_seconds": (30.0, 30.0),
    "spread_work": ("bach_bwv66_6", "bach_bwv66_6"),
    "spread_n": (6, 10),
}
QUICK = Sizes(**{name: sizes[0] for name, sizes in _SIZE_TABLE.items()})  # type: ignore[arg-type]
FULL = Sizes(**{name: sizes[1] for name, sizes in _SIZE_TABLE.items()})  # type: ignore[arg-type]


@dataclass
class ProbeSets:
    """Every probe set the benchmark scores, and why any probe is missing."""

    real: list[P.Probe]
    degenerate: list[P.Probe]
    ladders: list[P.Probe]
    sources: list[P.Probe]
    variants: list[P.Probe]
    negatives: dict[str, list[P.Probe]]
    spread: list[P.Probe]
    whole: list[P.Probe] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_packages: list[str] = field(default_factory=list)


def _first_available(
    n: int, makers: Sequence[Callable[[], tuple[P.Probe, list[P.Probe]]]], skipped: list[str]
) -> list[tuple[P.Probe, list[P.Probe]]]:
    """The first ``n`` (source, variants) sets the makers can make; why others failed goes to ``skipped``."""
    out: list[tuple[P.Probe, list[P.Probe]]] = []
    for make in makers:
        if len(out) >= n:
            break
        try:
            out.append(make())
        except P.ProbeUnavailable as exc:
            skipped.append(str(exc))
    return out


def _ladder_sets(sizes: Sizes, real: list[P.Probe], cache: P.ProbeCache) -> list[P.Probe]:
    """Every ladder on the first corpus and soundtrack originals in ``real``; MP3 on the lossless ones."""
    corpus_real = [p for p in real if p.meta.get("kind") == "corpus" and p.meta.get("instrument") == "own"]
    track_real = [p for p in real if p.meta.get("kind") == "soundtrack"]
    originals = corpus_real[: sizes.ladder_works] + track_real[: sizes.ladder_soundtracks]
    # "lossless > 128 kbps" only means something when the first step is lossless: a soundtrack shipped
    # as Ogg or MP3 has been through a codec already, so the MP3 ladder takes lossless originals only.
    lossless = (
        corpus_real[: sizes.ladder_works]
        + [p for p in track_real if p.meta.get("lossless")][: sizes.ladder_soundtracks]
    )
    ladders = P.ladder_probes(originals, [k for k in P.LADDERS if k != "mp3"], cache=cache)
    ladders += P.ladder_probes(lossless, ["mp3"], gain=False, cache=cache)
    return ladders


def _derivative_sets(
    sizes: Sizes, cache: P.ProbeCache, skipped: list[str]
) -> list[tuple[P.Probe, list[P.Probe]]]:
    """(source, variants) of the first corpus works of ``sizes`` that render, then of the soundtracks."""

    def made_with(
        make: Callable[..., tuple[P.Probe, list[P.Probe]]], subject: object
    ) -> Callable[[], tuple[P.Probe, list[P.Probe]]]:
        return partial(
            make,
            subject,
            seconds=sizes.derivative_seconds,
            full=sizes.derivative_full,
            cache=cache,
            skipped=skipped,
        )

    works = [made_with(P.derivative_probes, work) for work in sizes.derivative_works]
    tracks = [made_with(P.soundtrack_derivatives, track) for track in P.SOUNDTRACKS]
    return _first_available(len(works), works, skipped) + _first_available(
        sizes.derivative_soundtracks, tracks, skipped
    )


def build_sets(
    sizes: Sizes, cache: str | Path | None = None, sections: Sequence[str] = SECTIONS
) -> ProbeSets:
    """Make (or read from the cache) the probe sets that ``sections`` need; the others stay empty."""
    want = set(sections)
    unknown = want - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    c = P.ProbeCache(cache if cache is not None else DEFAULT_CACHE)
    sets = ProbeSets(
        [],
        [],
        [],
        [],
        [],
        {},
        [],
        missing_packages=P.missing_soundfont_packages() + P.missing_soundtrack_packages(),
    )
    skipped = sets.skipped
    if want & {"novelty", "ladders"}:
        sets.real = P.real_probes(
            sizes.real_works, sizes.real_soundtracks, seconds=sizes.real_seconds, cache=c, skipped=skipped
        )
    if "novelty" in want:
        sets.whole = P.whole_soundtrack_probes(
            sizes.whole_soundtracks, max_seconds=sizes.whole_seconds, cache=c, skipped=skipped
        )
        sets.degenerate = P.degenerate_probes(
            sizes.degenerate_n, seconds=sizes.degenerate_seconds, cache=c, skipped=skipped
        )
    if "ladders" in want:
        sets.ladders = _ladder_sets(sizes, sets.real, c)
    if "derivatives" in want:
        for src, vs in _derivative_sets(sizes, c, skipped):
            sets.sources.append(src)
            sets.variants += vs
        counts = {
            "bach_chorales": sizes.chorales,
            "folk_tunes": sizes.folk_tunes,
            "game_soundtrack": sizes.game_pieces,
        }
        sets.negatives = {
            kind: P.negative_probes(kind, n, seconds=sizes.negative_seconds, cache=c, skipped=skipped)
            for kind, n in counts.items()
        }
    if "spread" in want:
        sets.spread = P.instrumentation_probes(
            sizes.spread_work, sizes.spread_n, seconds=sizes.real_seconds, cache=c, skipped=skipped
        )
    return sets
