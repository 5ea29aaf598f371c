"""Same-style negative probe sets: distinct pieces of one style that must not be taken for derivatives."""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scoring.probes.cache import ProbeCache, _cache
from scoring.probes.instruments import ORGAN, VIOLIN
from scoring.probes.probe import Probe, _attempt
from scoring.probes.renders import CorpusWork, render_work
from scoring.probes.soundtracks import distinct_recordings, drascula_tracks, soundtrack_excerpt

SHARED_PHRASE_INTERVALS = 12
"""Two melodies are one tune when they share a run of this many consecutive melodic intervals
(repeated notes merged): about two chorale phrases note for note. In the 283 melodies whose first 16
intervals differ, 149 of 39,903 pairs share such a run; they are harmonisations of one tune whose first
notes differ by an upbeat or a passing note (e.g. bwv154.3, bwv55.5, bwv359 and bwv360, four settings of
"Werde munter, mein Gemüte")."""

SHARED_INCIPIT_INTERVALS = 9
"""Two chorale melodies are also one tune when their first this many intervals (ten notes, about a first
phrase) are the same, as hymn-tune catalogues identify a tune by its incipit. The shared run misses a
short tune (bwv323 and bwv324 set the tonus peregrinus, 13..15 intervals) and one varied by a passing
note (bwv44.7 and bwv244.37, "Nun ruhen alle Wälder" and "In allen meinen Taten", both Isaac's
"Innsbruck", share 11 opening intervals). Of the 193 pairs of music21's 350 chorales whose sopranos open
alike, 113 have one catalogue title; most of the others are texts sung to one melody (the Passion
chorale, Genevan Psalm 42, "Innsbruck"), and a few may be two tunes with one opening ("O Herre Gott, dein
göttlich Wort" and "Herr Gott, dich loben alle wir" share exactly these 9). Chorales only: ten notes are
about one bar of a reel, where distinct tunes share opening formulas. The rule was written after the gate
flagged those two pairs, and was checked on the titles, not on the gate."""

BEAT_WINDOW = 24
"""Beats compared at a time by `beat_agreement`: 12 bars of a jig, 6 of a common-time reel, most of a
strain."""

BEAT_AGREEMENT = 0.75
"""Two fiddle tunes are also one tune when, at some alignment and transposition, they sound the same pitch
on this share of `BEAT_WINDOW` consecutive beats (18 of 24). Variants of a tune passed on by ear differ by
passing notes and ornaments between the beats, which break the interval rules after a few notes; comparing
the stressed notes is how tune-family studies have long aligned such variants (Bronson's comparative
analysis of ballad tunes).

Over the 3,373 pairs of one metre among the 144 reels and jigs the validity set reads, six read 0.875 or
more and the next 0.583. Three of the six the interval rules already join; the others are
BillyORourkesJig and ComeUnderMyPladdieJig, BillyPattersonsFavoriteJig and BoysOfBockhillJig, and
BottleOfBrandyJig and BullyForYouJig (a fourth apart). On the gate's training split (120 other reels and
jigs, 2,053 pairs of one metre), SmithsDelightReel and SmithsReel read 1.0 and TeetotalersReel and
TemperanceReel 0.917 (each one tune under two names), SpiritsOfWhiskyJig and ThreeLittleDrummersJig 0.792,
and the next 0.625. The rule was written after the gate flagged the two jig pairs. Fiddle tunes only: the
chorale set has catalogue titles."""


@functools.cache
def _chorale_titles() -> dict[str, dict[str, object]]:
    """music21's Riemenschneider/Kalmus chorale catalogue by BWV number (built once: it is a long table)."""
    from music21.corpus import chorales  # slow to import; only these sets need it

    return dict(chorales.ChoraleListRKBWV().byBWV)


def chorale_tune(corpus_path: str) -> tuple[str, ...] | None:
    """The hymn tune of a Bach chorale in music21's corpus, as the words of its title in the Riemenschneider
    and Kalmus catalogue that music21 ships (``ChoraleListRKBWV``; lower case, letters only), or None for a
    path that is not listed there."""
    bwv = corpus_path.rsplit("bwv", 1)[-1] if "bwv" in corpus_path else ""
    entry = _chorale_titles().get(bwv)
    if not entry:
        return None
    text = unicodedata.normalize("NFKD", str(entry["title"]).lower())
    return tuple("".join(ch for ch in text if ch.isalpha() or ch.isspace()).split())


