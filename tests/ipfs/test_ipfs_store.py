"""MemoryContentStore: the in-process ContentStore other areas test with (no node)."""

from __future__ import annotations

import pytest

from offchain.ipfs.cid import compute_cid
from offchain.ipfs.client import IpfsClient
from offchain.ipfs.errors import CidMismatch, InvalidCid, IpfsNotFound, IpfsTooLarge
from offchain.ipfs.store import ContentStore, MemoryContentStore


def test_both_adapters_satisfy_the_port() -> None:
    assert isinstance(MemoryContentStore(), ContentStore)
    assert isinstance(IpfsClient("http://127.0.0.1:1"), ContentStore)


async def test_add_gives_kubo_cids_and_cat_returns_the_bytes() -> None:
    store = MemoryContentStore()
    data = bytes(range(256)) * 2000  # 512000 bytes: two chunks
    v1 = await store.add(data)
    v0 = await store.add(data, cid_version=0)
    assert v1 == compute_cid(data, 1) and v0 == compute_cid(data, 0)
    assert await store.cat(v1, max_bytes=len(data)) == data
    assert await store.cat(v0, max_bytes=len(data)) == data
    stat = await store.stat(v1)
    assert (stat.size, stat.blocks) == (len(data), 2)
    assert stat.cumulative_size > len(data)


async def test_cap_not_found_and_bad_cid() -> None:
    store = MemoryContentStore()
    cid = await store.add(b"x" * 100)
    with pytest.raises(IpfsTooLarge):
        await store.cat(cid, max_bytes=99)
    assert await store.cat(cid, max_bytes=100) == b"x" * 100
    with pytest.raises(IpfsNotFound):
        await store.cat(compute_cid(b"other"), max_bytes=10)
    with pytest.raises(IpfsNotFound):
        await store.stat(compute_cid(b"other"))
    with pytest.raises(InvalidCid):
        await store.cat("not-a-cid", max_bytes=10)


async def test_tampered_content_is_rejected() -> None:
    store = MemoryContentStore()
    cid = await store.add(b"the real track")
    store.tamper(cid, b"the fake track")
    with pytest.raises(CidMismatch):
        await store.cat(cid, max_bytes=1000)


async def test_pins_and_gc() -> None:
    store = MemoryContentStore()
    kept = await store.add(b"kept")
    loose = await store.add(b"loose", pin=False)
    assert await store.is_pinned(kept) and not await store.is_pinned(loose)
    assert store.gc() == 1
    with pytest.raises(IpfsNotFound):
        await store.cat(loose, max_bytes=10)
    assert await store.unpin(kept) is True
    assert await store.unpin(kept) is False
    await store.pin(kept)
    assert await store.is_pinned(kept)
    with pytest.raises(IpfsNotFound):
        await store.pin(loose)
