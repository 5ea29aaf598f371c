"""The dashboard's Jinja2 templates: their environment, filters (amounts, basis points, token links) and
navigation, and the score components a track page charts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from offchain.dashboard.queries import short

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAV = (
    ("/", "Overview"),
    ("/tracks", "Tracks"),
    ("/epochs", "Epochs"),
    ("/accounts", "Accounts"),
    ("/map", "Map"),
    ("/distributions", "Distributions"),
    ("/findings", "Findings"),
)


def _amount(v: Any) -> str:
    return "–" if v is None else f"{int(v):,}"


def _bp(v: Any) -> str:
    return "–" if v is None else str(int(v))


_TOKEN = re.compile(r"token:(\d+)")


def _linkify(text: Any) -> Markup:
    """Escape `text` and turn every `token:N` into a link to that track's page."""
    return Markup(_TOKEN.sub(lambda m: f'<a href="/tracks/{m[1]}">token:{m[1]}</a>', str(escape(str(text)))))


def template_env() -> Environment:
    """The Jinja2 environment of the pages' templates, with their filters and navigation."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(amount=_amount, bp=_bp, short=short, linkify=_linkify)
    env.globals["nav"] = NAV
    return env


def components(details: Mapping[str, Any]) -> dict[str, float]:
    """Every numeric value of a score's details, named by its key path ("a.b"), except the match table.

    Generic on purpose: whatever component names the scoring stores show up, old and new alike.
    """
    out: dict[str, float] = {}

    def walk(prefix: str, v: Any, depth: int) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int | float):
            out[prefix] = float(v)
        elif isinstance(v, Mapping) and depth < 3:
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x, depth + 1)

    for k, v in details.items():
        if k not in ("matches", "versions"):
            walk(str(k), v, 0)
    return out
