"""The scoring engine as the validity benchmark's scoring functions: novelty, quality, the derivative gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from scoring import probes as P
from scoring.decode import CanonicalAudio, pcm_sha256

if TYPE_CHECKING:
    from scoring.engine import PublishedScore

Verdict = tuple[str | None, str | None]
"""(duplicate_of, derivative_of) of one track."""
NoveltyFn = Callable[[np.ndarray], float]
"""Novelty in basis points of one canonical PCM probe, scored alone against an empty catalogue."""
QualityFn = Callable[[np.ndarray], float]
"""Quality in basis points of one canonical PCM probe."""
GateFn = Callable[
    [Sequence[tuple[str, np.ndarray]], Sequence[tuple[str, np.ndarray]]], tuple[list[Verdict], list[Verdict]]
]
"""gate(minted, queries): mint ``minted`` in order into a new catalogue (each checked against the earlier
ones), then check each query alone against all of them; returns (verdicts of minted, verdicts of queries)."""


def canonical(pcm: np.ndarray) -> CanonicalAudio:
    """A probe's PCM as the engine's input type (it is canonical already: mono float32 at 22,050 Hz)."""
    x = np.ascontiguousarray(pcm, dtype=np.float32)
    return CanonicalAudio(x, P.SR, pcm_sha256(x), len(x) / P.SR, "wav")


class EngineScorer:
    """The public scoring API as the benchmark's scoring functions; a probe scored alone is scored once."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._alone: dict[str, PublishedScore] = {}
        self.calls = 0

    def alone(self, pcm: np.ndarray) -> PublishedScore:
        """`score_batch` of this one probe against an empty catalogue (memoised by PCM hash)."""
        from scoring.engine import TrackInput, new_catalogue, score_batch  # heavy (torch): unless injected

        audio = canonical(pcm)
        if audio.sha256 not in self._alone:
            self.calls += 1
            self._alone[audio.sha256] = score_batch(
                [TrackInput("probe", audio)], new_catalogue(), device=self.device
            )[0]
        return self._alone[audio.sha256]

    def novelty(self, pcm: np.ndarray) -> float:
        """`NoveltyFn`: novelty_bp of the probe alone."""
        return float(self.alone(pcm).novelty_bp)

    def quality(self, pcm: np.ndarray) -> float:
        """`QualityFn`: quality_bp of the probe alone."""
        return float(self.alone(pcm).quality_bp)

    def gate(
        self, minted: Sequence[tuple[str, np.ndarray]], queries: Sequence[tuple[str, np.ndarray]]
    ) -> tuple[list[Verdict], list[Verdict]]:
        """`GateFn` on the engine: one `score_batch` in mint order (added to a new catalogue), then one
        `score_batch` per query against that catalogue."""
        from scoring.engine import TrackInput, new_catalogue, score_batch  # heavy (torch): unless injected

        cat = new_catalogue()
        items = [TrackInput(i, canonical(p)) for i, p in minted]
        self.calls += len(items) + len(queries)
        first = score_batch(items, cat, device=self.device, add_to_catalogue=True) if items else []
        after = [score_batch([TrackInput(i, canonical(p))], cat, device=self.device)[0] for i, p in queries]
        return (
            [(s.duplicate_of, s.derivative_of) for s in first],
            [(s.duplicate_of, s.derivative_of) for s in after],
        )
