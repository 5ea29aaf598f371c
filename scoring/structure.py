"""Musical structure of a track: harmony events and their information content, repetition, tonality, rhythm.

Everything here is computed from the chroma and the onset envelope of `scoring.features` and is built to be
invariant to what a musician would call the same music played differently:
- level: every quantity is a ratio or a correlation;
- key: harmony is modelled as root movements (intervals), tonality by the DFT magnitudes of the pitch-class
  profile, and the chroma sequences used for matching are compared under the best transposition;
- tempo: harmony events are merged runs (so their count does not depend on tempo), rhythm is the scale
  transform of the onset autocorrelation (magnitude invariant to time scaling);
- instrument: chroma, not timbre (no MFCC here).

Information content follows IDyOM (Pearce 2005, 2018): a variable-order short-term model (PPM with escape
method C, interpolated) learns the piece as it unfolds, a long-term model trained on music21's corpus gives
the schematic expectation (`scripts/build_harmony_model.py`), and their predictions are combined by entropy
weighting. A loop becomes predictable after its first cycle (low IC), random material stays unpredictable (IC
near log2 of the alphabet), and composed music sits between: the inverted U of `scoring.novelty` is taken over
this quantity.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from scoring import ppm

STEP_FRAMES = 10
"""Chroma steps are taken every 10 STFT hops (10 x 512 samples at 22,050 Hz = 0.232 s)."""
STEP_WINDOW = 20
"""Each step sums the chroma power of 20 hops (0.46 s)."""
VOICED_DB = 40.0
"""A step is voiced when its chroma energy is within 40 dB of the track's loudest step."""
PITCHED_CONTRAST = (0.40, 0.50)
"""A step counts as pitched smoothly as its pitch-class contrast (1 - weakest / strongest pitch class's power)
goes from 0.40 to 0.50: a smooth weight, not a threshold, so float32 differences between devices cannot flip
a step and move novelty by a step's share."""
HOLD_SECONDS = (3.0, 6.0)
"""Evidence counts a chord event's steps fully for its first 3 s, then less, and none past 6 s
(`evidence_seconds`). Without it, 6 s of random notes followed by 24 s of one held chord read as 30 s of
music: the harmony's averages read the clip, and the chord only added seconds."""
LOOP_PERIOD_EVENTS = 4
"""A run of chord events that cycles with a period of 2 to 4 events ..."""
LOOP_CYCLES = 3
"""... sounds its cycle at least 3 times in a row ..."""
LOOP_CHORD_SECONDS = 1.0
"""... and holds each chord of the cycle for at least 1 s (its median over the run) is a loop: for evidence it
is one held harmony, whose hold clock starts at the loop's first event and is not restarted by the cycle's
changes (`loop_continuations`). Without it, 6 s of random notes followed by 24 s of two chords alternating
every 3 s read as 30 s of harmony that moves. A chord that keeps coming back for under 1 s is a neighbour
note of a melody over a pedal (an F pedal flickering to F# for 0.5 s under a march tune), which moves."""
LOOP_CYCLES_UNSUNG = 2
"""A run that cycles only twice is a loop too when no melody moves over it (since model 15): no note of the
clearly heard melody (`scoring.melody.note_changes`) begins inside any of its chords but the first, away
from the chord changes by more than `SUNG_MARGIN_STEPS`. Without it, 6 s of random notes followed by 24 s
of a slow three- or four-chord loop (2.7 and 2 cycles at 3 s a chord) read as 30 s of harmony that moves.
A four-chord phrase stated twice under a melody, as most songs are built, keeps counting."""
SUNG_MARGIN_STEPS = 1
"""A melody note that begins within one step (0.23 s) of a chord change moves with the chords (a block
chord's top voice), not over them."""
SPREAD_PITCH_CLASSES = (2.5, 4.0)
"""A step that names no triad counts as evidence smoothly as its chroma power spreads over 2.5 to 4 pitch
classes (participation ratio): a sine reads 1.85 and a sweep 2.0..3.5, where the real music this label
misses (dense mixes, textures) reads 4..11 at its 10th..90th percentile."""
MIN_CHORD_CORR = 0.35
"""A step gets a chord label when its mean-centred chroma correlates at least this much with a triad."""
MIN_RUN_STEPS = 2
"""A chord must hold for 2 steps (0.46 s) to count as an event (passing notes are not harmony changes)."""
N_CHORDS = 24
STM_ORDER = 2
REPEAT_SCALES_S = (4.0, 16.0)
"""Window lengths (seconds) of the repetition measure: phrase and section scale."""
RHYTHM_COEFFS = 16
HARMONY_MODEL_VERSION = "ami-harmony/1"
TREBLE_PREFIX = "treble_"
"""A track's `harmony_scalars` read from the upper voices' chroma (`scoring.transforms.TREBLE_FMIN_HZ` up)
carry this prefix among its scalars; `scoring.novelty` reads the harmony in both views."""


