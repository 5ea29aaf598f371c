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
- ``interval_ic`` (stop 28), as a 14th input: how expected the clearly heard melody's intervals are, in bits
  per interval (`scoring.intervals.surprisal`: the piece's own model and the corpus' together), drawn
  towards `IC_PRIOR` when there are few intervals (as `melody.melodic_leap` is).
- ``leap_share`` in place of ``surprising_leap``: every leap counts (`melodic_leap`, model 9's input), on
  model 10's notes.
- ``piece_only_leaps`` (stop 28's ``surprising_leaps``) in place of ``surprising_leap``: leaps surprising to
  the piece's own model alone, without the corpus' (stop 28: random notes 0.941, spread 31 %).

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
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/: its scoring.py would hide the scoring package
sys.path.insert(1, str(ROOT / "scripts"))

from build_coherence_model import fit_logistic, training_set  # noqa: E402

from bench.survey import NEAR_ZERO_BP, folder_files  # noqa: E402
from bench.validity_sets import FULL, QUICK, build_sets  # noqa: E402
from scoring import intervals, melody, salience  # noqa: E402
from scoring.decode import decode_file  # noqa: E402
from scoring.errors import ScoringError  # noqa: E402
from scoring.features import extract_features  # noqa: E402
from scoring.novelty import COHERENCE_FEATURES, coherence_inputs, read_harmony  # noqa: E402
from scoring.probes import SR, auc_mann_whitney  # noqa: E402
from scoring.transforms import HOP, spectral_frames  # noqa: E402

LAGS = (8, 32)
TRAIN_CLASSES = ("loop", "shuffle", "loop2", "random", "tone", "noise")
VALIDITY_CLASSES = ("loops", "shuffles", "random_notes", "tones", "noise")
IC_PRIOR = 4.5
"""Bits per interval assumed before any evidence: about the middle of composed music measured here."""
IC_WEIGHT = 60.0
"""How many intervals the prior counts for (as `melody.WEIGHT` for the leap share)."""


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


def interval_ic(bits: np.ndarray) -> float:
    """``(sum(bits) + IC_PRIOR * IC_WEIGHT) / (len(bits) + IC_WEIGHT)``: the ``interval_ic`` candidate."""
    return (float(bits.sum()) + IC_PRIOR * IC_WEIGHT) / (bits.size + IC_WEIGHT)


def describe(items: list[tuple[str, str, np.ndarray]]) -> list[Track]:
    schematic = intervals.load_interval_model()
    out = []
    for name, label, pcm in items:
        feats = extract_features([pcm])[0]
        with torch.inference_mode():
            semis = spectral_frames(torch.from_numpy(np.asarray(pcm, np.float32))[None], SR)["semitone"][0]
        semitone_power = semis.numpy()
        phrases = melody.melodic_phrases(semitone_power, SR / HOP)
        transitions = int(melody.intervals(phrases).size)
        candidates = {
            "voice_leading": voice_leading_ratio(semitone_power, feats.beat_times_s),
            "interval_ic": interval_ic(intervals.surprisal(phrases, schematic)),
            "piece_only_leaps": melody.melodic_leap(
                transitions, melody.surprising_leaps(phrases, intervals.surprisal(phrases))
            ),
            "leap_share": feats.scalars["melodic_leap"],
        }
        out.append(Track(name, label, feats.scalars, candidates))
    return out


Inputs = Callable[[Track], list[float]]
_LEAP = COHERENCE_FEATURES.index("surprising_leap")


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
    "leap_share": (
        "every leap (model 9's melodic_leap) in place of surprising_leap",
        _replacing_leap("leap_share"),
    ),
    "piece_only_leaps": (
        "leaps surprising to the piece's own model alone, in place of surprising_leap",
        _replacing_leap("piece_only_leaps"),
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
        def m_of(seen: Mapping[str, float]) -> float:
            m_z = b + float(((np.array(inputs(replace(t, scalars=dict(seen)))) - mean) / std) @ w)
            return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, m_z))))

        return 10000.0 * read_harmony(t.scalars, m_of).credit

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
