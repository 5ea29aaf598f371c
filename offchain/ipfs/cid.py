"""Content addressing in pure Python: the CID kubo would give a file, computed with no IPFS node.

`compute_cid` rebuilds the UnixFS DAG that kubo's default importer builds (fixed-size chunks, balanced
layout, at most 174 links per node) and returns its root CID: CIDv0 with dag-pb leaves (kubo's default) or
CIDv1 with raw leaves in base32 (`ipfs add --cid-version=1`). No maintained PyPI package rebuilds kubo's
UnixFS DAG, so the two small protobuf messages involved (dag-pb's PBNode/PBLink and UnixFS's Data) are encoded
here by hand in their canonical form; `multiformats` handles everything CID-shaped (parsing, bases).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import BinaryIO, ParamSpec

from multiformats import CID

from offchain.ipfs.errors import InvalidCid

P = ParamSpec("P")

DEFAULT_CHUNK_SIZE = 262144
"""kubo's default chunker (`size-262144`), in bytes."""
DEFAULT_MAX_LINKS = 174
"""kubo's default maximum number of links per DAG node."""

_SHA2_256 = b"\x12\x20"  # multihash prefix: sha2-256 (0x12), 32-byte digest
_CIDV1_RAW = b"\x01\x55"  # CIDv1 prefix for the raw codec (0x55)
_CIDV1_DAG_PB = b"\x01\x70"  # CIDv1 prefix for the dag-pb codec (0x70)
_UNIXFS_FILE = 2  # UnixFS Data.Type enum value for a file


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    # Protobuf wire type 2 (length-delimited).
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(field: int, value: int) -> bytes:
    # Protobuf wire type 0 (varint).
    return _varint(field << 3) + _varint(value)


def _unixfs_file(data: bytes | None, filesize: int, blocksizes: list[int]) -> bytes:
    """UnixFS `Data` message of a file node; fields in tag order, as kubo and js-ipfs write them."""
    out = _field_varint(1, _UNIXFS_FILE)
    if data:
        out += _field_bytes(2, data)
    out += _field_varint(3, filesize)
    for size in blocksizes:
        out += _field_varint(4, size)
    return out


def _dag_pb_node(links: list[_Link], data: bytes) -> bytes:
    """A dag-pb PBNode in canonical form: links first (field 2), then data (field 1)."""
    out = bytearray()
    for link in links:
        # PBLink: Hash (1), Name (2, always written empty by the UnixFS importers), Tsize (3).
        body = _field_bytes(1, link.cid) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        out += _field_bytes(2, body)
    out += _field_bytes(1, data)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class _Link:
    cid: bytes  # binary CID of the child (a bare multihash for CIDv0)
    tsize: int  # cumulative serialized size of the child's DAG
    filesize: int  # bytes of file content below the child


def _dag_pb_cid(block: bytes, cid_version: int) -> bytes:
    digest = _SHA2_256 + hashlib.sha256(block).digest()
    return digest if cid_version == 0 else _CIDV1_DAG_PB + digest


def _leaf(chunk: bytes | memoryview, cid_version: int, raw_leaves: bool) -> _Link:
    if raw_leaves:
        cid = _CIDV1_RAW + _SHA2_256 + hashlib.sha256(chunk).digest()
        return _Link(cid, len(chunk), len(chunk))
    block = _dag_pb_node([], _unixfs_file(bytes(chunk), len(chunk), []))
    return _Link(_dag_pb_cid(block, cid_version), len(block), len(chunk))


def _parent(children: list[_Link], cid_version: int) -> _Link:
    filesize = sum(c.filesize for c in children)
    block = _dag_pb_node(children, _unixfs_file(None, filesize, [c.filesize for c in children]))
    return _Link(_dag_pb_cid(block, cid_version), len(block) + sum(c.tsize for c in children), filesize)


@dataclass(frozen=True, slots=True)
class DagInfo:
    """What `build_dag` found: root CID, file size, cumulative DAG size, block count, links of the root."""

    cid: str
    file_size: int
    dag_size: int
    blocks: int
    root_links: int


