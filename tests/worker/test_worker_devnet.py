"""End to end on the devnet and the real js-ipfs node: the demo flow, checked against the chain itself.

Mints are fetched from IPFS, verified, decoded and scored, and their scores published; bad uploads are
rejected with a reason; listens become payouts that the contract really minted (balances read back); the sybil
farm stays under one wallet's cap each epoch; royalties follow the on-chain splits; every payout is confirmed.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import shutil
from collections import defaultdict
from typing import Any

import pytest

from offchain.ipfs.node import JSNODE_DIR
from offchain.pipeline.ports import ScoreOutcome, TrackRejected
from offchain.scoring_rule import DeclaredGenre

HAVE_ENGINE = importlib.util.find_spec("scoring.engine") is not None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs fluidsynth (scripts/setup.sh)"),
    pytest.mark.skipif(not (JSNODE_DIR / "node_modules").is_dir(), reason="needs the js-ipfs npm folder"),
]


class DecodeOnlyTestScorer:
    """Test double for the scoring engine, used only when scoring.engine is absent: the real canonical decode
    (so corrupt files are rejected by the real decoder), scores from the PCM hash, same PCM refused."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        from scoring.decode import decode_bytes
        from scoring.errors import AudioError

        try:
            canon = await asyncio.to_thread(decode_bytes, audio)
        except AudioError as exc:
            raise TrackRejected("undecodable", str(exc)) from exc
        if self.seen.setdefault(canon.sha256, token_id) != token_id:
            raise TrackRejected("duplicate", f"same PCM as token {self.seen[canon.sha256]}")
        h = hashlib.sha256(canon.sha256.encode()).digest()
        return ScoreOutcome(2000 + h[0] * 20, 3000 + h[1] * 20, 1, h)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from offchain.demo import run_demo

    factory = None if HAVE_ENGINE else (lambda settings, store: DecodeOnlyTestScorer())
    return run_demo(
        workdir=tmp_path_factory.mktemp("demo"), epoch_blocks=60, track_seconds=8.0, scorer_factory=factory
    )


def test_tracks_scored_published_or_rejected_with_reason(demo_report: dict[str, Any]) -> None:
    tracks = {t["name"]: t for t in demo_report["tracks"]}
    for name in ("bach_bwv66_6", "folk_altdeu10_1", "joplin_maple_leaf", "haydn_op74no1_m1"):
        t = tracks[name]
        assert t["status"] == "published", t
        assert 0 <= t["novelty_bp"] <= 10000 and 0 <= t["quality_bp"] <= 10000
    assert tracks["corrupt_upload"]["status"] == "rejected"
    assert tracks["corrupt_upload"]["reason"] == "undecodable"
    if HAVE_ENGINE:
        assert tracks["bach_bwv66_6_copy"]["status"] == "rejected"
        assert tracks["bach_bwv66_6_copy"]["reason"] in ("duplicate", "derivative")
        # Each creator's declared genre (metadata on IPFS) is the one novelty was measured against.
        assert {n: tracks[n]["scored_genre"] for n in ("bach_bwv66_6", "joplin_maple_leaf")} == {
            "bach_bwv66_6": "bach_chorale",
            "joplin_maple_leaf": "ragtime_piano",
        }
        assert tracks["haydn_op74no1_m1"]["genre"] == "String quartet"
        assert tracks["haydn_op74no1_m1"]["scored_genre"] == "string_quartet"


def test_chain_balances_equal_the_workers_payouts(demo_report: dict[str, Any]) -> None:
    assert demo_report["totals"] and demo_report["totals"] == demo_report["balances"]
    assert all(p["status"] == "paid" for p in demo_report["payouts"])
    assert len({p["payout_id"] for p in demo_report["payouts"]}) == len(demo_report["payouts"])
    # Budgets are paid exactly or accounted for as unallocated, every epoch, every kind.
    for ep in demo_report["epochs"]:
        for kind in ep["budgets"]:
            assert ep["paid"][kind] + ep["unallocated"][kind] == ep["budgets"][kind]
    assert [ep["epoch"] for ep in demo_report["epochs"]] == [0, 1, 2]


def test_sybil_farm_capped_and_royalties_follow_splits(demo_report: dict[str, Any]) -> None:
    from offchain.config import RewardCaps

    cap = RewardCaps().listen_reward_per_wallet
    farm: dict[int, int] = defaultdict(int)
    royalties: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    labels = {}
    for p in demo_report["payouts"]:
        labels[p["account"]] = p["account"]
        if p["kind"] == 1 and "farm of" in p["reason"]:
            farm[p["epoch"]] += p["amount"]
        if p["kind"] == 4:
            royalties[(p["epoch"], p["token_id"])][p["account"]] = p["amount"]
    assert farm and all(total <= cap for total in farm.values()), farm
    tracks = {t["token"]: t for t in demo_report["tracks"]}
    split_tracks = 0
    for (_epoch, token), paid in royalties.items():
        splits = tracks[token]["splits"]
        if len(splits) == 2:
            split_tracks += 1
            pool = sum(paid.values())
            shares = sorted(paid.values())
            assert shares[0] == pytest.approx(pool * 0.3, abs=1) and shares[1] == pytest.approx(
                pool * 0.7, abs=1
            )
    assert split_tracks >= 1
