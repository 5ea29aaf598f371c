"""Reward policy `ami-econ/1`: create, listen, discovery, engagement and royalty payouts for one epoch.

Every function here is pure and uses integers only, so that a validator replaying the chain gets the same
payouts to the unit. The rules (also in docs/worker.md, "Economics"):

* Budgets: each reward kind has a budget per epoch. A budget is split over the eligible weights by the largest
  remainder method (`split_exact`), so it is paid to the unit whenever anyone is eligible; what cannot be paid
  (nobody eligible, or everyone at their cap) is reported as `unallocated` for that kind, never silently lost.
* Trust: each account has a trust weight in basis points (10000 = fully trusted). `sybil_trust` is the
  built-in filter: wallets whose qualifying listens in the epoch are identical (same tracks, counts and total
  seconds), in groups of at least `sybil_group_min_size`, share one wallet's weight (trust 10000 // group
  size). With `adoption_trust`, scoring.adoption's graph trust (near-identical narrow token sets form a farm)
  also applies; a caller may pass trust weights of its own (`external_trust`). The smallest weight wins.
  Adoption trust is off by default: it also caps honest audiences of a single song (see docs/scoring.md).
* A listen qualifies when `seconds >= min_listen_seconds`, the token was minted before it and has a score
  published on chain by the epoch's end (rejected tracks never do), and the listener is not the token's
  creator or one of its royalty recipients (self-dealing earns nothing).
* Create-to-earn (kind 0): tokens whose score landed on chain (ScoreSubmitted) in the epoch, with
  `quality_bp >= min_quality_bp`; weight = novelty_bp * quality_bp; paid to the creator. Rejected tracks and
  duplicates never get a score published, so they earn nothing.
* Listen-to-earn (kind 1): per (listener, token), c qualifying listens give 1000*sqrt(c) credits (diminishing
  returns); a wallet's credits are capped at `listen_credits_per_wallet`, then weighted by trust; the budget
  is split in proportion, then each wallet - and each detected farm as a whole - is capped at
  `listen_reward_per_wallet`; the excess is unallocated (re-splitting it would feed the farms).
* Discovery (kind 2): a track's growth = trust-weighted unique listeners this epoch minus last epoch (if > 0).
  Its early listeners (among its first `discovery_early_listeners` distinct listeners, first heard before this
  epoch) share weight growth * own trust.
* Engagement (kind 3): a curator's tag or playlist add of a token is adopted by every other account that
  later listens to (this epoch, qualifying) or curates the same token; weight = isqrt(sum of adopters' trust
  * 10000) * curator trust // 10000 (diminishing returns per curator).
* Royalties (kind 4): the royalty budget is split over tokens by trust-weighted listen credits; each token's
  pool is split over its on-chain royalty splits (basis points) by the largest remainder method.
* Payout ids: blake2b-256 over "ami-payout|<policy>|<epoch>|<kind>|<account>|<token or ->", so a replayed
  settlement produces the same ids and the contract refuses any id already paid.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from math import isqrt
from typing import Any, TypeVar

POLICY_VERSION = "ami-econ/1"
FULL_TRUST = 10_000
CREDITS_PER_LISTEN = 1_000

K = TypeVar("K", bound=Hashable)


class RewardKind(IntEnum):
    """The `kind` byte of the rewards contract's `Payout`."""

    CREATE = 0
    LISTEN = 1
    DISCOVERY = 2
    ENGAGEMENT = 3
    ROYALTY = 4


@dataclass(frozen=True)
class PolicyParams:
    """Budgets and caps of one epoch (from WorkerSettings.budgets and .caps)."""

    budgets: Mapping[RewardKind, int]
    listen_reward_per_wallet: int = 60_000
    listen_credits_per_wallet: int = 10_000
    min_listen_seconds: int = 30
    min_quality_bp: int = 1_000
    sybil_group_min_size: int = 4
    discovery_early_listeners: int = 10
    adoption_trust: bool = False


@dataclass(frozen=True)
class TrackInfo:
    token_id: int
    creator: str
    royalty_splits: tuple[tuple[str, int], ...]
    minted_at: tuple[int, int]  # (block_number, event_index)


@dataclass(frozen=True)
class ScoreRec:
    token_id: int
    novelty_bp: int
    quality_bp: int
    at: tuple[int, int]


