"""The worker core's ports: the small interfaces it needs from the chain, IPFS, the scorer and the submitter.

Real adapters live in offchain/pipeline/adapters.py; tests use in-memory fakes (tests/worker/fakes.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from offchain.projection import BlockData
from offchain.scoring_rule import DeclaredGenre
from offchain.store import OutboxPayout


class FetchError(Exception):
    """Content could not be used; `reason` is a stable machine-readable word recorded with a rejection."""

    reason = "fetch_failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ContentTooLarge(FetchError):
    reason = "too_large"


class ContentInvalid(FetchError):
    """A bogus CID, or bytes whose recomputed CID differs from the one minted."""

    reason = "bad_cid"


class ContentNotAFile(ContentInvalid):
    """The CID names a directory, a symlink or another non-file node: mint the CID of the file itself."""

    reason = "not_a_file"


class ContentMismatch(FetchError):
    """The bytes read do not hash to the minted CID: never used."""

    reason = "cid_mismatch"


class ContentNotFound(FetchError):
    """The IPFS node answered but could not find the content (in time); retried a few times, then rejected."""

    reason = "not_found"


class StorageUnavailable(Exception):
    """The IPFS node itself is unreachable: waited out with backoff, never held against the track."""


class TrackRejected(Exception):
    """The scorer refuses the track (undecodable, duplicate, silent, ...); `reason` is a stable word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ScorerFailure(Exception):
    """The scorer itself failed on a track (not a verdict about the audio); `reason` is a stable word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ScorerCrashed(ScorerFailure):
    """The scoring process died mid-job (killed, out of memory at the OS level); it has been replaced, and
    the track is tried again later (a track that kills it every time is rejected after a few tries)."""


class ScoringTimedOut(ScorerFailure):
    """The track took longer than the scorer's wall-clock limit; the process was killed and replaced."""


class ScorerInternalError(ScorerFailure):
    """The engine raised something that is no verdict (a bug, a broken install): rejected `internal`."""


@dataclass(frozen=True)
class ScoreOutcome:
    """A track's quantised, versioned score, as published with `submit_score`."""

    novelty_bp: int
    quality_bp: int
    model_version: int
    commitment: bytes
    details: Mapping[str, Any] = field(default_factory=dict)


class BlockSource(Protocol):
    """Finalized blocks in order, with their decoded contract events, starting after `start_after`."""

    def blocks(self, start_after: tuple[int, str] | None) -> AsyncIterator[BlockData]: ...

    async def finalized_number(self) -> int: ...


class ContentFetcher(Protocol):
    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        """The verified bytes of `cid`; FetchError subclasses or StorageUnavailable."""
        ...


class TrackScorer(Protocol):
    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        """Score one track (with the creator's declared genre) against the catalogue; TrackRejected when it
        cannot or must not be scored."""
        ...


class ScorePublisher(Protocol):
    async def publish_score(self, token_id: int, outcome: ScoreOutcome) -> None:
        """Queue `submit_score` (idempotent per token and model version)."""
        ...


class PayoutSink(Protocol):
    async def enqueue_payouts(self, epoch: int, payouts: Sequence[OutboxPayout]) -> int:
        """Hand payouts to the submitter (idempotent per payout id); returns how many were new."""
        ...
