"""The five reward rules of `ami-econ/1`, each a function from one epoch's activity to shares of its budget.

Every rule splits its budget B over integer weights w_k with `split_exact` (the largest remainder method):
share_k = floor(B * w_k / W) plus one unit for the (B - sum of floors) largest remainders, W = sum of w_k.
What nobody earns is the rule's `unallocated`. Trust values are basis points (FULL_TRUST = 10000 = 1);
a wallet not in the trust map counts as fully trusted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from math import isqrt
from typing import TypeVar

from offchain.economics.records import CurationRec, ListenRec, ScoreRec, TrackInfo
from offchain.economics.split import cap_groups, split_exact
from offchain.economics.trust import FULL_TRUST, farm_sizes
from pallets_spec.vocabulary import PayoutKind

CREDITS_PER_LISTEN = 1_000

PayoutKey = tuple[PayoutKind, str, int | None]  # (kind, account, token or None)
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class RuleShares:
    """What one rule pays: amounts and reasons by payout key, and the part of its budget nobody earned."""

    amounts: dict[PayoutKey, int]
    reasons: dict[PayoutKey, str]
    unallocated: int


def _trust(trust: Mapping[str, int], account: str) -> int:
    return trust.get(account, FULL_TRUST)


def _split_shares(
    budget: int, weights: Mapping[K, int], payee: Callable[[K], tuple[PayoutKey, str]]
) -> RuleShares:
    """`split_exact(budget, weights)`, the share of each k paid as `payee(k)` = (payout key, reason)."""
    paid = []
    for k, amount in split_exact(budget, weights).items():
        key, reason = payee(k)
        paid.append((key, amount, reason))
    return _rule_shares(budget, paid)


def _rule_shares(budget: int, paid: Iterable[tuple[PayoutKey, int, str]]) -> RuleShares:
    """A rule's result from (payout key, amount, reason) triples: unallocated = budget - sum of amounts."""
    amounts: dict[PayoutKey, int] = {}
    reasons: dict[PayoutKey, str] = {}
    for key, amount, reason in paid:
        amounts[key] = amount
        reasons[key] = reason
    return RuleShares(amounts, reasons, budget - sum(amounts.values()))


def listen_credits(listens: Iterable[ListenRec]) -> dict[tuple[str, int], int]:
    """Listen credits per (listener, token): c qualifying listens give floor(1000 * sqrt(c)).

    Computed exactly as isqrt(c * 1000**2): the 1st listen of a track is worth 1000, 4 listens 2000,
    100 listens 10000 (diminishing returns on replays).
    """
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for ev in listens:
        counts[(ev.listener, ev.token_id)] += 1
    return {key: isqrt(c * CREDITS_PER_LISTEN * CREDITS_PER_LISTEN) for key, c in counts.items()}


def create_to_earn(
    scores: Iterable[ScoreRec], tracks: Mapping[int, TrackInfo], budget: int, min_quality_bp: int
) -> RuleShares:
    """Create-to-earn (kind 0), paid to each token's creator.

    For each known token, its latest score landed in the epoch (by chain position) counts when
    quality_bp >= `min_quality_bp`: w_t = novelty_bp * quality_bp; share_t = split_exact(budget, w)_t.
    Rejected tracks and duplicates never get a score published, so they never earn.
    """
    latest: dict[int, ScoreRec] = {}
    for s in sorted(scores, key=lambda s: s.at):
        latest[s.token_id] = s
    weights = {
        tok: s.novelty_bp * s.quality_bp
        for tok, s in latest.items()
        if tok in tracks and s.quality_bp >= min_quality_bp
    }

    def payee(tok: int) -> tuple[PayoutKey, str]:
        s = latest[tok]
        reason = f"created token {tok}: novelty {s.novelty_bp}bp x quality {s.quality_bp}bp"
        return (PayoutKind.CREATE, tracks[tok].creator, tok), reason

    return _split_shares(budget, weights, payee)


