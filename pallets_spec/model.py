"""The executable model of the AMI contracts' rules: state, messages, typed errors and events.

It is the reference the local node (`ami_node.devnet`) executes and the tests reason with; the ink! sources in
`contracts/` implement the same rules (same checks in the same order, same events). Every message checks all
its preconditions before it changes anything, so a message that raises leaves the state exactly as it was
(the model of ink!'s revert on `Err`).

Mutating messages take the caller first and return `(value, events)`; queries return their value.
Accounts are 32-byte `bytes`; token, playlist and challenge ids start at 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from pallets_spec.description import (
    AMI_NFT,
    AMI_REWARDS,
    BASIS_POINTS,
    MAX_CID_LEN,
    MAX_NAME_LEN,
    MAX_SPLITS,
    MAX_TAG_LEN,
    Contract,
)
from pallets_spec.events import EVENT_CLASSES, EVENT_TYPES, ContractEvent
from pallets_spec.vocabulary import U128_MAX, Payout, PayoutKind

_EVENTS: dict[str, Any] = dict(EVENT_TYPES)
ACCOUNT_LEN = 32


class ContractError(Exception):
    """A message returned `Err(variant)`: the call reverts and changes nothing."""

    contract: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ()

    def __init__(self, variant: str) -> None:
        if variant not in self.variants:
            raise ValueError(f"{self.contract} has no error {variant!r}")
        super().__init__(f"{self.contract} reverted: {variant}")
        self.variant = variant


class NftError(ContractError):
    contract = AMI_NFT.name
    variants = AMI_NFT.errors


class RewardsError(ContractError):
    contract = AMI_REWARDS.name
    variants = AMI_REWARDS.errors


# -- events (classes derived from the description in pallets_spec.events) --
Minted, Transferred, Listened, Tagged, PlaylistCreated, PlaylistAdded = (
    _EVENTS[n] for n in ("Minted", "Transferred", "Listened", "Tagged", "PlaylistCreated", "PlaylistAdded")
)
OracleAdded, OracleRemoved, ValidatorAdded, ValidatorRemoved = (
    _EVENTS[n] for n in ("OracleAdded", "OracleRemoved", "ValidatorAdded", "ValidatorRemoved")
)
ScoreSubmitted, Paid, BatchDistributed, Challenged, Transfer = (
    _EVENTS[n] for n in ("ScoreSubmitted", "Paid", "BatchDistributed", "Challenged", "Transfer")
)
NFT_EVENTS: dict[str, type[ContractEvent]] = EVENT_CLASSES[AMI_NFT.name]
REWARDS_EVENTS: dict[str, type[ContractEvent]] = EVENT_CLASSES[AMI_REWARDS.name]


# -- ABI structs --
@dataclass(frozen=True)
class TokenInfo:
    creator: bytes
    owner: bytes
    audio_cid: str
    metadata_cid: str
    royalty_splits: tuple[tuple[bytes, int], ...]

    def to_abi(self) -> dict[str, Any]:
        fields_ = {f.name: getattr(self, f.name) for f in fields(self)}
        return fields_ | {"royalty_splits": [tuple(s) for s in self.royalty_splits]}


@dataclass(frozen=True)
class Playlist:
    owner: bytes
    name: str


@dataclass(frozen=True)
class Score:
    novelty_bp: int
    quality_bp: int
    model_version: int
    commitment: bytes
    oracle: bytes

    def to_abi(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> dict[str, Any]:
        return {**self.to_abi(), "commitment": _h(self.commitment), "oracle": _h(self.oracle)}

    @classmethod
    def from_json(cls, s: dict[str, Any]) -> Score:
        ints = (int(s["novelty_bp"]), int(s["quality_bp"]), int(s["model_version"]))
        return cls(*ints, _b(s["commitment"]), _b(s["oracle"]))


def _clone(state: Any) -> Any:
    """A copy whose containers are new and whose values are shared: every value is an immutable
    (frozen dataclass, bytes, int, str), so this is as safe as deepcopy and much cheaper."""
    changes = {
        f.name: getattr(state, f.name).copy()
        for f in fields(state)
        if isinstance(getattr(state, f.name), dict | set)
    }
    return dataclasses.replace(state, **changes)


def _check_account(a: bytes, what: str) -> None:
    # Not a contract rule: the ABI guarantees 32 bytes on chain; this guards direct Python callers.
    if not isinstance(a, bytes) or len(a) != ACCOUNT_LEN:
        raise TypeError(f"{what} must be {ACCOUNT_LEN} bytes, got {a!r}")


def _h(b: bytes) -> str:
    return b.hex()


def _b(s: str) -> bytes:
    return bytes.fromhex(s)


class _OwnedState:
    """What both contracts' storage has: an owner and an oracle set, managed by the owner."""

    MODEL_ID: ClassVar[str]
    CONTRACT: ClassVar[str]
    ERROR: ClassVar[type[ContractError]] = ContractError
    owner: bytes
    oracles: set[bytes]

    def __init_subclass__(cls, *, contract: Contract, error: type[ContractError], **kw: Any) -> None:
        """`class NftState(_OwnedState, contract=AMI_NFT, error=NftError)`: whose storage it is."""
        super().__init_subclass__(**kw)
        cls.MODEL_ID, cls.CONTRACT, cls.ERROR = contract.model_id, contract.name, error

    def clone(self: _S) -> _S:
        """An independent copy (what a dry run executes on)."""
        return _clone(self)  # type: ignore[no-any-return]

    @classmethod
    def new(cls: type[_S], caller: bytes) -> _S:
        _check_account(caller, "caller")
        return cls(owner=caller)  # type: ignore[call-arg]

    def add_oracle(self, caller: bytes, account: bytes) -> tuple[None, list[ContractEvent]]:
        return self._edit_role(caller, self.oracles.add, account, OracleAdded)

    def remove_oracle(self, caller: bytes, account: bytes) -> tuple[None, list[ContractEvent]]:
        return self._edit_role(caller, self.oracles.discard, account, OracleRemoved)

    def is_oracle(self, account: bytes) -> bool:
        return account in self.oracles

    def get_owner(self) -> bytes:
        return self.owner

    def _only_owner(self, caller: bytes) -> None:
        if caller != self.owner:
            raise self.ERROR("NotContractOwner")

    def _edit_role(
        self,
        caller: bytes,
        edit: Callable[[bytes], None],
        account: bytes,
        event: Callable[[bytes], ContractEvent],
    ) -> tuple[None, list[ContractEvent]]:
        """An owner-only change of a role set (`edit` is the set's add or discard), and its event."""
        self._only_owner(caller)
        edit(account)
        return None, [event(account)]


