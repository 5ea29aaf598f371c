"""Adoption: anti-sybil rules (minimum listen, caps, farm trust), diminishing returns, breadth, bonus."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.adoption import (
    AdoptionParams,
    Listen,
    PlaylistAdd,
    Tag,
    adoption_scores,
    farm_trust,
    label_propagation,
)


def _honest(token: str, n: int, prefix: str = "fan", extra_tokens: int = 8) -> list[Listen]:
    """n listeners with varied, broad tastes: each also hears a few different other tokens."""
    out = []
    for i in range(n):
        out.append(Listen(f"{prefix}{i}", token, 120.0, 10 + i))
        for j in range(extra_tokens):
            out.append(Listen(f"{prefix}{i}", f"other{(i * 7 + j * 13) % 97}", 90.0, 20 + j))
    return out


def _farm(token: str, n: int, plays: int = 20) -> list[Listen]:
    return [Listen(f"sybil{i}", token, 31.0, 5) for i in range(n) for _ in range(plays)]


def test_sybil_farm_earns_no_more_than_its_cap() -> None:
    params = AdoptionParams(farm_cap=1.0)
    small = adoption_scores(_farm("X", 20), params=params).adoption_bp["X"]
    huge = adoption_scores(_farm("X", 2000), params=params).adoption_bp["X"]
    one_honest = adoption_scores(_honest("Y", 1) * 3, params=params).adoption_bp["Y"]
    assert huge == small
    assert huge <= one_honest
    res = adoption_scores(_farm("X", 2000) + _honest("Y", 30), params=params)
    assert res.trust["sybil7"] == pytest.approx(1 / 2000)
    assert res.trust["fan3"] == 1.0
    assert res.parts["X"]["listeners"] <= params.farm_cap + 1e-9
    # the same number of honest wallets is worth far more than the farm
    honest = adoption_scores(_honest("Z", 2000), params=params).adoption_bp["Z"]
    assert honest > 10 * huge


def test_near_identical_farm_with_jitter_is_grouped() -> None:
    events = []
    for i in range(50):
        events.append(Listen(f"s{i}", "A", 60, 1))
        events.append(Listen(f"s{i}", "B", 60, 1))
        events.append(Listen(f"s{i}", "C", 60, 1))
        events.append(Listen(f"s{i}", "D", 60, 1))
        if i % 2:
            events.append(Listen(f"s{i}", "E", 60, 1))  # Jaccard 4/5 with the others
    trust = adoption_scores(events).trust
    assert max(trust.values()) <= 1 / 50 + 1e-12


def test_minimum_listen_time_and_per_pair_cap() -> None:
    short = [Listen(f"l{i}", "T", 29.9, 1) for i in range(100)]
    assert "T" not in adoption_scores(short).adoption_bp
    once = adoption_scores(_honest("T", 5)).adoption_bp["T"]
    many = adoption_scores(_honest("T", 5) + [Listen("fan0", "T", 200.0, 3)] * 500).adoption_bp["T"]
    capped = adoption_scores(_honest("T", 5) + [Listen("fan0", "T", 200.0, 3)] * 2).adoption_bp["T"]
    assert once < capped == many


def test_diminishing_returns_in_listeners() -> None:
    values = [adoption_scores(_honest("T", n)).parts["T"]["growth"] for n in (5, 10, 20, 40, 80)]
    gains = np.diff(values)
    assert np.all(gains > 0)
    assert np.all(np.diff(gains / np.array([5, 10, 20, 40])) < 0)  # per-listener gain shrinks


def test_wallet_cap_spreads_a_wallet_over_many_tokens() -> None:
    params = AdoptionParams(wallet_tokens=10)
    spray = [Listen("bot", f"t{i}", 60, 1) for i in range(1000)]
    res = adoption_scores(spray, params=params)
    assert res.weight["bot"] == pytest.approx(0.01)
    assert sum(p["listeners"] for p in res.parts.values()) == pytest.approx(10 * 0.5 / 0.875, rel=1e-6)


def test_creator_self_listens_and_self_curation_do_not_count() -> None:
    base = _honest("T", 4)
    creators = {"T": "artist"}
    plain = adoption_scores(base, creators=creators).adoption_bp["T"]
    selfish = adoption_scores(
        base + [Listen("artist", "T", 300, 1)] * 5,
        tags=[Tag("artist", "T", "great", 2)],
        creators=creators,
    ).adoption_bp["T"]
    assert selfish == plain


def test_independent_curators_raise_adoption_and_curator_farms_do_not() -> None:
    base = _honest("T", 10)
    plain = adoption_scores(base).adoption_bp["T"]
    curated = adoption_scores(
        base,
        playlist_adds=[PlaylistAdd(f"cur{i}", f"pl{i}", "T", 3) for i in range(3)],
        tags=[Tag(f"cur{i}", x, "jazz", 4) for i, x in enumerate(["a", "b", "c"])],
    ).adoption_bp["T"]
    farm_curated = adoption_scores(
        base, playlist_adds=[PlaylistAdd(f"fc{i}", "pl", "T", 3) for i in range(300)]
    ).adoption_bp["T"]
    assert curated > farm_curated > plain


def test_breadth_counts_communities() -> None:
    # token W is heard by two disjoint listener groups (two communities); token N by one group of equal size
    events = []
    for i in range(10):
        events += [Listen(f"a{i}", t, 60, 1) for t in ("W", "a1", "a2", "a3", "a4", "a5", "a6")]
        events += [Listen(f"b{i}", t, 60, 1) for t in ("W", "b1", "b2", "b3", "b4", "b5", "b6")]
        events += [Listen(f"c{i}", t, 60, 1) for t in ("N", "c1", "c2", "c3", "c4", "c5", "c6")]
        events += [Listen(f"d{i}", t, 60, 1) for t in ("N", "c1", "c2", "c3", "c4", "c5", "c7")]
    res = adoption_scores(events, params=AdoptionParams(farm_max_tokens=1))
    assert res.parts["W"]["breadth"] > res.parts["N"]["breadth"]
    assert len({res.community[f"a{i}"] for i in range(10)}) == 1
    assert res.community["a0"] != res.community["b0"]


def test_label_propagation_is_deterministic_and_order_free() -> None:
    graph = {f"u{i}": {f"t{i % 3}": 1.0, f"t{(i + 1) % 3 + 3}": 1.0} for i in range(12)}
    a = label_propagation(graph, {})
    b = label_propagation(dict(reversed(list(graph.items()))), {})
    assert a == b


def test_emerging_cluster_bonus() -> None:
    events = []
    for i in range(12):  # a new, closed community around tokens E1..E3
        events += [Listen(f"e{i}", t, 60, 1) for t in ("E1", "E2", "E3", f"x{i}", f"y{i}", f"z{i}")]
    for i in range(12):  # same size, but its tokens sound like a known genre
        events += [Listen(f"k{i}", t, 60, 1) for t in ("K1", "K2", "K3", f"p{i}", f"q{i}", f"r{i}")]
    centroid = np.array([1.0, 0.0, 0.0])
    embeddings = {
        "E1": np.array([0.0, 1.0, 0.0]),
        "E2": np.array([0.1, 1.0, 0.0]),
        "E3": np.array([0.0, 1.0, 0.1]),
        "K1": centroid,
        "K2": centroid,
        "K3": centroid,
    }
    res = adoption_scores(events, token_embeddings=embeddings, genre_centroids=[centroid])
    assert res.parts["E1"]["emerging"] == pytest.approx(1.0)
    assert res.parts["K1"]["emerging"] == 0.0
    assert res.adoption_bp["E1"] > res.adoption_bp["K1"]
    # listeners who already heard these tokens before make the community not new
    prev = {t: {f"e{i}" for i in range(12)} for t in ("E1", "E2", "E3")}
    prev |= {f"{x}{i}": {f"e{i}"} for i in range(12) for x in "xyz"}
    old = adoption_scores(
        events, previous_listeners=prev, token_embeddings=embeddings, genre_centroids=[centroid]
    )
    assert old.parts["E1"]["emerging"] == 0.0
    assert old.parts["E1"]["growth"] < res.parts["E1"]["growth"]


def test_farm_trust_leaves_broad_listeners_alone() -> None:
    profiles = {f"w{i}": frozenset({"a", "b"}) for i in range(4)}
    profiles |= {f"broad{i}": frozenset(f"t{j}" for j in range(10)) for i in range(4)}
    trust = farm_trust(profiles, AdoptionParams())
    assert trust["w0"] == 0.25 and trust["broad0"] == 1.0


def test_scores_are_basis_points_and_deterministic() -> None:
    events = _honest("T", 30) + _farm("S", 100)
    a = adoption_scores(events)
    b = adoption_scores(list(reversed(events)))
    assert a.adoption_bp == b.adoption_bp
    assert all(isinstance(v, int) and 0 <= v <= 10000 for v in a.adoption_bp.values())
