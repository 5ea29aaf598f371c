"""Trial of candidate coherence inputs before one goes into the model: refit with each on the training split,
then read what it does to the validity benchmark's novelty rows and to music no model has seen.

The candidates (`CANDIDATES`):
- ``voice_leading`` (stop 21; model 7 adopted `beat_continuity`, another form of it): the ratio of the
  harmonic salience's change between adjacent beats to its change between beats 8..32 apart.
  - The salience (`scoring.salience.harmonic_salience`, fundamentals MIDI 36..96, the gate's partials) is
    averaged over each beat (`TrackFeatures.beat_times_s`; a 0.5 s grid when fewer than 8 beats),
    compressed as ``log(1 + 100 s / max s)`` and normalised to a distribution over pitch.
  - The distance of two beats is the earth mover's distance along the pitch axis (semitones), so a voice
    that moves by step costs little and one that jumps costs much, wherever the voices lie.
  - ``ratio = mean d(beat t, beat t + 1) / mean over lags 8..32 of d(beat t, beat t + lag)``. Composed
    music sits well under 1, a beat shuffle about 1.
- ``interval_ic`` (stop 28), as a 14th input: how predictable the clearly heard melody's intervals are from
  the piece itself, in bits per interval (`interval_surprisal`, IDyOM's short-term model over intervals up
  to order `IC_ORDER`), drawn towards `IC_PRIOR` when there are few intervals (as `melodic_leap` is).
  A leap that returns in one pattern (an arpeggio, a horn call) costs few bits, a random one many.
- ``surprising_leaps`` (stop 28), in place of `melodic_leap`: the share of intervals that leap and cost
  more than `SURPRISE_BITS` under that model, drawn towards the leap prior as `melodic_leap` is. An
  arpeggio's leaps stop counting once they have been heard; random notes' leaps keep counting.
- ``schematic_leaps`` (stop 29), in place of `melodic_leap`: the same share, with each interval's bits from
  IDyOM's two models together: the piece's own (short-term) and a long-term model of the intervals of the
  Essen folksong collection in music21's corpus (`load_interval_model`, built by
  `scripts/build_interval_model.py`), combined by `scoring.structure.entropy_weighted`; a leap counts when it
  costs more than `SCHEMATIC_BITS`. Leaps that melodies commonly make (a third, a fourth, an octave) cost
  less from the start, so a chorale's first leaps are not read as random.

For each model (the shipped inputs, then each candidate) it prints:
- the 5-fold cross-validated AUC of composed over each degenerate class of the training split
  (`scripts/build_coherence_model.py`'s set; folds keep every copy of one work together);
- on the validity benchmark's novelty and spread probes (`--quick` or `--full`), the AUC of real over each
  degenerate class, the spread of the instrumentation set and the lowest reals, with novelty computed as a
  probe scored alone gets it (no catalogue, so originality is 1): ``10000 G(M) P``;
- with ``--survey`` (folders of music files, decoded as uploads are), how many files score under 500 that
  way, and the lowest.

    .venv/bin/python bench/coherence_candidates.py --full                  # ~5 minutes, probes cached
    .venv/bin/python bench/coherence_candidates.py --full --candidate interval_ic \
        --survey /usr/share/games/xmoto/Textures/Musics --survey /usr/share/games/fillets-ng/music
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/: its scoring.py would hide the scoring package
sys.path.insert(1, str(ROOT / "scripts"))

from build_coherence_model import fit_logistic, training_set  # noqa: E402

from bench.survey import NEAR_ZERO_BP, folder_files  # noqa: E402
from bench.validity_sets import FULL, QUICK, build_sets  # noqa: E402
from scoring import melody, salience  # noqa: E402
from scoring.decode import decode_file  # noqa: E402
from scoring.errors import ScoringError  # noqa: E402
from scoring.features import extract_features  # noqa: E402
from scoring.novelty import COHERENCE_FEATURES, coherence_gate, coherence_inputs, predictability_gate  # noqa: E402
from scoring.probes import SR, auc_mann_whitney  # noqa: E402
from scoring.structure import entropy_weighted  # noqa: E402
from scoring.transforms import HOP, spectral_frames  # noqa: E402

LAGS = (8, 32)
TRAIN_CLASSES = ("loop", "shuffle", "loop2", "random", "tone", "noise")
VALIDITY_CLASSES = ("loops", "shuffles", "random_notes", "tones", "noise")
INTERVAL_RANGE = 24
"""Intervals beyond two octaves either way count as two octaves: 49 symbols."""
IC_ORDER = 3
"""Longest context, in intervals, of `interval_surprisal` for the stop 28 candidates."""
IC_PRIOR = 4.5
"""Bits per interval assumed before any evidence: about the middle of composed music measured here."""
IC_WEIGHT = 60.0
"""How many intervals the prior counts for (as `melody.WEIGHT` for the leap share)."""
SURPRISE_BITS = 5.0
"""A leap that costs more than this under the piece's own interval model counts as surprising."""
LTM_ORDER = 2
"""Longest context, in intervals, of the long-term interval model (`count_intervals`)."""
SCHEMATIC_BITS = 4.0
"""A leap that costs more than this under the piece's and the corpus' interval models together counts."""
INTERVAL_MODEL = ROOT / "bench" / "data" / "interval_model.json"
INTERVAL_MODEL_VERSION = "ami-intervals/1"
_SYMBOLS = 2 * INTERVAL_RANGE + 1
IntervalCounts = dict[tuple[int, ...], np.ndarray]
"""Counts of the next interval symbol (0..48 for -24..24 semitones) after each context of symbols."""


