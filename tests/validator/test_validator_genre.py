"""The declared genre end to end: the real worker (EngineTrackScorer) reads each track's metadata from IPFS
and scores with its genre by the shared rule; the validator, reading the same chain and IPFS, agrees on every
score (zero findings), including an unknown genre and malformed metadata, both scored with no genre."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scripted_worker import ScriptedWorker, run_scenario
from validator_realworker import real_worker
from validator_world import MODEL_VERSION as HASH_VERSION
from validator_world import World

from offchain.audit.engine import EngineRescorer
from offchain.audit.model import Status
from offchain.ipfs.cid import compute_cid
from offchain.ipfs.errors import IpfsUnavailable
from offchain.ipfs.metadata import TrackMetadata
from offchain.ipfs.store import MemoryContentStore
from offchain.pipeline.scoring import EngineTrackScorer
from scoring.decode import SAMPLE_RATE
from scoring.testsignals import chord_song, two_part_song
from scoring.versions import MODEL_VERSION


def _wav(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def _mint_declared(world: World, creator: str, audio: bytes, genre: str) -> int:
    kp = world.key(creator)
    meta = TrackMetadata.build(
        title=f"{creator}'s track",
        creator=kp.address,
        genre=genre,
        duration_s=8.0,
        royalty_splits=[[kp.address, 10_000]],
        licence="CC-BY-4.0",
        audio_cid=compute_cid(audio, 1),
        audio_format="wav",
    )
    audio_cid = await world.ipfs.add(audio)
    meta_cid = await world.ipfs.add(meta.to_json())
    token = await world.call(
        kp, "nft", "mint", audio_cid=audio_cid, metadata_cid=meta_cid, royalty_splits=[(kp.address, 10_000)]
    )
    return int(token)


async def test_declared_genre_worker_and_validator_agree(world: World) -> None:
    scorer = EngineTrackScorer(world.tmp / "worker-catalogue", device="cpu")
    try:
        async with real_worker(world, scorer, timeout=120) as rw:
            t1 = await _mint_declared(world, "Rag", _wav(chord_song(60, 120, 8)), "Ragtime Piano")
            t2 = await _mint_declared(world, "Vapor", _wav(chord_song(67, 96, 8, seed=3)), "vaporwave")
            t3 = await world.mint("Plain", _wav(two_part_song(8)))  # metadata that does not validate
            await rw.step()
            details = await rw.store.catalogue_scores()
            assert sorted(details) == [t1, t2, t3]
            assert details[t1]["scored_genre"] == "ragtime_piano" == details[t1]["genre"]
            assert details[t1]["declared_genre"] == "Ragtime Piano" and "genre_note" not in details[t1]
            assert details[t2]["scored_genre"] is None
            assert details[t2]["genre_note"].startswith("unknown_genre")
            assert details[t3]["scored_genre"] is None
            assert details[t3]["genre_note"].startswith("metadata_invalid")
            assert {d["versions"]["rule"] for d in details.values()} == {"ami-score-rule/2"}

            v = await world.open_validator()
            v.auditor.rescorers = {MODEL_VERSION: EngineRescorer("cpu")}
            await v.sync()
            audits = {a.subject: a for a in await v.process()}
            assert {s: a.status for s, a in audits.items() if s.startswith("score:")} == {
                f"score:{t}:{MODEL_VERSION}": Status.MATCH for t in (t1, t2, t3)
            }
            assert [a for a in audits.values() if a.findings] == []
            r1 = await v.auditor.db.rescored(MODEL_VERSION, t1)
            assert r1 is not None and r1.inputs["scored_genre"] == "ragtime_piano"
            assert world.challenges_on_chain() == []
    finally:
        await scorer.close()


class MetadataAway:
    """IPFS serving the audio but not the metadata documents until `up` is set (IpfsUnavailable)."""

    def __init__(self, inner: MemoryContentStore, audio_cids: set[str]) -> None:
        self.inner = inner
        self.audio_cids = audio_cids
        self.up = False

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        if not self.up and cid not in self.audio_cids:
            raise IpfsUnavailable("metadata node away (test switch)")
        return await self.inner.cat(cid, max_bytes=max_bytes)


async def test_metadata_unreachable_is_waited_out_not_scored_without_genre(world: World) -> None:
    """Scoring without the genre because IPFS hiccupped would accuse an honest worker: the validator waits."""
    worker = await ScriptedWorker.open(world)
    await run_scenario(world, worker)
    v = await world.open_validator()
    await v.sync()
    away = MetadataAway(world.ipfs, {m.audio_cid for m in await v.auditor.db.mints()})
    v.auditor.content = away  # type: ignore[assignment]
    audits = {a.subject: a for a in await v.process()}
    scores = {s: a for s, a in audits.items() if s.startswith("score:")}
    assert scores and {a.status for a in scores.values()} == {Status.UNVERIFIABLE}
    assert "metadata unavailable" in scores[f"score:1:{HASH_VERSION}"].reason
    away.up = True
    audits = {a.subject: a for a in await v.process()}
    assert {a.status for s, a in audits.items() if s.startswith("score:")} == {Status.MATCH}
    assert world.challenges_on_chain() == []
