"""Fixtures of the validator tests: a fresh in-memory AMI world per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from validator_world import World


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """CLI commands configure structlog onto the stream CliRunner swaps in (and closes): undo it after."""
    yield
    structlog.reset_defaults()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.create(tmp_path)
    yield w
    await w.close()
