"""The content-store port (add, cat, pin, unpin, stat) and its in-process adapter for unit tests.

`IpfsClient` (a node over the Kubo RPC API) and `MemoryContentStore` (a dict with the same CIDs, errors and
verification of every read) both satisfy `ContentStore`, so code above this layer is tested without a node.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from offchain.ipfs.cid import build_dag, normalize_cid, verify_content
from offchain.ipfs.errors import CidMismatch, IpfsNotFound, IpfsTooLarge

# Content above this size is hashed in a worker thread so that verification never stalls the event loop.
THREAD_HASH_THRESHOLD = 1 << 20


class ContentStat(BaseModel):
    """What a store knows about a CID: sizes in bytes and the number of blocks below the root."""

    model_config = ConfigDict(frozen=True)

    cid: str = Field(description="the CID, canonical text (base58btc for v0, base32 for v1)")
    size: int = Field(ge=0, description="file content size in bytes")
    cumulative_size: int = Field(ge=0, description="size of the whole DAG (blocks and links) in bytes")
    blocks: int = Field(ge=0, description="number of child links of the root block")
    type: Literal["file", "directory"] = "file"


@runtime_checkable
class ContentStore(Protocol):
    """Content-addressed storage: what the pipeline and the validators need from IPFS."""

    async def add(self, data: bytes, *, cid_version: int = 1, pin: bool = True) -> str:
        """Store `data` (pinned by default) and return its CID (canonical text)."""
        ...

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        """Return the content of `cid`, at most `max_bytes`, verified against the CID."""
        ...

    async def pin(self, cid: str) -> None:
        """Keep `cid` and its DAG from garbage collection."""
        ...

    async def unpin(self, cid: str) -> bool:
        """Drop the pin of `cid`; returns False when it was not pinned."""
        ...

    async def stat(self, cid: str) -> ContentStat:
        """Sizes of `cid`; raises `IpfsNotFound` when the store does not have it."""
        ...


async def verify_read(data: bytes, cid: str) -> None:
    """Raise `CidMismatch` unless `data` hashes to `cid` (off the event loop for large content)."""
    if len(data) >= THREAD_HASH_THRESHOLD:
        ok = await asyncio.to_thread(verify_content, data, cid)
    else:
        ok = verify_content(data, cid)
    if not ok:
        raise CidMismatch(f"content read for {cid} ({len(data)} bytes) does not hash to that CID")


class MemoryContentStore:
    """An in-process `ContentStore`: same CIDs as kubo's defaults, same errors, same read verification.

    `tamper(cid, data)` replaces stored bytes without changing the key, to test that readers reject them.
    """

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._stats: dict[str, ContentStat] = {}
        self._pins: set[str] = set()

    async def add(self, data: bytes, *, cid_version: int = 1, pin: bool = True) -> str:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        info = build_dag(data, cid_version)
        self._blobs[info.cid] = data
        self._stats[info.cid] = ContentStat(
            cid=info.cid,
            size=info.file_size,
            cumulative_size=info.dag_size,
            blocks=info.root_links,
        )
        if pin:
            self._pins.add(info.cid)
        return info.cid

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        key = normalize_cid(cid)
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        try:
            data = self._blobs[key]
        except KeyError:
            raise IpfsNotFound(f"{key} is not in the store") from None
        if len(data) > max_bytes:
            raise IpfsTooLarge(f"{key} is larger than the cap of {max_bytes} bytes")
        await verify_read(data, key)
        return data

    async def pin(self, cid: str) -> None:
        key = normalize_cid(cid)
        if key not in self._blobs:
            raise IpfsNotFound(f"cannot pin {key}: it is not in the store")
        self._pins.add(key)

    async def unpin(self, cid: str) -> bool:
        key = normalize_cid(cid)
        if key in self._pins:
            self._pins.remove(key)
            return True
        return False

    async def is_pinned(self, cid: str) -> bool:
        return normalize_cid(cid) in self._pins

    async def stat(self, cid: str) -> ContentStat:
        key = normalize_cid(cid)
        try:
            return self._stats[key]
        except KeyError:
            raise IpfsNotFound(f"{key} is not in the store") from None

    def gc(self) -> int:
        """Drop everything unpinned (like `ipfs repo gc`); returns how many CIDs were dropped."""
        dropped = [key for key in self._blobs if key not in self._pins]
        for key in dropped:
            del self._blobs[key]
            del self._stats[key]
        return len(dropped)

    def tamper(self, cid: str, data: bytes) -> None:
        """Replace the bytes stored under `cid` (test helper: readers must then raise `CidMismatch`)."""
        key = normalize_cid(cid)
        if key not in self._blobs:
            raise IpfsNotFound(f"{key} is not in the store")
        self._blobs[key] = bytes(data)