_S = TypeVar("_S", bound=_OwnedState)


# -- ami_nft --
@dataclass
class NftState(_OwnedState, contract=AMI_NFT, error=NftError):
    """Storage of `ami_nft` (mirrors the `AmiNft` storage struct)."""

    owner: bytes
    next_token_id: int = 1
    next_playlist_id: int = 1
    tokens: dict[int, TokenInfo] = field(default_factory=dict)
    playlists: dict[int, Playlist] = field(default_factory=dict)
    playlist_entries: set[tuple[int, int]] = field(default_factory=set)
    oracles: set[bytes] = field(default_factory=set)

    # messages
    def mint(
        self, caller: bytes, audio_cid: str, metadata_cid: str, royalty_splits: list[tuple[bytes, int]]
    ) -> tuple[int, list[ContractEvent]]:
        for cid in (audio_cid, metadata_cid):
            if not 1 <= len(cid.encode()) <= MAX_CID_LEN:
                raise NftError("InvalidCid")
        splits = [(bytes(a), int(bp)) for a, bp in royalty_splits]
        accounts = {a for a, _ in splits}
        if (
            not 1 <= len(splits) <= MAX_SPLITS
            or len(accounts) != len(splits)
            or any(bp == 0 for _, bp in splits)
            or sum(bp for _, bp in splits) != BASIS_POINTS
        ):
            raise NftError("InvalidSplits")
        token_id = self.next_token_id
        self.tokens[token_id] = TokenInfo(caller, caller, audio_cid, metadata_cid, tuple(splits))
        self.next_token_id += 1
        return token_id, [Minted(token_id, caller, audio_cid, metadata_cid, splits)]

    def transfer(self, caller: bytes, to: bytes, token_id: int) -> tuple[None, list[ContractEvent]]:
        info = self._token(token_id)
        if info.owner != caller:
            raise NftError("NotOwner")
        self.tokens[token_id] = TokenInfo(
            info.creator, to, info.audio_cid, info.metadata_cid, info.royalty_splits
        )
        return None, [Transferred(token_id, caller, to)]

    def listen(self, caller: bytes, token_id: int, seconds: int) -> tuple[None, list[ContractEvent]]:
        self._token(token_id)
        if seconds < 1:
            raise NftError("ZeroSeconds")
        return None, [Listened(token_id, caller, seconds)]

    def tag(self, caller: bytes, token_id: int, tag: str) -> tuple[None, list[ContractEvent]]:
        self._token(token_id)
        if not 1 <= len(tag.encode()) <= MAX_TAG_LEN:
            raise NftError("InvalidTag")
        return None, [Tagged(token_id, caller, tag)]

    def create_playlist(self, caller: bytes, name: str) -> tuple[int, list[ContractEvent]]:
        if not 1 <= len(name.encode()) <= MAX_NAME_LEN:
            raise NftError("InvalidName")
        playlist_id = self.next_playlist_id
        self.playlists[playlist_id] = Playlist(caller, name)
        self.next_playlist_id += 1
        return playlist_id, [PlaylistCreated(playlist_id, caller, name)]

    def add_to_playlist(
        self, caller: bytes, playlist_id: int, token_id: int
    ) -> tuple[None, list[ContractEvent]]:
        playlist = self.playlists.get(playlist_id)
        if playlist is None:
            raise NftError("PlaylistNotFound")
        if playlist.owner != caller:
            raise NftError("NotOwner")
        self._token(token_id)
        if (playlist_id, token_id) in self.playlist_entries:
            raise NftError("AlreadyInPlaylist")
        self.playlist_entries.add((playlist_id, token_id))
        return None, [PlaylistAdded(playlist_id, token_id, caller)]

    # queries
    def owner_of(self, token_id: int) -> bytes | None:
        info = self.tokens.get(token_id)
        return None if info is None else info.owner

    def token_info(self, token_id: int) -> TokenInfo | None:
        return self.tokens.get(token_id)

    def total_supply(self) -> int:
        return self.next_token_id - 1

    # helpers
    def _token(self, token_id: int) -> TokenInfo:
        info = self.tokens.get(token_id)
        if info is None:
            raise NftError("TokenNotFound")
        return info

    # persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.MODEL_ID,
            "owner": _h(self.owner),
            "next_token_id": self.next_token_id,
            "next_playlist_id": self.next_playlist_id,
            "tokens": {
                str(k): {
                    "creator": _h(v.creator),
                    "owner": _h(v.owner),
                    "audio_cid": v.audio_cid,
                    "metadata_cid": v.metadata_cid,
                    "royalty_splits": [[_h(a), bp] for a, bp in v.royalty_splits],
                }
                for k, v in sorted(self.tokens.items())
            },
            "playlists": {
                str(k): {"owner": _h(v.owner), "name": v.name} for k, v in sorted(self.playlists.items())
            },
            "playlist_entries": sorted([p, t] for p, t in self.playlist_entries),
            "oracles": sorted(_h(a) for a in self.oracles),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NftState:
        return cls(
            owner=_b(d["owner"]),
            next_token_id=int(d["next_token_id"]),
            next_playlist_id=int(d["next_playlist_id"]),
            tokens={
                int(k): TokenInfo(
                    _b(v["creator"]),
                    _b(v["owner"]),
                    v["audio_cid"],
                    v["metadata_cid"],
                    tuple((_b(a), int(bp)) for a, bp in v["royalty_splits"]),
                )
                for k, v in d["tokens"].items()
            },
            playlists={int(k): Playlist(_b(v["owner"]), v["name"]) for k, v in d["playlists"].items()},
            playlist_entries={(int(p), int(t)) for p, t in d["playlist_entries"]},
            oracles={_b(a) for a in d["oracles"]},
        )


