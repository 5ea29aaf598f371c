"""Each reward rule of ami-econ/1 against a worked example computed independently, with exact fractions.

`largest_remainder` below is the reference: the Hamilton apportionment written with `Fraction` (exact quotas,
floors, then one unit each to the largest fractional parts, ties by key order), independent of the policy's
integer `split_exact`. Every weight is worked out by hand in the comments.
"""

from __future__ import annotations

import math
from fractions import Fraction

from offchain.economics import CurationRec, ListenRec, ScoreRec, TrackInfo, rules
from pallets_spec.vocabulary import PayoutKind


def largest_remainder(budget: int, weights: dict[str, int] | dict[int, int]) -> dict:
    quotas = {k: Fraction(budget * w, sum(weights.values())) for k, w in weights.items()}
    out = {k: math.floor(q) for k, q in quotas.items()}
    left = budget - sum(out.values())
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - out[k]), repr(k)))[:left]:
        out[k] += 1
    return out


TRACKS = {
    1: TrackInfo(1, "C1", (("C1", 7000), ("P1", 3000)), (1, 0)),
    2: TrackInfo(2, "C2", (("C2", 5000), ("P2", 2500), ("C2", 2500)), (1, 1)),
    3: TrackInfo(3, "C3", (("C3", 10000),), (1, 2)),
}


def by_account(amounts: dict) -> dict:
    return {(acc, tok): v for (_kind, acc, tok), v in amounts.items()}


def test_listen_credits_are_a_thousand_times_the_square_root_of_the_count() -> None:
    listens = [ListenRec(1, "A", 60, (2, i)) for i in range(4)]
    listens += [ListenRec(2, "A", 60, (3, i)) for i in range(2)]
    listens += [ListenRec(1, "B", 60, (4, i)) for i in range(3)]
    # floor(1000 * sqrt(c)): c = 4 -> 2000, c = 2 -> 1414.21, c = 3 -> 1732.05
    assert rules.listen_credits(listens) == {("A", 1): 2000, ("A", 2): 1414, ("B", 1): 1732}


def test_create_to_earn() -> None:
    scores = [
        ScoreRec(1, 5000, 6000, (6, 0)),  # token 1's latest score: this one counts
        ScoreRec(1, 4000, 5000, (5, 0)),
        ScoreRec(2, 3000, 7000, (4, 0)),
        ScoreRec(3, 9000, 999, (4, 1)),  # quality under 1000 bp: nothing
        ScoreRec(99, 5000, 5000, (4, 2)),  # never minted: nothing
    ]
    got = rules.create_to_earn(scores, TRACKS, 1001, min_quality_bp=1000)
    # w1 = 5000 * 6000 = 30e6, w2 = 3000 * 7000 = 21e6: quotas 1001 * 30/51 = 588 + 42/51 and 1001 * 21/51
    # = 412 + 9/51; the unit left goes to token 1 (42/51 > 9/51).
    w = {1: 30_000_000, 2: 21_000_000}
    assert Fraction(1001 * w[1], sum(w.values())) == 588 + Fraction(42, 51)
    assert largest_remainder(1001, w) == {1: 589, 2: 412}
    assert by_account(got.amounts) == {("C1", 1): 589, ("C2", 2): 412}
    assert got.unallocated == 0
    assert got.reasons[(PayoutKind.CREATE, "C1", 1)] == "created token 1: novelty 5000bp x quality 6000bp"
    assert rules.create_to_earn(scores[3:], TRACKS, 1001, min_quality_bp=1000).unallocated == 1001


def test_listen_to_earn() -> None:
    credits = {("A", 1): 2000, ("A", 2): 1000, ("B", 1): 1414, ("F1", 1): 1000, ("F2", 1): 1000}
    trust = {"A": 10_000, "B": 5000, "F1": 5000, "F2": 5000}
    farms = {"F1": "farm:F1", "F2": "farm:F1"}
    got = rules.listen_to_earn(credits, trust, farms, budget=1000, credits_cap=2500, reward_cap=200)
    # weights: A min(3000, 2500) * 1 = 2500; B 1414 * 1/2 = 707; F1, F2 1000 * 1/2 = 500 each (W = 4207)
    w = {"A": 2500, "B": 707, "F1": 500, "F2": 500}
    uncapped = largest_remainder(1000, w)
    # quotas 594.25, 168.05, 118.85, 118.85: the two units left go to F1 and F2
    assert uncapped == {"A": 594, "B": 168, "F1": 119, "F2": 119}
    # cap 200 per group: A keeps 200; the farm (238 together) keeps 200, split 100 / 100; B is under it.
    assert by_account(got.amounts) == {
        ("A", None): 200,
        ("B", None): 168,
        ("F1", None): 100,
        ("F2", None): 100,
    }
    assert got.unallocated == 1000 - (200 + 168 + 200)
    assert (
        got.reasons[(PayoutKind.LISTEN, "A", None)]
        == "listened to 2 tracks: 2500 credits, trust 100% (capped)"
    )
    assert got.reasons[(PayoutKind.LISTEN, "F1", None)] == (
        "listened to 1 tracks: 1000 credits, trust 50%, in a farm of 2 (capped)"
    )


