"""Hostile content on a real js-ipfs node: directory CIDs (D1), crafted DAGs (D5), and honest layouts the old
verification refused (D6: 1 MiB chunks; trickle DAGs; raw and dag-pb leaves)."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
from hostile_blocks import put_block, put_blocks
from multiformats import CID

from offchain.ipfs.cid import _dag_pb_node, _Link, _unixfs_file
from offchain.ipfs.client import CidMismatch, IpfsClient, NotAFile
from offchain.ipfs.node import LocalIpfsNode

MIB = 1 << 20


def _content(seed: str, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


async def test_directory_cid_is_refused_as_not_a_file(ipfs: IpfsClient) -> None:
    data = _content("wrapped", 5000)
    directory = await ipfs.add(data, verify=False, wrap_with_directory=True)
    with pytest.raises(NotAFile, match="directory"):
        await ipfs.cat(directory, max_bytes=MIB)
    # the file inside is fine: the refusal is about what the CID names, not the bytes
    assert await ipfs.cat(await ipfs.add(data), max_bytes=MIB) == data


@pytest.mark.parametrize(
    ("chunker", "version", "raw_leaves", "trickle"),
    [
        ("size-1048576", 1, True, False),
        ("size-1048576", 0, False, False),
        ("size-1048576", 1, False, False),
        (None, 1, True, True),
        ("size-4096", 0, False, True),
        ("size-100000", 1, True, False),
    ],
)
async def test_honest_layouts_verify(
    ipfs: IpfsClient, chunker: str | None, version: int, raw_leaves: bool, trickle: bool
) -> None:
    data = _content(f"{chunker}-{version}-{raw_leaves}-{trickle}", 3 * MIB + 12345)
    cid = await ipfs.add(
        data, cid_version=version, chunker=chunker, raw_leaves=raw_leaves, trickle=trickle, verify=False
    )
    assert await ipfs.cat(cid, max_bytes=4 * MIB) == data
    # and the block itself is read whole (a 1 MiB chunk arrives in many network reads)
    if chunker == "size-1048576" and raw_leaves:
        root = await ipfs.block_get(cid)
        assert len(root) < 4096


async def _crafted_dag(api_url: str, first: int, size: int) -> tuple[str, bytes]:
    """A valid UnixFS file DAG whose first leaf holds `first` bytes and the rest 256 KiB each (raw leaves)."""
    data = _content(f"crafted-{first}", size)
    pieces = [data[:first]] + [data[i : i + 262144] for i in range(first, size, 262144)]
    cids = await put_blocks(api_url, pieces, "raw")
    links = [_Link(bytes(CID.decode(c)), len(p), len(p)) for c, p in zip(cids, pieces, strict=True)]
    root = _dag_pb_node(links, _unixfs_file(None, size, [len(p) for p in pieces]))
    return await put_block(api_url, root, "dag-pb"), data


async def test_crafted_dag_with_a_one_byte_first_leaf_verifies_in_bounded_memory(
    ipfs: IpfsClient, ipfs_node: LocalIpfsNode
) -> None:
    size = 8 * MIB
    cid, data = await _crafted_dag(ipfs_node.api_url, 1, size)
    tracemalloc.start()
    try:
        got = await ipfs.cat(cid, max_bytes=16 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == data
    # The content itself is held twice at most (network pieces + the joined bytes); the old layout-guessing
    # rebuild held one object per byte (about 180 bytes each: 1.47 GB for 8 MiB).
    assert peak < 3 * size, peak


async def test_crafted_dag_of_tiny_blocks_is_refused_by_block_count(
    ipfs: IpfsClient, ipfs_node: LocalIpfsNode
) -> None:
    # 400 leaves of 8 bytes: 3,200 bytes of content in far more blocks than any importer would write
    data = _content("tiny", 3200)
    pieces = [data[i : i + 8] for i in range(0, len(data), 8)]
    cids = await put_blocks(ipfs_node.api_url, pieces, "raw")
    links = [_Link(bytes(CID.decode(c)), 8, 8) for c in cids]
    root = _dag_pb_node(links, _unixfs_file(None, len(data), [8] * len(links)))
    cid = await put_block(ipfs_node.api_url, root, "dag-pb")
    with pytest.raises(CidMismatch, match="more than .* blocks"):
        await ipfs.cat(cid, max_bytes=MIB)


async def test_dag_whose_sizes_lie_is_a_mismatch(ipfs: IpfsClient, ipfs_node: LocalIpfsNode) -> None:
    data = _content("liar", 600_000)
    leaves = [data[:300_000], data[300_000:]]
    links = []
    for piece in leaves:
        cid = await put_block(ipfs_node.api_url, piece, "raw")
        links.append(_Link(bytes(CID.decode(cid)), len(piece), len(piece)))
    # the root claims the first leaf is 1 byte longer than it is
    root = _dag_pb_node(links, _unixfs_file(None, len(data), [300_001, 299_999]))
    cid = await put_block(ipfs_node.api_url, root, "dag-pb")
    with pytest.raises(CidMismatch):
        await ipfs.cat(cid, max_bytes=MIB)
