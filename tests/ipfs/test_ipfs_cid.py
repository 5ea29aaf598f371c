"""Pure-Python CIDs against vectors recorded from the real node, plus parsing and comparison (no node)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from record_ipfs_vectors import content, load_vectors

from offchain.ipfs.cid import (
    build_dag,
    cid_equal,
    compute_cid,
    decode_file_node,
    normalize_cid,
    parse_cid,
    verify_content,
)
from offchain.ipfs.errors import InvalidCid, IpfsError

VECTORS: list[dict[str, Any]] = load_vectors()


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[f"{v['size']}-c{v['chunk_size']}-v{v['cid_version']}" for v in VECTORS]
)
def test_cid_matches_the_node(vector: dict) -> None:
    data = content(vector["seed"], vector["size"])
    info = build_dag(data, vector["cid_version"], vector["chunk_size"] or 262144)
    assert info.cid == vector["cid"]
    assert info.dag_size == vector["dag_size"]
    assert info.root_links == vector["root_links"]


def test_vectors_cover_the_shapes_the_issue_names() -> None:
    sizes = {(v["size"], v["chunk_size"]) for v in VECTORS}
    assert (0, None) in sizes and (262144, None) in sizes and (262145, None) in sizes
    assert (20 << 20, None) in sizes
    # a three-level tree: more than 174 * 174 leaves
    assert any(c and s > 174 * 174 * c for s, c in sizes)


def test_known_kubo_answers() -> None:
    # Widely published kubo CIDs: the empty file and "hello" (no newline), CIDv0 and CIDv1.
    assert compute_cid(b"", 0) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert compute_cid(b"", 1) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert compute_cid(b"hello", 0) == "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"


class _Trickle(io.RawIOBase):
    """A stream that hands out at most 1000 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._buf.read(min(size, 1000) if size >= 0 else 1000)


@settings(max_examples=25, deadline=None)
@given(
    data=st.binary(max_size=5000),
    chunk=st.integers(min_value=1, max_value=700),
    version=st.sampled_from([0, 1]),
)
def test_stream_and_bytes_give_the_same_cid(data: bytes, chunk: int, version: int) -> None:
    expected = compute_cid(data, version, chunk)
    assert compute_cid(_Trickle(data), version, chunk) == expected  # type: ignore[arg-type]
    assert verify_content(data, expected, chunk_size=chunk)
    if data:
        flipped = bytes([data[0] ^ 1]) + data[1:]
        assert not verify_content(flipped, expected, chunk_size=chunk)


def test_cid_versions_and_leaves() -> None:
    big = b"\x07" * 300_000
    assert compute_cid(big, 0).startswith("Qm")
    assert compute_cid(big, 1).startswith("bafy")
    assert compute_cid(b"small", 1).startswith("bafk")
    # CIDv1 with dag-pb leaves (kubo's --raw-leaves=false) is another DAG with the same content
    assert compute_cid(b"small", 1, raw_leaves=False).startswith("bafy")
    assert verify_content(b"small", compute_cid(b"small", 1, raw_leaves=False))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cid_version": 2}, "cid_version"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": (1 << 20) + 1}, "chunk_size"),
        ({"max_links": 1}, "max_links"),
        ({"cid_version": 0, "raw_leaves": True}, "raw leaves"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_dag(b"x", **kwargs)


def test_cid_equal_ignores_the_multibase() -> None:
    b32 = compute_cid(b"hello", 1)
    b58 = parse_cid(b32).encode("base58btc")
    assert b58.startswith("z") and b58 != b32
    assert cid_equal(b32, b58)
    assert cid_equal(b32, bytes(parse_cid(b32)))
    assert normalize_cid(b58) == b32
    assert not cid_equal(b32, compute_cid(b"hellO", 1))
    # CIDv0 and CIDv1 are different CIDs even for the same block
    v0 = compute_cid(b"hello", 0)
    assert not cid_equal(v0, parse_cid(v0).set(version=1))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "hello",
        "Qm" + "1" * 44,
        "../../etc/passwd",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",  # truncated
        "x" * 5000,
        # dag-cbor codec, identity hash: valid CIDs, but not content this project stores
        "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "bafkqaaa",
    ],
)
def test_invalid_cids_are_typed_errors(bad: str) -> None:
    with pytest.raises(InvalidCid) as info:
        parse_cid(bad)
    assert isinstance(info.value, IpfsError) and isinstance(info.value, ValueError)


def test_decode_file_node_reads_what_build_writes() -> None:
    from offchain.ipfs.cid import _dag_pb_node, _Link, _unixfs_file

    child = _Link(b"\x12\x20" + b"\x01" * 32, 99, 42)
    block = _dag_pb_node([child, child], _unixfs_file(None, 84, [42, 42]))
    node = decode_file_node(block)
    assert node.links == [child.cid, child.cid] and node.data == b""
    leaf = decode_file_node(_dag_pb_node([], _unixfs_file(b"abc", 3, [])))
    assert leaf.links == [] and leaf.data == b"abc"
    with pytest.raises(ValueError):
        decode_file_node(b"\x0a\x05\x08")  # truncated


@settings(max_examples=25, deadline=None)
@given(
    data=st.binary(max_size=4000),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
    chunk=st.integers(min_value=1, max_value=500),
    version=st.sampled_from([0, 1]),
)
def test_incremental_builder_matches_whole_file(
    data: bytes, cuts: list[int], chunk: int, version: int
) -> None:
    from offchain.ipfs.cid import DagBuilder

    builder = DagBuilder(version, chunk, max_links=3)  # a small fan-out makes deep trees from small inputs
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in zip(edges, edges[1:], strict=False):
        builder.update(data[start:end])
    assert builder.finish() == build_dag(data, version, chunk, max_links=3)
