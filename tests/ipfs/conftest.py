"""Fixtures of the IPFS tests: one real js-ipfs node per session on loopback, in a temporary repo."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import LocalIpfsNode


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIpfsNode]:
    """The project's own node, started once; fails with "run ./scripts/setup.sh" when it is not installed."""
    node = LocalIpfsNode(tmp_path_factory.mktemp("ipfs") / "repo")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def ipfs(ipfs_node: LocalIpfsNode) -> AsyncIterator[IpfsClient]:
    """A client of the session's node; the node gets 2 s to find content it does not hold."""
    async with IpfsClient(ipfs_node.api_url, node_timeout=2, timeout=120) as client:
        yield client
