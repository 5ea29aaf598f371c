"""The validity benchmark's table: one line per figure, with its target and whether it passes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from bench.validity_sets import DEGENERATE_CLASSES
from scoring import probes as P

TARGET_AUC = 0.95
TARGET_RHO = -1.0
TARGET_GAIN_PCT = 1.0
TARGET_CAUGHT = 0.95
TARGET_FP = 0
TARGET_SPREAD_PCT = 10.0
NEAR_ZERO_BP = 500.0
"""A whole soundtrack file under 5 % of the scale counts as scored zero (the issue: real music in a covered
genre gets a novelty that reflects its structure, "not a 0 from the gate")."""

Row = tuple[str, str, str, str, str]
"""(section, measure, value, target, PASS/FAIL or "" for an information line) of the table."""


def _ok(flag: bool) -> str:
    return "PASS" if flag else "FAIL"


def novelty_rows(nov: dict[str, Any]) -> list[Row]:
    """The lowest real pieces (info), the whole soundtrack files scored near zero (target none), and one AUC
    line per degenerate class."""
    rows: list[Row] = []
    n_real = len(nov["real"])
    if nov["real"]:
        # Not a target of its own: the lowest real pieces show what the AUC lines hide.
        low = sorted(nov["real"].items(), key=lambda kv: kv[1])[:3]
        text = ", ".join(f"{k.split('/', 1)[1]} {v:.0f}" for k, v in low)
        rows.append(("novelty real", f"lowest of {n_real}: {text}", f"{low[0][1]:.0f}", "info", ""))
    whole = nov.get("whole") or {}
    if whole:
        near_zero = sorted((v, k.split("/", 1)[1]) for k, v in whole.items() if v < NEAR_ZERO_BP)
        shown = near_zero or sorted((v, k.split("/", 1)[1]) for k, v in whole.items())[:1]
        text = ", ".join(f"{k} {v:.0f}" for v, k in shown)
        rows.append(
            (
                "novelty whole files",
                f"{len(near_zero)} of {len(whole)} under {NEAR_ZERO_BP:.0f}"
                + (f": {text}" if near_zero else f"; lowest {text}"),
                f"{len(near_zero)}",
                "0",
                _ok(not near_zero),
            )
        )
    for cls in DEGENERATE_CLASSES:
        if cls in nov["auc"]:
            a = nov["auc"][cls]
            n = sum(1 for k in nov["degenerate"] if k.startswith(f"degenerate/{cls}/"))
            med = f"median {nov['median']['real']:.0f} vs {nov['median'][cls]:.0f}"
            rows.append(
                (
                    "novelty AUC",
                    f"real({n_real}) vs {cls}({n}); {med}",
                    f"{a:.3f}",
                    ">= 0.95",
                    _ok(a >= TARGET_AUC),
                )
            )
    return rows


def ladder_rows(lad: dict[str, Any]) -> list[Row]:
    """One Spearman rho line per ladder, and the largest quality change of a -6 dB copy."""
    rows: list[Row] = []
    for ladder, per in lad["rho"].items():
        vals = list(per.values())
        worst = max(vals, key=lambda r: -2.0 if math.isnan(r) else r)
        text = " ".join("nan" if math.isnan(r) else f"{r:+.2f}" for r in vals)
        passed = all(not math.isnan(r) and r <= TARGET_RHO + 1e-9 for r in vals)
        rows.append(
            (
                "quality rho",
                f"{ladder} ({len(vals)} originals): {text}",
                "nan" if math.isnan(worst) else f"{worst:+.2f}",
                "= -1",
                _ok(passed),
            )
        )
    if lad["gain_pct"]:
        g = max(lad["gain_pct"].values())
        rows.append(
            (
                "quality -6 dB",
                f"max |dq| of {len(lad['gain_pct'])} originals",
                f"{g:.2f} %",
                "<= 1 %",
                _ok(g <= TARGET_GAIN_PCT),
            )
        )
    return rows


def derivative_rows(der: dict[str, Any]) -> list[Row]:
    """Share caught of the same-audio copies and of each variant class; the same-style false positives."""
    rows: list[Row] = []
    if der["copies"]:
        c = der["copies"]
        rows.append(
            (
                "derivative",
                f"same-audio copy ({c['caught']}/{c['n']})",
                f"{c['share']:.0%}",
                ">= 95 %",
                _ok(c["share"] >= TARGET_CAUGHT),
            )
        )
    for cls in P.VARIANT_CLASSES:
        if cls in der["classes"]:
            t = der["classes"][cls]
            detail = f"{cls} ({t['caught']}/{t['n']}; copy {t['named_copy']}, other {t['named_other']})"
            rows.append(
                ("derivative", detail, f"{t['share']:.0%}", ">= 95 %", _ok(t["share"] >= TARGET_CAUGHT))
            )
    for kind, f in der["false_positives"].items():
        rows.append(
            (
                "false positives",
                f"{kind} ({f['n']} distinct pieces)",
                str(f["fp"]),
                "0",
                _ok(f["fp"] <= TARGET_FP and f["n"] > 0),
            )
        )
    return rows


def spread_rows(spr: dict[str, Any]) -> list[Row]:
    """The novelty spread line, when the spread set is not empty."""
    if not spr["novelty"]:
        return []
    s = spr["spread_pct"]
    vals = list(spr["novelty"].values())
    return [
        (
            "novelty spread",
            f"{len(vals)} instrumentations: {min(vals):.0f}..{max(vals):.0f} bp",
            f"{s:.1f} %",
            "<= 10 %",
            _ok(s <= TARGET_SPREAD_PCT),
        )
    ]


SECTION_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], list[Row]]], ...] = (
    ("novelty", novelty_rows),
    ("ladders", ladder_rows),
    ("derivatives", derivative_rows),
    ("spread", spread_rows),
)
"""The report's sections in table order, with the function that makes each one's lines."""


def table_rows(report: dict[str, object]) -> list[Row]:
    """(section, measure, value, target, PASS/FAIL) lines of the report."""
    rows: list[Row] = []
    for key, make in SECTION_ROWS:
        part = report.get(key)
        if isinstance(part, dict):
            rows += make(part)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    head = ("section", "measure", "value", "target", "")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
