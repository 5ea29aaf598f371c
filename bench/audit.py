"""Benchmark of the validator: audit throughput (tracks/s rescored and checked, epochs/s resettled and
compared) against the worker's own throughput for the same work in the same run (scoring the tracks, settling
the epochs), printed as ratios.

    .venv/bin/python bench/audit.py [--tracks 40] [--epochs 10] [--listens 2000] [--scorer auto|engine|hash]

The chain is synthetic (decoded events fed straight into both sides' stores, as the follower would), so the
figures are the audit's own cost, not a node's. `--scorer engine` uses the scoring engine on rendered test
audio; `hash` uses the tests' hash stand-in (then track figures measure only the audit's overhead); `auto`
takes the engine when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scalecodec.utils.ss58 import ss58_encode

# `python bench/audit.py` puts bench/ first on sys.path, where bench/scoring.py would shadow the scoring
# package; the tests' helpers (the hash stand-in scorer) come from tests/validator.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent / "tests" / "validator"))

from validator_world import HashRescorer  # noqa: E402

from offchain.audit.auditor import AuditOptions, Auditor  # noqa: E402
from offchain.audit.db import ValidatorDb  # noqa: E402
from offchain.audit.engine import engine_rescorers  # noqa: E402
from offchain.audit.model import Status  # noqa: E402
from offchain.audit.rescore import RescoreError, Rescorer  # noqa: E402
from offchain.economics import PolicyParams, settle_epoch  # noqa: E402
from offchain.ipfs.store import MemoryContentStore  # noqa: E402
from offchain.projection import BlockData, typed_event  # noqa: E402
from offchain.store import WorkerStore  # noqa: E402
from pallets_spec.vocabulary import PayoutKind  # noqa: E402

EPOCH_BLOCKS = 100
POLICY = PolicyParams(budgets={k: 100_000 for k in PayoutKind})


def _account(i: int) -> str:
    return str(ss58_encode(hashlib.blake2b(f"acct{i}".encode(), digest_size=32).digest(), 42))


def _rescorer(kind: str) -> tuple[str, type[Any] | None]:
    if kind in ("auto", "engine"):
        try:
            r = engine_rescorers()
            return "engine", type(next(iter(r.values())))
        except RescoreError as exc:
            if kind == "engine":
                raise SystemExit(f"--scorer engine: {exc}") from None
    return "hash", HashRescorer


def _audio(i: int, engine: bool) -> bytes:
    if not engine:
        return f"track {i} ".encode() * 2000
    sr, seconds = 22_050, 20
    t = np.arange(sr * seconds) / sr
    rng = np.random.default_rng(i)
    notes = 220.0 * 2 ** (rng.integers(0, 24, size=seconds * 2) / 12)
    f = np.repeat(notes, len(t) // len(notes) + 1)[: len(t)]
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.01 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def _run(n_tracks: int, n_epochs: int, listens: int, scorer_kind: str, tmp: Path) -> dict[str, Any]:
    kind, cls = _rescorer(scorer_kind)
    assert cls is not None
    ipfs = MemoryContentStore()
    audio = [_audio(i, kind == "engine") for i in range(n_tracks)]
    cids = [await ipfs.add(a) for a in audio]
    creators = [_account(10_000 + i % 7) for i in range(n_tracks)]
    listeners = [_account(i) for i in range(max(listens // 20, 10))]
    blocks: list[BlockData] = []
    worker_store = await WorkerStore.open(tmp / "worker.sqlite")

    def add(number: int, events: list[tuple[str, dict[str, Any]]]) -> BlockData:
        b = BlockData(
            number,
            f"0x{number:064x}",
            [typed_event(k, i, f, block=number, contract="5Rewards") for i, (k, f) in enumerate(events)],
        )
        blocks.append(b)
        return b

    # The worker's side: score every track, then settle every epoch (its own throughput is the baseline).
    await worker_store.ingest(
        [
            add(
                1,
                [
                    (
                        "Minted",
                        {
                            "token_id": t + 1,
                            "creator": creators[t],
                            "audio_cid": cids[t],
                            "metadata_cid": cids[t],
                            "royalty_splits": [(creators[t], 6_000), (_account(20_000 + t), 4_000)],
                        },
                    )
                    for t in range(n_tracks)
                ],
            )
        ]
    )
    # Warm-up (imports, reference data, kernels) outside both timings. Both sides score in a worker thread,
    # as the validator does (and the worker in its process pool): on this machine torch code called from the
    # main thread measured about 4x slower than the same code in a thread.
    await asyncio.to_thread(cls().rescore, 0, audio[0], None)
    scorer: Rescorer = cls()
    t0 = time.perf_counter()
    scores = []
    for t in range(n_tracks):
        r = await asyncio.to_thread(scorer.rescore, t + 1, audio[t], None)
        if r.accepted and r.entry is not None:
            scorer.accept(t + 1, r.entry)
            scores.append(
                (
                    "ScoreSubmitted",
                    {
                        "token_id": t + 1,
                        "oracle": creators[0],
                        "novelty_bp": r.novelty_bp,
                        "quality_bp": r.quality_bp,
                        "model_version": scorer.model_version,
                        "commitment": r.commitment,
                    },
                )
            )
    worker_score_s = time.perf_counter() - t0
    await worker_store.ingest([add(2, scores)])
    worker_settle_s = 0.0
    number = 2
    for e in range(n_epochs):
        per_block = max(-(-listens // (EPOCH_BLOCKS - 10)), 1)  # listens fit in the epoch's blocks
        made = 0
        while made < listens:
            number += 1
            evs = [
                (
                    "Listened",
                    {
                        "token_id": (made + j) % n_tracks + 1,
                        "listener": listeners[(made * 7 + j * 13 + e) % len(listeners)],
                        "seconds": 30 + (made + j) % 200,
                    },
                )
                for j in range(min(per_block, listens - made))
            ]
            made += len(evs)
            await worker_store.ingest([add(number, evs)])
        number = (e + 1) * EPOCH_BLOCKS
        await worker_store.ingest([add(number, [])])
        t0 = time.perf_counter()
        inp = await worker_store.epoch_input(e, EPOCH_BLOCKS)
        settlement = settle_epoch(inp, POLICY)
        worker_settle_s += time.perf_counter() - t0
        number += 1
        await worker_store.ingest(
            [
                add(
                    number,
                    [
                        (
                            "Paid",
                            {
                                "payout_id": p.payout_id,
                                "to": p.account,
                                "amount": p.amount,
                                "kind": int(p.kind),
                                "epoch": e,
                            },
                        )
                        for p in settlement.payouts
                    ],
                )
            ]
        )
    number = (n_epochs + 1) * EPOCH_BLOCKS + 1
    blocks.append(BlockData(number, f"0x{number:064x}", []))
    await worker_store.close()

    # The validator's side: the same blocks, its own ledgers, rescoring and audits.
    db = await ValidatorDb.open(tmp / "validator.sqlite")
    ledger = await WorkerStore.open(tmp / "ledger.sqlite")
    auditor = Auditor(
        db,
        ledger,
        ipfs,
        {scorer.model_version: cls()},
        AuditOptions(epoch_blocks=EPOCH_BLOCKS, policy=POLICY),
    )
    t0 = time.perf_counter()
    for i in range(0, len(blocks), 64):
        await auditor.ingest(blocks[i : i + 64])
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await auditor.rescore_pending()
    mints = {m.token_id: m for m in await db.mints()}
    score_audits = [await auditor.audit_score(s, mints.get(s.token_id)) for s in await db.scores()]
    audit_tracks_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    epoch_audits = [await auditor.audit_epoch(e) for e in range(n_epochs)]
    audit_epochs_s = time.perf_counter() - t0
    await db.close()
    await ledger.close()
    bad = [a.subject for a in score_audits + epoch_audits if a.status != Status.MATCH]
    events = sum(len(b.events) for b in blocks)
    return {
        "scorer": kind,
        "tracks": n_tracks,
        "epochs": n_epochs,
        "listens_per_epoch": listens,
        "not_matching": bad,
        "ingest_events_per_s": round(events / ingest_s),
        "worker_tracks_per_s": round(n_tracks / worker_score_s, 2),
        "audit_tracks_per_s": round(n_tracks / audit_tracks_s, 2),
        "audit_vs_worker_tracks": round(worker_score_s / audit_tracks_s, 3),
        "worker_epochs_per_s": round(n_epochs / worker_settle_s, 2),
        "audit_epochs_per_s": round(n_epochs / audit_epochs_s, 2),
        "audit_vs_worker_epochs": round(worker_settle_s / audit_epochs_s, 3),
    }


def run(tracks: int = 40, epochs: int = 10, listens: int = 2000, scorer: str = "auto") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_run(tracks, epochs, listens, scorer, Path(tmp)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--listens", type=int, default=2000, help="listens per epoch")
    ap.add_argument("--scorer", choices=("auto", "engine", "hash"), default="auto")
    a = ap.parse_args()
    print(json.dumps(run(a.tracks, a.epochs, a.listens, a.scorer), indent=2))


if __name__ == "__main__":
    main()
