"""What a probe is: a labelled piece of canonical PCM (`Probe`), or why one could not be made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scoring._rate import SAMPLE_RATE
from scoring.errors import ScoringError

PROBES_VERSION = "ami-probes/1"
SR = SAMPLE_RATE


class ProbeUnavailable(ScoringError):
    """A probe's source (SoundFont, soundtrack package, corpus piece) is missing or could not be rendered."""


@dataclass(frozen=True)
class Probe:
    """One labelled probe.

    Attributes:
        name: unique id, e.g. ``"real/bach_bwv66_6@organ.fluid"``.
        group: ``"real"``, ``"degenerate"``, ``"ladder"``, ``"derivative"`` or ``"negative"``.
        label: class within the group: a degenerate class (``"loops"``...), a ladder name (``"mp3"``...), a
            variant class (``"transpose"``...), a style (``"bach_chorale"``...).
        pcm: mono float32 samples at `SR`, shape [n].
        source: name of the probe it was made from (ladders, derivatives, loops, shuffles), else None.
        step: position in a ladder (0 = the original), 0 otherwise.
        meta: recipe details (instrument, SoundFont, semitones, tempo factor, slice order...).
    """

    name: str
    group: str
    label: str
    pcm: np.ndarray
    source: str | None = None
    step: int = 0
    meta: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return len(self.pcm) / SR


def _attempt(make: Callable[[], np.ndarray], skipped: list[str] | None) -> np.ndarray | None:
    """``make()``, or None when its probe is unavailable (the reason is appended to ``skipped``)."""
    try:
        return make()
    except ProbeUnavailable as exc:
        if skipped is not None:
            skipped.append(str(exc))
        return None
