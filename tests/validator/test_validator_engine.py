"""The real scoring engine on both sides: the real worker pipeline with its EngineTrackScorer (scoring.engine
in a spawned process, default torch threads) and the validator's EngineRescorer under 1 torch thread agree on
every score (zero findings); the duplicate and the corrupt file are never published; after a restart the
validator's rebuilt catalogue still verifies a new track. With a lent GPU, the same with the worker on CUDA
(`ami run --device cuda`) and the validator on the CPU (issue 10's done-when)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
import torch
from validator_realworker import real_worker
from validator_world import World, close_validator

from offchain.audit.engine import EngineRescorer
from offchain.audit.model import Status
from offchain.pipeline.scoring import EngineTrackScorer
from scoring.decode import SAMPLE_RATE
from scoring.testsignals import varied_music
from scoring.versions import MODEL_VERSION


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "worker_device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
        ),
    ],
)
async def test_engine_worker_and_cpu_validator_agree(
    world: World, one_thread: None, worker_device: str
) -> None:
    # Musically distinct pieces (a progression, a melody over a bass, a pad; later a minor progression), so
    # that only the quieter copy is a duplicate whatever the derivative gate's thresholds.
    pieces = varied_music(8, 20.0, seed=11)
    tracks = {
        "progression": _wav(pieces[0]),
        "melody": _wav(pieces[2]),
        "quieter-copy": _wav(0.8 * pieces[0]),  # a gain-changed duplicate of the first
        "corrupt": b"corrupt, not audio" * 100,
        "pad": _wav(pieces[5]),
    }
    late = _wav(pieces[1])
    scorer = EngineTrackScorer(world.tmp / "worker-catalogue", device=worker_device)
    try:
        async with real_worker(world, scorer, timeout=120) as rw:
            for name, audio in tracks.items():
                await world.mint(f"C-{name}", audio)
            await rw.step()
            rejected = {t.token_id: t.reason for t in await rw.store.tracks(status="rejected")}
            assert rejected == {3: "duplicate", 4: "undecodable"}

            v = await world.open_validator()
            v.auditor.rescorers = {MODEL_VERSION: EngineRescorer("cpu")}
            await v.sync()
            audits = {a.subject: a for a in await v.process()}
            assert {s: a.status for s, a in audits.items() if s.startswith("score:")} == {
                f"score:{t}:{MODEL_VERSION}": Status.MATCH for t in (1, 2, 5)
            }
            dup = await v.auditor.db.rescored(MODEL_VERSION, 3)
            assert dup is not None and dup.reason == "duplicate_of:token:1"

            # Restart: the validator's catalogue is rebuilt from its database; a new track still verifies.
            await close_validator(v, world)
            await world.mint("C-late", late)
            await rw.step()
            again = await world.open_validator()
            again.auditor.rescorers = {MODEL_VERSION: EngineRescorer("cpu")}
            await again.sync()
            audits = {a.subject: a for a in await again.process()}
            assert audits[f"score:6:{MODEL_VERSION}"].status == Status.MATCH
            assert [a for a in audits.values() if a.findings] == []
            assert world.challenges_on_chain() == []
    finally:
        await scorer.close()


def test_entries_of_an_older_gate_are_refused_with_what_to_do() -> None:
    # a rescored catalogue entry as model 3 stored it: 12 pitch classes a step, no registers
    from offchain.audit.engine import _pack
    from offchain.audit.rescore import RescoreError

    rng = np.random.default_rng(3)
    steps12 = rng.random((40, 12))
    r = EngineRescorer("cpu")
    emb, c2d = rng.random(r.catalogue.dim), rng.random(r.catalogue.c2d_dim)
    entry = _pack(emb / np.linalg.norm(emb), c2d, np.arange(5), "ab" * 32, np.hstack([steps12, steps12]))
    r.restore([(1, entry)])  # the current width round-trips
    assert r.catalogue.steps(0).shape == (40, 24)
    old = io.BytesIO()
    with np.load(io.BytesIO(entry)) as z:
        np.savez(old, **{k: (z[k][:, :12] if k == "steps" else z[k]) for k in z.files})
    with pytest.raises(RescoreError, match="rescore from scratch"):
        r.restore([(1, old.getvalue())])