def _triad_templates() -> np.ndarray:
    """[24, 12] mean-centred unit triads: rows 0..11 major on C..B, 12..23 minor on C..B."""
    rows = []
    for third in (4, 3):
        for root in range(12):
            t = np.zeros(12)
            t[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
            rows.append(t)
    tm = np.array(rows)
    tm -= tm.mean(axis=1, keepdims=True)
    return tm / np.linalg.norm(tm, axis=1, keepdims=True)


_TRIADS = _triad_templates()


def _step_power(chroma_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed chroma power P_n of each `STEP_WINDOW`-hop window every `STEP_FRAMES` hops, [N, 12], and
    which windows are voiced (within `VOICED_DB` of the loudest)."""
    p = np.asarray(chroma_power, dtype=np.float64)
    t = p.shape[1]
    csum = np.concatenate((np.zeros((12, 1)), np.cumsum(p, axis=1)), axis=1)
    starts = np.arange(0, max(t - STEP_WINDOW, 0) + 1, STEP_FRAMES)
    stops = np.minimum(starts + STEP_WINDOW, t)
    win = (csum[:, stops] - csum[:, starts]).T
    energy = win.sum(axis=1)
    top = float(energy.max()) if energy.size else 0.0
    voiced = energy > top * 10.0 ** (-VOICED_DB / 10.0) if top > 0 else np.zeros(len(win), bool)
    return win, voiced


def chroma_steps(chroma_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-compressed, unit-norm chroma over `STEP_WINDOW`-hop windows every `STEP_FRAMES` hops.

    ``c_n = log(1 + 100 P_n / max_p P_n[p])`` with P_n the summed chroma power of window n, then
    L2-normalised.

    Args:
        chroma_power: [12, T] chroma power per STFT frame.

    Returns:
        (steps [N, 12] float64, voiced [N] bool); N >= 1.
    """
    win, voiced = _step_power(chroma_power)
    return _compressed(win), voiced


def _compressed(win: np.ndarray) -> np.ndarray:
    """The unit, log-compressed steps of `chroma_steps` from the summed step power."""
    peak = win.max(axis=1, keepdims=True)
    comp = np.log1p(100.0 * win / np.where(peak > 0, peak, 1.0))
    norm = np.linalg.norm(comp, axis=1, keepdims=True)
    return comp / np.where(norm > 0, norm, 1.0)


def pitched_seconds(chroma_power: np.ndarray, fps: float) -> float:
    """Seconds of pitched material: the voiced steps, each weighted by a smooth step of its pitch-class
    contrast ``1 - min_p P_n / max_p P_n`` over `PITCHED_CONTRAST`. Noise spreads its power evenly over the
    pitch classes (white, pink and brown noise: 0.11..0.35 at their 5th..50th percentile, never 0.45
    measured), pitched music does not (the validity probes' real music: 0.57..1.0 at its median). Silence is
    not voiced."""
    win, voiced = _step_power(chroma_power)
    return _seconds(_pitched_weight(win, voiced), fps)


def _seconds(weight: np.ndarray, fps: float) -> float:
    """Seconds of steps, each counted by its weight (an order-independent sum, so threads cannot move it)."""
    return float(math.fsum(weight.tolist())) * STEP_FRAMES / fps


def _pitched_weight(win: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Each step's weight in `pitched_seconds` (0 where unvoiced), from the summed step power."""
    top = win.max(axis=1)
    contrast = 1.0 - win.min(axis=1) / np.where(top > 0, top, 1.0)
    return np.where(voiced, smoothstep(contrast, *PITCHED_CONTRAST), 0.0)


def smoothstep(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    """The smooth step ``s^2 (3 - 2 s)``, ``s = clip((x - lo) / (hi - lo), 0, 1)``, elementwise: 0 below
    ``lo``, 1 above ``hi``, continuous with its slope (so a tiny change of ``x`` never jumps a score)."""
    s = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def evidence_seconds(chroma_power: np.ndarray, fps: float, note_frames: np.ndarray | None = None) -> float:
    """Seconds of pitched material that show harmony (`_evidence_weight`): the `pitched_seconds`, with a
    held chord counted for its first seconds only and a lone partial not at all. ``note_frames``: the frames
    at which the melody moves (`scoring.melody.note_changes`; None: no melody heard), for `_evidence`."""
    win, voiced = _step_power(chroma_power)
    lab = step_chords(_compressed(win), voiced)
    return _evidence(win, voiced, lab, _events(lab), fps, note_frames)


def loop_continuations(labels: np.ndarray, seconds: np.ndarray, sung: np.ndarray) -> np.ndarray:
    """Which chord events only continue a loop: [M] bool, True for every event of a run that cycles with a
    period of p = 2..`LOOP_PERIOD_EVENTS` events for at least `LOOP_CYCLES` cycles (`LOOP_CYCLES_UNSUNG`
    when no event of the run but its first is ``sung``), each chord of the cycle lasting
    `LOOP_CHORD_SECONDS` or more at its median, except the run's first event. (Consecutive events always
    differ, so a period of 1 is a held chord, which the hold clock already reads.) An honest repeat of a
    phrase cycles through more events, or fewer times, or carries a melody.

    Args:
        labels: [M] chord events (`chord_events`).
        seconds: [M] their durations in seconds.
        sung: [M] bool, a melody note begins inside the event (`_sung_events`).
    """
    out = np.zeros(labels.size, dtype=bool)
    quiet = ~np.asarray(sung, dtype=bool)
    fewest = min(LOOP_CYCLES, LOOP_CYCLES_UNSUNG)
    for p in range(2, LOOP_PERIOD_EVENTS + 1):
        if labels.size < fewest * p:
            break
        same = np.concatenate(([False], labels[p:] == labels[:-p], [False]))
        # same[j + 1]: event j + p repeats event j. A run of True over j = a..b makes events a..b + p cycle.
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        for a, end in zip(edges[::2], edges[1::2], strict=True):
            cycles = LOOP_CYCLES_UNSUNG if quiet[a + 1 : end + p].all() else LOOP_CYCLES
            if end - a < (cycles - 1) * p:  # events a..end + p - 1: fewer than `cycles` cycles
                continue
            cycled = seconds[a : end + p]
            if all(np.median(cycled[k::p]) >= LOOP_CHORD_SECONDS for k in range(p)):
                out[a + 1 : end + p] = True
    return out


def _sung_events(onsets: np.ndarray, n_steps: int, note_frames: np.ndarray) -> np.ndarray:
    """[M] bool: a note of the melody begins inside chord event k, whose steps run from ``onsets[k]`` to
    the next event's onset (the last to ``n_steps``), more than `SUNG_MARGIN_STEPS` from either end."""
    ends = np.append(onsets[1:], n_steps)[: onsets.size]  # no events: no ends
    notes = np.asarray(note_frames, dtype=np.int64) // STEP_FRAMES
    lo = np.searchsorted(notes, onsets + SUNG_MARGIN_STEPS + 1, side="left")
    hi = np.searchsorted(notes, ends - SUNG_MARGIN_STEPS, side="left")
    return np.asarray(hi > lo)


def _evidence(
    win: np.ndarray,
    voiced: np.ndarray,
    lab: np.ndarray,
    events: tuple[np.ndarray, np.ndarray, np.ndarray],
    fps: float,
    note_frames: np.ndarray | None = None,
) -> float:
    """`evidence_seconds` from the summed step power, the voiced steps, the per-step chords, their events
    (`_events`) and the frames where the melody moves (None: no melody heard). The hold clock restarts where
    an event begins that does not only continue a loop."""
    labels, durations, onsets = events
    frames = np.zeros(0, np.int64) if note_frames is None else note_frames
    sung = _sung_events(onsets, lab.shape[0], frames)
    restarts = onsets[~loop_continuations(labels, durations * (STEP_FRAMES / fps), sung)]
    return _seconds(_pitched_weight(win, voiced) * _evidence_weight(win, lab, restarts, fps), fps)


def _evidence_weight(win: np.ndarray, lab: np.ndarray, restarts: np.ndarray, fps: float) -> np.ndarray:
    """How much each step's pitched time counts as evidence of structure, in [0, 1].

    - A step that names a triad: ``1 - smoothstep(t; HOLD_SECONDS)`` with t the time since the latest of
      ``restarts`` (the steps where chord events begin, a loop counting as one event: `loop_continuations`),
      and 1 before the first: a held chord, or two chords rocking back and forth, show nothing new once
      their first seconds are heard.
    - A step that names none: ``smoothstep(spread; SPREAD_PITCH_CLASSES)`` with spread the participation
      ratio ``(sum_p P_p)^2 / sum_p P_p^2`` of its chroma power: a texture, a cluster or a dense mix spreads
      over several pitch classes and counts; a lone partial (a sine, a sweep) is not harmony.
    """
    step = np.arange(lab.shape[0])
    since = np.zeros(step.shape[0])  # before the first event, and with none at all: nothing held yet
    if restarts.size:
        idx = np.searchsorted(restarts, step, side="right") - 1
        since = np.where(idx >= 0, step - restarts[np.maximum(idx, 0)], 0)
    held = 1.0 - smoothstep(since * (STEP_FRAMES / fps), *HOLD_SECONDS)
    total = win.sum(axis=1)
    spread = total * total / np.maximum((win * win).sum(axis=1), 1e-300)
    return np.where(lab >= 0, held, smoothstep(spread, *SPREAD_PITCH_CLASSES))


def step_chords(steps: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """The triad (0..23) best correlated with each step, or -1 where the step is unvoiced or no triad reaches
    `MIN_CHORD_CORR`: [N] int64."""
    x = steps - steps.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norm > 0, norm, 1.0)
    corr = x @ _TRIADS.T
    lab = np.argmax(corr, axis=1)
    ok = voiced & (corr[np.arange(len(lab)), lab] >= MIN_CHORD_CORR)
    return np.where(ok, lab, -1).astype(np.int64)


def _events(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`chord_events` from the per-step chords, with the step at which each event begins."""
    runs: list[list[int]] = []
    for i, v in enumerate(lab.tolist()):
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1, i])
    labels: list[int] = []
    durs: list[int] = []
    onsets: list[int] = []
    for v, n, start in runs:
        if v < 0 or n < MIN_RUN_STEPS:
            continue
        if labels and labels[-1] == v:
            durs[-1] += n
        else:
            labels.append(v)
            durs.append(n)
            onsets.append(start)
    return np.array(labels, dtype=np.int64), np.array(durs, dtype=np.int64), np.array(onsets, dtype=np.int64)


def chord_events(steps: np.ndarray, voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmony events: the triad (0..23) best correlated with each voiced step (`step_chords`), runs shorter
    than `MIN_RUN_STEPS` merged into their neighbours, consecutive repeats merged.

    Returns:
        (labels [M] int64, durations [M] in steps).
    """
    labels, durations, _ = _events(step_chords(steps, voiced))
    return labels, durations


def _quality(label: int) -> str:
    return "M" if label < 12 else "m"


def transition_token(a: int, b: int) -> str:
    """Key-invariant name of the chord change a -> b: ``from_quality|root interval mod 12|to_quality``."""
    return f"{_quality(a)}|{(b % 12 - a % 12) % 12}|{_quality(b)}"


@dataclass(frozen=True)
class HarmonyModel:
    """Long-term model: unigram and bigram counts of transition tokens from the corpus."""

    unigram: dict[str, int]
    bigram: dict[str, int]
    version: str


@lru_cache(maxsize=1)
def load_harmony_model() -> HarmonyModel:
    """The shipped model (scoring/data/harmony_model.json, built by scripts/build_harmony_model.py)."""
    raw = resources.files("scoring").joinpath("data/harmony_model.json").read_bytes()
    doc = json.loads(raw)
    return HarmonyModel(
        {k: int(v) for k, v in doc["unigram"].items()},
        {k: int(v) for k, v in doc["bigram"].items()},
        str(doc["version"]),
    )


@lru_cache(maxsize=1)
def harmony_model_digest() -> str:
    """``sha256:`` + 16 hex digits of the shipped harmony model file (recorded in score versions)."""
    raw = resources.files("scoring").joinpath("data/harmony_model.json").read_bytes()
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def _ltm_distribution(model: HarmonyModel, prev2: int | None, prev: int) -> np.ndarray:
    """P_LTM(next chord | two previous chords) over the 24 chords (0 at ``prev``): interpolated bigram of
    tokens over a unigram with add-one smoothing, both restricted to changes away from ``prev``."""
    cand = [c for c in range(N_CHORDS) if c != prev]
    toks = [transition_token(prev, c) for c in cand]
    uni = np.array([model.unigram.get(t, 0) + 1.0 for t in toks])
    p = uni / uni.sum()
    if prev2 is not None:
        head = transition_token(prev2, prev) + ">"
        big = np.array([float(model.bigram.get(head + t, 0)) for t in toks])
        n, u = big.sum(), float(np.count_nonzero(big))
        if n > 0:
            p = (big + u * p) / (n + u)
    out = np.zeros(N_CHORDS)
    out[cand] = p
    return out


def _stm_distribution(
    counts: dict[tuple[int, ...], np.ndarray], history: list[int], prev: int | None
) -> np.ndarray:
    """P_STM(next chord | history) by PPM-C blending over orders 0..`STM_ORDER`, uniform below order 0,
    the previous chord excluded (events never repeat it)."""
    floor = np.ones(N_CHORDS)
    if prev is not None:
        floor[prev] = 0.0
    floor /= floor.sum()
    tables = []
    for context in ppm.contexts(history, STM_ORDER):
        table = counts.get(context)
        if table is not None:
            c = table.copy()
            if prev is not None:
                c[prev] = 0.0
            tables.append(c)
    return ppm.escape_c(floor, tables)


def information_content(
    labels: np.ndarray, model: HarmonyModel | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """IDyOM-style information content of each chord event, in bits.

    The short-term (STM) and long-term (LTM) predictions are combined by `scoring.ppm.entropy_weighted`.
    ``IC_i = -log2 P(e_i | e_<i)``; the first event has no prediction and is left out.

    Returns:
        (ic [M - 1] bits, entropy [M - 1] bits of the combined prediction).
    """
    mdl = model if model is not None else load_harmony_model()
    seq = [int(v) for v in labels]
    counts: dict[tuple[int, ...], np.ndarray] = {}
    ics: list[float] = []
    ents: list[float] = []
    hmax = math.log2(N_CHORDS - 1)
    for i, s in enumerate(seq):
        if i > 0:
            prev = seq[i - 1]
            stm = _stm_distribution(counts, seq[:i], prev)
            ltm = _ltm_distribution(mdl, seq[i - 2] if i > 1 else None, prev)
            comb = ppm.entropy_weighted(stm, ltm, hmax)
            ics.append(-math.log2(max(float(comb[s]), 1e-12)))
            nz = comb[comb > 0]
            ents.append(float(-(nz * np.log2(nz)).sum()))
        for context in ppm.contexts(seq[:i], STM_ORDER):
            counts.setdefault(context, np.zeros(N_CHORDS))[s] += 1.0
    return np.array(ics), np.array(ents)


def _centred_unit(steps: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Chroma steps minus the track's mean voiced step, unit-normalised. A step that does not differ from the
    mean (static material: a held tone) becomes one fixed unit vector, so static material repeats itself
    exactly instead of turning rounding noise into random directions."""
    x = steps - (steps[voiced].mean(axis=0) if voiced.any() else steps.mean(axis=0))
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    static = norm[:, 0] <= 1e-6
    x = x / np.where(static[:, None], 1.0, norm)
    x[static] = np.eye(12)[0]
    return x


def repetition(steps: np.ndarray, voiced: np.ndarray, window_steps: int) -> float:
    """Share of the track that restates earlier material at one time scale, in [0, 1].

    With x_n the mean-centred unit chroma steps, ``r_n = max_{lag >= W} mean_{k<W} <x_{n+k}, x_{n+k-lag}>``
    (the best earlier match of the W-step window starting at n); the result is the mean over windows of
    ``clip(r_n, 0, 1)``: a loop gives ~1, unrelated material ~0, composed music with recurring
    sections between.
    """
    x = _centred_unit(steps, voiced)
    n = x.shape[0]
    w = int(window_steps)
    if n < 2 * w or w < 1:
        return 0.0
    best = np.full(n - w + 1, -1.0)
    for lag in range(w, n - w + 1):
        d = np.einsum("ij,ij->i", x[lag:], x[:-lag])
        c = np.concatenate(([0.0], np.cumsum(d)))
        win = (c[w:] - c[:-w]) / w  # window starting at lag + j, compared with j
        np.maximum(best[lag:], win, out=best[lag:])
    valid = best[w:]
    return float(np.clip(valid, 0.0, 1.0).mean()) if valid.size else 0.0


def tonal_profile(steps: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Key-invariant tonal shape: |DFT_k| / DFT_0 (k = 1..6) of the mean pitch-class profile of the voiced
    steps (Amiot/Yust: k = 5 measures diatonicity, 3 triadic/augmented, 4 octatonic, 6 whole-tone, 1 and 2
    chromatic clustering); then the same of the local profiles (8 s windows), averaged: [12]."""

    def dft_mag(profile: np.ndarray) -> np.ndarray:
        f = np.fft.rfft(profile)
        return np.abs(f[1:7]) / max(abs(f[0]), 1e-12)

    sel = steps[voiced] if voiced.any() else steps
    glob = dft_mag(sel.mean(axis=0))
    w = 34  # 34 steps ~ 8 s
    if sel.shape[0] >= w:
        locs = [dft_mag(sel[s : s + w].mean(axis=0)) for s in range(0, sel.shape[0] - w + 1, w // 2)]
        local = np.mean(locs, axis=0)
    else:
        local = glob
    return np.concatenate((glob, local))


def rhythm_scale_transform(onset_env: np.ndarray, fps: float) -> np.ndarray:
    """Tempo-invariant rhythm descriptor: magnitude of the scale transform of the onset autocorrelation.

    ``A(tau)`` is the autocorrelation of the mean-removed onset envelope for tau in [0.05, 4] s, normalised at
    tau = 0. On u = ln tau (uniform grid), ``S(c) = |FFT_u(A(e^u) e^{u/2})|`` (Holzapfel & Stylianou 2011); a
    tempo change scales tau, which only shifts u, so |S| is unchanged. The first `RHYTHM_COEFFS` magnitudes,
    L2-normalised; zeros when there is no onset activity.
    """
    e = np.asarray(onset_env, dtype=np.float64)
    e = e - e.mean()
    if e.size < 8 or not np.any(e):
        return np.zeros(RHYTHM_COEFFS)
    nfft = 1 << int(math.ceil(math.log2(2 * e.size)))
    acf = np.fft.irfft(np.abs(np.fft.rfft(e, n=nfft)) ** 2, n=nfft)[: e.size]
    if acf[0] <= 0:
        return np.zeros(RHYTHM_COEFFS)
    acf = acf / acf[0]
    lags_s = np.arange(e.size) / fps
    u = np.linspace(math.log(0.05), math.log(min(4.0, lags_s[-1])), 128)
    a = np.interp(np.exp(u), lags_s, acf) * np.exp(u / 2.0)
    mag = np.abs(np.fft.rfft(a * np.hanning(a.size)))[:RHYTHM_COEFFS]
    n = np.linalg.norm(mag)
    return mag / n if n > 0 else mag


def transition_histogram(labels: np.ndarray) -> np.ndarray:
    """Key-invariant harmony vocabulary: shares of the 48 (from quality, root interval, to quality) chord
    changes among the track's events, [48] (zeros with fewer than two events)."""
    h = np.zeros(48)
    for a, b in zip(labels[:-1].tolist(), labels[1:].tolist(), strict=True):
        idx = (0 if a < 12 else 24) + ((b % 12 - a % 12) % 12) * 2 + (0 if b < 12 else 1)
        h[idx] += 1.0
    s = h.sum()
    return h / s if s > 0 else h


def persistence(steps: np.ndarray, voiced: np.ndarray, lag: int) -> float:
    """Harmonic persistence at one lag: mean cosine similarity of mean-centred chroma steps ``lag`` apart,
    ``P(l) = mean_n <x_n, x_{n+l}>`` in [-1, 1]. Composed music keeps its harmonic context for a second or
    more (P(4 steps ~ 0.9 s) mostly > 0.1); slices put in a random order, or random notes, lose it (~0)."""
    x = _centred_unit(steps, voiced)
    if x.shape[0] <= lag:
        return 0.0
    return float(np.einsum("ij,ij->i", x[lag:], x[:-lag]).mean())


def metrical_repetition(onset_env: np.ndarray, fps: float, lo_s: float = 1.0, hi_s: float = 5.0) -> float:
    """How strongly the rhythm repeats at the bar level: the largest unbiased autocorrelation of the
    mean-removed onset envelope over lags of ``lo_s``..``hi_s`` seconds (one to a few bars),
    ``max_l A(l) / A(0) * N / (N - l)``. Metred music repeats its rhythmic pattern bar after bar (0.35..0.9
    measured on composed music); random notes and beat slices put in a random order lose it (0.1..0.5)."""
    e = np.asarray(onset_env, dtype=np.float64)
    e = e - e.mean()
    n = e.size
    lags = np.arange(int(lo_s * fps), min(int(hi_s * fps), n - 1))
    if lags.size == 0 or not np.any(e):
        return 0.0
    acf = np.fft.irfft(np.abs(np.fft.rfft(e, n=2 * n)) ** 2, n=2 * n)[:n]
    if acf[0] <= 0:
        return 0.0
    return float(np.max(acf[lags] / acf[0] * n / (n - lags)))


def tonal_clarity(chroma_power: np.ndarray) -> float:
    """Pitch-class contrast of the track: ``1 - min_p m_p / max_p m_p`` with m the mean over frames of each
    frame's chroma divided by its largest bin (frames below -60 dB of the loudest left out). Noise ~0.1,
    pitched music 0.5..1."""
    p = np.asarray(chroma_power, dtype=np.float64)
    peak = p.max(axis=0)
    keep = peak > peak.max() * 1e-6 if peak.size and peak.max() > 0 else np.zeros(peak.shape, bool)
    if not keep.any():
        return 0.0
    m = (p[:, keep] / peak[keep]).mean(axis=1)
    return float(1.0 - m.min() / max(m.max(), 1e-12))


@dataclass(frozen=True)
class Structure:
    """Structural description of one track.

    Attributes:
        scalars: n_events, events_per_s, ic_mean and ic_late (bits; all events, second half),
            entropy_mean (bits), repetition_4s, repetition_16s, persistence_1 / _2 / _4 (lags of 1, 2, 4
            steps), tonal_clarity, tonal_strength (|DFT_5| of the profile), voiced_ratio, pitched_s
            (`pitched_seconds`), evidence_s (`evidence_seconds`).
        vector: the key-, tempo- and level-invariant structural vector (`structure_vector`).
    """

    scalars: dict[str, float]
    vector: np.ndarray


def _harmony(
    chroma_power: np.ndarray, fps: float, note_frames: np.ndarray | None
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The chroma-borne scalars of `describe`, the chord labels and the tonal profile."""
    # The step power once, for both the chord steps and the pitched seconds.
    win, voiced = _step_power(chroma_power)
    steps = _compressed(win)
    lab = step_chords(steps, voiced)
    labels, durations, onsets = _events(lab)
    ic, ent = information_content(labels)
    step_s = STEP_FRAMES / fps
    voiced_s = max(float(voiced.sum()) * step_s, step_s)
    tonal = tonal_profile(steps, voiced)
    half = ic[ic.size // 2 :]
    scalars = {
        "n_events": float(labels.size),
        "chord_coverage": float(durations.sum()) / max(1.0, float(voiced.sum())),
        "events_per_s": float(labels.size / voiced_s),
        "ic_mean": float(ic.mean()) if ic.size else 0.0,
        "ic_late": float(half.mean()) if half.size else 0.0,
        "entropy_mean": float(ent.mean()) if ent.size else 0.0,
        "repetition_4s": repetition(steps, voiced, int(round(REPEAT_SCALES_S[0] / step_s))),
        "repetition_16s": repetition(steps, voiced, int(round(REPEAT_SCALES_S[1] / step_s))),
        "persistence_1": persistence(steps, voiced, 1),
        "persistence_2": persistence(steps, voiced, 2),
        "persistence_4": persistence(steps, voiced, 4),
        "tonal_clarity": tonal_clarity(chroma_power),
        "tonal_strength": float(tonal[4]),
        "voiced_ratio": float(voiced.mean()) if voiced.size else 0.0,
        "pitched_s": _seconds(_pitched_weight(win, voiced), fps),
        "evidence_s": _evidence(win, voiced, lab, (labels, durations, onsets), fps, note_frames),
    }
    return scalars, labels, tonal


def harmony_scalars(
    chroma_power: np.ndarray, fps: float, note_frames: np.ndarray | None = None
) -> dict[str, float]:
    """The scalars of `describe` that come from the chroma (all but metrical_repetition), for a second view
    of the harmony such as the upper voices' chroma."""
    return _harmony(chroma_power, fps, note_frames)[0]


def describe(
    chroma_power: np.ndarray, onset_env: np.ndarray, fps: float, note_frames: np.ndarray | None = None
) -> Structure:
    """The `Structure` of a track from its chroma power [12, T] and onset envelope [T] at ``fps`` frames/s,
    and the frames where its melody moves to a new note (`scoring.melody.note_changes`; None: no melody
    heard, which only `evidence_s` reads)."""
    scalars, labels, tonal = _harmony(chroma_power, fps, note_frames)
    scalars["metrical_repetition"] = metrical_repetition(onset_env, fps)
    vector = structure_vector(
        scalars, transition_histogram(labels), tonal, rhythm_scale_transform(onset_env, fps)
    )
    return Structure(scalars, vector)


_SCALAR_BLOCK = 9
STRUCTURE_DIM = 48 + 12 + RHYTHM_COEFFS + _SCALAR_BLOCK
"""Length of `Structure.vector`."""


def structure_vector(
    s: dict[str, float], transitions: np.ndarray, tonal: np.ndarray, rhythm: np.ndarray
) -> np.ndarray:
    """Concatenation of unit-normalised, weighted blocks, then unit-normalised: chord-change vocabulary (48,
    weight 1.0), tonal DFT profile (12, 0.8), rhythm scale transform (16, 0.8), structure scalars (9, 0.8):
    IC mean / 5, entropy / 5, log2(1 + events/s) / 2, repetition at 4 s and 16 s, persistence at 2 and 4
    steps, tonal clarity, voiced ratio."""

    def unit(v: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(v)
        return v / n if n > 0 else v

    scal = np.array(
        [
            s["ic_mean"] / 5.0,
            s["entropy_mean"] / 5.0,
            math.log2(1.0 + s["events_per_s"]) / 2.0,
            s["repetition_4s"],
            s["repetition_16s"],
            s["persistence_2"],
            s["persistence_4"],
            s["tonal_clarity"],
            s["voiced_ratio"],
        ]
    )
    assert scal.shape[0] == _SCALAR_BLOCK
    out = np.concatenate((1.0 * unit(transitions), 0.8 * unit(tonal), 0.8 * unit(rhythm), 0.8 * unit(scal)))
    return unit(out)
