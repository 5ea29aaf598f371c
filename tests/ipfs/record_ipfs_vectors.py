"""The CID test vectors: recorded from the real local IPFS node into cid_vectors.json (run by hand, not by
pytest), and read back by the tests (`load_vectors`, `content`).

    .venv/bin/python tests/ipfs/record_ipfs_vectors.py

Each vector's content is `shake_128(seed).digest(size)`, so the fixture stays small and the bytes are the same
on every machine. The pure-Python CID is checked against these answers of the node by test_ipfs_cid.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import LocalIpfsNode

OUT = Path(__file__).with_name("cid_vectors.json")
MIB = 1 << 20
# (size, chunk size or None for the node's default 256 KiB); every size is added as CIDv0 and CIDv1.
CASES: list[tuple[int, int | None]] = [
    (0, None),
    (1, None),
    (11, None),
    (262143, None),
    (262144, None),  # exactly one chunk
    (262145, None),  # one byte over: two leaves under a root
    (1 * MIB, None),
    (5 * MIB + 3, None),
    (20 * MIB, None),
    (174 * 64, 64),  # exactly one full node of 174 leaves
    (174 * 64 + 1, 64),  # 175 leaves: two levels
    (174 * 174 * 16, 16),  # two full levels
    (174 * 174 * 16 + 1, 16),  # three levels
]


def content(seed: str, size: int) -> bytes:
    """A vector's bytes: the first `size` bytes of shake_128(`seed`)."""
    return hashlib.shake_128(seed.encode()).digest(size)


def load_vectors() -> list[dict[str, object]]:
    """The recorded vectors: seed, size, chunk_size, cid_version, cid, dag_size, root_links."""
    return list(json.loads(OUT.read_text())["vectors"])


async def record(api_url: str) -> list[dict[str, object]]:
    vectors: list[dict[str, object]] = []
    async with IpfsClient(api_url, timeout=600) as client:
        for size, chunk in CASES:
            seed = f"ami-ipfs-{size}-{chunk}"
            data = content(seed, size)
            for version in (0, 1):
                started = time.monotonic()
                chunker = f"size-{chunk}" if chunk else None
                # verify=False: the node's own answers are the reference for the pure-Python CID.
                cid = await client.add(data, cid_version=version, chunker=chunker, pin=False, verify=False)
                stat = await client.stat(cid)
                vectors.append(
                    {
                        "seed": seed,
                        "size": size,
                        "chunk_size": chunk,
                        "cid_version": version,
                        "cid": cid,
                        "dag_size": stat.cumulative_size,
                        "root_links": stat.blocks,
                    }
                )
                took = time.monotonic() - started
                print(f"{size:>9} chunk={chunk} v{version} {cid} {took:.1f}s", flush=True)
    return vectors


def main() -> int:
    with tempfile.TemporaryDirectory() as repo, LocalIpfsNode(Path(repo) / "repo") as node:
        version = asyncio.run(_version(node.api_url))
        vectors = asyncio.run(record(node.api_url))
    OUT.write_text(json.dumps({"node": f"js-ipfs {version}", "vectors": vectors}, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUT}")
    return 0


async def _version(api_url: str) -> str:
    async with IpfsClient(api_url) as client:
        return await client.version()


if __name__ == "__main__":
    sys.exit(main())
