"""Cultural adoption per epoch from plain event lists -> adoption_bp per token, plus per-listener trust
weights.

Pure functions on plain data (no chain, no store). Anti-sybil rules come first because fraud is the norm in
listen-to-earn (70..85 % of streams on AI tracks reported fraudulent):

- minimum listen time: listens shorter than `min_listen_s` are dropped;
- diminishing returns per listener and token: repeated plays add less and stop counting at `per_pair_cap`;
- per-wallet cap: a wallet that listens to more than `wallet_tokens` tokens has its weight spread over them;
- graph-based trust: wallets whose listened-token sets are near-identical (Jaccard >= `farm_jaccard`) and
  narrow (at most `farm_max_tokens` tokens) form a farm; a farm of n wallets weighs at most `farm_cap`
  listeners in total (trust = min(1, farm_cap / n)). Honest fans of one song who behave identically are capped
  too: the price of the rule, documented in docs/scoring.md.

Adoption of a token combines sybil-filtered unique-listener growth (saturating, so returns diminish), audience
breadth (how many listener communities of the co-listen graph it reaches), independent curators (trusted
wallets other than the creator who tag or playlist it) and a bonus for emerging clusters: communities that are
new this epoch, well separated in the co-listen graph and acoustically distinct from the known genre
centroids.
Communities come from a small deterministic label propagation written here (networkx's is randomised and its
Louvain needs the whole pair graph; ours runs on per-token label histograms, never materialising pairs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field

ADOPTION_VERSION = "ami-adoption/1"


@dataclass(frozen=True)
class Listen:
    """``listen(token, seconds)`` by ``listener`` in block ``block``."""

    listener: str
    token: str
    seconds: float
    block: int


@dataclass(frozen=True)
class Tag:
    """A curator tagged a token."""

    curator: str
    token: str
    tag: str
    block: int


@dataclass(frozen=True)
class PlaylistAdd:
    """A curator added a token to a playlist."""

    curator: str
    playlist: str
    token: str
    block: int


class AdoptionParams(BaseModel):
    """Every threshold of the adoption formula (part of `ADOPTION_VERSION`)."""

    min_listen_s: float = Field(default=30.0, ge=0)
    per_pair_cap: int = Field(default=3, ge=1)
    wallet_tokens: int = Field(default=50, ge=1)
    farm_jaccard: float = Field(default=0.8, gt=0, le=1)
    farm_max_tokens: int = Field(default=5, ge=1)
    farm_min_size: int = Field(default=3, ge=2)
    farm_cap: float = Field(default=1.0, gt=0)
    growth_half: float = Field(default=25.0, gt=0)
    returning_weight: float = Field(default=0.5, ge=0, le=1)
    curator_scale: float = Field(default=3.0, gt=0)
    lp_iterations: int = Field(default=20, ge=1)
    emerging_min_size: float = Field(default=5.0, gt=0)
    emerging_separation: float = Field(default=0.7, ge=0, le=1)
    emerging_newness: float = Field(default=0.5, ge=0, le=1)
    emerging_distance: float = Field(default=0.1, ge=0)
    emerging_bonus: float = Field(default=0.2, ge=0)


@dataclass
class AdoptionResult:
    """Adoption scores and the per-listener weights that economics reuses.

    Attributes:
        adoption_bp: token -> 0..10000.
        trust: listener -> farm trust in (0, 1] (1 = independent).
        weight: listener -> effective weight per counted token (trust x wallet cap factor).
        community: listener -> community label (the smallest listener id of the community).
        emerging: community labels that earned the emerging-cluster bonus.
        parts: token -> {"listeners", "growth", "breadth", "curators", "emerging"} for inspection.
    """

    adoption_bp: dict[str, int]
    trust: dict[str, float]
    weight: dict[str, float]
    community: dict[str, str]
    emerging: list[str] = field(default_factory=list)
    parts: dict[str, dict[str, float]] = field(default_factory=dict)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def farm_trust(profiles: Mapping[str, frozenset[str]], params: AdoptionParams) -> dict[str, float]:
    """Trust per wallet from near-identical narrow profiles.

    Wallets with at most ``farm_max_tokens`` tokens are grouped by identical token sets, then groups whose
    sets
    have Jaccard >= ``farm_jaccard`` are merged (union-find, deterministic order). A merged group of n >=
    ``farm_min_size`` wallets gets trust ``min(1, farm_cap / n)`` each; everyone else gets 1.
    """
    by_set: dict[frozenset[str], list[str]] = defaultdict(list)
    for wallet in sorted(profiles):
        tokens = profiles[wallet]
        if 0 < len(tokens) <= params.farm_max_tokens:
            by_set[tokens].append(wallet)
    keys = sorted(by_set, key=lambda s: (sorted(s), len(s)))
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Only sets sharing a token can reach the Jaccard threshold, so compare within token buckets.
    by_token: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        for token in key:
            by_token[token].append(i)
    for token in sorted(by_token):
        members = by_token[token]
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if find(i) != find(j) and _jaccard(keys[i], keys[j]) >= params.farm_jaccard:
                    ri, rj = find(i), find(j)
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[str]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[find(i)].extend(by_set[key])
    trust = {wallet: 1.0 for wallet in profiles}
    for wallets in groups.values():
        if len(wallets) >= params.farm_min_size:
            t = min(1.0, params.farm_cap / len(wallets))
            for wallet in wallets:
                trust[wallet] = t
    return trust


def label_propagation(
    listener_tokens: Mapping[str, Mapping[str, float]], weight: Mapping[str, float], iterations: int = 20
) -> dict[str, str]:
    """Deterministic weighted label propagation on the co-listen graph, without building listener pairs.

    Listener l adopts the label c maximising ``sum_{t in T(l)} (W_t[c] - [label(l) = c] w_l) / (W_t - w_l)``
    where
    ``W_t[c]`` is the total weight of token t's listeners labelled c; listeners are visited in sorted id
    order,
    labels start as the listener's own id, ties keep the current label, else the smallest label. Stops after
    ``iterations`` sweeps or when nothing changes. Listeners sharing no token with anyone keep their own
    label.
    """
    label = {lst: lst for lst in listener_tokens}
    token_hist: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for lst, tokens in listener_tokens.items():
        for token in tokens:
            token_hist[token][lst] += weight.get(lst, 1.0)
    order = sorted(listener_tokens)
    for _ in range(iterations):
        changed = False
        for lst in order:
            w = weight.get(lst, 1.0)
            score: dict[str, float] = defaultdict(float)
            mine = label[lst]
            for token in listener_tokens[lst]:
                hist = token_hist[token]
                # Normalising by the token's other listeners keeps hub tokens from merging communities.
                others = sum(hist.values()) - w
                if others <= 1e-12:
                    continue
                for lab, total in hist.items():
                    v = total - (w if lab == mine else 0.0)
                    if v > 1e-12:
                        score[lab] += v / others
            if not score:
                continue
            best = max(score.values())
            if score.get(mine, 0.0) >= best - 1e-12:
                continue
            new = min(lab for lab, v in score.items() if v >= best - 1e-12)
            for token in listener_tokens[lst]:
                hist = token_hist[token]
                hist[mine] -= w
                if hist[mine] <= 1e-12:
                    del hist[mine]
                hist[new] += w
            label[lst] = new
            changed = True
        if not changed:
            break
    return label


def _saturate(x: float, half: float) -> float:
    """``x / (x + half)``: 0.5 at ``half``, concave, so every extra unit adds less (diminishing returns)."""
    return x / (x + half) if x > 0 else 0.0


def adoption_scores(
    listens: Iterable[Listen],
    tags: Iterable[Tag] = (),
    playlist_adds: Iterable[PlaylistAdd] = (),
    previous_listeners: Mapping[str, Iterable[str]] | None = None,
    creators: Mapping[str, str] | None = None,
    token_embeddings: Mapping[str, np.ndarray] | None = None,
    genre_centroids: Sequence[np.ndarray] | None = None,
    params: AdoptionParams | None = None,
) -> AdoptionResult:
    """Adoption of every token heard in one epoch.

    For token t with counted listeners L_t (listens >= min_listen_s):

    - pair weight ``p_lt = (1 - 2^-min(n_lt, cap)) / (1 - 2^-cap)`` for n_lt counted plays;
    - listener weight ``w_l = trust_l * min(1, wallet_tokens / |T(l)|)``;
    - effective listeners ``E_t = sum_l w_l p_lt (1 if l is new to t else returning_weight)``;
    - growth ``G_t = E_t / (E_t + growth_half)``;
    - breadth ``B_t = 1 - exp(-(exp(H_t) - 1) / 2)`` with H_t the entropy of t's listener weight over
      communities (label propagation);
    - curators ``C_t = 1 - exp(-K_t / curator_scale)``, K_t the summed trust of distinct curators (tags and
      playlist adds) other than t's creator;
    - emerging share ``M_t`` = fraction of t's weight in emerging communities (new, separated, distinct);
    - ``A_t = G_t (0.5 + 0.25 B_t + 0.25 C_t) (1 + bonus M_t) / (1 + bonus)``; ``adoption_bp = round(1e4
    A_t)``.

    Args:
        listens, tags, playlist_adds: the epoch's events.
        previous_listeners: token -> listeners counted in earlier epochs (growth counts new listeners fully).
        creators: token -> creator wallet (creators do not count as their own curators or listeners).
        token_embeddings: token -> acoustic embedding (needed for the emerging bonus; none -> no bonus).
        genre_centroids: known genre centroids in the same space.
        params: thresholds (defaults: `AdoptionParams()`).
    """
    p = params or AdoptionParams()
    creators = creators or {}
    plays: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ev in listens:
        if (
            ev.seconds >= p.min_listen_s
            and math.isfinite(ev.seconds)
            and creators.get(ev.token) != ev.listener
        ):
            plays[ev.listener][ev.token] += 1
    profiles = {lst: frozenset(tok) for lst, tok in plays.items()}
    cur_sets: dict[str, set[str]] = defaultdict(set)
    for tag in tags:
        cur_sets[tag.curator].add(tag.token)
    for add in playlist_adds:
        cur_sets[add.curator].add(add.token)
    trust = farm_trust(profiles, p)
    # Curators are judged on their own curation profiles, and a wallet distrusted as a listener stays so.
    cur_farm = farm_trust({c: frozenset(t) for c, t in cur_sets.items()}, p)
    cur_trust = {c: cur_farm[c] * trust.get(c, 1.0) for c in cur_sets}
    weight = {
        lst: trust[lst] * min(1.0, p.wallet_tokens / max(1, len(tokens))) for lst, tokens in profiles.items()
    }
    norm = 1.0 - 2.0 ** (-p.per_pair_cap)
    pair = {
        lst: {t: (1.0 - 2.0 ** (-min(n, p.per_pair_cap))) / norm for t, n in sorted(tok.items())}
        for lst, tok in plays.items()
    }
    community = label_propagation(pair, weight, p.lp_iterations)
    prev = {t: set(v) for t, v in (previous_listeners or {}).items()}
    token_listeners: dict[str, dict[str, float]] = defaultdict(dict)
    for lst, tok in pair.items():
        for t, pw in tok.items():
            factor = p.returning_weight if lst in prev.get(t, ()) else 1.0
            token_listeners[t][lst] = weight[lst] * pw * factor
    emerging = _emerging(token_listeners, community, prev, token_embeddings, genre_centroids, p)
    result = AdoptionResult({}, trust, weight, community, sorted(emerging))
    tokens = sorted(set(token_listeners) | {t for s in cur_sets.values() for t in s})
    for t in tokens:
        lw = token_listeners.get(t, {})
        e = sum(lw.values())
        growth = _saturate(e, p.growth_half)
        by_comm: dict[str, float] = defaultdict(float)
        for lst, v in lw.items():
            by_comm[community[lst]] += v
        total = sum(by_comm.values())
        h = -sum((v / total) * math.log(v / total) for v in by_comm.values() if v > 0) if total > 0 else 0.0
        breadth = 1.0 - math.exp(-(math.exp(h) - 1.0) / 2.0)
        k = sum(cur_trust[c] for c, s in sorted(cur_sets.items()) if t in s and creators.get(t) != c)
        curators = 1.0 - math.exp(-k / p.curator_scale)
        m = sum(v for c, v in by_comm.items() if c in emerging) / total if total > 0 else 0.0
        a = growth * (0.5 + 0.25 * breadth + 0.25 * curators) * (1.0 + p.emerging_bonus * m)
        a /= 1.0 + p.emerging_bonus
        result.adoption_bp[t] = int(min(10000, max(0, round(10000.0 * a))))
        result.parts[t] = {
            "listeners": e,
            "growth": growth,
            "breadth": breadth,
            "curators": curators,
            "emerging": m,
        }
    return result


def _emerging(
    token_listeners: Mapping[str, Mapping[str, float]],
    community: Mapping[str, str],
    prev: Mapping[str, set[str]],
    token_embeddings: Mapping[str, np.ndarray] | None,
    genre_centroids: Sequence[np.ndarray] | None,
    p: AdoptionParams,
) -> set[str]:
    """Communities that are big enough, new (most weight from listeners new to their tokens), separated
    (``sum_t n_tc^2 / sum_t n_tc n_t >= emerging_separation``: co-listens stay inside) and acoustically
    distinct
    (``min_g 1 - cos(mean token embedding, centroid_g) >= emerging_distance``)."""
    if not token_embeddings or not genre_centroids:
        return set()
    cents = [np.asarray(c, np.float64) / max(float(np.linalg.norm(c)), 1e-300) for c in genre_centroids]
    size: dict[str, float] = defaultdict(float)
    new: dict[str, float] = defaultdict(float)
    inside: dict[str, float] = defaultdict(float)
    touching: dict[str, float] = defaultdict(float)
    emb_sum: dict[str, np.ndarray] = {}
    for t in sorted(token_listeners):
        lw = token_listeners[t]
        n_t = sum(lw.values())
        per: dict[str, float] = defaultdict(float)
        for lst, v in lw.items():
            per[community[lst]] += v
            size[community[lst]] += v
            if lst not in prev.get(t, set()):
                new[community[lst]] += v
        for c, n_tc in per.items():
            inside[c] += n_tc * n_tc
            touching[c] += n_tc * n_t
            if t in token_embeddings:
                e = np.asarray(token_embeddings[t], np.float64)
                emb_sum[c] = emb_sum.get(c, np.zeros_like(e)) + n_tc * e
    out: set[str] = set()
    for c in sorted(size):
        if size[c] < p.emerging_min_size or c not in emb_sum:
            continue
        if (
            new[c] / size[c] < p.emerging_newness
            or inside[c] / max(touching[c], 1e-300) < p.emerging_separation
        ):
            continue
        mean = emb_sum[c] / max(float(np.linalg.norm(emb_sum[c])), 1e-300)
        if min(1.0 - float(mean @ g) for g in cents) >= p.emerging_distance:
            out.add(c)
    return out
