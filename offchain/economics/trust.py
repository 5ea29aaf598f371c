"""Who counts, and how much: qualifying listens and each listener's trust weight (sybil filters)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from offchain.economics.records import EpochInput, ListenRec, PolicyParams, TrackInfo
from scoring.adoption import Listen, adoption_scores

FULL_TRUST = 10_000


def qualifying(
    listens: Iterable[ListenRec], tracks: Mapping[int, TrackInfo], min_seconds: int
) -> list[ListenRec]:
    """The listens that earn: at least `min_seconds` long, of a known token minted before the listen, by
    neither the token's creator nor one of its royalty recipients (self-dealing earns nothing)."""
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


def farm_sizes(farms: Mapping[str, str]) -> dict[str, int]:
    """{farm id: how many wallets it holds} of a `sybil_groups` result."""
    size: dict[str, int] = defaultdict(int)
    for farm in farms.values():
        size[farm] += 1
    return dict(size)


def sybil_trust(listens: Iterable[ListenRec], min_group: int) -> dict[str, int]:
    """Trust per listening wallet: 10000 // farm size for farm members (a farm weighs one wallet)."""
    listens = list(listens)
    farms = sybil_groups(listens, min_group)
    size = farm_sizes(farms)
    return {
        ev.listener: FULL_TRUST // size[farms[ev.listener]] if ev.listener in farms else FULL_TRUST
        for ev in listens
    }


def adoption_trust(listens: Iterable[ListenRec], tracks: Mapping[int, TrackInfo]) -> dict[str, int]:
    """scoring.adoption's per-listener farm trust (0..1] in basis points, floored (qualifying listens)."""
    evs = [Listen(ev.listener, str(ev.token_id), float(ev.seconds), ev.at[0]) for ev in listens]
    if not evs:
        return {}
    creators = {str(tok): t.creator for tok, t in tracks.items()}
    result = adoption_scores(evs, creators=creators)
    return {w: max(0, min(FULL_TRUST, int(v * FULL_TRUST))) for w, v in result.trust.items()}


def epoch_trust(listens: list[ListenRec], inp: EpochInput, params: PolicyParams) -> dict[str, int]:
    """Each listening wallet's trust in basis points: the smallest of the built-in sybil filter's, the
    adoption module's (when `params.adoption_trust`) and the caller's own (`inp.external_trust`)."""
    trust = sybil_trust(listens, params.sybil_group_min_size)
    if params.adoption_trust:
        for wallet, value in adoption_trust(listens, inp.tracks).items():
            trust[wallet] = min(trust.get(wallet, FULL_TRUST), value)
    if inp.external_trust is not None:
        for wallet in trust:
            trust[wallet] = min(trust[wallet], int(inp.external_trust.get(wallet, FULL_TRUST)))
    return trust