class DagBuilder:
    """Incremental form of `build_dag`: `update` with pieces of any size as they arrive, then `finish`.

    Leaves are hashed as soon as a whole chunk is in, so a download can be verified while it streams. With an
    `executor`, leaves are hashed there (hashlib releases the GIL, so on another core); wait for `pending()`
    before `finish()`.
    """

    def __init__(
        self,
        cid_version: int = 1,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        raw_leaves: bool | None = None,
        max_links: int = DEFAULT_MAX_LINKS,
        executor: Executor | None = None,
    ) -> None:
        if cid_version not in (0, 1):
            raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
        if isinstance(chunk_size, bool) or not 1 <= chunk_size <= 1 << 20:
            raise ValueError(f"chunk_size must be between 1 and 1048576 bytes, not {chunk_size!r}")
        if max_links < 2:
            raise ValueError(f"max_links must be at least 2, not {max_links!r}")
        self.raw = cid_version == 1 if raw_leaves is None else raw_leaves
        if self.raw and cid_version == 0:
            raise ValueError("raw leaves need CIDv1")
        self.cid_version = cid_version
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._leaves: list[_Link | Future[_Link]] = []
        self._pending: list[memoryview] = []
        self._pending_len = 0
        self._executor = executor

    def _add_leaf(self, chunk: bytes | memoryview) -> None:
        if self._executor is None:
            self._leaves.append(_leaf(chunk, self.cid_version, self.raw))
        else:
            self._leaves.append(self._executor.submit(_leaf, chunk, self.cid_version, self.raw))

    def pending(self) -> list[Future[_Link]]:
        """Leaf hashes still running in the executor."""
        return [leaf for leaf in self._leaves if isinstance(leaf, Future) and not leaf.done()]

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the file."""
        # Views into the caller's bytes are kept instead of copies (bytes are immutable; anything mutable
        # is copied once), so a chunk split across pieces costs one join and an aligned one no copy at all.
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        size = self.chunk_size
        if self._pending_len:
            take = min(size - self._pending_len, len(view))
            self._pending.append(view[:take])
            self._pending_len += take
            view = view[take:]
            if self._pending_len < size:
                return
            self._add_leaf(b"".join(self._pending))
            self._pending, self._pending_len = [], 0
        whole = len(view) - len(view) % size
        for start in range(0, whole, size):
            self._add_leaf(view[start : start + size])
        if whole < len(view):
            self._pending, self._pending_len = [view[whole:]], len(view) - whole

    def finish(self) -> DagInfo:
        """The root of the DAG of everything fed so far (an empty file gets one empty leaf, as in kubo)."""
        level = [leaf.result() if isinstance(leaf, Future) else leaf for leaf in self._leaves]
        if self._pending_len or not level:
            level.append(_leaf(b"".join(self._pending), self.cid_version, self.raw))
        blocks = len(level)
        root_links = 0
        if len(level) == 1:
            # A single-chunk file is its own root (kubo's and js-ipfs's "reduce single leaf to self").
            root = level[0]
        else:
            # Grouping each level in runs of `max_links` gives the same tree as kubo's balanced builder: every
            # leaf at the same depth, every node but the last on each level full.
            links, version = self.max_links, self.cid_version
            while len(level) > 1:
                root_links = min(len(level), links)
                level = [_parent(level[i : i + links], version) for i in range(0, len(level), links)]
                blocks += len(level)
            root = level[0]
        if self.cid_version == 0:
            text = str(CID("base58btc", 0, "dag-pb", root.cid))
        else:
            codec = "raw" if root.cid.startswith(_CIDV1_RAW) else "dag-pb"
            text = str(CID("base32", 1, codec, root.cid[2:]))
        return DagInfo(
            cid=text, file_size=root.filesize, dag_size=root.tsize, blocks=blocks, root_links=root_links
        )


def build_dag(
    data: bytes | BinaryIO,
    cid_version: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    raw_leaves: bool | None = None,
    max_links: int = DEFAULT_MAX_LINKS,
) -> DagInfo:
    """Build the UnixFS DAG of `data` the way kubo's balanced importer does, without storing the blocks.

    Args:
        data: the file's bytes, or a binary stream read to its end.
        cid_version: 0 (dag-pb leaves, base58btc) or 1 (base32; raw leaves unless `raw_leaves=False`).
        chunk_size: leaf size in bytes (kubo's `--chunker=size-N`), 1 .. 1 MiB.
        raw_leaves: store leaves as raw blocks; defaults to `cid_version == 1` as in kubo. Needs CIDv1.
        max_links: children per node (kubo's default 174; 1024 in kubo's 1 MiB-chunk profile).

    Returns:
        The root CID string, the file size in bytes, the cumulative DAG size in bytes (what kubo reports as
        `CumulativeSize`, and what Crust orders take as the file size) and the number of blocks.
    """
    builder = DagBuilder(cid_version, chunk_size, raw_leaves=raw_leaves, max_links=max_links)
    if isinstance(data, bytes | bytearray | memoryview):
        builder.update(data)
    else:
        while piece := data.read(max(chunk_size, 1 << 16)):
            builder.update(piece)
    return builder.finish()


def _cid_of(build: Callable[P, DagInfo]) -> Callable[P, str]:
    """`build`, answering only its root CID string."""

    def cid(*args: P.args, **kwargs: P.kwargs) -> str:
        return build(*args, **kwargs).cid

    return cid


compute_cid = _cid_of(build_dag)
compute_cid.__name__ = compute_cid.__qualname__ = "compute_cid"
compute_cid.__doc__ = """The CID kubo's `ipfs add` gives `data` (the arguments of `build_dag`), as a string.

CIDv0 is base58btc (`Qm...`), CIDv1 base32 (`bafk...` for a single raw leaf, `bafy...` for a DAG).
"""


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message with only varint and length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield field, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            yield field, buf[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


_UNIXFS_KINDS = {
    0: "raw",
    1: "directory",
    2: "file",
    3: "metadata",
    4: "symlink",
    5: "HAMT-sharded directory",
}


class NotAFile(InvalidCid):
    """The CID is well formed but names no UnixFS file (a directory, a symlink, a bare dag-pb node, ...)."""


@dataclass(frozen=True, slots=True)
class FileNode:
    """A decoded dag-pb UnixFS file block: child CIDs (binary), the data it holds itself, the content size
    below each child (`blocksizes`, in bytes) and the declared total (`filesize`, None when absent)."""

    links: list[bytes]
    data: bytes
    blocksizes: list[int] = field(default_factory=list)
    filesize: int | None = None


def decode_file_node(block: bytes) -> FileNode:
    """Decode a dag-pb block holding a UnixFS file node.

    Raises `NotAFile` for a directory, symlink or other non-file UnixFS node and for a dag-pb node with no
    UnixFS data; `ValueError` for bytes that are not dag-pb at all.
    """
    links: list[bytes] = []
    unixfs: bytes | None = None
    for tag, value in _fields(block):
        if tag == 2 and isinstance(value, bytes):
            link_hash = next((v for f, v in _fields(value) if f == 1 and isinstance(v, bytes)), None)
            if link_hash is None:
                raise ValueError("dag-pb link without a hash")
            links.append(link_hash)
        elif tag == 1 and isinstance(value, bytes):
            unixfs = value
    if unixfs is None:
        raise NotAFile("a dag-pb node with no UnixFS data, not a file")
    content = b""
    kind = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for tag, value in _fields(unixfs):
        if tag == 1 and isinstance(value, int):
            kind = value
        elif tag == 2 and isinstance(value, bytes):
            content = value
        elif tag == 3 and isinstance(value, int):
            filesize = value
        elif tag == 4 and isinstance(value, int):
            blocksizes.append(value)
    if kind not in (0, _UNIXFS_FILE):  # 0 = Raw, which older importers used for leaves
        name = _UNIXFS_KINDS.get(kind, f"unknown type {kind}") if kind is not None else "no type"
        raise NotAFile(f"a UnixFS {name} node, not a file")
    return FileNode(links, content, blocksizes, filesize)


def is_canonical_leaf(chunk: bytes | memoryview, digest: bytes) -> bool:
    """True when `digest` is the SHA-256 of the dag-pb leaf block an importer writes for `chunk`: UnixFS type
    file (kubo, js-ipfs balanced) or type raw (js-ipfs trickle, older importers)."""
    data = bytes(chunk)
    size = _field_varint(3, len(data))
    body = _field_bytes(2, data) if data else b""
    for kind in (_UNIXFS_FILE, 0):
        if hashlib.sha256(_dag_pb_node([], _field_varint(1, kind) + body + size)).digest() == digest:
            return True
    return False


def parse_cid(value: str | bytes | CID) -> CID:
    """Parse a CID in any multibase (or its binary form); raises `InvalidCid` with the reason."""
    if isinstance(value, str | bytes):
        return _parse_cached(value)
    return _parse(value)


@functools.lru_cache(maxsize=4096)
def _parse_cached(value: str | bytes) -> CID:
    # multiformats validates its arguments at run time (about 0.5 ms a CID); CIDs are immutable, so cache.
    return _parse(value)


def _parse(value: str | bytes | CID) -> CID:
    if isinstance(value, CID):
        cid = value
    else:
        if isinstance(value, str):
            value = value.strip()
            if not value or len(value) > 128:
                raise InvalidCid(f"not a CID: {value[:80]!r}")
        try:
            cid = CID.decode(value)
        except Exception as exc:  # multiformats raises several unrelated types for bad input
            raise InvalidCid(f"not a CID: {str(value)[:80]!r} ({exc})") from None
    if cid.codec.name not in ("dag-pb", "raw"):
        raise InvalidCid(f"unsupported CID codec {cid.codec.name!r} (need dag-pb or raw): {cid}")
    if cid.hashfun.name != "sha2-256":
        raise InvalidCid(f"unsupported CID hash {cid.hashfun.name!r} (need sha2-256): {cid}")
    return cid


def normalize_cid(value: str | bytes | CID) -> str:
    """The canonical text of a CID: base58btc for v0, base32 for v1 (what kubo prints)."""
    cid = parse_cid(value)
    return str(cid) if cid.version == 0 else cid.encode("base32")


def cid_equal(a: str | bytes | CID, b: str | bytes | CID) -> bool:
    """True when `a` and `b` are the same CID (version, codec, multihash), whatever multibase each uses.

    js-ipfs answers CIDv1 in base58btc (`zb2...`, `zdj...`) unless asked for base32, so CID strings must never
    be compared as text. A CIDv0 and the CIDv1 of the same dag-pb block are different CIDs here.
    """
    return bytes(parse_cid(a)) == bytes(parse_cid(b))


def verify_content(
    data: bytes,
    expected: str | bytes | CID,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_links: int = DEFAULT_MAX_LINKS,
) -> bool:
    """True when `data` is exactly the content `expected` addresses under kubo's import settings.

    A raw CID is checked against the digest of the bytes themselves (it is a single block, whatever its size).
    A dag-pb CID is checked by rebuilding the DAG: CIDv0 with dag-pb leaves, CIDv1 with raw leaves first and
    then with dag-pb leaves (`--cid-version=1 --raw-leaves=false`).
    """
    cid = parse_cid(expected)
    if cid.codec.name == "raw":
        return hashlib.sha256(data).digest() == cid.raw_digest
    leaf_options = [False] if cid.version == 0 else [True, False]
    for raw in leaf_options:
        got = build_dag(data, cid.version, chunk_size, raw_leaves=raw, max_links=max_links).cid
        if cid_equal(got, cid):
            return True
    return False
