"""The reward and royalty policy: pure, integer, versioned functions from an epoch's chain data to payouts."""

from offchain.economics.policy import POLICY_VERSION, payout_id, settle_epoch
from offchain.economics.records import (
    CurationRec,
    EpochInput,
    EpochSettlement,
    ListenRec,
    PolicyParams,
    ScoreRec,
    SettledPayout,
    TrackInfo,
)
from offchain.economics.split import cap_groups, split_exact
from offchain.economics.trust import sybil_groups, sybil_trust

__all__ = [
    "POLICY_VERSION",
    "CurationRec",
    "EpochInput",
    "EpochSettlement",
    "ListenRec",
    "PolicyParams",
    "ScoreRec",
    "SettledPayout",
    "TrackInfo",
    "payout_id",
    "settle_epoch",
    "cap_groups",
    "split_exact",
    "sybil_groups",
    "sybil_trust",
]