# -- ami_rewards --
@dataclass
class RewardsState(_OwnedState, contract=AMI_REWARDS, error=RewardsError):
    """Storage of `ami_rewards` (mirrors the `AmiRewards` storage struct)."""

    owner: bytes
    total_supply_: int = 0
    next_challenge_id: int = 1
    balances: dict[bytes, int] = field(default_factory=dict)
    oracles: set[bytes] = field(default_factory=set)
    validators: set[bytes] = field(default_factory=set)
    scores: dict[tuple[int, int], Score] = field(default_factory=dict)
    latest_scores: dict[int, Score] = field(default_factory=dict)
    paid: set[bytes] = field(default_factory=set)
    paid_batches: set[tuple[int, int]] = field(default_factory=set)
    challenges: dict[tuple[int, bytes], int] = field(default_factory=dict)

    # messages
    def submit_score(
        self,
        caller: bytes,
        token_id: int,
        novelty_bp: int,
        quality_bp: int,
        model_version: int,
        commitment: bytes,
    ) -> tuple[None, list[ContractEvent]]:
        if caller not in self.oracles:
            raise RewardsError("NotOracle")
        if novelty_bp > BASIS_POINTS or quality_bp > BASIS_POINTS:
            raise RewardsError("InvalidScore")
        if (token_id, model_version) in self.scores:
            raise RewardsError("AlreadyScored")
        score = Score(novelty_bp, quality_bp, model_version, commitment, caller)
        self.scores[(token_id, model_version)] = score
        self.latest_scores[token_id] = score
        return None, [ScoreSubmitted(token_id, caller, novelty_bp, quality_bp, model_version, commitment)]

    def distribute(
        self, caller: bytes, epoch: int, batch: int, payouts: list[Payout | dict[str, Any]]
    ) -> tuple[None, list[ContractEvent]]:
        if caller not in self.oracles:
            raise RewardsError("NotOracle")
        items = [Payout.coerce(p) for p in payouts]
        if not items:
            raise RewardsError("EmptyBatch")
        if (epoch, batch) in self.paid_batches:
            raise RewardsError("BatchAlreadyPaid")
        seen: set[bytes] = set()
        credits: dict[bytes, int] = {}
        total = 0
        for p in items:
            if p.kind >= len(PayoutKind):
                raise RewardsError("InvalidPayoutKind")
            if p.id in self.paid or p.id in seen:
                raise RewardsError("PayoutAlreadyPaid")
            seen.add(p.id)
            total += p.amount
            credits[p.to] = credits.get(p.to, 0) + p.amount
            if total > U128_MAX or self.total_supply_ + total > U128_MAX:
                raise RewardsError("Overflow")
        # Balances are bounded by the total supply, which was just checked: no per-account overflow.
        for to, amount in credits.items():
            self.balances[to] = self.balances.get(to, 0) + amount
        self.total_supply_ += total
        self.paid.update(seen)
        self.paid_batches.add((epoch, batch))
        events: list[ContractEvent] = [Paid(p.id, p.to, p.amount, p.kind, epoch) for p in items]
        events.append(BatchDistributed(epoch, batch, len(items), total))
        return None, events

    def challenge(self, caller: bytes, token_id: int, evidence: bytes) -> tuple[int, list[ContractEvent]]:
        if caller not in self.validators:
            raise RewardsError("NotValidator")
        if (token_id, evidence) in self.challenges:
            raise RewardsError("AlreadyChallenged")
        challenge_id = self.next_challenge_id
        self.challenges[(token_id, evidence)] = challenge_id
        self.next_challenge_id += 1
        return challenge_id, [Challenged(challenge_id, token_id, caller, evidence)]

    def transfer(self, caller: bytes, to: bytes, amount: int) -> tuple[None, list[ContractEvent]]:
        have = self.balances.get(caller, 0)
        if have < amount:
            raise RewardsError("InsufficientBalance")
        self.balances[caller] = have - amount
        self.balances[to] = self.balances.get(to, 0) + amount
        return None, [Transfer(caller, to, amount)]

    def add_validator(self, caller: bytes, account: bytes) -> tuple[None, list[ContractEvent]]:
        return self._edit_role(caller, self.validators.add, account, ValidatorAdded)

    def remove_validator(self, caller: bytes, account: bytes) -> tuple[None, list[ContractEvent]]:
        return self._edit_role(caller, self.validators.discard, account, ValidatorRemoved)

    # queries
    def balance_of(self, account: bytes) -> int:
        return self.balances.get(account, 0)

    def total_supply(self) -> int:
        return self.total_supply_

    def score_of(self, token_id: int) -> Score | None:
        return self.latest_scores.get(token_id)

    def is_paid(self, payout_id: bytes) -> bool:
        return payout_id in self.paid

    def batch_paid(self, epoch: int, batch: int) -> bool:
        return (epoch, batch) in self.paid_batches

    def is_validator(self, account: bytes) -> bool:
        return account in self.validators

    # persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.MODEL_ID,
            "owner": _h(self.owner),
            "total_supply": str(self.total_supply_),
            "next_challenge_id": self.next_challenge_id,
            "balances": {_h(a): str(v) for a, v in sorted(self.balances.items())},
            "oracles": sorted(_h(a) for a in self.oracles),
            "validators": sorted(_h(a) for a in self.validators),
            "scores": [[t, v, s.to_json()] for (t, v), s in sorted(self.scores.items())],
            "latest_scores": {str(t): s.to_json() for t, s in sorted(self.latest_scores.items())},
            "paid": sorted(_h(p) for p in self.paid),
            "paid_batches": sorted([e, b] for e, b in self.paid_batches),
            "challenges": [[t, _h(e), cid] for (t, e), cid in sorted(self.challenges.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RewardsState:
        return cls(
            owner=_b(d["owner"]),
            total_supply_=int(d["total_supply"]),
            next_challenge_id=int(d["next_challenge_id"]),
            balances={_b(a): int(v) for a, v in d["balances"].items()},
            oracles={_b(a) for a in d["oracles"]},
            validators={_b(a) for a in d["validators"]},
            scores={(int(t), int(v)): Score.from_json(s) for t, v, s in d["scores"]},
            latest_scores={int(t): Score.from_json(s) for t, s in d["latest_scores"].items()},
            paid={_b(p) for p in d["paid"]},
            paid_batches={(int(e), int(b)) for e, b in d["paid_batches"]},
            challenges={(int(t), _b(e)): int(cid) for t, e, cid in d["challenges"]},
        )


ContractState = NftState | RewardsState
STATE_CLASSES: dict[str, type[NftState] | type[RewardsState]] = {
    NftState.MODEL_ID: NftState,
    RewardsState.MODEL_ID: RewardsState,
}


def state_from_dict(d: dict[str, Any]) -> ContractState:
    """Rebuild a state saved with `to_dict()`; the `model` key says which contract it is."""
    model = d.get("model")
    if model not in STATE_CLASSES:
        raise ValueError(f"unknown contract model {model!r}; known: {sorted(STATE_CLASSES)}")
    return STATE_CLASSES[model].from_dict(d)
