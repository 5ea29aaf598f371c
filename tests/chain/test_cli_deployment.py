"""The Deployment record `ami deploy` writes: round trip, default path and env override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ami_node.deployment import Deployment, DeploymentError, resolve_path

GOOD = {
    "url": "ws://127.0.0.1:9944",
    "genesis_hash": "0x" + "ab" * 32,
    "nft": "5GA1EJpJDiusxtYPzoxxTQ3qVNkXnxJsHh4znQG3EtMUUVgE",
    "rewards": "5CowpiQLu6YCRD4V53o9Zm6FsYjEkQGUwrW9tiy6JU7Lw2Mv",
    "deployer": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
}


def test_round_trip_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = Deployment(**GOOD)
    path = dep.save(tmp_path / "sub" / "d.json")
    assert path.exists() and not path.with_name("d.json.tmp").exists()
    assert Deployment.load(path) == dep
    monkeypatch.delenv("AMI_DEPLOYMENT", raising=False)
    assert resolve_path() == Path(".ami/deployment.json")
    monkeypatch.setenv("AMI_DEPLOYMENT", str(path))
    assert resolve_path() == path and Deployment.load() == dep


def test_missing_and_invalid_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="run `ami deploy` first"):
        Deployment.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"url": "ws://x"}')
    with pytest.raises(DeploymentError, match="not valid: genesis_hash"):
        Deployment.load(bad)
    bad.write_text("not json")
    with pytest.raises(DeploymentError, match="re-run `ami deploy`"):
        Deployment.load(bad)
    with pytest.raises(ValueError):
        Deployment(**{**GOOD, "genesis_hash": "0x12"})
