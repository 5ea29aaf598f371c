"""The reward and royalty policy: pure, integer, versioned functions from an epoch's chain data to payouts."""

from offchain.economics.policy import (
    POLICY_VERSION,
    CurationRec,
    EpochInput,
    EpochSettlement,
    ListenRec,
    Payout,
    PolicyParams,
    RewardKind,
    ScoreRec,
    TrackInfo,
    cap_groups,
    payout_id,
    settle_epoch,
    split_exact,
    sybil_groups,
    sybil_trust,
)

__all__ = [
    "POLICY_VERSION",
    "CurationRec",
    "EpochInput",
    "EpochSettlement",
    "ListenRec",
    "Payout",
    "PolicyParams",
    "RewardKind",
    "ScoreRec",
    "TrackInfo",
    "payout_id",
    "settle_epoch",
    "cap_groups",
    "split_exact",
    "sybil_groups",
    "sybil_trust",
]
