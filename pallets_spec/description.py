"""The single description of the AMI contracts' interface: messages, arguments, return types, events, errors.

Everything else derives from this file: the ink! v5 metadata (`python -m pallets_spec.generate`), the SCALE
codec used by the runtime dispatcher, and the checks that the Rust sources and the Python model agree with it.
Types are spelled exactly as in the Rust sources (see `typeexpr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pallets_spec.typeexpr import TypeExpr, parse_type
from pallets_spec.vocabulary import PayoutKind

INK_VERSION = "5.1.1"
CARGO_CONTRACT_VERSION = "5.0.1"
RUSTC_VERSION = "rustc 1.81.0"
CONTRACT_VERSION = "0.1.0"
AUTHORS = ("AMI contributors",)
MODEL_VERSION = 1

# Bounds the contracts enforce; the model and the Rust sources use the same numbers (the ABI test checks).
BASIS_POINTS = 10_000
MAX_SPLITS = 16
MAX_CID_LEN = 128
MAX_TAG_LEN = 32
MAX_NAME_LEN = 64
PAYOUT_KINDS = tuple(k.label for k in PayoutKind)  # the Rust constant is their count


@dataclass(frozen=True)
class Arg:
    """A named, typed value: a message argument, a struct field or an event field."""

    name: str
    type: str
    topic: bool = False
    docs: str = ""

    @property
    def expr(self) -> TypeExpr:
        return parse_type(self.type)


@dataclass(frozen=True)
class Message:
    """An ink! message. `returns` is the success type; `fallible` wraps it as `Result<returns, Error>`."""

    label: str
    args: tuple[Arg, ...] = ()
    returns: str = "()"
    fallible: bool = True
    mutates: bool = True
    docs: str = ""
    payable: bool = False

    @property
    def rust_return(self) -> str:
        """The return type as the Rust message declares it (`Result<u64, Error>`, `bool`)."""
        return f"Result<{self.returns}, Error>" if self.fallible else self.returns


@dataclass(frozen=True)
class Constructor:
    label: str
    args: tuple[Arg, ...] = ()
    docs: str = ""
    payable: bool = False
    default: bool = False


@dataclass(frozen=True)
class Event:
    label: str
    fields: tuple[Arg, ...]
    docs: str = ""


@dataclass(frozen=True)
class Struct:
    """A struct that crosses the ABI (argument, return value)."""

    name: str
    fields: tuple[Arg, ...]
    docs: str = ""


@dataclass(frozen=True)
class StorageField:
    name: str
    type: str

    @property
    def expr(self) -> TypeExpr:
        return parse_type(self.type)


@dataclass(frozen=True)
class Contract:
    """One ink! contract: `name` is the crate and module name, `storage_name` the storage struct."""

    name: str
    storage_name: str
    docs: str
    constructors: tuple[Constructor, ...]
    messages: tuple[Message, ...]
    events: tuple[Event, ...]
    errors: tuple[str, ...]
    structs: tuple[Struct, ...] = ()
    storage: tuple[StorageField, ...] = ()
    error_docs: dict[str, str] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """What the bundle's `ami-model` Wasm custom section holds: which Python model runs this code."""
        return f"{self.name}@{MODEL_VERSION}"

    def message(self, label: str) -> Message:
        for m in self.messages:
            if m.label == label:
                return m
        raise KeyError(f"{self.name} has no message {label!r}")

    def event(self, label: str) -> Event:
        for e in self.events:
            if e.label == label:
                return e
        raise KeyError(f"{self.name} has no event {label!r}")

    def struct(self, name: str) -> Struct:
        for s in self.structs:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no struct {name!r}")


def _a(name: str, ty: str, docs: str = "") -> Arg:
    return Arg(name, ty, docs=docs)


def _t(name: str, ty: str) -> Arg:
    return Arg(name, ty, topic=True)


def _set_messages(role: str) -> tuple[Message, ...]:
    return (
        Message(
            f"add_{role}",
            (_a("account", "AccountId"),),
            docs=f" Adds `account` to the {role} set. Contract owner only.",
        ),
        Message(
            f"remove_{role}",
            (_a("account", "AccountId"),),
            docs=f" Removes `account` from the {role} set. Contract owner only.",
        ),
    )


