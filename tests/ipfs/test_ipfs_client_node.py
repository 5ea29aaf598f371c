"""IpfsClient against the project's real IPFS node on loopback: round trips, CID agreement, verified reads,
caps, pins, a tampering proxy, node restarts and a node that is down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from record_ipfs_vectors import content, load_vectors

from offchain.ipfs.cid import compute_cid
from offchain.ipfs.client import IpfsClient
from offchain.ipfs.errors import (
    CidMismatch,
    InvalidCid,
    IpfsError,
    IpfsNodeError,
    IpfsNotFound,
    IpfsTimeout,
    IpfsTooLarge,
    IpfsUnavailable,
)
from offchain.ipfs.node import LocalIpfsNode, free_port

MIB = 1 << 20
ABSENT = compute_cid(b"content that no test ever adds")


@pytest.mark.parametrize(
    ("size", "version"),
    [
        *[(size, version) for size in (0, 1, 262144, 262145) for version in (0, 1)],
        (3 * MIB + 7, 0),
        (20 * MIB, 1),
    ],
)
async def test_round_trip_and_cid_agreement(ipfs: IpfsClient, size: int, version: int) -> None:
    data = content(f"round-trip-{size}-{version}", size)
    # verify=False: the node's answer alone is compared with the pure-Python CID here
    cid = await ipfs.add(data, cid_version=version, verify=False)
    assert cid == compute_cid(data, version)
    assert await ipfs.cat(cid, max_bytes=size) == data
    stat = await ipfs.stat(cid)
    assert stat.cid == cid and stat.size == size
    assert await ipfs.is_pinned(cid)


@pytest.mark.parametrize("version", [0, 1])
async def test_multi_level_tree_agreement_and_verified_read(ipfs: IpfsClient, version: int) -> None:
    # 64-byte chunks: 175 leaves need two levels of links, as > 174 chunks of 256 KiB would
    data = content("two-levels", 174 * 64 + 1)
    cid = await ipfs.add(data, cid_version=version, chunker="size-64", verify=False)
    assert cid == compute_cid(data, version, 64)
    assert (await ipfs.stat(cid)).blocks == 2
    # the read is verified although the chunking is not kubo's default: the client learns it from the DAG
    assert await ipfs.cat(cid, max_bytes=len(data)) == data


async def test_cidv1_with_dag_pb_leaves(ipfs: IpfsClient) -> None:
    data = content("dag-pb leaves", 600_000)
    cid = await ipfs.add(data, cid_version=1, raw_leaves=False)
    assert cid == compute_cid(data, 1, raw_leaves=False) != compute_cid(data, 1)
    assert await ipfs.cat(cid, max_bytes=len(data)) == data
    with pytest.raises(ValueError, match="raw leaves"):
        await ipfs.add(data, cid_version=0, raw_leaves=True)


async def test_recorded_vectors_still_match_the_node(ipfs: IpfsClient) -> None:
    vectors: list[dict[str, Any]] = load_vectors()
    small = [v for v in vectors if v["size"] <= 2 * MIB and v["chunk_size"] in (None, 64)]
    assert len(small) >= 10
    for vector in small:
        chunker = f"size-{vector['chunk_size']}" if vector["chunk_size"] else None
        data = content(vector["seed"], vector["size"])
        version = vector["cid_version"]
        cid = await ipfs.add(data, cid_version=version, chunker=chunker, pin=False, verify=False)
        assert cid == vector["cid"], vector


async def test_cap_is_enforced(ipfs: IpfsClient) -> None:
    small = await ipfs.add(b"y" * 1000)
    assert await ipfs.cat(small, max_bytes=1000) == b"y" * 1000
    with pytest.raises(IpfsTooLarge):
        await ipfs.cat(small, max_bytes=999)
    big = await ipfs.add(content("capped", 5 * MIB))
    with pytest.raises(IpfsTooLarge):
        await ipfs.cat(big, max_bytes=MIB)


async def test_pin_and_unpin(ipfs: IpfsClient) -> None:
    cid = await ipfs.add(b"pin me", pin=False)
    assert not await ipfs.is_pinned(cid)
    await ipfs.pin(cid)
    assert await ipfs.is_pinned(cid)
    assert await ipfs.unpin(cid) is True
    assert await ipfs.unpin(cid) is False
    assert not await ipfs.is_pinned(cid)


async def test_absent_content_is_not_found(ipfs_node: LocalIpfsNode) -> None:
    async with IpfsClient(ipfs_node.api_url, node_timeout=1) as client:
        with pytest.raises(IpfsNotFound):
            await client.cat(ABSENT, max_bytes=100)
        with pytest.raises(IpfsNotFound):
            await client.stat(ABSENT)
        with pytest.raises(IpfsNotFound):
            await client.pin(ABSENT)


async def test_bad_inputs_are_typed_errors(ipfs: IpfsClient) -> None:
    with pytest.raises(ValueError, match="api_url"):
        IpfsClient("ftp://127.0.0.1:5001")
    with pytest.raises(TypeError):
        await ipfs.add("text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cid_version"):
        await ipfs.add(b"x", cid_version=2)
    with pytest.raises(ValueError, match="chunker"):
        await ipfs.add(b"x", chunker="rabin-1-2-3")
    with pytest.raises(ValueError, match="max_bytes"):
        await ipfs.cat(compute_cid(b"x"), max_bytes=-1)
    for bad in ("", "QmNotACid", "/ipfs/../etc/passwd", "bafkqaaa"):
        with pytest.raises(InvalidCid):
            await ipfs.cat(bad, max_bytes=10)


class _Proxy:
    """A loopback HTTP proxy in front of the node that can alter what passes through it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "slow":
            await asyncio.sleep(2)
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/octet-stream")}
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.upstream + request.path_qs, data=body, headers=headers) as answer,
        ):
            payload, status = await answer.read(), answer.status
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
        if status == 200 and request.path.endswith(("/cat", "/block/get")) and payload:
            if self.mode == "flip":
                payload = bytes([payload[0] ^ 0x01]) + payload[1:]
            elif self.mode == "truncate":
                payload = payload[:-1]
        if self.mode == "garbage" and not request.path.endswith("/cat"):
            return web.Response(body=b"<html>not the RPC API</html>", status=200)
        if self.mode == "no-such-call":
            return web.Response(body=b"404 page not found", status=404)
        if self.mode == "huge-error":
            return web.Response(body=b"E" * (8 * MIB), status=500)
        if status == 200 and request.path.endswith("/add") and self.mode == "lie":
            payload = json.dumps({"Name": "blob", "Hash": compute_cid(b"something else"), "Size": 1}).encode()
        return web.Response(body=payload, status=status, headers={"Content-Type": content_type})


