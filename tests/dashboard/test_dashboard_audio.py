"""The audio player of `ami dashboard --ipfs-api-url`: a minted track's bytes come from a real IPFS node,
checked against the minted CID; a CID that is not one is refused with the reason; the server carries on."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import LocalIpfsNode
from offchain.projection import BlockData, typed_event
from offchain.store import WorkerStore
from tests.dashboard.conftest import address, serve, stop
from tests.dashboard.test_dashboard_serving import get


async def _mint_db(folder: Path, cids: list[str]) -> Path:
    store = await WorkerStore.open(folder / "worker.sqlite")
    try:
        events = tuple(
            typed_event(
                "Minted",
                i,
                {
                    "token_id": i + 1,
                    "creator": "5Creator" + "x" * 39,
                    "audio_cid": cid,
                    "metadata_cid": cid,
                    "royalty_splits": [("5Creator" + "x" * 39, 10000)],
                },
            )
            for i, cid in enumerate(cids)
        )
        await store.ingest([BlockData(1, "0x" + "01" * 32, events)])
    finally:
        await store.close()
    return folder / "worker.sqlite"


def test_audio_streams_verified_bytes_from_the_ipfs_node(ipfs_node: LocalIpfsNode, tmp_path: Path) -> None:
    audio = b"RIFF" + bytes(range(256)) * 64

    async def add() -> str:
        async with IpfsClient(ipfs_node.api_url) as client:
            return str(await client.add(audio))

    cid = asyncio.run(add())
    db = asyncio.run(_mint_db(tmp_path, [cid, "bafy-not-a-cid"]))
    proc = serve("--db", str(db), "--ipfs-api-url", ipfs_node.api_url)
    try:
        url = address(proc)
        code, body = get(url + "/tracks/1")
        assert code == 200 and 'src="/tracks/1/audio"' in body
        with urllib.request.urlopen(url + "/tracks/1/audio", timeout=60) as r:
            assert r.headers["Content-Type"] == "audio/wav"
            assert r.read() == audio
        code, body = get(url + "/tracks/2/audio")
        assert code == 502 and "cannot stream bafy-not-a-cid" in body
        assert get(url + "/tracks/1")[0] == 200
    finally:
        stop(proc)
    assert proc.returncode == 0