AMI_NFT = Contract(
    name="ami_nft",
    storage_name="AmiNft",
    docs="The AMI NFT registry: tracks with their IPFS CIDs and royalty splits, listens, tags, playlists.",
    constructors=(Constructor("new", docs=" Creates the registry; the caller becomes the contract owner."),),
    structs=(
        Struct(
            "TokenInfo",
            (
                _a("creator", "AccountId"),
                _a("owner", "AccountId"),
                _a("audio_cid", "String"),
                _a("metadata_cid", "String"),
                _a("royalty_splits", "Vec<(AccountId, u16)>"),
            ),
            docs=" What the registry knows about one track.",
        ),
        Struct(
            "Playlist",
            (
                _a("owner", "AccountId"),
                _a("name", "String"),
            ),
            docs=" A curator's playlist.",
        ),
    ),
    storage=(
        StorageField("owner", "AccountId"),
        StorageField("next_token_id", "u64"),
        StorageField("next_playlist_id", "u64"),
        StorageField("tokens", "Mapping<u64, TokenInfo>"),
        StorageField("playlists", "Mapping<u64, Playlist>"),
        StorageField("playlist_entries", "Mapping<(u64, u64), ()>"),
        StorageField("oracles", "Mapping<AccountId, ()>"),
    ),
    messages=(
        Message(
            "mint",
            (
                _a("audio_cid", "String"),
                _a("metadata_cid", "String"),
                _a("royalty_splits", "Vec<(AccountId, u16)>"),
            ),
            returns="u64",
            docs=(
                " Mints a track owned by the caller and returns its token id (ids start at 1).\n"
                " `royalty_splits` are (account, basis points): 1..=16 distinct accounts, each share > 0,\n"
                " summing to exactly 10000. Both CIDs are 1..=128 bytes."
            ),
        ),
        Message(
            "transfer",
            (_a("to", "AccountId"), _a("token_id", "u64")),
            docs=" Transfers a token the caller owns to `to`.",
        ),
        Message(
            "listen",
            (_a("token_id", "u64"), _a("seconds", "u32")),
            docs=" Records that the caller listened to a track for `seconds` (at least 1).",
        ),
        Message(
            "tag",
            (_a("token_id", "u64"), _a("tag", "String")),
            docs=" Tags a track; the tag is 1..=32 bytes.",
        ),
        Message(
            "create_playlist",
            (_a("name", "String"),),
            returns="u64",
            docs=" Creates a playlist owned by the caller and returns its id (from 1); name 1..=64 bytes.",
        ),
        Message(
            "add_to_playlist",
            (_a("playlist_id", "u64"), _a("token_id", "u64")),
            docs=" Adds a track to one of the caller's playlists, once.",
        ),
        *_set_messages("oracle"),
        Message(
            "owner_of",
            (_a("token_id", "u64"),),
            returns="Option<AccountId>",
            fallible=False,
            mutates=False,
            docs=" The owner of a token, if it exists.",
        ),
        Message(
            "token_info",
            (_a("token_id", "u64"),),
            returns="Option<TokenInfo>",
            fallible=False,
            mutates=False,
            docs=" Everything about a token, if it exists.",
        ),
        Message(
            "total_supply", returns="u64", fallible=False, mutates=False, docs=" How many tokens were minted."
        ),
        Message(
            "is_oracle",
            (_a("account", "AccountId"),),
            returns="bool",
            fallible=False,
            mutates=False,
            docs=" Whether `account` is in the oracle set.",
        ),
        Message("owner", returns="AccountId", fallible=False, mutates=False, docs=" The contract owner."),
    ),
    events=(
        Event(
            "Minted",
            (
                _t("token_id", "u64"),
                _t("creator", "AccountId"),
                _a("audio_cid", "String"),
                _a("metadata_cid", "String"),
                _a("royalty_splits", "Vec<(AccountId, u16)>"),
            ),
            docs=" A track was minted.",
        ),
        Event(
            "Transferred",
            (_t("token_id", "u64"), _a("from", "AccountId"), _a("to", "AccountId")),
            docs=" A token changed owner.",
        ),
        Event(
            "Listened",
            (_t("token_id", "u64"), _t("listener", "AccountId"), _a("seconds", "u32")),
            docs=" Someone listened to a track.",
        ),
        Event(
            "Tagged",
            (_t("token_id", "u64"), _t("curator", "AccountId"), _a("tag", "String")),
            docs=" A track was tagged.",
        ),
        Event(
            "PlaylistCreated",
            (_t("playlist_id", "u64"), _a("owner", "AccountId"), _a("name", "String")),
            docs=" A playlist was created.",
        ),
        Event(
            "PlaylistAdded",
            (_t("playlist_id", "u64"), _t("token_id", "u64"), _a("curator", "AccountId")),
            docs=" A track was added to a playlist.",
        ),
        Event("OracleAdded", (_a("account", "AccountId"),), docs=" An oracle was added."),
        Event("OracleRemoved", (_a("account", "AccountId"),), docs=" An oracle was removed."),
    ),
    errors=(
        "NotOwner",
        "NotContractOwner",
        "TokenNotFound",
        "PlaylistNotFound",
        "InvalidSplits",
        "InvalidCid",
        "InvalidTag",
        "ZeroSeconds",
        "NotOracle",
        "InvalidName",
        "AlreadyInPlaylist",
    ),
    error_docs={
        "NotOwner": " The caller does not own the token or playlist.",
        "NotContractOwner": " Only the contract owner may do this.",
        "TokenNotFound": " No token with this id.",
        "PlaylistNotFound": " No playlist with this id.",
        "InvalidSplits": " Royalty splits: 1..=16 distinct accounts, shares > 0, summing to 10000.",
        "InvalidCid": " A CID is empty or longer than 128 bytes.",
        "InvalidTag": " A tag is empty or longer than 32 bytes.",
        "ZeroSeconds": " A listen must last at least one second.",
        "NotOracle": " The caller is not an oracle.",
        "InvalidName": " A playlist name is empty or longer than 64 bytes.",
        "AlreadyInPlaylist": " The track is already in this playlist.",
    },
)


