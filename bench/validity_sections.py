"""The validity benchmark's sections: each turns injected scores of the probe sets into its figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from bench.validity_engine import GateFn, NoveltyFn, QualityFn, Verdict
from bench.validity_sets import DEGENERATE_CLASSES, ProbeSets
from scoring import probes as P


def novelty_auc(sets: ProbeSets, novelty_fn: NoveltyFn) -> dict[str, object]:
    """AUC (Mann-Whitney) that real probes get a higher novelty than each degenerate class.

    Also scores the whole soundtrack files (``sets.whole``), which enter no AUC: each should get a novelty
    that reflects its structure, not zero (`validity_table.NEAR_ZERO_BP`).

    Returns ``{"auc": {class: AUC}, "real": {name: bp}, "degenerate": {name: bp}, "median": {class: bp},
    "whole": {name: bp}}``.
    """
    real = {p.name: novelty_fn(p.pcm) for p in sets.real}
    whole = {p.name: novelty_fn(p.pcm) for p in sets.whole}
    degenerate = {p.name: novelty_fn(p.pcm) for p in sets.degenerate}
    by_class = {c: [degenerate[p.name] for p in sets.degenerate if p.label == c] for c in DEGENERATE_CLASSES}
    auc = {c: P.auc_mann_whitney(list(real.values()), v) for c, v in by_class.items() if v and real}
    median = {"real": statistics.median(real.values()) if real else math.nan}
    median.update({c: statistics.median(v) for c, v in by_class.items() if v})
    return {"auc": auc, "real": real, "degenerate": degenerate, "median": median, "whole": whole}


def ladders(sets: ProbeSets, quality_fn: QualityFn) -> dict[str, object]:
    """Spearman rho of quality vs step for every (original, ladder), and the -6 dB copies' quality change.

    Returns ``{"rho": {ladder: {original: rho}}, "quality": {ladder: {original: [bp per step]}},
    "gain_pct": {original: |q(-6 dB) - q| / q * 100}}``.
    """
    rho: dict[str, dict[str, float]] = {}
    quality: dict[str, dict[str, list[float]]] = {}
    gain: dict[str, float] = {}
    originals = {p.source for p in sets.ladders}
    for orig in sorted(o for o in originals if o):
        steps = [p for p in sets.ladders if p.source == orig]
        base: float | None = None
        for ladder in P.LADDERS:
            seq = sorted((p for p in steps if p.label == ladder), key=lambda p: p.step)
            if not seq:
                continue
            q = [quality_fn(p.pcm) for p in seq]
            base = q[0] if base is None else base
            quality.setdefault(ladder, {})[orig] = q
            rho.setdefault(ladder, {})[orig] = P.spearman_rho([p.step for p in seq], q)
        quiet = [p for p in steps if p.label == "gain_-6dB"]
        if quiet:
            q0 = base if base is not None else quality_fn(next(s for s in sets.real if s.name == orig).pcm)
            qg = quality_fn(quiet[0].pcm)
            gain[orig] = abs(qg - q0) / q0 * 100.0 if q0 else (0.0 if qg == q0 else math.inf)
    return {"rho": rho, "quality": quality, "gain_pct": gain}


def derivatives(sets: ProbeSets, gate_fn: GateFn) -> dict[str, object]:
    """Derivative confusion table and same-style false positives.

    Mint order: every source, then a same-audio copy of each (ids ``<source>#copy``); each variant is then
    checked alone against them and counts as caught when duplicate_of or derivative_of is its source's id (a
    copy named instead is counted as ``named_copy``). Then each same-style set is minted in order into a new
    catalogue; every duplicate_of / derivative_of there is a false positive.

    Returns ``{"classes": {class: {"n", "caught", "named_copy", "named_other", "missed", "share"}},
    "copies": {...same fields for the copies...}, "false_positives": {set: {"n", "fp", "pairs"}},
    "misses": [variant names]}``.
    """
    minted = [(p.name, p.pcm) for p in sets.sources] + [(f"{p.name}#copy", p.pcm) for p in sets.sources]
    queries = [(p.name, p.pcm) for p in sets.variants]
    first, after = gate_fn(minted, queries) if minted else ([], [])

    def tally(rows: Sequence[tuple[str, str, Verdict]]) -> dict[str, dict[str, object]]:
        table: dict[str, dict[str, object]] = {}
        for cls, src, (dup, der) in rows:
            t = table.setdefault(cls, {"n": 0, "caught": 0, "named_copy": 0, "named_other": 0, "missed": 0})
            named = dup or der
            key = (
                "caught"
                if named == src
                else "named_copy"
                if named == f"{src}#copy"
                else "missed"
                if named is None
                else "named_other"
            )
            t["n"] = int(t["n"]) + 1  # type: ignore[call-overload]
            t[key] = int(t[key]) + 1  # type: ignore[call-overload]
        for t in table.values():
            t["share"] = int(t["caught"]) / int(t["n"])  # type: ignore[call-overload]
        return table

    copies = tally(
        [("copy", p.name, v) for p, v in zip(sets.sources, first[len(sets.sources) :], strict=True)]
    )
    rows = [(p.label, str(p.source), v) for p, v in zip(sets.variants, after, strict=True)]
    misses = [p.name for p, (_, _, (d, r)) in zip(sets.variants, rows, strict=True) if (d or r) != p.source]
    fps: dict[str, dict[str, object]] = {}
    for kind, probes in sets.negatives.items():
        verdicts, _ = gate_fn([(p.name, p.pcm) for p in probes], []) if probes else ([], [])
        pairs = [(p.name, d or r) for p, (d, r) in zip(probes, verdicts, strict=True) if d or r]
        fps[kind] = {"n": len(probes), "fp": len(pairs), "pairs": pairs}
    return {
        "classes": tally(rows),
        "copies": copies.get("copy", {}),
        "false_positives": fps,
        "misses": misses,
    }


def spread(sets: ProbeSets, novelty_fn: NoveltyFn) -> dict[str, object]:
    """Novelty of one piece on several instruments and SoundFonts: ``{"novelty": {name: bp}, "spread_pct":
    (max - min) / 10,000 * 100}``."""
    nov = {p.name: novelty_fn(p.pcm) for p in sets.spread}
    pct = (max(nov.values()) - min(nov.values())) / 100.0 if nov else math.nan
    return {"novelty": nov, "spread_pct": pct}