def same_tune(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> bool:
    """Whether two `chorale_tune` titles name one tune: equal, or one the start of the other (the catalogue
    shortens some titles: "Meinen Jesum laß' ich nicht, weil" and "... weil er sich für mich gegeben")."""
    if not a or not b:
        return False
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _melody_part(corpus_path: str) -> Any:
    """A score's melody (a music21 stream): the part named Soprano where there is one (15 chorales print
    trumpets or an obbligato above the choir), else the top part (a fiddle tune's one line)."""
    from music21 import corpus  # slow to import; only these sets need it

    score = corpus.parse(corpus_path)
    sopranos = [p for p in score.parts if str(p.partName or "").lower().startswith("soprano")]
    return sopranos[0] if sopranos else score.parts[0] if score.parts else score


def _melody_intervals(corpus_path: str) -> list[int]:
    """Melodic intervals of a score's melody (`_melody_part`), repeated notes merged (a held note re-struck
    in another setting is the same melody)."""
    pitches = [n.pitch.midi for n in _melody_part(corpus_path).recurse().notes if n.isNote]
    merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    return [b - a for a, b in zip(merged, merged[1:], strict=False)]


def longest_shared_run(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest run of consecutive values that ``a`` and ``b`` share (longest common substring;
    dynamic programming, as no library here offers it for integer sequences)."""
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            run = prev[j] + 1 if x == y else 0
            cur.append(run)
            best = max(best, run)
        prev = cur
    return best


def one_tune(a: Sequence[int], b: Sequence[int], incipit: int | None = None) -> bool:
    """Whether two melodies (interval lists) are one tune: a shared run of `SHARED_PHRASE_INTERVALS`, or,
    given ``incipit``, the same first ``incipit`` intervals."""
    k = incipit or 0
    same_incipit = k > 0 and len(a) >= k and len(b) >= k and list(a[:k]) == list(b[:k])
    return same_incipit or longest_shared_run(a, b) >= SHARED_PHRASE_INTERVALS


class BeatGrid(NamedTuple):
    """A melody's stressed notes: the MIDI pitch sounding on each beat of its metre (the note last struck,
    held through rests; None before the first note)."""

    metre: str
    pitches: list[float | None]


def beat_grid(corpus_path: str) -> BeatGrid:
    """`BeatGrid` of a score's melody (`_melody_part`). Beats are those of its first time signature (a
    quarter without one), counted from its first full bar, so a pickup falls between them."""
    part = _melody_part(corpus_path)
    signatures = list(part.recurse().getElementsByClass("TimeSignature"))
    metre = signatures[0].ratioString if signatures else "?"
    beat = float(signatures[0].beatDuration.quarterLength) if signatures else 1.0
    bars = list(part.getElementsByClass("Measure"))
    # the second bar starts a full bar whether or not the first is a pickup
    t = float(bars[1].offset) % beat if len(bars) > 1 else 0.0
    notes = [
        (float(n.getOffsetInHierarchy(part)), float(n.pitch.midi)) for n in part.recurse().notes if n.isNote
    ]
    pitches: list[float | None] = []
    k = -1
    while notes and t <= notes[-1][0] + 1e-6:
        while k + 1 < len(notes) and notes[k + 1][0] <= t + 1e-6:
            k += 1
        pitches.append(notes[k][1] if k >= 0 else None)
        t += beat
    return BeatGrid(metre, pitches)


_TRANSPOSITIONS = np.arange(-11, 12)


def beat_agreement(a: BeatGrid, b: BeatGrid, window: int = BEAT_WINDOW) -> float:
    """The largest share of ``window`` consecutive beats on which ``a`` and ``b`` sound one pitch, over every
    alignment (a whole number of beats apart) and transposition; 0 for two metres or a melody shorter than
    ``window`` beats."""
    if a.metre != b.metre or min(len(a.pitches), len(b.pitches)) < window:
        return 0.0
    x = np.array([np.nan if p is None else p for p in a.pitches])
    y = np.array([np.nan if p is None else p for p in b.pitches])
    differences = x[:, None] - y[None, :]  # NaN (before a first note) equals nothing
    best = 0
    for k in range(window - len(x), len(y) - window + 1):
        same = np.diagonal(differences, k)[:, None] == _TRANSPOSITIONS[None, :]
        run = np.cumsum(np.vstack([np.zeros((1, len(_TRANSPOSITIONS)), int), same]), axis=0)
        best = max(best, int((run[window:] - run[:-window]).max()))
    return best / window


def _distinct_melodies(
    candidates: Iterable[str],
    n: int,
    index_name: str,
    cache: ProbeCache | str | Path | None,
    tune: Callable[[str], tuple[str, ...] | None] | None = None,
    incipit: int | None = None,
    beats_name: str | None = None,
) -> list[str]:
    """The first ``n`` of ``candidates`` (corpus paths) whose melody is not `one_tune` (with ``incipit``)
    with one kept before it and, given ``tune`` (a path's tune title), whose tune is not `same_tune` as one
    kept before it, nor note for note the melody of any earlier candidate; given ``beats_name``, nor whose
    `beat_agreement` with one kept before it reaches `BEAT_AGREEMENT`. Melodies are cached as JSON in
    ``index_name`` (beat grids in ``beats_name``); an unparsable score is left out."""
    c = _cache(cache)
    index_path = c.root / index_name
    index: dict[str, list[int] | None] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    beats_path = c.root / beats_name if beats_name else None
    grids: dict[str, list[Any]] = (
        json.loads(beats_path.read_text()) if beats_path and beats_path.is_file() else {}
    )
    grids_changed = False

    def grid(path: str) -> BeatGrid:
        nonlocal grids_changed
        if len(grids.get(path, ())) != len(BeatGrid._fields):  # absent, or written by an earlier layout
            grids[path] = list(beat_grid(path))
            grids_changed = True
        return BeatGrid(*grids[path])

    kept: list[tuple[str, list[int], tuple[str, ...] | None]] = []  # (path, melody, tune title)
    # Every melody met so far, left out or kept: music21 holds a few scores twice under two numbers (the
    # sopranos of bwv69.6 and bwv69.6-a, "Was Gott tut", agree note for note, and the catalogue titles
    # bwv69.6 for another chorale), so one whose twin was left out by its title must be left out too.
    seen: set[tuple[int, ...]] = set()
    changed = False
    for path in candidates:
        if len(kept) >= n:
            break
        if path not in index:
            try:
                index[path] = _melody_intervals(path)
            except Exception:  # an unparsable score is left out of the set, not fatal
                index[path] = None
            changed = True
        melody = index[path]
        if not melody:
            continue
        title = tune(path) if tune else None
        notes = tuple(melody)
        twin = notes in seen
        seen.add(notes)
        if twin or any(same_tune(title, t) for _, _, t in kept):
            continue
        if any(one_tune(melody, other, incipit) for _, other, _ in kept):
            continue
        if beats_path and any(beat_agreement(grid(path), grid(k)) >= BEAT_AGREEMENT for k, _, _ in kept):
            continue
        kept.append((path, melody, title))
    if changed:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        index_path.write_text(json.dumps(index, sort_keys=True))
    if beats_path and grids_changed:
        beats_path.parent.mkdir(parents=True, exist_ok=True)
        beats_path.write_text(json.dumps(grids, sort_keys=True))
    return [path for path, _, _ in kept]


def distinct_chorales(n: int, cache: ProbeCache | str | Path | None = None) -> list[str]:
    """Corpus paths of the first ``n`` Bach chorales (music21 iterator order) with distinct melodies.

    Many chorale tunes were harmonised by Bach more than once; two harmonisations of one tune are the same
    composition to a listener, so a chorale is kept only if its tune (`chorale_tune`, the catalogue's
    title) is not one kept before it and its soprano is not `one_tune` with one kept before it (a shared
    run or the same incipit, `SHARED_INCIPIT_INTERVALS`). The title catches settings whose soprano lines
    differ in passing notes and rhythm all the way through (bwv197.5 and bwv385, both "Nun bitten wir den
    heiligen Geist", share no such run); the run and the incipit catch tunes sung to other texts.
    """
    from music21 import corpus  # slow to import; only this set needs it

    return _distinct_melodies(
        corpus.chorales.Iterator(returnType="filename"),
        n,
        "chorale_sopranos.json",
        cache,
        chorale_tune,
        SHARED_INCIPIT_INTERVALS,
    )


def folk_tunes(n: int, cache: ProbeCache | str | Path | None = None) -> list[str]:
    """Corpus paths of ``n`` reels and jigs from Ryan's Mammoth Collection in music21, alternating reel/jig in
    name order, with distinct melodies: the collection prints some tunes twice under two names (ArbanaReel
    and BenButlersReel share a run of 61 intervals), so a tune is kept only as `distinct_chorales` keeps a
    chorale, and also only if its beats do not agree with a kept tune's (`BEAT_AGREEMENT`): variants of one
    tune differ between the beats."""
    from music21 import corpus  # slow to import; only this set needs it

    names = sorted(
        str(p).split("/corpus/")[1].rsplit(".", 1)[0]
        for p in corpus.corpora.CoreCorpus().getPaths()
        if "ryansMammoth" in str(p)
    )
    reels = [x for x in names if x.endswith("Reel")]
    jigs = [x for x in names if x.endswith("Jig")]
    alternating = [x for pair in zip(reels, jigs, strict=False) for x in pair]
    return _distinct_melodies(alternating, n, "folk_melodies.json", cache, beats_name="folk_beats.json")


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
    makers: Iterable[tuple[str, Callable[[], np.ndarray]]]
    if kind == "game_soundtrack":
        # one recording under two file names is one piece (`distinct_recordings`); lazily, so only the
        # files the set reaches are compared
        makers = (
            (t.name, partial(soundtrack_excerpt, t, seconds, cache=cache))
            for t in distinct_recordings(drascula_tracks(), cache)
        )
    elif kind in ("bach_chorales", "folk_tunes"):
        # Candidates beyond n stand in for the few scores music21 cannot expand (badly formed repeats).
        spare = n + 10 + n // 5
        works = (
            [
                CorpusWork(p.replace("/", "_"), kind, p, None, (ORGAN,), 80)
                for p in distinct_chorales(spare, cache)
            ]
            if kind == "bach_chorales"
            else [
                CorpusWork(p.split("/")[1], kind, p, None, (VIOLIN,), 110, 2)
                for p in folk_tunes(spare, cache)
            ]
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
