"""Exact integer splitting of a budget: the largest remainder method, and caps per wallet or farm."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def split_exact(budget: int, weights: Mapping[K, int]) -> dict[K, int]:
    """Split `budget` proportionally to non-negative integer `weights`, summing to exactly `budget`.

    Largest remainder (Hamilton) method: floor shares first, then one unit each to the largest remainders,
    ties broken by key order so the result is deterministic. Returns {} when the total weight is 0.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    positive = {k: w for k, w in weights.items() if w > 0}
    if any(w < 0 for w in weights.values()):
        raise ValueError("weights must be >= 0")
    total = sum(positive.values())
    if total == 0:
        return {}
    shares = {k: budget * w // total for k, w in positive.items()}
    left = budget - sum(shares.values())
    order = sorted(positive, key=lambda k: (-(budget * positive[k] % total), repr(k)))
    for k in order[:left]:
        shares[k] += 1
    return shares


def cap_groups(shares: Mapping[K, int], groups: Mapping[K, Hashable], cap: int) -> dict[K, int]:
    """Limit what each group (a wallet alone, or a detected sybil farm) receives to `cap` in total.

    A group over the cap keeps exactly `cap`, split over its members in proportion to their shares; the excess
    is NOT re-split over others (that would hand it to the next-cheapest wallets, i.e. farms): the caller
    reports it as unallocated.
    """
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    members: dict[Hashable, dict[K, int]] = defaultdict(dict)
    for k, v in shares.items():
        members[groups.get(k, ("self", k))][k] = v
    out: dict[K, int] = {}
    for group in members.values():
        if sum(group.values()) > cap:
            out.update(split_exact(cap, group))
        else:
            out.update(group)
    return out