@pytest.fixture
async def proxy(ipfs_node: LocalIpfsNode) -> AsyncIterator[_Proxy]:
    proxy = _Proxy(ipfs_node.api_url)
    app = web.Application(client_max_size=64 * MIB)
    app.router.add_route("POST", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        await runner.cleanup()


async def test_tampered_reads_are_detected(proxy: _Proxy) -> None:
    async with IpfsClient(proxy.url, retries=0) as client:
        one_block = await client.add(b"a genuine track")
        many_blocks = await client.add(content("tamper", 600_000), cid_version=0)
        odd_chunks = await client.add(content("tamper-odd", 5000), chunker="size-100")
        assert await client.cat(many_blocks, max_bytes=MIB) == content("tamper", 600_000)
        for mode in ("flip", "truncate"):
            proxy.mode = mode
            for cid in (one_block, many_blocks, odd_chunks):
                with pytest.raises(CidMismatch):
                    await client.cat(cid, max_bytes=MIB)


async def test_a_node_answering_a_wrong_cid_on_add_is_caught(proxy: _Proxy) -> None:
    proxy.mode = "lie"
    async with IpfsClient(proxy.url, retries=0) as client:
        with pytest.raises(CidMismatch):
            await client.add(b"what I uploaded")


@pytest.mark.parametrize("mode", ["garbage", "huge-error", "no-such-call"])
async def test_a_misbehaving_node_gives_ipfs_errors(proxy: _Proxy, mode: str) -> None:
    async with IpfsClient(proxy.url, retries=0) as client:
        cid = await client.add(b"stored before the node went strange")
        proxy.mode = mode
        calls = [
            lambda: client.version(),
            lambda: client.add(b"more"),
            lambda: client.stat(cid),
            lambda: client.pin(cid),
            lambda: client.is_pinned(cid),
        ]
        for call in calls:
            with pytest.raises(IpfsError) as info:
                await call()
            assert len(str(info.value)) <= 600
            assert not isinstance(info.value, IpfsNotFound | IpfsUnavailable)


async def test_client_timeout(proxy: _Proxy) -> None:
    proxy.mode = "slow"
    async with IpfsClient(proxy.url, timeout=0.3, retries=0) as client:
        with pytest.raises(IpfsTimeout):
            await client.version()


async def test_node_down_is_unavailable() -> None:
    async with IpfsClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_initial=0.05) as client:
        with pytest.raises(IpfsUnavailable):
            await client.version()
        with pytest.raises(IpfsUnavailable):
            await client.add(b"nowhere to go")


async def test_node_restart_is_survived(ipfs_node: LocalIpfsNode) -> None:
    data = content("survives restarts", 300_000)
    async with IpfsClient(ipfs_node.api_url, retries=15, backoff_max=1.0) as client:
        cid = await client.add(data)
        assert await client.cat(cid, max_bytes=len(data)) == data  # leaves a kept-alive connection behind
        # The node goes down and comes back on the same port while the client is asking.
        await asyncio.to_thread(ipfs_node.stop)
        restarting = asyncio.create_task(asyncio.to_thread(ipfs_node.start))
        assert await client.cat(cid, max_bytes=len(data)) == data
        await restarting
        assert await client.is_pinned(cid)


def test_node_is_loopback_only_without_peers(ipfs_node: LocalIpfsNode) -> None:
    config = json.loads((ipfs_node.repo / "config").read_text())
    addresses = config["Addresses"]
    for addr in [addresses["API"], addresses["Gateway"], addresses["RPC"], *addresses["Swarm"]]:
        assert addr.startswith("/ip4/127.0.0.1/tcp/"), addr
    assert config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert ipfs_node.api_url.startswith("http://127.0.0.1:")


def test_missing_install_and_busy_port_are_clear_errors(tmp_path: Path, ipfs_node: LocalIpfsNode) -> None:
    with pytest.raises(IpfsNodeError, match=r"run \./scripts/setup\.sh"):
        LocalIpfsNode(tmp_path / "repo", jsnode_dir=tmp_path / "nothing-installed").start()
    with pytest.raises(IpfsNodeError, match="already in use"):
        LocalIpfsNode(tmp_path / "other", port=ipfs_node.port).start()
    with pytest.raises(IpfsNodeError, match="port"):
        LocalIpfsNode(tmp_path / "repo", port=70000)
