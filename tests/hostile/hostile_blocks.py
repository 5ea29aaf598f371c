"""Storing hand-made blocks on the test node: DAGs a hostile creator can craft and no importer writes."""

from __future__ import annotations

import hashlib

import aiohttp
from multiformats import CID


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
