"""The worker's settings as the `ami` commands read them: a bad file or variable exits 2 saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offchain.cli.exits import exit_on
from offchain.config import ConfigError, WorkerSettings, load_settings


def worker_settings(config: Path | None, **overrides: Any) -> WorkerSettings:
    """The settings from `config` (or the defaults) and AMI_* variables, with the `overrides` that are set."""
    with exit_on(ConfigError, prefix=""):
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    raise AssertionError("unreachable")
