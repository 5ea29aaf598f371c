"""Recomputing a minted track's score: the validator's port onto the scoring engine, one per model version.

The validator rescores every minted track in token order, each against a catalogue of the tracks before it
that the rescorer itself put there (by the worker's rule for that engine), so a recomputed `catalogue_root`
depends only on the chain and IPFS. A `Rescorer` holds that catalogue; the
validator feeds it with `accept` in token order and rebuilds it with `restore` after a restart.

`Rescorer` implementations are synchronous and CPU-bound: the validator runs them in a worker thread.
A recomputation is compared with what was published under the agreement rule (`scoring.agreement`,
docs/verification.md): tolerances on the scores, an exact commitment that the rescorer recomputes with the
PUBLISHED scores (`Rescorer.commit`), a guard band around the duplicate gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from offchain.scoring_rule import DeclaredGenre


class RescoreError(Exception):
    """The rescorer itself failed (not the track): the subject stays unverifiable, nothing is concluded."""


@dataclass(frozen=True)
class Rescored:
    """A track's recomputed score under one model version.

    `accepted` False means the policy rejects the track (`reason`, e.g. "duplicate_of:3", "undecodable: ...")
    and no score may be published for it. `inputs` holds what the commitment commits to (hex digests, the
    catalogue root, duplicate/derivative verdicts, component versions) as JSON-able data without floats; it
    is shown as evidence. Keys the auditor reads from it: ``gate`` ({"decision", "margin_ppm"}: the duplicate
    gate's deciding statistic minus its threshold, in millionths) and ``version_differences`` (library
    versions in which this validator differs from the pinned ones; then nothing it recomputed is a finding).
    `entry` is the track's catalogue entry (opaque bytes) when it enters the catalogue, which a rejected
    track may (the engine catalogues duplicates too); None keeps it out.
    """

    accepted: bool
    novelty_bp: int | None = None
    quality_bp: int | None = None
    commitment: bytes | None = None
    reason: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    entry: bytes | None = None


class Rescorer(Protocol):
    """Scores tracks under one `model_version` against its own, growing catalogue."""

    model_version: int

    def rescore(self, token_id: int, audio: bytes, genre: DeclaredGenre | str | None) -> Rescored:
        """Score `audio` (the verified bytes of the minted CID), with the creator's declared genre (from the
        metadata on IPFS; see `offchain.scoring_rule`), against the current catalogue."""
        ...

    def commit(self, inputs: dict[str, Any], novelty_bp: int, quality_bp: int) -> bytes | None:
        """The commitment an honest worker publishes with these scores for the track whose recomputed
        `Rescored.inputs` are `inputs` (no duplicate/derivative); None when none can be formed (scores out of
        range, inputs incomplete)."""
        ...

    def accept(self, token_id: int, entry: bytes) -> None:
        """Add an accepted track's catalogue entry (called in token order)."""
        ...

    def restore(self, entries: Iterable[tuple[int, bytes]]) -> None:
        """Replace the catalogue by these entries (token order), e.g. after a restart."""
        ...