@dataclass
class Track:
    name: str
    label: str
    scalars: dict[str, float]
    candidates: dict[str, float]


def voice_leading_ratio(semitone_power: np.ndarray, beat_times_s: Sequence[float]) -> float:
    """The ``voice_leading`` candidate (module docstring); 1.0 when there are too few voiced beats to say."""
    sal = salience.harmonic_salience(semitone_power, 36, 96, salience.GATE_HARMONICS)
    n_frames = sal.shape[1]
    beats = np.round(np.asarray(beat_times_s) * SR / HOP).astype(int)
    if beats.size < 8:
        beats = np.arange(0, n_frames, int(0.5 * SR / HOP))
    beats = beats[(beats >= 0) & (beats < n_frames)]
    v = np.array([sal[:, a:b].mean(axis=1) for a, b in zip(beats[:-1], beats[1:], strict=True) if b > a])
    if v.shape[0] < 6:
        return 1.0
    energy = v.sum(axis=1)
    voiced = energy > energy.max() * 1e-4
    v = np.log1p(100.0 * v / max(v.max(), 1e-30))
    v = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-30)

    def dist(lag: int) -> float:
        ok = voiced[:-lag] & voiced[lag:]
        return (
            float(np.abs(np.cumsum(v[:-lag] - v[lag:], axis=1)).sum(axis=1)[ok].mean()) if ok.any() else 0.0
        )

    lo, hi = LAGS if v.shape[0] >= LAGS[1] + 2 else (2, max(3, v.shape[0] // 2))
    if np.count_nonzero(voiced[:-1] & voiced[1:]) < 4:
        return 1.0
    far = [dist(lag) for lag in range(lo, min(hi, v.shape[0] - 1) + 1)]
    return dist(1) / max(float(np.mean(far)), 1e-12)


def interval_symbols(pitches: np.ndarray) -> list[int]:
    """The intervals between successive MIDI pitches as symbols 0..48 (-24..24 semitones; wider: clipped)."""
    return (np.clip(np.diff(np.asarray(pitches)), -INTERVAL_RANGE, INTERVAL_RANGE) + INTERVAL_RANGE).tolist()


def _contexts(history: list[int], order: int) -> list[tuple[int, ...]]:
    """The contexts of the next symbol, shortest (order 0) first."""
    return [tuple(history[len(history) - k :]) for k in range(min(order, len(history)) + 1)]


def _ppm(counts: IntervalCounts, contexts: list[tuple[int, ...]]) -> np.ndarray:
    """PPM's escape method C (Moffat 1990) over ``contexts``, from a uniform floor up:
    ``p(x) = (c(x) + t * p_lower(x)) / (n + t)``, with n the context's count and t its distinct symbols (a
    context never seen passes p_lower on).

    Written by hand: no maintained library offers a PPM model over an arbitrary alphabet (IDyOM is Lisp)."""
    p = np.full(_SYMBOLS, 1.0 / _SYMBOLS)
    for context in contexts:
        seen = counts.get(context)
        if seen is not None:
            p = (seen + np.count_nonzero(seen) * p) / (seen.sum() + np.count_nonzero(seen))
    return p


def count_intervals(melodies: Iterable[np.ndarray], order: int = LTM_ORDER) -> IntervalCounts:
    """Counts of each interval after each context of up to ``order`` intervals within each melody (MIDI
    pitches): a long-term model for `interval_surprisal`."""
    counts: IntervalCounts = {}
    for pitches in melodies:
        history: list[int] = []
        for x in interval_symbols(pitches):
            for context in _contexts(history, order):
                counts.setdefault(context, np.zeros(_SYMBOLS))[x] += 1
            history.append(x)
    return counts


def load_interval_model(path: Path = INTERVAL_MODEL) -> IntervalCounts:
    """The long-term interval model written by `scripts/build_interval_model.py`."""
    data = json.loads(path.read_text())
    if data.get("version") != INTERVAL_MODEL_VERSION:
        raise ValueError(f"{path} is {data.get('version')!r}, not {INTERVAL_MODEL_VERSION}; rebuild it")
    counts: IntervalCounts = {}
    for context, row in data["counts"].items():
        key = tuple(int(v) + INTERVAL_RANGE for v in context.split()) if context else ()
        table = counts[key] = np.zeros(_SYMBOLS)
        for interval, n in row.items():
            table[int(interval) + INTERVAL_RANGE] = float(n)
    return counts


def interval_surprisal(
    phrases: list[np.ndarray], order: int = IC_ORDER, schematic: IntervalCounts | None = None
) -> np.ndarray:
    """Bits of each of the melody's intervals, in order, each predicted from those heard before it in the
    piece: IDyOM's short-term model (Pearce 2005) over intervals, with contexts of up to ``order`` intervals
    blended down to order 0 and a uniform floor by `_ppm`. The counts carry over from phrase to phrase;
    contexts do not cross a silence. With ``schematic`` (a long-term model, `count_intervals`), its
    prediction from contexts of up to `LTM_ORDER` intervals is combined with the piece's own by
    `scoring.structure.entropy_weighted`, as IDyOM combines its two models."""
    counts: IntervalCounts = {}
    bits: list[float] = []
    for phrase in phrases:
        history: list[int] = []
        for x in interval_symbols(phrase):
            contexts = _contexts(history, order)
            p = _ppm(counts, contexts)
            if schematic is not None:
                p = entropy_weighted(p, _ppm(schematic, _contexts(history, LTM_ORDER)), math.log2(_SYMBOLS))
            bits.append(-math.log2(float(p[x])))
            for context in contexts:
                counts.setdefault(context, np.zeros(_SYMBOLS))[x] += 1
            history.append(x)
    return np.asarray(bits, dtype=np.float64)


def interval_ic(bits: np.ndarray) -> float:
    """``(sum(bits) + IC_PRIOR * IC_WEIGHT) / (len(bits) + IC_WEIGHT)``: the ``interval_ic`` candidate."""
    return (float(bits.sum()) + IC_PRIOR * IC_WEIGHT) / (bits.size + IC_WEIGHT)


def surprising_leaps(phrases: list[np.ndarray], bits: np.ndarray, above: float = SURPRISE_BITS) -> float:
    """The ``surprising_leaps`` candidate: `melody.melodic_leap` counting only the leaps whose ``bits`` (one
    per interval of ``phrases``, in order) exceed ``above``."""
    steps = np.abs(melody.intervals(phrases))
    return melody.melodic_leap(
        int(steps.size), int(((steps >= melody.LEAP_SEMITONES) & (bits > above)).sum())
    )


def describe(items: list[tuple[str, str, np.ndarray]]) -> list[Track]:
    schematic = load_interval_model()
    out = []
    for name, label, pcm in items:
        feats = extract_features([pcm])[0]
        with torch.inference_mode():
            semis = spectral_frames(torch.from_numpy(np.asarray(pcm, np.float32))[None], SR)["semitone"][0]
        semitone_power = semis.numpy()
        phrases = melody.melodic_phrases(semitone_power, SR / HOP)
        bits = interval_surprisal(phrases)
        candidates = {
            "voice_leading": voice_leading_ratio(semitone_power, feats.beat_times_s),
            "interval_ic": interval_ic(bits),
            "surprising_leaps": surprising_leaps(phrases, bits),
            "schematic_leaps": surprising_leaps(
                phrases, interval_surprisal(phrases, schematic=schematic), SCHEMATIC_BITS
            ),
        }
        out.append(Track(name, label, feats.scalars, candidates))
    return out


Inputs = Callable[[Track], list[float]]
_LEAP = COHERENCE_FEATURES.index("melodic_leap")


def _replacing_leap(candidate: str) -> Inputs:
    def inputs(t: Track) -> list[float]:
        x = coherence_inputs(t.scalars)
        x[_LEAP] = t.candidates[candidate]
        return x

    return inputs


CANDIDATES: dict[str, tuple[str, Inputs]] = {
    "voice_leading": (
        "shipped inputs + voice-leading ratio",
        lambda t: [*coherence_inputs(t.scalars), t.candidates["voice_leading"]],
    ),
    "interval_ic": (
        "shipped inputs + interval IC",
        lambda t: [*coherence_inputs(t.scalars), t.candidates["interval_ic"]],
    ),
    "surprising_leaps": ("surprising leaps in place of melodic_leap", _replacing_leap("surprising_leaps")),
    "schematic_leaps": (
        "leaps surprising to the piece and the corpus together, in place of melodic_leap",
        _replacing_leap("schematic_leaps"),
    ),
}


def report(name: str, inputs: Inputs, train: list[Track], probes: list[Track], survey: list[Track]) -> None:
    x = np.array([inputs(t) for t in train])
    y = np.array([t.label == "composed" for t in train], dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    works = [t.name.split("@")[0] for t in train]
    rng = np.random.default_rng(0)
    fold = {w: int(rng.integers(5)) for w in sorted(set(works))}
    cv = np.zeros(len(train))
    for k in range(5):
        test = np.array([fold[w] == k for w in works])
        w, b = fit_logistic(z[~test], y[~test])
        cv[test] = 1.0 / (1.0 + np.exp(-(z[test] @ w + b)))
    labels = np.array([t.label for t in train])
    print(
        f"{name}\n  training CV AUC: "
        + ", ".join(
            f"{c} {auc_mann_whitney(cv[labels == 'composed'], cv[labels == c]):.3f}" for c in TRAIN_CLASSES
        )
    )
    w, b = fit_logistic(z, y)

    def alone(t: Track) -> float:
        m_z = b + float(((np.array(inputs(t)) - mean) / std) @ w)
        m = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, m_z))))
        return 10000.0 * coherence_gate(m) * predictability_gate(t.scalars)

    scores, plabels = np.array([alone(t) for t in probes]), np.array([t.label for t in probes])
    real = scores[plabels == "real"]
    print(
        "  validity AUC: "
        + ", ".join(f"{c} {auc_mann_whitney(real, scores[plabels == c]):.3f}" for c in VALIDITY_CLASSES)
    )
    spread = scores[plabels == "spread"]
    worst = sorted((s, t.name) for s, t in zip(scores, probes, strict=True) if t.label == "real")[:4]
    print(
        f"  spread {(spread.max() - spread.min()) / 100:.1f} %; lowest reals: "
        + ", ".join(f"{n} {s:.0f}" for s, n in worst)
    )
    if survey:
        read = sorted((alone(t), t.name) for t in survey)
        near_zero = sum(s < NEAR_ZERO_BP for s, _ in read)
        print(
            f"  survey: {near_zero} of {len(read)} under {NEAR_ZERO_BP}; lowest: "
            + ", ".join(f"{Path(n).name} {s:.0f}" for s, n in read[:8])
        )


