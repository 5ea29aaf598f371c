"""Fixtures of the validator tests: a fresh in-memory AMI world per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from validator_world import World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await World.create(tmp_path)
    yield w
    await w.close()
