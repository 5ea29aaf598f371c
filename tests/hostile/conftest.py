"""Fixtures of the hostile-input suite: one real js-ipfs node per session on loopback, a client of it, and a
helper that stores hand-made blocks (the DAGs a hostile creator can craft, which no importer would write)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from multiformats import CID

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import JSNODE_DIR, LocalIpfsNode


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIpfsNode]:
    """The project's own node, started once; a missing install fails (run ./scripts/setup.sh), never skips."""
    if not (JSNODE_DIR / "node_modules").is_dir():
        pytest.fail("the js-ipfs npm folder is missing: run ./scripts/setup.sh")
    node = LocalIpfsNode(tmp_path_factory.mktemp("hostile-ipfs") / "repo")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def ipfs(ipfs_node: LocalIpfsNode) -> AsyncIterator[IpfsClient]:
    async with IpfsClient(ipfs_node.api_url, node_timeout=2, timeout=60) as client:
        yield client


async def put_blocks(api_url: str, blocks: list[bytes], codec: str) -> list[str]:
    """Store blocks as they are (`block/put`) and return their CIDv1s in base32, each checked against our own
    hash of the block."""
    params = {"cid-codec": codec, "format": codec, "mhtype": "sha2-256", "version": "1", "pin": "true"}
    out = []
    async with aiohttp.ClientSession() as http:
        for block in blocks:
            form = aiohttp.FormData()
            form.add_field("file", block, filename="block", content_type="application/octet-stream")
            async with http.post(f"{api_url}/api/v0/block/put", params=params, data=form) as r:
                assert r.status == 200, await r.text()
                answer = await r.json(content_type=None)
            mine = CID("base32", 1, codec, ("sha2-256", hashlib.sha256(block).digest()))
            assert bytes(CID.decode(answer["Key"])) == bytes(mine), answer
            out.append(str(mine))
    return out


async def put_block(api_url: str, block: bytes, codec: str) -> str:
    """One block through `put_blocks`."""
    return (await put_blocks(api_url, [block], codec))[0]