@dataclass(frozen=True)
class ListenRec:
    token_id: int
    listener: str
    seconds: int
    at: tuple[int, int]


@dataclass(frozen=True)
class CurationRec:
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
class Payout:
    payout_id: bytes
    epoch: int
    kind: RewardKind
    account: str
    token_id: int | None
    amount: int
    reason: str


@dataclass(frozen=True)
class EpochSettlement:
    epoch: int
    policy_version: str
    payouts: tuple[Payout, ...]
    budgets: dict[str, int]
    paid: dict[str, int]
    unallocated: dict[str, int]
    trust: dict[str, int]

    def as_record(self) -> dict[str, Any]:
        return {"budgets": self.budgets, "paid": self.paid, "unallocated": self.unallocated}


def payout_id(
    policy_version: str, epoch: int, kind: RewardKind | int, account: str, token_id: int | None
) -> bytes:
    """The deterministic 32-byte id of a payout: blake2b-256 of its identity, never of its amount."""
    token = "-" if token_id is None else str(token_id)
    text = f"ami-payout|{policy_version}|{epoch}|{int(kind)}|{account}|{token}"
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


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


def _qualifying(
    listens: Iterable[ListenRec], tracks: Mapping[int, TrackInfo], min_seconds: int
) -> list[ListenRec]:
    out = []
    for ev in listens:
        track = tracks.get(ev.token_id)
        if track is None or ev.seconds < min_seconds or ev.at <= track.minted_at:
            continue
        if ev.listener == track.creator or any(ev.listener == acc for acc, _ in track.royalty_splits):
            continue
        out.append(ev)
    return out


def sybil_groups(listens: Iterable[ListenRec], min_group: int) -> dict[str, str]:
    """Built-in sybil filter: wallet -> farm id, for wallets with identical behaviour in groups >= min_group.

    A wallet's behaviour fingerprint is its sorted (token, listen count, total seconds) tuples in the epoch:
    scripted farms repeat it exactly, people almost never do. A crude, cheap first line; richer trust weights
    (co-listen graph communities) come from `EpochInput.external_trust`.
    """
    per: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for ev in listens:
        slot = per[ev.listener][ev.token_id]
        slot[0] += 1
        slot[1] += ev.seconds
    groups: dict[tuple[tuple[int, int, int], ...], list[str]] = defaultdict(list)
    for wallet, tokens in per.items():
        groups[tuple(sorted((tok, c, secs) for tok, (c, secs) in tokens.items()))].append(wallet)
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) >= min_group:
            farm = "farm:" + min(members)
            for wallet in members:
                out[wallet] = farm
    return out


def sybil_trust(listens: Iterable[ListenRec], min_group: int) -> dict[str, int]:
    """Trust per listening wallet: 10000 // farm size for farm members (a farm weighs one wallet)."""
    listens = list(listens)
    farms = sybil_groups(listens, min_group)
    size: dict[str, int] = defaultdict(int)
    for farm in farms.values():
        size[farm] += 1
    return {
        ev.listener: FULL_TRUST // size[farms[ev.listener]] if ev.listener in farms else FULL_TRUST
        for ev in listens
    }


def adoption_trust(listens: Iterable[ListenRec], tracks: Mapping[int, TrackInfo]) -> dict[str, int]:
    """scoring.adoption's per-listener farm trust (0..1] in basis points, floored (qualifying listens)."""
    from scoring.adoption import Listen, adoption_scores

    evs = [Listen(ev.listener, str(ev.token_id), float(ev.seconds), ev.at[0]) for ev in listens]
    if not evs:
        return {}
    creators = {str(tok): t.creator for tok, t in tracks.items()}
    result = adoption_scores(evs, creators=creators)
    return {w: max(0, min(FULL_TRUST, int(v * FULL_TRUST))) for w, v in result.trust.items()}


def _credits(listens: Iterable[ListenRec]) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for ev in listens:
        counts[(ev.listener, ev.token_id)] += 1
    # 1000 * sqrt(c): the 1st listen of a track is worth 1000, 4 listens 2000, 100 listens 10000.
    return {key: isqrt(c * CREDITS_PER_LISTEN * CREDITS_PER_LISTEN) for key, c in counts.items()}


