"""A creator's audio file made ready to mint: its format and length checked, audio and metadata put on IPFS.

`ami mint` and scripts/mint_samples.py use these; the metadata document is offchain/ipfs/metadata.py's
TrackMetadata, validated before anything is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soundfile

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.errors import IpfsError
from offchain.ipfs.metadata import AUDIO_FORMATS, store_track
from offchain.ipfs.store import ContentStore, MemoryContentStore

# The container libsndfile reads for each audio format of the metadata.
SNDFILE_CONTAINER = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "opus": "OGG", "mp3": "MP3"}


class TrackFileError(ValueError):
    """An audio file the worker could not decode; the message says which file and why."""


class UnresolvedCid(IpfsError):
    """A CID given as is that the IPFS node cannot find; the message names it and what the node answered."""


def decodable_formats() -> list[str]:
    """The metadata's audio formats whose container libsndfile reads on this machine."""
    available = set(soundfile.available_formats())
    return [f for f in AUDIO_FORMATS if SNDFILE_CONTAINER.get(f) in available]


def audio_format(file: Path) -> str:
    """The audio format of `file` from its suffix; TrackFileError unless the worker can decode it here."""
    fmt = file.suffix.lower().lstrip(".")
    decodable = decodable_formats()
    if fmt not in decodable:
        raise TrackFileError(
            f"{file.name}: unsupported audio format {fmt!r}; use one of {', '.join(decodable)}"
        )
    return fmt


def audio_seconds(file: Path) -> float:
    """The length of `file` in seconds, read by libsndfile; TrackFileError when it cannot read it."""
    try:
        return float(soundfile.info(str(file)).duration)
    except Exception as exc:  # libsndfile says why in its own words
        raise TrackFileError(f"cannot read the length of {file.name} ({exc}); is it audio?") from None


async def _resolves(store: ContentStore, cid: str) -> None:
    try:
        await store.stat(cid)
    except IpfsError as exc:
        raise UnresolvedCid(f"{cid} does not resolve on the IPFS node: {exc}") from None


async def store_track_files(
    audio: bytes, fields: dict[str, Any], ipfs: str | None, *, metadata_cid: str | None = None
) -> tuple[str, str]:
    """(audio CID, metadata CID) of `audio` and its TrackMetadata document made of `fields`: added to the
    IPFS node whose API is at `ipfs`, or computed locally (the same CIDs kubo gives) when it is None.

    MetadataError (before anything is stored) when `fields` are no valid metadata. A `metadata_cid` is
    returned in place of the document's and must resolve on the node (UnresolvedCid)."""
    if ipfs is None:
        audio_cid, meta_cid, _ = await store_track(MemoryContentStore(), audio, **fields)
        return audio_cid, metadata_cid or meta_cid
    async with IpfsClient(ipfs) as client:
        audio_cid, meta_cid, _ = await store_track(client, audio, **fields)
        if metadata_cid is not None:
            await _resolves(client, metadata_cid)
    return audio_cid, metadata_cid or meta_cid
