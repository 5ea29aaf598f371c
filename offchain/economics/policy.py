"""Reward policy `ami-econ/1`: create, listen, discovery, engagement and royalty payouts for one epoch.

Every function of the policy is pure and uses integers only, so that a validator replaying the chain gets the
same payouts to the unit. Each reward rule is one function of offchain/economics/rules.py (its formula in its
docstring); trust and sybil filters are in trust.py, the exact splitting in split.py. The rules (also in
docs/worker.md, "Economics"):

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

from offchain.economics.records import EpochInput, EpochSettlement, PolicyParams, SettledPayout
from offchain.economics.rules import (
    PayoutKey,
    RuleShares,
    create_to_earn,
    discovery,
    engagement,
    listen_credits,
    listen_to_earn,
    royalties,
)
from offchain.economics.trust import epoch_trust, qualifying, sybil_groups
from pallets_spec.vocabulary import PayoutKind

POLICY_VERSION = "ami-econ/1"


def payout_id(
    policy_version: str, epoch: int, kind: PayoutKind | int, account: str, token_id: int | None
) -> bytes:
    """The deterministic 32-byte id of a payout: blake2b-256 of its identity, never of its amount."""
    token = "-" if token_id is None else str(token_id)
    text = f"ami-payout|{policy_version}|{epoch}|{int(kind)}|{account}|{token}"
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


def _payout_order(item: tuple[PayoutKey, int]) -> tuple[int, str, int]:
    (kind, account, tok), _ = item
    return (int(kind), account, -1 if tok is None else tok)


def settle_epoch(
    inp: EpochInput, params: PolicyParams, policy_version: str = POLICY_VERSION
) -> EpochSettlement:
    """Compute every payout of one epoch under the policy described in this module's docstring."""
    budgets = {kind: int(params.budgets.get(kind, 0)) for kind in PayoutKind}
    listens = qualifying(inp.listens, inp.tracks, params.min_listen_seconds)
    previous = qualifying(inp.previous_listens, inp.tracks, params.min_listen_seconds)
    farms = sybil_groups(listens, params.sybil_group_min_size)
    trust = epoch_trust(listens, inp, params)
    credits = listen_credits(listens)
    rules: dict[PayoutKind, RuleShares] = {
        PayoutKind.CREATE: create_to_earn(
            inp.scores, inp.tracks, budgets[PayoutKind.CREATE], params.min_quality_bp
        ),
        PayoutKind.LISTEN: listen_to_earn(
            credits,
            trust,
            farms,
            budgets[PayoutKind.LISTEN],
            params.listen_credits_per_wallet,
            params.listen_reward_per_wallet,
        ),
        PayoutKind.DISCOVERY: discovery(
            listens,
            previous,
            inp.first_listeners,
            inp.start_block,
            trust,
            budgets[PayoutKind.DISCOVERY],
            params.discovery_early_listeners,
        ),
        PayoutKind.ENGAGEMENT: engagement(
            listens,
            inp.curations,
            inp.tracks,
            (inp.start_block, inp.end_block),
            trust,
            budgets[PayoutKind.ENGAGEMENT],
        ),
        PayoutKind.ROYALTY: royalties(credits, inp.tracks, trust, budgets[PayoutKind.ROYALTY]),
    }
    amounts = {key: amount for rule in rules.values() for key, amount in rule.amounts.items()}
    reasons = {key: reason for rule in rules.values() for key, reason in rule.reasons.items()}
    payouts = tuple(
        SettledPayout(
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
        paid[p.kind.label] += p.amount
    return EpochSettlement(
        epoch=inp.epoch,
        policy_version=policy_version,
        payouts=payouts,
        budgets={k.label: v for k, v in budgets.items()},
        paid={k.label: paid.get(k.label, 0) for k in PayoutKind},
        unallocated={k.label: rule.unallocated for k, rule in rules.items()},
        trust=dict(trust),
    )