def listen_to_earn(
    credits: Mapping[tuple[str, int], int],
    trust: Mapping[str, int],
    farms: Mapping[str, str],
    budget: int,
    credits_cap: int,
    reward_cap: int,
) -> RuleShares:
    """Listen-to-earn (kind 1), paid to listeners.

    A wallet's credits C_w = sum over its tokens of `listen_credits`; w_w = min(C_w, credits_cap) *
    trust_w // 10000; shares = split_exact(budget, w); then each group - a wallet alone or a whole farm of
    `farms` - keeps at most `reward_cap` (`cap_groups`), and the excess stays unallocated (re-splitting it
    would feed the farms).
    """
    wallet_credits: dict[str, int] = defaultdict(int)
    wallet_tracks: dict[str, int] = defaultdict(int)
    for (wallet, _tok), c in credits.items():
        wallet_credits[wallet] += c
        wallet_tracks[wallet] += 1
    weights = {w: min(c, credits_cap) * _trust(trust, w) // FULL_TRUST for w, c in wallet_credits.items()}
    uncapped = split_exact(budget, weights)
    shares = cap_groups(uncapped, farms, reward_cap)
    size = farm_sizes(farms)

    def reason(wallet: str, amount: int) -> str:
        capped = " (capped)" if amount < uncapped[wallet] else ""
        farm = f", in a farm of {size[farms[wallet]]}" if wallet in farms else ""
        used = min(wallet_credits[wallet], credits_cap)
        return (
            f"listened to {wallet_tracks[wallet]} tracks: {used} credits,"
            f" trust {_trust(trust, wallet) / 100:.0f}%{farm}{capped}"
        )

    return _rule_shares(
        budget, (((PayoutKind.LISTEN, w, None), amount, reason(w, amount)) for w, amount in shares.items())
    )


def _reach(listens: Iterable[ListenRec], trust: Mapping[str, int]) -> dict[int, int]:
    """Per token: the sum of its distinct listeners' trust."""
    seen: dict[int, set[str]] = defaultdict(set)
    for ev in listens:
        seen[ev.token_id].add(ev.listener)
    return {tok: sum(_trust(trust, w) for w in ws) for tok, ws in seen.items()}


def discovery(
    listens: Iterable[ListenRec],
    previous: Iterable[ListenRec],
    first_listeners: Mapping[int, tuple[tuple[str, tuple[int, int]], ...]],
    start_block: int,
    trust: Mapping[str, int],
    budget: int,
    early_listeners: int,
) -> RuleShares:
    """Discovery (kind 2), paid to the early listeners of growing tracks.

    reach_t = sum of trust over t's distinct listeners (this epoch's `listens`, last epoch's `previous`);
    growth_t = reach_t(now) - reach_t(before), counted when > 0. Each of t's first `early_listeners`
    distinct listeners who first heard it before `start_block` adds growth_t * trust_w // 10000 to w_w;
    shares = split_exact(budget, w).
    """
    now, before = _reach(listens, trust), _reach(previous, trust)
    weights: dict[str, int] = defaultdict(int)
    found: dict[str, list[int]] = defaultdict(list)
    for tok, r in sorted(now.items()):
        growth = r - before.get(tok, 0)
        if growth <= 0:
            continue
        for wallet, at in first_listeners.get(tok, ())[:early_listeners]:
            if at[0] < start_block:
                weights[wallet] += growth * _trust(trust, wallet) // FULL_TRUST
                found[wallet].append(tok)
    return _split_shares(
        budget,
        weights,
        lambda w: ((PayoutKind.DISCOVERY, w, None), f"early listener of growing tracks {sorted(found[w])}"),
    )


def engagement(
    listens: Iterable[ListenRec],
    curations: Iterable[CurationRec],
    tracks: Mapping[int, TrackInfo],
    blocks: tuple[int, int],
    trust: Mapping[str, int],
    budget: int,
) -> RuleShares:
    """Engagement (kind 3), paid to curators whose tags and playlist adds others adopted.

    A curator's first curation of a known token t (at position p, over all history) is adopted by every
    other account that, after p, listens to t (this epoch's qualifying `listens`) or curates t within
    `blocks` (the epoch's first and last block). A_c = sum of its adopters' trust over the curator's tokens;
    w_c = isqrt(A_c * 10000) * trust_c // 10000 (diminishing returns); shares = split_exact(budget, w).
    """
    curations = tuple(curations)
    first: dict[tuple[str, int], tuple[int, int]] = {}
    for cur in sorted(curations, key=lambda x: x.at):
        first.setdefault((cur.curator, cur.token_id), cur.at)
    actions: dict[int, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for ev in listens:
        actions[ev.token_id].append((ev.at, ev.listener))
    for cur in curations:
        if blocks[0] <= cur.at[0] <= blocks[1]:
            actions[cur.token_id].append((cur.at, cur.curator))
    adopted: dict[str, int] = defaultdict(int)
    curated: dict[str, set[int]] = defaultdict(set)
    for (curator, tok), at in sorted(first.items()):
        if tok not in tracks:
            continue
        adopters = {who for when, who in actions.get(tok, ()) if when > at and who != curator}
        if adopters:
            adopted[curator] += sum(_trust(trust, a) for a in adopters)
            curated[curator].add(tok)
    weights = {c: isqrt(v * FULL_TRUST) * _trust(trust, c) // FULL_TRUST for c, v in adopted.items()}
    return _split_shares(
        budget,
        weights,
        lambda c: (
            (PayoutKind.ENGAGEMENT, c, None),
            f"curated tracks {sorted(curated[c])} that others adopted",
        ),
    )


def royalties(
    credits: Mapping[tuple[str, int], int],
    tracks: Mapping[int, TrackInfo],
    trust: Mapping[str, int],
    budget: int,
) -> RuleShares:
    """Royalties (kind 4), paid to each token's on-chain royalty recipients.

    A token's pool weight w_t = sum over its listeners of credits(w, t) * trust_w // 10000;
    pool_t = split_exact(budget, w)_t; then pool_t is split over the token's royalty splits (basis points,
    summed per account) with split_exact again.
    """
    token_w: dict[int, int] = defaultdict(int)
    for (wallet, tok), c in credits.items():
        token_w[tok] += c * _trust(trust, wallet) // FULL_TRUST

    def token_royalties(tok: int, pool: int) -> list[tuple[PayoutKey, int, str]]:
        splits: dict[str, int] = defaultdict(int)
        for acc, bp in tracks[tok].royalty_splits:
            splits[acc] += bp
        return [
            (
                (PayoutKind.ROYALTY, acc, tok),
                amount,
                f"royalty {splits[acc]}bp of token {tok}'s listen pool {pool}",
            )
            for acc, amount in split_exact(pool, splits).items()
        ]

    pools = split_exact(budget, token_w)
    return _rule_shares(
        budget, (p for tok, pool in sorted(pools.items()) for p in token_royalties(tok, pool))
    )
