"""Shared fixtures of the probe tests: one probe cache per session, and a few tiny renders made once."""

from __future__ import annotations

import pytest

from scoring import probes as P

# A short Essen folk song: the cheapest corpus piece to render (a few seconds of score).
FOLK = "essen_altdeu10_1"


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> P.ProbeCache:
    """A probe cache in a fresh temporary folder."""
    return P.ProbeCache(tmp_path_factory.mktemp("probes"))


@pytest.fixture(scope="session")
def derivative_set(cache: P.ProbeCache) -> tuple[P.Probe, list[P.Probe]]:
    """The folk song as a 24 s source and its quick derivative variants."""
    return P.derivative_probes(FOLK, seconds=24.0, cache=cache)
