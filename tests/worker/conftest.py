"""Fixtures of the worker tests: a fresh store on a temp file and the in-memory fakes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from offchain.store import WorkerStore  # noqa: E402


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WorkerStore]:
    s = await WorkerStore.open(tmp_path / "worker.sqlite")
    yield s
    await s.close()
