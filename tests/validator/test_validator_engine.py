"""The real scoring engine on both sides: a worker scoring with `scoring.engine` under 2 torch threads and a
validator rescoring with `EngineRescorer` under 1 thread agree on every score (zero findings); a duplicate is
never published; after a restart the validator's rebuilt catalogue still verifies new tracks."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
import torch
from validator_world import World, close_validator

from offchain.audit.engine import EngineRescorer, engine_track_id
from offchain.audit.model import Status
from scoring.catalog import Catalogue
from scoring.decode import SAMPLE_RATE, decode_bytes
from scoring.engine import TrackInput, score_batch
from scoring.errors import AudioError
from scoring.features import EMBEDDING_DIM
from scoring.testsignals import chord_song, two_part_song
from scoring.versions import MODEL_VERSION


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class EngineWorker:
    """The worker's scoring rule over the engine's public API: each track alone, in token order, against the
    catalogue of every earlier scored track (`token:<id>`), duplicates and derivatives not published."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.catalogue = Catalogue(EMBEDDING_DIM, 12 * 38)
        self.published: list[int] = []

    async def score(self, token: int, audio: bytes) -> None:
        try:
            canon = decode_bytes(audio)
        except AudioError:
            return
        (ps,) = score_batch([TrackInput(engine_track_id(token), canon, None)], self.catalogue,
                            device="cpu", add_to_catalogue=True)
        if ps.duplicate_of or ps.derivative_of:
            return
        await self.world.call(self.world.oracle, "rewards", "submit_score", token_id=token,
                              novelty_bp=ps.novelty_bp, quality_bp=ps.quality_bp,
                              model_version=ps.model_version, commitment=ps.commitment)
        self.published.append(token)


async def test_engine_worker_and_cpu_validator_agree(world: World, threads: None) -> None:
    tracks = {
        "c-major": _wav(chord_song(60, 120, 20)),
        "g-soft": _wav(chord_song(67, 96, 20, seed=3, drums=False)),
        "quieter-copy": _wav(0.8 * chord_song(60, 120, 20)),  # a gain-changed duplicate of the first
        "corrupt": b"corrupt, not audio" * 100,
        "two-part": _wav(two_part_song(20)),
    }
    worker = EngineWorker(world)
    torch.set_num_threads(2)
    for name, audio in tracks.items():
        await worker.score(await world.mint(f"C-{name}", audio), audio)
    assert worker.published == [1, 2, 5]

    torch.set_num_threads(1)
    v = await world.open_validator()
    v.auditor.rescorers = {MODEL_VERSION: EngineRescorer("cpu")}
    await v.sync()
    audits = {a.subject: a for a in await v.process()}
    assert {s: a.status for s, a in audits.items() if s.startswith("score:")} == {
        f"score:{t}:{MODEL_VERSION}": Status.MATCH for t in (1, 2, 5)
    }
    dup = await v.auditor.db.rescored(MODEL_VERSION, 3)
    assert dup is not None and dup.reason == "duplicate_of:token:1"
    corrupt = await v.auditor.db.rescored(MODEL_VERSION, 4)
    assert corrupt is not None and (corrupt.reason or "").startswith("undecodable")

    # Restart: the catalogue is rebuilt from the database and a new track still verifies.
    await close_validator(v, world)
    minor = ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17))
    late = (chord_song(55, 84, 10, progression=minor, seed=5), two_part_song(10, bpm=84))
    audio = _wav(np.concatenate(late))
    torch.set_num_threads(2)
    await worker.score(await world.mint("C-late", audio), audio)
    assert worker.published == [1, 2, 5, 6]
    torch.set_num_threads(1)
    again = await world.open_validator()
    again.auditor.rescorers = {MODEL_VERSION: EngineRescorer("cpu")}
    await again.sync()
    audits = {a.subject: a for a in await again.process()}
    assert audits[f"score:6:{MODEL_VERSION}"].status == Status.MATCH
    assert [a for a in audits.values() if a.findings] == []
    assert world.challenges_on_chain() == []