AMI_REWARDS = Contract(
    name="ami_rewards",
    storage_name="AmiRewards",
    docs="The AMI rewards contract: the MINT balance, published scores, idempotent payouts and challenges.",
    constructors=(Constructor("new", docs=" Creates the contract; the caller becomes the contract owner."),),
    structs=(
        Struct(
            "Payout",
            (
                _a("id", "[u8; 32]"),
                _a("to", "AccountId"),
                _a("amount", "Balance"),
                _a("kind", "u8"),
            ),
            docs=" One payout: a unique id, the payee, the MINT amount and its kind (0 create .. 4 royalty).",
        ),
        Struct(
            "Score",
            (
                _a("novelty_bp", "u16"),
                _a("quality_bp", "u16"),
                _a("model_version", "u32"),
                _a("commitment", "[u8; 32]"),
                _a("oracle", "AccountId"),
            ),
            docs=" A published score of a track, quantised to basis points.",
        ),
    ),
    storage=(
        StorageField("owner", "AccountId"),
        StorageField("total_supply", "Balance"),
        StorageField("next_challenge_id", "u64"),
        StorageField("balances", "Mapping<AccountId, Balance>"),
        StorageField("oracles", "Mapping<AccountId, ()>"),
        StorageField("validators", "Mapping<AccountId, ()>"),
        StorageField("scores", "Mapping<(u64, u32), Score>"),
        StorageField("latest_scores", "Mapping<u64, Score>"),
        StorageField("paid", "Mapping<[u8; 32], ()>"),
        StorageField("paid_batches", "Mapping<(u32, u32), ()>"),
        StorageField("challenges", "Mapping<(u64, [u8; 32]), u64>"),
    ),
    messages=(
        Message(
            "submit_score",
            (
                _a("token_id", "u64"),
                _a("novelty_bp", "u16"),
                _a("quality_bp", "u16"),
                _a("model_version", "u32"),
                _a("commitment", "[u8; 32]"),
            ),
            docs=(
                " Publishes a track's score. Oracle only; both scores <= 10000 basis points; one score per\n"
                " (token_id, model_version)."
            ),
        ),
        Message(
            "distribute",
            (_a("epoch", "u32"), _a("batch", "u32"), _a("payouts", "Vec<Payout>")),
            docs=(
                " Pays a batch of payouts in MINT. Oracle only. All or nothing: refuses an empty batch, a\n"
                " batch (epoch, batch) already paid, a payout id already paid (also twice in the batch), an\n"
                " unknown kind."
            ),
        ),
        Message(
            "challenge",
            (_a("token_id", "u64"), _a("evidence", "[u8; 32]")),
            returns="u64",
            docs=" Challenges a track's score. Validator only; returns the challenge id (from 1).",
        ),
        Message(
            "transfer",
            (_a("to", "AccountId"), _a("amount", "Balance")),
            docs=" Transfers MINT from the caller to `to`.",
        ),
        *_set_messages("oracle"),
        *_set_messages("validator"),
        Message(
            "balance_of",
            (_a("account", "AccountId"),),
            returns="Balance",
            fallible=False,
            mutates=False,
            docs=" The MINT balance of `account`.",
        ),
        Message(
            "total_supply", returns="Balance", fallible=False, mutates=False, docs=" All MINT ever paid out."
        ),
        Message(
            "score_of",
            (_a("token_id", "u64"),),
            returns="Option<Score>",
            fallible=False,
            mutates=False,
            docs=" The latest published score of a track.",
        ),
        Message(
            "is_paid",
            (_a("payout_id", "[u8; 32]"),),
            returns="bool",
            fallible=False,
            mutates=False,
            docs=" Whether this payout id was paid.",
        ),
        Message(
            "batch_paid",
            (_a("epoch", "u32"), _a("batch", "u32")),
            returns="bool",
            fallible=False,
            mutates=False,
            docs=" Whether this (epoch, batch) was distributed.",
        ),
        Message(
            "is_oracle",
            (_a("account", "AccountId"),),
            returns="bool",
            fallible=False,
            mutates=False,
            docs=" Whether `account` is in the oracle set.",
        ),
        Message(
            "is_validator",
            (_a("account", "AccountId"),),
            returns="bool",
            fallible=False,
            mutates=False,
            docs=" Whether `account` is in the validator set.",
        ),
        Message("owner", returns="AccountId", fallible=False, mutates=False, docs=" The contract owner."),
    ),
    events=(
        Event(
            "ScoreSubmitted",
            (
                _t("token_id", "u64"),
                _a("oracle", "AccountId"),
                _a("novelty_bp", "u16"),
                _a("quality_bp", "u16"),
                _a("model_version", "u32"),
                _a("commitment", "[u8; 32]"),
            ),
            docs=" A score was published.",
        ),
        Event(
            "Paid",
            (
                _t("payout_id", "[u8; 32]"),
                _t("to", "AccountId"),
                _a("amount", "Balance"),
                _a("kind", "u8"),
                _a("epoch", "u32"),
            ),
            docs=" One payout was paid.",
        ),
        Event(
            "BatchDistributed",
            (_t("epoch", "u32"), _a("batch", "u32"), _a("count", "u32"), _a("total", "Balance")),
            docs=" A whole batch was paid.",
        ),
        Event(
            "Challenged",
            (
                _t("challenge_id", "u64"),
                _t("token_id", "u64"),
                _a("validator", "AccountId"),
                _a("evidence", "[u8; 32]"),
            ),
            docs=" A validator challenged a score.",
        ),
        Event(
            "Transfer",
            (_t("from", "AccountId"), _t("to", "AccountId"), _a("amount", "Balance")),
            docs=" MINT moved between accounts.",
        ),
        Event("OracleAdded", (_a("account", "AccountId"),), docs=" An oracle was added."),
        Event("OracleRemoved", (_a("account", "AccountId"),), docs=" An oracle was removed."),
        Event("ValidatorAdded", (_a("account", "AccountId"),), docs=" A validator was added."),
        Event("ValidatorRemoved", (_a("account", "AccountId"),), docs=" A validator was removed."),
    ),
    errors=(
        "NotContractOwner",
        "NotOracle",
        "NotValidator",
        "InvalidScore",
        "AlreadyScored",
        "BatchAlreadyPaid",
        "PayoutAlreadyPaid",
        "EmptyBatch",
        "InsufficientBalance",
        "AlreadyChallenged",
        "Overflow",
        "InvalidPayoutKind",
    ),
    error_docs={
        "NotContractOwner": " Only the contract owner may do this.",
        "NotOracle": " The caller is not an oracle.",
        "NotValidator": " The caller is not a validator.",
        "InvalidScore": " A score is above 10000 basis points.",
        "AlreadyScored": " This (token_id, model_version) already has a score.",
        "BatchAlreadyPaid": " This (epoch, batch) was already distributed.",
        "PayoutAlreadyPaid": " A payout id in the batch was already paid.",
        "EmptyBatch": " A batch must hold at least one payout.",
        "InsufficientBalance": " The caller's MINT balance is too low.",
        "AlreadyChallenged": " The same evidence was already filed against this track.",
        "Overflow": " A balance or the total supply would overflow.",
        "InvalidPayoutKind": " A payout kind is not 0..=4.",
    },
)

CONTRACTS: dict[str, Contract] = {c.name: c for c in (AMI_NFT, AMI_REWARDS)}

# Aliases the ink! environment defines; they keep their own name in the metadata's displayName.
ALIASES: dict[str, str] = {"Balance": "u128", "Timestamp": "u64", "BlockNumber": "u32"}
