"""The reward policy's plain records: what an epoch's settlement reads from the chain and what it pays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pallets_spec.vocabulary import Payout, PayoutKind


@dataclass(frozen=True)
class PolicyParams:
    """Budgets and caps of one epoch (from WorkerSettings.budgets and .caps)."""

    budgets: Mapping[PayoutKind, int]
    listen_reward_per_wallet: int = 60_000
    listen_credits_per_wallet: int = 10_000
    min_listen_seconds: int = 30
    min_quality_bp: int = 1_000
    sybil_group_min_size: int = 4
    discovery_early_listeners: int = 10
    adoption_trust: bool = False


@dataclass(frozen=True)
class TrackInfo:
    """A minted track as the policy sees it: who created it, its royalty splits, where it was minted."""

    token_id: int
    creator: str
    royalty_splits: tuple[tuple[str, int], ...]
    minted_at: tuple[int, int]  # (block_number, event_index)


@dataclass(frozen=True)
class ScoreRec:
    """A score landed on chain (basis points): create-to-earn's weight."""

    token_id: int
    novelty_bp: int
    quality_bp: int
    at: tuple[int, int]


@dataclass(frozen=True)
class ListenRec:
    """One `Listened` event: who listened to which token, for how long (seconds), where."""

    token_id: int
    listener: str
    seconds: int
    at: tuple[int, int]


@dataclass(frozen=True)
class CurationRec:
    """One curation (a tag or a playlist add) of a token: engagement's subject."""

    token_id: int
    curator: str
    kind: str  # "tag" or "playlist"
    at: tuple[int, int]


@dataclass(frozen=True)
class EpochInput:
    """What the policy needs about one epoch, all read from finalized chain events.

    `listens`: this epoch's listens. `previous_listens`: the previous epoch's. `first_listeners`: per token,
    the distinct listeners with the position of their first qualifying listen, over all history up to this
    epoch's end.
    `curations`: all tag / playlist-add events up to this epoch's end.
    """

    epoch: int
    start_block: int
    end_block: int
    tracks: Mapping[int, TrackInfo]
    scores: tuple[ScoreRec, ...] = ()
    listens: tuple[ListenRec, ...] = ()
    previous_listens: tuple[ListenRec, ...] = ()
    first_listeners: Mapping[int, tuple[tuple[str, tuple[int, int]], ...]] = field(default_factory=dict)
    curations: tuple[CurationRec, ...] = ()
    external_trust: Mapping[str, int] | None = None


@dataclass(frozen=True)
class SettledPayout:
    """One payout of an epoch's settlement: the contract's `Payout` (`on_chain()`) with its epoch, the token
    it is for (None for listen, discovery and engagement rewards) and the reason the policy gives."""

    payout_id: bytes
    epoch: int
    kind: PayoutKind
    account: str
    token_id: int | None
    amount: int
    reason: str

    def on_chain(self) -> Payout:
        """The rewards contract's `Payout { id, to, amount, kind }` this settles to."""
        return Payout(id=self.payout_id, to=self.account, amount=self.amount, kind=int(self.kind))


@dataclass(frozen=True)
class EpochSettlement:
    epoch: int
    policy_version: str
    payouts: tuple[SettledPayout, ...]
    budgets: dict[str, int]
    paid: dict[str, int]
    unallocated: dict[str, int]
    trust: dict[str, int]

    def as_record(self) -> dict[str, Any]:
        return {"budgets": self.budgets, "paid": self.paid, "unallocated": self.unallocated}
