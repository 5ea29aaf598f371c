"""The shared scoring rule (offchain/scoring_rule.py): the declared genre is normalised against the shipped
reference (unknown or unreadable -> None, and why), the worker reads it from the metadata on IPFS, and the
worker's scoring stage and the validator's rescorer both run the one `apply_rule`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from worker_fakes import FakeChain, FakeIpfs, track_metadata, wav_bytes

from ami_node.events import DomainEvent
from offchain import scoring_rule
from offchain.pipeline.ports import ScoreOutcome, StorageUnavailable
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.projection import BlockData, typed_event
from offchain.scoring_rule import DeclaredGenre, apply_rule, declared_genre, normalise_genre
from offchain.store import WorkerStore
from scoring.engine import new_catalogue
from scoring.novelty import load_reference
from scoring.testsignals import chord_song


@pytest.fixture(scope="module")
def song() -> bytes:
    return wav_bytes(chord_song(60, 120, 8))


def test_normalise_genre_against_the_shipped_reference() -> None:
    ref = load_reference()
    assert normalise_genre(DeclaredGenre("Bach Chorale"), ref) == ("bach_chorale", None)
    assert normalise_genre(DeclaredGenre(" folk-song "), ref) == ("folk_song", None)
    genre, note = normalise_genre(DeclaredGenre("vaporwave"), ref)
    assert genre is None and note is not None and note.startswith("unknown_genre") and "vaporwave" in note
    assert normalise_genre(DeclaredGenre(None), ref) == (None, "no_genre_declared")
    assert normalise_genre(scoring_rule.no_metadata("not_found", "gone"), ref) == (
        None,
        "metadata_not_found: gone",
    )


def test_declared_genre_from_metadata_bytes(song: bytes) -> None:
    assert declared_genre(track_metadata(song, "Ragtime piano")) == DeclaredGenre("Ragtime piano")
    bad = declared_genre(b'{"title": "t"}')
    assert bad.value is None and bad.note is not None and bad.note.startswith("metadata_invalid")
    assert declared_genre(b"\xff\xfe not json").value is None


def test_declared_known_genre_is_used_and_unknown_falls_back(song: bytes) -> None:
    ref = load_reference()
    known = apply_rule(new_catalogue(), 1, song, DeclaredGenre("Ragtime piano"), "cpu", ref)
    unknown = apply_rule(new_catalogue(), 1, song, DeclaredGenre("vaporwave"), "cpu", ref)
    none = apply_rule(new_catalogue(), 1, song, None, "cpu", ref)
    assert known.publishable and known.score is not None and unknown.score is not None and none.score
    assert known.details["scored_genre"] == "ragtime_piano" == known.score.details["genre"]
    assert unknown.details["scored_genre"] is None
    assert unknown.details["genre_note"].startswith("unknown_genre")
    # With no genre the engine reports the nearest style (not ragtime for this chorale-like song); a declared
    # genre, known or not, is reported but never changes the score (model 2: declaring cannot cost a creator).
    assert none.score.details["genre"] != "ragtime_piano"
    assert unknown.score.commitment == none.score.commitment == known.score.commitment
    assert known.score.novelty_bp == none.score.novelty_bp == unknown.score.novelty_bp
    assert known.details["rule"] == scoring_rule.RULE_VERSION


def test_worker_and_validator_run_the_same_rule(
    song: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offchain.audit.engine import EngineRescorer
    from offchain.pipeline import scoring as stage

    calls: list[tuple[int, Any]] = []
    real = scoring_rule.apply_rule

    def spy(cat: Any, token_id: int, audio: bytes, declared: Any, *a: Any, **k: Any) -> Any:
        calls.append((token_id, declared))
        return real(cat, token_id, audio, declared, *a, **k)

    monkeypatch.setattr(scoring_rule, "apply_rule", spy)
    monkeypatch.setattr(scoring_rule, "RULE_VERSION", "test-rule/99")
    declared = DeclaredGenre("Folk song")
    stage._init(str(tmp_path / "catalogue"), "cpu")
    try:
        status, value = stage.score_in_process(7, song, declared)
    finally:
        stage._STATE.clear()
    validator = EngineRescorer("cpu").rescore(7, song, declared)
    assert calls == [(7, declared), (7, declared)]
    assert status == "scored"
    novelty, quality, _, commitment, details = value
    assert details["versions"]["rule"] == "test-rule/99" == validator.inputs["versions"]["rule"]
    assert details["scored_genre"] == "folk_song" == validator.inputs["scored_genre"]
    assert (novelty, quality, commitment) == (
        validator.novelty_bp,
        validator.quality_bp,
        validator.commitment,
    )


class RecordingScorer:
    def __init__(self) -> None:
        self.declared: dict[int, DeclaredGenre | None] = {}

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        self.declared[token_id] = declared
        return ScoreOutcome(5000, 6000, 1, bytes(32))


def _mint(token: int, audio_cid: str, metadata_cid: str) -> DomainEvent:
    fields = {
        "token_id": token,
        "creator": "C",
        "audio_cid": audio_cid,
        "metadata_cid": metadata_cid,
        "royalty_splits": [("C", 10000)],
    }
    return typed_event("Minted", token, fields, contract="5Contract")


async def test_worker_passes_the_metadata_genre_and_survives_bad_metadata(store: WorkerStore) -> None:
    audio = b"RIFF-audio" * 4
    meta = track_metadata(audio, "Madrigal")
    ipfs = FakeIpfs({"QmAudio": audio, "QmMeta": meta, "QmJunk": b'{"title": 1}'})
    scorer = RecordingScorer()
    chain = FakeChain()
    opts = WorkerOptions(backoff_initial_s=0.01, backoff_max_s=0.02, poll_s=0.02)
    worker = Worker(store, chain, ipfs, scorer, chain, chain, opts)
    await store.ingest([BlockData(1, "0x01", [_mint(1, "QmAudio", "QmMeta"), _mint(2, "QmAudio", "QmJunk")])])
    await store.ingest(
        [BlockData(2, "0x02", [_mint(3, "QmAudio", "QmMissing"), _mint(4, "QmAudio", "nope")])]
    )
    assert [await worker.score_one(t) for t in (1, 2, 3, 4)] == ["scored"] * 4
    assert scorer.declared[1] == DeclaredGenre("Madrigal")
    notes = {t: scorer.declared[t] for t in (2, 3, 4)}
    assert all(d is not None and d.value is None for d in notes.values())
    assert str(notes[2].note).startswith("metadata_invalid")
    assert str(notes[3].note).startswith("metadata_not_found")
    assert str(notes[4].note).startswith("metadata_bad_cid")


async def test_worker_waits_out_ipfs_down_for_the_metadata(store: WorkerStore) -> None:
    """An unreachable node must not make the worker score without the genre (the validator would not)."""
    audio = b"RIFF-audio" * 4
    ipfs = FakeIpfs({"QmAudio": audio, "QmMeta": track_metadata(audio, "Madrigal")})
    real_fetch = ipfs.fetch
    down_for = {"QmMeta": 3}

    async def flaky(cid: str, max_bytes: int) -> bytes:
        if down_for.get(cid, 0) > 0:
            down_for[cid] -= 1
            raise StorageUnavailable("node restarting")
        return await real_fetch(cid, max_bytes)

    ipfs.fetch = flaky  # type: ignore[method-assign]
    scorer = RecordingScorer()
    chain = FakeChain()
    opts = WorkerOptions(backoff_initial_s=0.01, backoff_max_s=0.02, poll_s=0.02)
    worker = Worker(store, chain, ipfs, scorer, chain, chain, opts)
    await store.ingest([BlockData(1, "0x01", [_mint(1, "QmAudio", "QmMeta")])])
    assert await worker.score_one(1) == "scored"
    assert scorer.declared[1] == DeclaredGenre("Madrigal") and down_for["QmMeta"] == 0


def test_missing_genre_reference_is_a_node_fault_not_a_track_verdict(
    song: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged install must not reject tracks: the rule raises, the validator calls it unverifiable."""
    import scoring.novelty
    from offchain.audit.engine import EngineRescorer
    from offchain.audit.rescore import RescoreError

    def broken(path: str | None = None) -> Any:
        raise scoring.novelty.GenreError("genre reference not found (test)")

    monkeypatch.setattr(scoring.novelty, "load_reference", broken)
    with pytest.raises(scoring.novelty.GenreError):
        apply_rule(new_catalogue(), 1, song, "Madrigal")
    rescorer = EngineRescorer("cpu")
    with pytest.raises(RescoreError, match="cannot run"):
        rescorer.rescore(1, song, "Madrigal")
    assert len(rescorer.catalogue) == 0


def test_crash_replay_scores_against_the_prefix_it_first_saw(song: bytes) -> None:
    """Saved to the catalogue but not recorded (a crash): scoring it again gives the very same score."""
    ref = load_reference()
    other = wav_bytes(chord_song(67, 96, 8, seed=3, drums=False))
    cat = new_catalogue()
    first = apply_rule(cat, 1, song, "Bach chorale", "cpu", ref)
    second = apply_rule(cat, 2, other, None, "cpu", ref)
    assert first.added and second.added and len(cat) == 2
    again = apply_rule(cat, 1, song, "Bach chorale", "cpu", ref)
    assert not again.added and len(cat) == 2 and again.position == 0
    assert again.score is not None and first.score is not None and second.score is not None
    assert again.score.commitment == first.score.commitment
    assert again.score.catalogue_root == first.score.catalogue_root != second.score.catalogue_root