def _payout_order(item: tuple[tuple[RewardKind, str, int | None], int]) -> tuple[int, str, int]:
    (kind, account, tok), _ = item
    return (int(kind), account, -1 if tok is None else tok)


def settle_epoch(
    inp: EpochInput, params: PolicyParams, policy_version: str = POLICY_VERSION
) -> EpochSettlement:
    """Compute every payout of one epoch under the policy described in this module's docstring."""
    budgets = {kind: int(params.budgets.get(kind, 0)) for kind in RewardKind}
    listens = _qualifying(inp.listens, inp.tracks, params.min_listen_seconds)
    previous = _qualifying(inp.previous_listens, inp.tracks, params.min_listen_seconds)
    farms = sybil_groups(listens, params.sybil_group_min_size)
    trust = sybil_trust(listens, params.sybil_group_min_size)
    if params.adoption_trust:
        for wallet, value in adoption_trust(listens, inp.tracks).items():
            trust[wallet] = min(trust.get(wallet, FULL_TRUST), value)
    if inp.external_trust is not None:
        for wallet in trust:
            trust[wallet] = min(trust[wallet], int(inp.external_trust.get(wallet, FULL_TRUST)))

    def t(account: str) -> int:
        return trust.get(account, FULL_TRUST)

    Key = tuple[RewardKind, str, int | None]
    amounts: dict[Key, int] = {}
    reasons: dict[tuple[RewardKind, str, int | None], str] = {}
    unallocated: dict[str, int] = {}

    # Create-to-earn: the latest score landed in this epoch per token.
    latest: dict[int, ScoreRec] = {}
    for s in sorted(inp.scores, key=lambda s: s.at):
        latest[s.token_id] = s
    create_w: dict[int, int] = {}
    for tok, s in latest.items():
        if tok in inp.tracks and s.quality_bp >= params.min_quality_bp:
            create_w[tok] = s.novelty_bp * s.quality_bp
    shares = split_exact(budgets[RewardKind.CREATE], create_w)
    for tok, amount in shares.items():
        key: Key = (RewardKind.CREATE, inp.tracks[tok].creator, tok)
        amounts[key] = amount
        s = latest[tok]
        reasons[key] = f"created token {tok}: novelty {s.novelty_bp}bp x quality {s.quality_bp}bp"
    unallocated["create"] = budgets[RewardKind.CREATE] - sum(shares.values())

    # Listen-to-earn.
    credits = _credits(listens)
    wallet_credits: dict[str, int] = defaultdict(int)
    wallet_tracks: dict[str, int] = defaultdict(int)
    for (wallet, _tok), c in credits.items():
        wallet_credits[wallet] += c
        wallet_tracks[wallet] += 1
    listen_w = {
        w: min(c, params.listen_credits_per_wallet) * t(w) // FULL_TRUST for w, c in wallet_credits.items()
    }
    uncapped = split_exact(budgets[RewardKind.LISTEN], listen_w)
    lshares = cap_groups(uncapped, farms, params.listen_reward_per_wallet)
    farm_size: dict[str, int] = defaultdict(int)
    for f in farms.values():
        farm_size[f] += 1
    for wallet, amount in lshares.items():
        key = (RewardKind.LISTEN, wallet, None)
        amounts[key] = amount
        capped = " (capped)" if amount < uncapped[wallet] else ""
        farm = f", in a farm of {farm_size[farms[wallet]]}" if wallet in farms else ""
        used = min(wallet_credits[wallet], params.listen_credits_per_wallet)
        reasons[key] = (
            f"listened to {wallet_tracks[wallet]} tracks: {used} credits,"
            f" trust {t(wallet) / 100:.0f}%{farm}{capped}"
        )
    unallocated["listen"] = budgets[RewardKind.LISTEN] - sum(lshares.values())

    # Discovery: early listeners of growing tracks.
    def reach(evs: list[ListenRec]) -> dict[int, int]:
        seen: dict[int, set[str]] = defaultdict(set)
        for ev in evs:
            seen[ev.token_id].add(ev.listener)
        return {tok: sum(t(w) for w in ws) for tok, ws in seen.items()}

    now, before = reach(listens), reach(previous)
    disc_w: dict[str, int] = defaultdict(int)
    disc_tracks: dict[str, list[int]] = defaultdict(list)
    for tok, r in sorted(now.items()):
        growth = r - before.get(tok, 0)
        if growth <= 0:
            continue
        early = inp.first_listeners.get(tok, ())[: params.discovery_early_listeners]
        for wallet, at in early:
            if at[0] < inp.start_block:
                disc_w[wallet] += growth * t(wallet) // FULL_TRUST
                disc_tracks[wallet].append(tok)
    dshares = split_exact(budgets[RewardKind.DISCOVERY], disc_w)
    for wallet, amount in dshares.items():
        key = (RewardKind.DISCOVERY, wallet, None)
        amounts[key] = amount
        reasons[key] = f"early listener of growing tracks {sorted(disc_tracks[wallet])}"
    unallocated["discovery"] = budgets[RewardKind.DISCOVERY] - sum(dshares.values())

    # Engagement: curations adopted by others.
    first_curation: dict[tuple[str, int], tuple[int, int]] = {}
    for cur in sorted(inp.curations, key=lambda x: x.at):
        first_curation.setdefault((cur.curator, cur.token_id), cur.at)
    actions: dict[int, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for ev in listens:
        actions[ev.token_id].append((ev.at, ev.listener))
    for cur in inp.curations:
        if inp.start_block <= cur.at[0] <= inp.end_block:
            actions[cur.token_id].append((cur.at, cur.curator))
    eng_raw: dict[str, int] = defaultdict(int)
    eng_tracks: dict[str, set[int]] = defaultdict(set)
    for (curator, tok), at in sorted(first_curation.items()):
        if tok not in inp.tracks:
            continue
        adopters = {who for when, who in actions.get(tok, ()) if when > at and who != curator}
        if adopters:
            eng_raw[curator] += sum(t(a) for a in adopters)
            eng_tracks[curator].add(tok)
    eng_w = {c: isqrt(v * FULL_TRUST) * t(c) // FULL_TRUST for c, v in eng_raw.items()}
    eshares = split_exact(budgets[RewardKind.ENGAGEMENT], eng_w)
    for curator, amount in eshares.items():
        key = (RewardKind.ENGAGEMENT, curator, None)
        amounts[key] = amount
        reasons[key] = f"curated tracks {sorted(eng_tracks[curator])} that others adopted"
    unallocated["engagement"] = budgets[RewardKind.ENGAGEMENT] - sum(eshares.values())

    # Royalties: pool per token by trust-weighted credits, then split per the token's on-chain splits.
    token_w: dict[int, int] = defaultdict(int)
    for (wallet, tok), c in credits.items():
        token_w[tok] += c * t(wallet) // FULL_TRUST
    pools = split_exact(budgets[RewardKind.ROYALTY], token_w)
    royalty_paid = 0
    for tok, pool in sorted(pools.items()):
        splits: dict[str, int] = defaultdict(int)
        for acc, bp in inp.tracks[tok].royalty_splits:
            splits[acc] += bp
        for acc, amount in split_exact(pool, splits).items():
            key = (RewardKind.ROYALTY, acc, tok)
            amounts[key] = amount
            royalty_paid += amount
            reasons[key] = f"royalty {splits[acc]}bp of token {tok}'s listen pool {pool}"
    unallocated["royalty"] = budgets[RewardKind.ROYALTY] - royalty_paid

    payouts = tuple(
        Payout(
            payout_id=payout_id(policy_version, inp.epoch, kind, account, tok),
            epoch=inp.epoch,
            kind=kind,
            account=account,
            token_id=tok,
            amount=amount,
            reason=reasons[(kind, account, tok)],
        )
        for (kind, account, tok), amount in sorted(amounts.items(), key=_payout_order)
        if amount > 0
    )
    paid: dict[str, int] = defaultdict(int)
    for p in payouts:
        paid[p.kind.name.lower()] += p.amount
    return EpochSettlement(
        epoch=inp.epoch,
        policy_version=policy_version,
        payouts=payouts,
        budgets={k.name.lower(): v for k, v in budgets.items()},
        paid={k.name.lower(): paid.get(k.name.lower(), 0) for k in RewardKind},
        unallocated=unallocated,
        trust=dict(trust),
    )
