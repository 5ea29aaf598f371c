"""Checking bytes read from IPFS against the UnixFS DAG of their CID, whatever layout the importer chose.

`IpfsClient.cat` verifies the common layout while the bytes stream in; content imported with other settings
(dag-pb leaves, another chunk size, a trickle DAG, a hand-made DAG) is checked here by walking its DAG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from multiformats import CID

from offchain.ipfs.cid import FileNode, NotAFile, decode_file_node, is_canonical_leaf, parse_cid
from offchain.ipfs.errors import CidMismatch

# Trickle DAGs grow about one level per 4 * 174 chunks; 64 levels is far beyond any file this platform stores.
MAX_DEPTH = 64
MAX_CHUNK = (1 << 20) + 4096  # kubo's largest chunk (1 MiB) plus the dag-pb/UnixFS framing of a leaf


def max_dag_blocks(size: int) -> int:
    """The most blocks an honest DAG of `size` content bytes has: 1 KiB chunks, plus room for small files."""
    return 256 + size // 512


@dataclass
class _Walk:
    """Where a depth-first walk of the DAG of `cid` over `data` stands."""

    cid: str
    data: memoryview
    budget: int  # the most blocks visited
    fetch_budget: int  # the most blocks fetched (internal nodes, and leaves that do not rebuild)
    offset: int = 0
    visited: int = 0
    fetched: int = 0

    def fail(self, why: str) -> CidMismatch:
        return CidMismatch(f"cat {self.cid}: {why}")

    def visit(self, depth: int) -> None:
        self.visited += 1
        if self.visited > self.budget:
            raise self.fail(
                f"the DAG has more than {self.budget} blocks for {len(self.data)} bytes of content "
                "(chunks far smaller than any importer writes); refused"
            )
        if depth > MAX_DEPTH:
            raise self.fail(f"the DAG is deeper than {MAX_DEPTH} levels; refused")

    def leaf_matches(self, child: CID, size: int) -> bool:
        """True when the next `size` bytes are the leaf `child` (a raw leaf must be; a dag-pb leaf may be
        fetched instead when it was written another way)."""
        if self.offset + size > len(self.data):
            raise self.fail("the DAG describes more bytes than were read")
        piece = self.data[self.offset : self.offset + size]
        if child.codec.name == "raw":
            if hashlib.sha256(piece).digest() != child.raw_digest:
                raise self.fail("a raw leaf does not hash to its CID")
            return True
        return size <= MAX_CHUNK and is_canonical_leaf(piece, child.raw_digest)

    def node(self, block: bytes, size: int | None) -> FileNode:
        """The file node in `block`, its sizes and its own bytes checked against the data."""
        try:
            node = decode_file_node(block)
        except NotAFile as exc:
            raise NotAFile(f"{self.cid} is not a file: {exc}") from None
        except ValueError as exc:
            raise self.fail(f"a block of the DAG is not dag-pb ({exc})") from None
        if node.links and len(node.blocksizes) != len(node.links):
            raise self.fail("a file node without a size for each link")
        own = len(node.data) + sum(node.blocksizes)
        if (size is not None and own != size) or (node.filesize is not None and node.filesize != own):
            raise self.fail("a node's declared sizes do not add up")
        if node.data and bytes(self.data[self.offset : self.offset + len(node.data)]) != node.data:
            raise self.fail("the bytes read differ from the DAG's")
        return node


async def verify_dag(cid: str, data: bytes, block_get: Callable[[CID], Awaitable[bytes]]) -> None:
    """Raise `CidMismatch` unless `data` is exactly the file the UnixFS DAG under `cid` describes.

    Works for any layout (balanced or trickle, any chunk size up to kubo's 1 MiB, raw or dag-pb leaves)
    in time linear in the DAG and in memory bounded by one block plus the pending links: internal nodes
    are fetched with `block_get` (which checks each against its CID) and walked depth first; a leaf is
    checked by hashing its slice of `data` as the leaf block kubo writes, and fetched only when that does
    not match. A DAG of more blocks than `data` could honestly need (`max_dag_blocks`) is refused, as is any
    node that is not part of a UnixFS file (`NotAFile`).
    """
    root = parse_cid(cid)
    if root.codec.name == "raw":
        if hashlib.sha256(data).digest() != root.raw_digest:
            raise CidMismatch(f"cat {cid}: the bytes read do not hash to the CID")
        return
    budget = max_dag_blocks(len(data))
    walk = _Walk(cid, memoryview(data), budget, 32 + budget // 32)
    # (binary CID, content size the parent declared for it or None for the root, depth)
    stack: list[tuple[bytes, int | None, int]] = [(bytes(root), None, 0)]
    while stack:
        link, size, depth = stack.pop()
        walk.visit(depth)
        child = parse_cid(link)
        if size is not None and walk.leaf_matches(child, size):
            walk.offset += size
            continue
        walk.fetched += 1
        if walk.fetched > walk.fetch_budget:
            raise walk.fail(f"the DAG has more than {walk.fetch_budget} internal nodes; refused")
        block = await block_get(child)
        if child.codec.name == "raw":  # only a raw root could get here, and that returned above
            raise walk.fail("a raw block with no declared size")
        node = walk.node(block, size)
        walk.offset += len(node.data)
        for sub, sub_size in zip(reversed(node.links), reversed(node.blocksizes), strict=True):
            stack.append((sub, sub_size, depth + 1))
    if walk.offset != len(data):
        raise CidMismatch(f"cat {cid}: {len(data)} bytes read, but the DAG holds {walk.offset}")
