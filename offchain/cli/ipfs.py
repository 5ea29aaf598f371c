"""`ami ipfs ...`: CIDs with no node, add and verified cat through a node, metadata checks, the local node."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from offchain.cli.exits import EXIT_INPUT, EXIT_REFUSED, EXIT_TIMEOUT, EXIT_UNREACHABLE, fail_with
from offchain.ipfs import errors as e
from offchain.ipfs.cid import compute_cid
from offchain.ipfs.client import IpfsClient
from offchain.ipfs.errors import IpfsError, IpfsNodeError
from offchain.ipfs.metadata import MAX_METADATA_BYTES, MetadataError, TrackMetadata
from offchain.ipfs.node import run_foreground

T = TypeVar("T")

DEFAULT_API = "http://127.0.0.1:5001"
API_OPTION = typer.Option(DEFAULT_API, "--api", envvar="AMI_IPFS_API", help="Kubo RPC API base URL.")

ipfs_app = typer.Typer(help="Content storage on IPFS: CIDs, add, verified cat, metadata, the local node.")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.add_typer(ipfs_app, name="ipfs")


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of the bare CID.")


def _exit_code(exc: BaseException) -> int:
    """The README's exit codes: 3 node unreachable, 5 timed out, 4 refused (not found, content that fails its
    CID), 2 bad input (a bad CID, content over the cap, a bad option)."""
    if isinstance(exc, e.IpfsUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(exc, e.IpfsTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, e.IpfsNotFound | e.CidMismatch):
        return EXIT_REFUSED
    return EXIT_INPUT


def _on_node(api: str, call: Callable[[IpfsClient], Awaitable[T]]) -> T:
    """`call` with a client of the node at `api`; a failure printed in one line with its exit code."""

    async def run() -> T:
        async with IpfsClient(api) as client:
            return await call(client)

    try:
        return asyncio.run(run())
    except (IpfsError, ValueError) as exc:
        fail_with(str(exc), _exit_code(exc))


def _print_cid(cid: str, as_json: bool, **fields: object) -> None:
    typer.echo(json.dumps({"cid": cid, **fields}, sort_keys=True) if as_json else cid)


@ipfs_app.command("cid")
def cid_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="File to address."),
    cid_version: int = typer.Option(1, "--cid-version", min=0, max=1, help="0 (kubo's default) or 1."),
    chunk_size: int = typer.Option(262144, "--chunk-size", min=1, max=1 << 20, help="Chunk size in bytes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the CID kubo's `ipfs add` would give FILE, computed here with no node running."""
    with file.open("rb") as stream:
        cid = compute_cid(stream, cid_version, chunk_size)
    _print_cid(cid, as_json, bytes=file.stat().st_size, cid_version=cid_version, chunk_size=chunk_size)


@ipfs_app.command("add")
def add_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="File to store."),
    api: str = API_OPTION,
    cid_version: int = typer.Option(1, "--cid-version", min=0, max=1, help="0 or 1 (raw leaves)."),
    pin: bool = typer.Option(True, "--pin/--no-pin", help="Pin the content on the node."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store FILE on the node (pinned) and print its CID, checked against the CID computed locally."""
    data = file.read_bytes()
    cid = _on_node(api, lambda client: client.add(data, cid_version=cid_version, pin=pin))
    _print_cid(cid, as_json, bytes=len(data), pinned=pin)


@ipfs_app.command("cat")
def cat_command(
    cid: str = typer.Argument(..., help="CID to read."),
    api: str = API_OPTION,
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
    max_bytes: int = typer.Option(256 << 20, "--max-bytes", min=0, help="Refuse content larger than this."),
) -> None:
    """Read CID from the node, verify it against the CID, and write it out (nothing is written on error)."""
    data = _on_node(api, lambda client: client.cat(cid, max_bytes=max_bytes))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    # Write beside the target and rename, so an existing file is replaced whole or not at all.
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@ipfs_app.command("check-metadata")
def check_metadata_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Metadata JSON."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate a track metadata document and print its canonical CID (CIDv1)."""
    if file.stat().st_size > MAX_METADATA_BYTES:
        fail_with(f"{file} is larger than {MAX_METADATA_BYTES} bytes")
    try:
        meta = TrackMetadata.from_json(file.read_bytes())
    except MetadataError as exc:
        fail_with(str(exc))
    _print_cid(compute_cid(meta.to_json(), 1), as_json, valid=True)


@ipfs_app.command("node")
def node_command(
    repo: Path = typer.Option(Path(".ami/ipfs"), "--repo", help="Repo folder (created on first start)."),
    port: int = typer.Option(5001, "--port", min=1, max=65535, help="API port on 127.0.0.1."),
) -> None:
    """Run the project's local IPFS node (loopback only, no peers) in the foreground until Ctrl-C."""
    try:
        run_foreground(repo, port)
    except IpfsNodeError as exc:
        fail_with(str(exc), 1)
