"""Track metadata: the JSON document a creator stores on IPFS next to the audio, and its strict validation.

`TrackMetadata.from_json` is the only way metadata read from IPFS enters the platform: it refuses oversized
documents, invalid UTF-8, duplicate keys, NaN, unknown fields, wrong types, huge strings, control characters,
URLs and paths where a plain value belongs, bad SS58 addresses and CIDs, and royalty splits that do not sum
to 10000 basis points, each with a `MetadataError` naming the field. `to_json` gives canonical bytes (sorted
keys, no spaces, NFC text), so the same metadata always has the same CID.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from scalecodec.utils.ss58 import ss58_decode

from offchain.ipfs.cid import compute_cid, normalize_cid
from offchain.ipfs.errors import InvalidCid, IpfsError
from offchain.ipfs.store import ContentStore

MAX_METADATA_BYTES = 16 * 1024
"""Largest metadata document accepted, in bytes of UTF-8 JSON."""
MAX_SPLITS = 16
TOTAL_BASIS_POINTS = 10_000
AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "m4a")

_URL_OR_PATH = re.compile(r"[a-z][a-z0-9+.-]*://|^\s*[/\\~]|\.\.[/\\]|^[a-z]:[/\\]", re.IGNORECASE)
_LICENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")


class MetadataError(IpfsError, ValueError):
    """Track metadata is malformed, hostile or does not satisfy the platform's rules."""


def _clean_text(value: str, *, multiline: bool = False, plain: bool = True) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    allowed = {"\n", "\t"} if multiline else set()
    for ch in value:
        # Cc: control characters; Cf: format characters such as bidi overrides, used to disguise text.
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in allowed:
            raise ValueError(f"contains the control or format character U+{ord(ch):04X}")
    if plain and _URL_OR_PATH.search(value):
        raise ValueError("must be plain text, not a URL or a file path")
    return value


def _plain(value: str) -> str:
    return _clean_text(value)


def _prose(value: str) -> str:
    return _clean_text(value, multiline=True, plain=False)


def _ss58(value: str) -> str:
    if not 40 <= len(value) <= 50 or not value.isalnum():
        raise ValueError("is not an SS58 address")
    try:
        public_key = ss58_decode(value)
    except Exception as exc:  # scalecodec raises ValueError or IndexError for bad input
        raise ValueError(f"is not a valid SS58 address ({exc})") from None
    if len(public_key) != 64:  # hex of a 32-byte account id
        raise ValueError("is not a 32-byte account address")
    return value


def _cid(value: str) -> str:
    try:
        return normalize_cid(value)
    except InvalidCid as exc:
        raise ValueError(str(exc)) from None


PlainText = Annotated[str, AfterValidator(_plain)]
Address = Annotated[str, AfterValidator(_ss58)]


