"""TrackMetadata: canonical JSON, and hostile or malformed documents rejected with MetadataError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offchain.ipfs.cid import compute_cid
from offchain.ipfs.errors import CidMismatch, IpfsNotFound, IpfsTooLarge
from offchain.ipfs.metadata import (
    MAX_METADATA_BYTES,
    MetadataError,
    TrackMetadata,
    load_metadata,
    store_metadata,
)
from offchain.ipfs.store import MemoryContentStore

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
AUDIO = compute_cid(b"some audio")


def _fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "Night Drive",
        "creator": ALICE,
        "genre": "synthwave",
        "duration_s": 183.25,
        "royalty_splits": [[ALICE, 7000], [BOB, 3000]],
        "licence": "CC-BY-4.0",
        "audio_cid": AUDIO,
        "audio_format": "flac",
        "description": "Recorded at night.\nMixed at dawn.",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def _doc(**changes: Any) -> bytes:
    return json.dumps(_fields(**changes)).encode()


def test_round_trip_is_canonical() -> None:
    meta = TrackMetadata.from_json(_doc())
    assert meta.royalty_splits == [(ALICE, 7000), (BOB, 3000)]
    raw = meta.to_json()
    assert TrackMetadata.from_json(raw) == meta
    # same content, other key order and spacing: same canonical bytes, so the same CID
    shuffled = json.dumps(dict(reversed(list(_fields().items()))), indent=3).encode()
    assert TrackMetadata.from_json(shuffled).to_json() == raw
    assert b" " not in raw.replace(b"Night Drive", b"").replace(b"Recorded at night.\\nMixed at dawn.", b"")
    # the audio CID is normalised: a base58 spelling of a CIDv1 becomes base32
    from offchain.ipfs.cid import parse_cid

    b58 = parse_cid(AUDIO).encode("base58btc")
    assert TrackMetadata.from_json(_doc(audio_cid=b58)).audio_cid == AUDIO


def test_nfc_and_optional_description() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute
    meta = TrackMetadata.from_json(_doc(title=decomposed, description=...))
    assert meta.title == "Caf\u00e9" and meta.description is None
    assert b"description" not in meta.to_json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": 42}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "https://evil.example/track"}, "title"),
        ({"title": "../../etc/passwd"}, "title"),
        ({"title": "/etc/passwd"}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"title": "right\u202eto left"}, "title"),
        ({"genre": "ipfs://Qm"}, "genre"),
        ({"genre": "g" * 65}, "genre"),
        ({"creator": "not-an-address"}, "creator"),
        ({"creator": ALICE[:-1] + ("Z" if ALICE[-1] != "Z" else "Y")}, "creator"),  # checksum broken
        ({"creator": ...}, "creator"),
        ({"duration_s": "183"}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": -1}, "duration_s"),
        ({"duration_s": 1e9}, "duration_s"),
        ({"duration_s": True}, "duration_s"),
        ({"royalty_splits": []}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, 9999]]}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, 10000], [BOB, 0]]}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, 5000], [ALICE, 5000]]}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, 12000], [BOB, -2000]]}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, "10000"]]}, "royalty_splits"),
        ({"royalty_splits": {ALICE: 10000}}, "royalty_splits"),
        ({"royalty_splits": [[ALICE, 10000, "extra"]]}, "royalty_splits"),
        ({"licence": "Some licence; rm -rf /"}, "licence"),
        ({"licence": ""}, "licence"),
        ({"audio_cid": "/ipfs/" + AUDIO}, "audio_cid"),
        ({"audio_cid": "ipfs://" + AUDIO}, "audio_cid"),
        ({"audio_cid": "not a cid"}, "audio_cid"),
        ({"audio_format": "exe"}, "audio_format"),
        ({"description": "d" * 2001}, "description"),
        ({"description": "nul\x00byte"}, "description"),
        ({"schema_version": 2}, "schema_version"),
        ({"owner_override": ALICE}, "owner_override"),
    ],
)
def test_bad_fields_are_rejected_by_name(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MetadataError, match=field):
        TrackMetadata.from_json(_doc(**changes))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"title": "a", "title": "b"}', "duplicate"),
        (_doc().replace(b"183.25", b"NaN"), "NaN"),
        (_doc().replace(b"183.25", b"Infinity"), "Infinity"),
        (b"[" * 100_000, "over the limit"),
        (b'{"title": "' + b"a" * (MAX_METADATA_BYTES) + b'"}', "over the limit"),
        (b"[" * 5000 + b"]" * 5000, "JSON"),
    ],
)
def test_malformed_documents_are_rejected(raw: bytes, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        TrackMetadata.from_json(raw)


def test_not_bytes_is_rejected() -> None:
    with pytest.raises(MetadataError, match="bytes"):
        TrackMetadata.from_json(_doc().decode())  # type: ignore[arg-type]


def test_build_reports_errors_as_metadata_errors() -> None:
    assert TrackMetadata.build(**_fields()).title == "Night Drive"
    with pytest.raises(MetadataError, match="royalty_splits"):
        TrackMetadata.build(**_fields(royalty_splits=[[ALICE, 1]]))
    with pytest.raises(MetadataError, match="duration_s"):
        TrackMetadata.build(**_fields(duration_s=float("nan")))


async def test_store_and_load_through_a_content_store() -> None:
    store = MemoryContentStore()
    meta = TrackMetadata.from_json(_doc())
    cid = await store_metadata(store, meta)
    assert cid == compute_cid(meta.to_json(), 1)
    assert await load_metadata(store, cid) == meta
    store.tamper(cid, meta.to_json().replace(b"7000", b"9000").replace(b"3000", b"1000"))
    with pytest.raises(CidMismatch):
        await load_metadata(store, cid)
    huge = await store.add(b" " * (MAX_METADATA_BYTES + 1))
    with pytest.raises(IpfsTooLarge):
        await load_metadata(store, huge)
    bad = await store.add(b'{"title": 1}')
    with pytest.raises(MetadataError):
        await load_metadata(store, bad)


async def test_store_track_validates_before_storing() -> None:
    from offchain.ipfs.metadata import store_track

    store = MemoryContentStore()
    fields = _fields()
    del fields["audio_cid"]
    audio = b"RIFF....WAVE" * 1000
    audio_cid, meta_cid, meta = await store_track(store, audio, **fields)
    assert audio_cid == compute_cid(audio) == meta.audio_cid
    assert await load_metadata(store, meta_cid) == meta
    assert await store.cat(audio_cid, max_bytes=len(audio)) == audio
    fresh = MemoryContentStore()
    with pytest.raises(MetadataError, match="royalty_splits"):
        await store_track(fresh, audio, **{**fields, "royalty_splits": [[ALICE, 1]]})
    with pytest.raises(IpfsNotFound):  # nothing was stored
        await fresh.stat(audio_cid)
    with pytest.raises(MetadataError, match="audio_cid"):
        await store_track(fresh, audio, **fields, audio_cid=audio_cid)