def survey_items(folders: Sequence[Path]) -> list[tuple[str, str, np.ndarray]]:
    """Every audio file under ``folders``, decoded as an upload is; refusals are printed and left out."""
    items = []
    for f in (f for folder in folders for f in folder_files(folder)):
        try:
            items.append((str(f), "survey", decode_file(f).pcm))
        except ScoringError as exc:
            print(f"survey: skip {f}: {exc}", file=sys.stderr)
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the benchmark's full sets (default: quick)")
    ap.add_argument("--candidate", action="append", choices=sorted(CANDIDATES), help="default: every one")
    ap.add_argument("--survey", type=Path, action="append", default=[], help="a folder of music files")
    args = ap.parse_args()
    torch.set_num_threads(2)
    pcms, labels, names = training_set()
    train = describe(
        [
            (n, "composed" if lab else n.split("/")[0], p)
            for p, lab, n in zip(pcms, labels, names, strict=True)
        ]
    )
    sets = build_sets(FULL if args.full else QUICK, sections=("novelty", "spread"))
    probes = describe(
        [(p.name, "real", p.pcm) for p in sets.real]
        + [(p.name, p.label, p.pcm) for p in sets.degenerate]
        + [(p.name, "spread", p.pcm) for p in sets.spread]
    )
    survey = describe(survey_items(args.survey))
    report("shipped inputs", lambda t: coherence_inputs(t.scalars), train, probes, survey)
    for key in args.candidate or CANDIDATES:
        report(*CANDIDATES[key], train, probes, survey)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