class TrackMetadata(BaseModel):
    """What a track is: stored on IPFS as canonical JSON; its CID goes on chain with `mint`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_max_length=4000)

    schema_version: Literal[1] = Field(default=1, description="version of this document's layout")
    title: Annotated[PlainText, Field(min_length=1, max_length=200)]
    creator: Annotated[Address, Field(description="SS58 address of the creator's account")]
    genre: Annotated[PlainText, Field(min_length=1, max_length=64)]
    duration_s: float = Field(gt=0, le=6 * 3600, description="length of the audio in seconds")
    royalty_splits: list[tuple[Address, int]] = Field(
        min_length=1,
        max_length=MAX_SPLITS,
        description="(SS58 address, basis points) pairs summing to 10000; addresses unique",
    )
    licence: str = Field(min_length=1, max_length=64, description="SPDX-style licence id, e.g. CC-BY-4.0")
    audio_cid: Annotated[str, AfterValidator(_cid), Field(max_length=128)]
    audio_format: Literal["wav", "flac", "mp3", "ogg", "opus", "m4a"]
    description: Annotated[str, AfterValidator(_prose), Field(max_length=2000)] | None = None

    @field_validator("duration_s")
    @classmethod
    def _finite_ms(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return round(value, 3)  # millisecond precision keeps the canonical JSON stable

    @field_validator("licence")
    @classmethod
    def _licence(cls, value: str) -> str:
        if not _LICENCE.fullmatch(value):
            raise ValueError("must be an SPDX-style id such as CC-BY-4.0 (letters, digits, . + -)")
        return value

    @field_validator("royalty_splits")
    @classmethod
    def _splits(cls, value: list[tuple[str, int]]) -> list[tuple[str, int]]:
        addresses = [address for address, _ in value]
        if len(set(addresses)) != len(addresses):
            raise ValueError("an address appears more than once")
        for address, bp in value:
            if not 1 <= bp <= TOTAL_BASIS_POINTS:
                raise ValueError(f"share of {address} must be 1..10000 basis points, not {bp}")
        total = sum(bp for _, bp in value)
        if total != TOTAL_BASIS_POINTS:
            raise ValueError(f"shares must sum to 10000 basis points, not {total}")
        return value

    def to_json(self) -> bytes:
        """Canonical UTF-8 JSON: sorted keys, no whitespace, `description` left out when None."""
        document = self.model_dump(mode="json", exclude_none=True)
        raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = raw.encode("utf-8")
        if len(encoded) > MAX_METADATA_BYTES:
            raise MetadataError(f"metadata is {len(encoded)} bytes, over the limit of {MAX_METADATA_BYTES}")
        return encoded

    @classmethod
    def from_json(cls, raw: bytes) -> TrackMetadata:
        """Parse and validate a metadata document; raises `MetadataError` saying which field is wrong."""
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise MetadataError(f"metadata must be bytes, not {type(raw).__name__}")
        raw = bytes(raw)
        if len(raw) > MAX_METADATA_BYTES:
            raise MetadataError(f"metadata is {len(raw)} bytes, over the limit of {MAX_METADATA_BYTES}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MetadataError(f"metadata is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        try:
            document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except ValueError as exc:
            raise MetadataError(f"metadata is not valid JSON: {exc}") from None
        except RecursionError:
            raise MetadataError("metadata is not valid JSON: nested too deeply") from None
        if not isinstance(document, dict):
            raise MetadataError(f"metadata must be a JSON object, not {type(document).__name__}")
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise MetadataError(f"invalid track metadata: {_describe(exc)}") from None

    @classmethod
    def build(cls, **fields: Any) -> TrackMetadata:
        """Validate Python values (lists for the split pairs are accepted); raises `MetadataError`."""
        try:
            return cls.model_validate_json(json.dumps(fields, allow_nan=True))
        except (ValidationError, TypeError, ValueError) as exc:
            detail = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise MetadataError(f"invalid track metadata: {detail}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicated = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"duplicate keys {duplicated}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "document"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def store_metadata(store: ContentStore, metadata: TrackMetadata) -> str:
    """Add the canonical JSON of `metadata` to `store` (pinned, CIDv1); returns its CID."""
    return await store.add(metadata.to_json(), cid_version=1, pin=True)


async def load_metadata(store: ContentStore, cid: str) -> TrackMetadata:
    """Read (capped at `MAX_METADATA_BYTES`, verified against `cid`) and validate a metadata document."""
    return TrackMetadata.from_json(await store.cat(cid, max_bytes=MAX_METADATA_BYTES))


async def store_track(store: ContentStore, audio: bytes, **fields: Any) -> tuple[str, str, TrackMetadata]:
    """Add a track's audio, then its metadata pointing at it; returns (audio CID, metadata CID, metadata).

    `fields` are the metadata fields other than `audio_cid` (validated before anything is stored, so bad
    metadata leaves the store untouched).
    """
    if "audio_cid" in fields:
        raise MetadataError("audio_cid is computed from the audio; do not pass it")
    audio_cid = compute_cid(audio, 1)
    metadata = TrackMetadata.build(**fields, audio_cid=audio_cid)
    stored = await store.add(audio, cid_version=1, pin=True)
    if stored != audio_cid:
        raise MetadataError(f"the store answered {stored} for audio whose CID is {audio_cid}")
    return audio_cid, await store_metadata(store, metadata), metadata
