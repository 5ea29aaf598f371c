"""Fixtures of the worker tests: a fresh store on a temp file (the fakes are in tests/worker_fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from offchain.store import WorkerStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WorkerStore]:
    s = await WorkerStore.open(tmp_path / "worker.sqlite")
    yield s
    await s.close()
