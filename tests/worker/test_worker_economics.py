"""Economics policy ami-econ/1: every expected figure below was computed by hand (see the comments)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offchain.economics import EpochSettlement, PolicyParams, payout_id, settle_epoch
from offchain.economics.records import CurationRec, EpochInput, ListenRec, ScoreRec, TrackInfo
from offchain.economics.split import cap_groups, split_exact
from pallets_spec.vocabulary import PayoutKind

T1 = TrackInfo(1, "C1", (("C1", 7000), ("P1", 3000)), (1, 0))
T2 = TrackInfo(2, "C2", (("C2", 10000),), (1, 1))
TRACKS = {1: T1, 2: T2}


def params(cap: int = 500, **budgets: int) -> PolicyParams:
    return PolicyParams(
        budgets={PayoutKind[k.upper()]: v for k, v in budgets.items()},
        listen_reward_per_wallet=cap,
        min_listen_seconds=30,
    )


# H hears tokens 1 and 2 for 60 s each; a farm of five wallets F0..F4 hears token 1 for 60 s each.
HONEST = (ListenRec(1, "H", 60, (3, 0)), ListenRec(2, "H", 60, (3, 1)))
FARM = tuple(ListenRec(1, f"F{i}", 60, (2, i)) for i in range(5))


def farm_and_honest_listens(cap: int) -> EpochSettlement:
    """The settlement of FARM's and HONEST's listens, a listen budget of 1000, a per-wallet cap of `cap`."""
    return settle_epoch(EpochInput(0, 0, 9, TRACKS, listens=FARM + HONEST), params(cap=cap, listen=1000))


def amounts(settlement, kind: PayoutKind) -> dict[tuple[str, int | None], int]:
    return {(p.account, p.token_id): p.amount for p in settlement.payouts if p.kind == kind}


def test_split_exact_largest_remainder() -> None:
    # 10 over weights 1:1:1 -> 3.33 each; one leftover unit to the first key in order.
    assert split_exact(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    # 100 over 3:1 -> 75 / 25 exactly.
    assert split_exact(100, {"x": 3, "y": 1}) == {"x": 75, "y": 25}
    assert split_exact(100, {"x": 0}) == {}
    with pytest.raises(ValueError, match="budget"):
        split_exact(-1, {"x": 1})


def test_cap_groups_caps_wallets_and_farms_without_redistributing() -> None:
    shares = {"a": 100, "b": 800, "f1": 300, "f2": 300}
    farms = {"f1": "farm", "f2": "farm"}
    # b: 800 -> 500; the farm (600 together) -> 500 split 250 / 250; a untouched; 100 + 150 left unallocated.
    assert cap_groups(shares, farms, 500) == {"a": 100, "b": 500, "f1": 250, "f2": 250}


@given(
    budget=st.integers(0, 10**24),
    weights=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 10**12), max_size=20),
)
def test_split_exact_always_pays_the_budget_exactly(budget: int, weights: dict[str, int]) -> None:
    shares = split_exact(budget, weights)
    if any(w > 0 for w in weights.values()):
        assert sum(shares.values()) == budget
        assert all(v >= 0 for v in shares.values())
    else:
        assert shares == {}


def test_small_epoch_by_hand() -> None:
    listens = (
        *(ListenRec(1, "L1", 60, (2, i)) for i in range(4)),  # 4 listens -> 1000*sqrt(4) = 2000 credits
        ListenRec(1, "L2", 60, (3, 0)),  # 1000
        ListenRec(2, "L2", 30, (3, 1)),  # 1000 (exactly the minimum)
        ListenRec(2, "L3", 10, (3, 2)),  # too short: nothing
        ListenRec(1, "C1", 60, (3, 3)),  # the creator listening to himself: nothing
    )
    scores = (ScoreRec(1, 5000, 6000, (4, 0)), ScoreRec(2, 2000, 5000, (4, 1)))
    inp = EpochInput(epoch=0, start_block=0, end_block=9, tracks=TRACKS, scores=scores, listens=listens)
    s = settle_epoch(inp, params(create=1000, listen=900, royalty=100))
    # create weights 5000*6000 = 3e7 and 2000*5000 = 1e7 -> 750 / 250
    assert amounts(s, PayoutKind.CREATE) == {("C1", 1): 750, ("C2", 2): 250}
    # listen weights L1 2000, L2 2000 -> 450 each (under the 500 cap)
    assert amounts(s, PayoutKind.LISTEN) == {("L1", None): 450, ("L2", None): 450}
    # royalty pools by credits: T1 = 2000 + 1000, T2 = 1000 -> 75 / 25; T1 split 70/30 = 52.5 / 22.5, the
    # tied half unit goes to the first account in order (C1): 53 / 22.
    assert amounts(s, PayoutKind.ROYALTY) == {("C1", 1): 53, ("P1", 1): 22, ("C2", 2): 25}
    assert s.paid == {"create": 1000, "listen": 900, "discovery": 0, "engagement": 0, "royalty": 100}
    assert s.unallocated == {"create": 0, "listen": 0, "discovery": 0, "engagement": 0, "royalty": 0}


def test_low_quality_and_unknown_tokens_earn_nothing_and_budget_is_accounted() -> None:
    scores = (ScoreRec(1, 9000, 999, (4, 0)), ScoreRec(99, 5000, 5000, (4, 1)))
    s = settle_epoch(EpochInput(0, 0, 9, TRACKS, scores=scores), params(create=1000))
    assert amounts(s, PayoutKind.CREATE) == {}
    assert s.unallocated["create"] == 1000


def test_sybil_farm_shares_one_wallet_weight() -> None:
    s = farm_and_honest_listens(cap=10_000)
    got = amounts(s, PayoutKind.LISTEN)
    # H: 2000 credits; each farm wallet 1000 * trust 2000bp = 200, farm total 1000 -> H 666.67, farm 66.67
    # each; the 4 leftover units go by key order to F0..F3.
    assert got == {
        ("H", None): 666,
        ("F0", None): 67,
        ("F1", None): 67,
        ("F2", None): 67,
        ("F3", None): 67,
        ("F4", None): 66,
    }
    assert s.trust["F0"] == 2000 and s.trust["H"] == 10000
    # Without the filter the farm would have taken 5000 / 7000 of the budget (714); with it, about one wallet.
    assert sum(v for (acc, _), v in got.items() if acc.startswith("F")) == 334


def test_discovery_and_engagement_by_hand() -> None:
    first = {1: (("E1", (2, 0)), ("E2", (12, 0)), ("X", (12, 1)), ("Y", (13, 0)))}
    previous = (ListenRec(1, "E1", 60, (2, 0)),)
    listens = (
        ListenRec(1, "Z", 61, (10, 5)),  # before the tag: not an adopter
        ListenRec(1, "E2", 62, (12, 0)),
        ListenRec(1, "X", 63, (12, 1)),
        ListenRec(1, "Y", 64, (13, 0)),
        ListenRec(2, "W", 60, (14, 0)),
    )
    curations = (CurationRec(1, "K", "tag", (11, 0)), CurationRec(2, "K2", "playlist", (11, 1)))
    inp = EpochInput(
        1,
        10,
        19,
        TRACKS,
        listens=listens,
        previous_listens=previous,
        first_listeners=first,
        curations=curations,
    )
    s = settle_epoch(inp, params(discovery=500, engagement=1000))
    # T1 reach: 4 listeners now vs 1 before -> growth 30000; only E1 heard it before this epoch.
    assert amounts(s, PayoutKind.DISCOVERY) == {("E1", None): 500}
    # K: adopters E2, X, Y -> isqrt(30000 * 10000) = 17320; K2: adopter W -> isqrt(1e8) = 10000.
    # floors: 1000 * 17320 / 27320 = 633.97 -> 633, 1000 * 10000 / 27320 = 366.03 -> 366; the leftover unit
    # goes to the larger remainder (K: 26440 vs 880).
    assert amounts(s, PayoutKind.ENGAGEMENT) == {("K", None): 634, ("K2", None): 366}


def test_per_wallet_cap_leaves_the_excess_unallocated() -> None:
    s = farm_and_honest_listens(cap=500)
    # H would get 666 > cap 500: H = 500, and the 166 excess is NOT handed to the farm; the farm keeps its
    # proportional 334 (67 x 4 + 66), which is under the cap for the farm as a whole.
    got = amounts(s, PayoutKind.LISTEN)
    assert got[("H", None)] == 500 and sum(got[(f"F{i}", None)] for i in range(5)) == 334
    assert s.unallocated["listen"] == 166


def test_a_sybil_farm_as_a_whole_earns_no_more_than_one_wallet_cap() -> None:
    s = farm_and_honest_listens(cap=100)
    got = amounts(s, PayoutKind.LISTEN)
    # Uncapped the farm would take 334; capped as one group it gets exactly 100 (20 each).
    assert [got[(f"F{i}", None)] for i in range(5)] == [20] * 5 and got[("H", None)] == 100
    assert s.unallocated["listen"] == 800


def test_payout_ids_are_deterministic_and_distinct() -> None:
    a = payout_id("ami-econ/1", 3, PayoutKind.LISTEN, "L1", None)
    assert a == payout_id("ami-econ/1", 3, 1, "L1", None) and len(a) == 32
    others = {
        payout_id("ami-econ/2", 3, 1, "L1", None),
        payout_id("ami-econ/1", 4, 1, "L1", None),
        payout_id("ami-econ/1", 3, 2, "L1", None),
        payout_id("ami-econ/1", 3, 1, "L2", None),
        payout_id("ami-econ/1", 3, 1, "L1", 0),
    }
    assert a not in others and len(others) == 5


def test_settlement_is_replayable() -> None:
    listens = tuple(ListenRec(1 + i % 2, f"L{i % 7}", 40 + i, (2 + i, 0)) for i in range(50))
    inp = EpochInput(0, 0, 99, TRACKS, scores=(ScoreRec(1, 5000, 5000, (3, 0)),), listens=listens)
    p = params(create=10, listen=1000, royalty=77)
    assert settle_epoch(inp, p) == settle_epoch(inp, p)


def test_adoption_trust_catches_a_farm_that_varies_its_seconds() -> None:
    # Four wallets hear only token 1 with different durations: the built-in fingerprint misses them, the
    # adoption module's graph trust (identical narrow token sets -> a farm of 4 -> trust 1/4) does not.
    farm = tuple(ListenRec(1, f"F{i}", 60 + i, (2, i)) for i in range(4))
    inp = EpochInput(0, 0, 9, TRACKS, listens=farm + HONEST)
    plain = settle_epoch(inp, params(cap=10_000, listen=1000))
    assert plain.trust["F0"] == 10_000
    p = PolicyParams(budgets={PayoutKind.LISTEN: 1000}, listen_reward_per_wallet=10_000, adoption_trust=True)
    s = settle_epoch(inp, p)
    assert s.trust["F0"] == 2500 and s.trust["H"] == 10_000
    # weights: H 2000, each farm wallet 1000 * 2500bp = 250 -> H 1000 * 2000 / 3000 = 666.67
    got = amounts(s, PayoutKind.LISTEN)
    assert got[("H", None)] in (666, 667) and sum(got.values()) == 1000
