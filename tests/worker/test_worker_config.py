"""Worker configuration (file + env, clear errors, secrets masked) and docker/ agreeing with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledgers import minted, write_blocks
from typer.testing import CliRunner

from offchain.cli import app
from offchain.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_file_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "w.toml"
    cfg.write_text("epoch_blocks = 7\nhttp_port = 9000\n[budgets]\nlisten = 5\n")
    monkeypatch.setenv("AMI_HTTP_PORT", "9100")
    s = load_settings(cfg)
    assert (s.epoch_blocks, s.http_port, s.budgets.listen, s.budgets.create) == (7, 9100, 5, 400_000)
    assert load_settings(cfg, http_port=1).http_port == 1
    y = tmp_path / "w.yaml"
    y.write_text("caps:\n  min_listen_seconds: 45\n")
    assert load_settings(y).caps.min_listen_seconds == 45


def test_errors_name_every_bad_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMI_NODE_URL", "http://nope")
    monkeypatch.setenv("AMI_CAPS__MIN_LISTEN_SECONDS", "0")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    text = str(exc.value)
    assert "node_url (env AMI_NODE_URL): Value error, must be a websocket URL" in text
    assert "caps.min_listen_seconds (env AMI_CAPS__MIN_LISTEN_SECONDS)" in text
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch_blocks = [")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(bad)
    unknown = tmp_path / "u.toml"
    unknown.write_text("epoch_block = 3\n")
    with pytest.raises(ConfigError, match="epoch_block"):
        load_settings(unknown)


def test_the_signing_key_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
    monkeypatch.setenv("AMI_KEY", secret)
    s = load_settings()
    assert secret not in repr(s) and secret not in str(s.redacted())
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code == 0 and secret not in out.output and '"signing_key": "**********"' in out.output
    monkeypatch.setenv("AMI_EPOCH_BLOCKS", "zero")
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code == 2 and "epoch_blocks" in out.output and secret not in out.output


def test_status_reads_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from offchain.projection import BlockData

    db = tmp_path / "w.sqlite"
    asyncio.run(write_blocks(db, [BlockData(1, "0x01", [minted(0, 1)])]))
    monkeypatch.setenv("AMI_DB_PATH", str(db))
    out = CliRunner().invoke(app, ["status", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["checkpoint"] == [1, "0x01"] and data["counts"]["tracks_pending"] == 1
    monkeypatch.setenv("AMI_DB_PATH", str(tmp_path / "none.sqlite"))
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 2 and "no worker database" in out.output