def test_discovery() -> None:
    first = {1: (("E1", (2, 0)), ("E2", (5, 0)), ("N", (12, 0))), 2: (("E1", (3, 0)), ("E3", (4, 0)))}
    now = [ListenRec(1, "N", 60, (12, 0)), ListenRec(1, "E1", 60, (12, 1)), ListenRec(1, "X", 60, (13, 0))]
    now += [ListenRec(2, "Y", 60, (13, 1))]
    before = [ListenRec(1, "E1", 60, (2, 0)), ListenRec(2, "Y", 60, (3, 0)), ListenRec(2, "Z", 60, (4, 0))]
    trust = {"X": 5000, "E2": 3333}
    got = rules.discovery(now, before, first, start_block=10, trust=trust, budget=100, early_listeners=2)
    # token 1: reach now N + E1 + X/2 = 25000, before E1 = 10000: growth 15000. Its first two listeners E1 and
    # E2 heard it before block 10: E1 15000 * 1, E2 floor(15000 * 0.3333) = 4999. Token 2 shrank (10000 vs
    # 20000): nothing.
    w = {"E1": 15_000, "E2": 4999}
    assert largest_remainder(100, w) == {"E1": 75, "E2": 25}  # quotas 75.004 and 24.996
    assert by_account(got.amounts) == {("E1", None): 75, ("E2", None): 25}
    assert got.unallocated == 0
    assert got.reasons[(PayoutKind.DISCOVERY, "E1", None)] == "early listener of growing tracks [1]"


def test_engagement() -> None:
    curations = [
        CurationRec(1, "K", "tag", (11, 0)),
        CurationRec(1, "K", "playlist", (15, 0)),  # K's second curation of token 1: its first counts
        CurationRec(2, "K2", "playlist", (11, 1)),
        CurationRec(1, "J", "tag", (13, 0)),
        CurationRec(3, "K3", "tag", (11, 2)),  # token 3 is not known here: nothing
        CurationRec(1, "OLD", "tag", (2, 0)),  # before the epoch: its own curation still counts
    ]
    listens = [
        ListenRec(1, "Z", 60, (10, 5)),
        ListenRec(1, "A", 60, (12, 0)),
        ListenRec(1, "B", 60, (14, 0)),
        ListenRec(2, "W", 60, (14, 1)),
        ListenRec(2, "K2", 60, (16, 0)),  # the curator himself adopts nothing
    ]
    tracks = {1: TRACKS[1], 2: TRACKS[2]}
    trust = {"B": 2500, "K2": 4000}
    got = rules.engagement(listens, curations, tracks, (10, 19), trust, budget=1000)
    # adopters' trust: K (t1 at 11.0) <- A, J, B = 1 + 1 + 1/4 -> 22500; J (t1 at 13.0) <- B, K (15.0)
    # = 12500; OLD (t1 at 2.0) <- Z, A, J, B, K = 42500; K2 (t2 at 11.1) <- W = 10000.
    # weights isqrt(A * 10000) * own trust: K 15000, J 11180, OLD 20615, K2 10000 * 0.4 = 4000.
    assert (math.isqrt(22_500 * 10_000), math.isqrt(12_500 * 10_000), math.isqrt(42_500 * 10_000)) == (
        15_000,
        11_180,
        20_615,
    )
    w = {"K": 15_000, "J": 11_180, "OLD": 20_615, "K2": 4000}
    # quotas 295.30, 220.10, 405.85, 78.75: the two units left go to OLD and K2
    assert largest_remainder(1000, w) == {"K": 295, "J": 220, "OLD": 406, "K2": 79}
    assert by_account(got.amounts) == {
        ("K", None): 295,
        ("J", None): 220,
        ("OLD", None): 406,
        ("K2", None): 79,
    }
    assert got.unallocated == 0
    assert got.reasons[(PayoutKind.ENGAGEMENT, "K", None)] == "curated tracks [1] that others adopted"


def test_royalties() -> None:
    credits = {("A", 1): 2000, ("B", 1): 1000, ("B", 2): 1000, ("F", 2): 1000}
    got = rules.royalties(credits, TRACKS, {"F": 2500}, budget=1001)
    # pools by trust-weighted credits: token 1 = 2000 + 1000 = 3000, token 2 = 1000 + 1000/4 = 1250;
    # quotas 706.59 and 294.41 -> 707 / 294.
    assert largest_remainder(1001, {1: 3000, 2: 1250}) == {1: 707, 2: 294}
    # token 1: 707 over C1 7000 / P1 3000 -> 494.9 / 212.1 -> 495 / 212. Token 2: C2's two splits add up to
    # 7500, P2 2500 -> 220.5 / 73.5: a tie, the unit goes to the first key (C2) -> 221 / 73.
    assert largest_remainder(707, {"C1": 7000, "P1": 3000}) == {"C1": 495, "P1": 212}
    assert largest_remainder(294, {"C2": 7500, "P2": 2500}) == {"C2": 221, "P2": 73}
    assert by_account(got.amounts) == {("C1", 1): 495, ("P1", 1): 212, ("C2", 2): 221, ("P2", 2): 73}
    assert got.unallocated == 0
    assert got.reasons[(PayoutKind.ROYALTY, "C2", 2)] == "royalty 7500bp of token 2's listen pool 294"
