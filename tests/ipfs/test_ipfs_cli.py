"""`ami ipfs` commands: cid with no node, add and cat through the session's node, metadata check, node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from offchain.cli.ipfs import register
from offchain.ipfs.cid import compute_cid
from offchain.ipfs.node import LocalIpfsNode, free_port

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root."""

    register(app)
    return app


runner = CliRunner()


def test_cid_needs_no_node(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1500  # 384000 bytes, two chunks
    path = tmp_path / "track.wav"
    path.write_bytes(data)
    v1 = runner.invoke(_app(), ["ipfs", "cid", str(path)])
    v0 = runner.invoke(_app(), ["ipfs", "cid", str(path), "--cid-version", "0"])
    assert v1.exit_code == 0 and v1.stdout.strip() == compute_cid(data, 1)
    assert v0.exit_code == 0 and v0.stdout.strip() == compute_cid(data, 0)
    bad = runner.invoke(_app(), ["ipfs", "cid", str(path), "--cid-version", "2"])
    assert bad.exit_code != 0
    missing = runner.invoke(_app(), ["ipfs", "cid", str(tmp_path / "missing")])
    assert missing.exit_code == 2  # a bad argument, as the README documents
    as_json = runner.invoke(_app(), ["ipfs", "cid", str(path), "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {
        "cid": compute_cid(data, 1),
        "bytes": len(data),
        "cid_version": 1,
        "chunk_size": 262144,
    }


def test_add_then_cat(tmp_path: Path, ipfs_node: LocalIpfsNode) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(300_000))
    added = runner.invoke(_app(), ["ipfs", "add", str(source), "--api", ipfs_node.api_url])
    assert added.exit_code == 0, added.output
    cid = added.stdout.strip()
    assert cid == compute_cid(source.read_bytes(), 1)
    again = runner.invoke(_app(), ["ipfs", "add", str(source), "--api", ipfs_node.api_url, "--json"])
    assert json.loads(again.stdout) == {"cid": cid, "bytes": 300_000, "pinned": True}
    target = tmp_path / "out.bin"
    got = runner.invoke(_app(), ["ipfs", "cat", cid, "--api", ipfs_node.api_url, "-o", str(target)])
    assert got.exit_code == 0, got.output
    assert target.read_bytes() == source.read_bytes()
    # over the cap: an error, and the existing output file is left as it was
    capped = runner.invoke(
        _app(), ["ipfs", "cat", cid, "--api", ipfs_node.api_url, "-o", str(target), "--max-bytes", "1000"]
    )
    assert capped.exit_code == 2 and "larger than the cap" in capped.output
    assert target.read_bytes() == source.read_bytes()
    down = runner.invoke(_app(), ["ipfs", "cat", cid, "--api", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 3 and "cannot reach" in down.output
    invalid = runner.invoke(_app(), ["ipfs", "cat", "nope", "--api", ipfs_node.api_url])
    assert invalid.exit_code == 2 and "not a CID" in invalid.output


def test_check_metadata(tmp_path: Path) -> None:
    doc = {
        "title": "Night Drive",
        "creator": ALICE,
        "genre": "synthwave",
        "duration_s": 183.25,
        "royalty_splits": [[ALICE, 10000]],
        "licence": "CC0-1.0",
        "audio_cid": compute_cid(b"audio"),
        "audio_format": "wav",
    }
    good = tmp_path / "meta.json"
    good.write_text(json.dumps(doc, indent=2))
    result = runner.invoke(_app(), ["ipfs", "check-metadata", str(good)])
    assert result.exit_code == 0 and result.stdout.strip().startswith("bafkrei")
    doc["royalty_splits"] = [[ALICE, 5000]]
    good.write_text(json.dumps(doc))
    result = runner.invoke(_app(), ["ipfs", "check-metadata", str(good)])
    assert result.exit_code == 2 and "royalty_splits" in result.output


def test_node_runs_in_the_foreground_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offchain.ipfs.node", "--repo", str(tmp_path / "repo"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"API http://127.0.0.1:{port}" in first, first
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert "IPFS node stopped" in rest
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (tmp_path / "repo" / "repo.lock").exists()
