"""Shared pytest configuration for the whole suite: one real js-ipfs node per session, shared by every folder
that needs one (IPFS client, hostile inputs, dashboard audio), a client of it, and structlog put back after
every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import JSNODE_DIR, LocalIpfsNode


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """CLI commands configure structlog onto the stream CliRunner swaps in (and closes): undo it after every
    test, so that a later test in any folder does not log into a closed file."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIpfsNode]:
    """The project's own node on loopback, started once; a missing install fails (run ./scripts/setup.sh),
    never skips."""
    if not (JSNODE_DIR / "node_modules").is_dir():
        pytest.fail("the js-ipfs npm folder is missing: run ./scripts/setup.sh")
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
