"""Plotly figures of the dashboard, built from query results and handed to the page as JSON.

plotly.js itself is served from the plotly Python package (offchain/dashboard/pages.py), so nothing is loaded
from the network. Every figure shares one look (`_layout`): white, light grid, the dashboard's palette.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from offchain.dashboard.embedding_map import MapData

PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316", "#64748b"]
KIND_COLOURS = {
    "create": "#4f46e5",
    "listen": "#0ea5e9",
    "discovery": "#10b981",
    "engagement": "#f59e0b",
    "royalty": "#8b5cf6",
}


def _layout(fig: go.Figure, height: int = 320, **kw: Any) -> str:
    look: dict[str, Any] = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 48, "r": 16, "t": 36, "b": 40},
        "font": {
            "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
            "size": 12,
            "color": "#1f2937",
        },
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": -0.18},
    }
    fig.update_layout(**(look | kw))
    return str(fig.to_json())


def epochs_chart(epochs: list[dict[str, Any]]) -> str:
    """Paid and unallocated MINT per epoch (oldest left)."""
    eps = sorted(epochs, key=lambda e: e["epoch"])
    x = [f"epoch {e['epoch']}" for e in eps]
    fig = go.Figure(
        [
            go.Bar(name="paid", x=x, y=[e["paid_total"] for e in eps], marker_color="#4f46e5"),
            go.Bar(name="unallocated", x=x, y=[e["unallocated_total"] for e in eps], marker_color="#cbd5e1"),
        ]
    )
    return _layout(fig, barmode="stack", title={"text": "MINT per epoch", "x": 0.01})


def budget_chart(ep: Mapping[str, Any]) -> str:
    """An epoch's budget by reward kind: paid vs unallocated."""
    kinds = list(ep["budgets"])
    fig = go.Figure(
        [
            go.Bar(name="paid", x=kinds, y=[ep["paid"].get(k, 0) for k in kinds], marker_color="#4f46e5"),
            go.Bar(
                name="unallocated",
                x=kinds,
                y=[ep["unallocated"].get(k, 0) for k in kinds],
                marker_color="#cbd5e1",
            ),
        ]
    )
    return _layout(fig, barmode="stack", title={"text": "budget by kind", "x": 0.01})


def components_chart(components: Mapping[str, float]) -> str:
    """The numeric parts of a score's details, one horizontal bar each (names as stored)."""
    names = list(components)
    fig = go.Figure(
        go.Bar(
            x=[components[n] for n in names],
            y=names,
            orientation="h",
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
            text=[f"{components[n]:.4g}" for n in names],
            textposition="auto",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=max(160, 34 * len(names) + 60), title={"text": "score components", "x": 0.01})


def earnings_chart(by_epoch: Mapping[int, Mapping[str, int]]) -> str:
    """An account's earnings per epoch, stacked by reward kind."""
    eps = sorted(by_epoch)
    kinds = [k for k in KIND_COLOURS if any(k in by_epoch[e] for e in eps)]
    fig = go.Figure(
        [
            go.Bar(
                name=k,
                x=[f"epoch {e}" for e in eps],
                y=[by_epoch[e].get(k, 0) for e in eps],
                marker_color=KIND_COLOURS[k],
            )
            for k in kinds
        ]
    )
    return _layout(fig, barmode="stack", title={"text": "earnings over time", "x": 0.01})


def histogram_chart(metric: str, counts: Mapping[int, list[int]], bin_bp: int, last: int = 6) -> str:
    """Counts of tracks per score bin, one trace per mint epoch (the last `last` epochs)."""
    edges = [f"{i * bin_bp}–{(i + 1) * bin_bp}" for i in range(10_000 // bin_bp)]
    eps = sorted(counts)[-last:]
    fig = go.Figure(
        [
            go.Bar(
                name=f"epoch {e}", x=edges, y=counts[e], marker_color=PALETTE[i % len(PALETTE)], opacity=0.85
            )
            for i, e in enumerate(eps)
        ]
    )
    fig.update_xaxes(title_text=f"{metric} (bp)", tickangle=-45)
    fig.update_yaxes(title_text="tracks")
    return _layout(fig, height=340, barmode="group", title={"text": f"{metric} by mint epoch", "x": 0.01})


def map_chart(m: MapData, info: Mapping[int, tuple[int, Any, Any, str, Any]]) -> str:
    """The catalogue map: one trace per style cluster, emerging clusters drawn larger with a dark outline."""
    traces = []
    for c in m.clusters:
        sel = np.flatnonzero(m.cluster == c["id"])
        toks = m.tokens[sel]
        text = []
        for t in toks:
            # What was fixed when the track entered the catalogue (its status moves on; see its page).
            _block, nov, qual, _status, genre = info.get(int(t), (0, None, None, "?", None))
            text.append(
                f"#{int(t)} {genre or ''}"
                + (f"<br>novelty {nov} bp · quality {qual} bp" if nov is not None else "<br>not scored")
            )
        colour = PALETTE[c["id"] % len(PALETTE)]
        name = f"{'★ emerging: ' if c['emerging'] else ''}{c['genre']} ({c['size']})"
        traces.append(
            go.Scattergl(
                x=m.xy[sel, 0],
                y=m.xy[sel, 1],
                mode="markers",
                name=name,
                customdata=toks.tolist(),  # plain numbers: the click handler and tests read them as-is
                text=text,
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "size": 13 if c["emerging"] else 8,
                    "color": colour,
                    "opacity": 0.85,
                    "line": {
                        "width": 2 if c["emerging"] else 0.5,
                        "color": "#111827" if c["emerging"] else "#fff",
                    },
                },
            )
        )
    fig = go.Figure(traces)
    v = m.variance
    fig.update_xaxes(title_text=f"PC 1 ({v[0] * 100:.0f} % of variance)", zeroline=False)
    fig.update_yaxes(
        title_text=f"PC 2 ({v[1] * 100:.0f} % of variance)" if len(v) > 1 else "PC 2", zeroline=False
    )
    return _layout(fig, height=560, hovermode="closest", legend={"orientation": "h", "y": -0.15})
