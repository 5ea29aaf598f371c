"""Fixtures of the dashboard tests: a worker's database with a catalogue, a validator's folder, the served
dashboard (`ami dashboard` as a subprocess on 127.0.0.1) and a headless Chromium driven by selenium.

The data goes in through the owners' own APIs (WorkerStore.ingest/record_score/save_settlement with the real
reward policy, Catalogue.add/save, ValidatorDb.save_audit), never by writing the dashboard's queries
backwards; the tests then read the expected figures with plain sqlite3.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from ami_node.events import DomainEvent
from offchain.audit.db import ValidatorDb
from offchain.audit.model import Finding, FindingKind, Status, SubjectAudit
from offchain.economics import PolicyParams, settle_epoch
from offchain.projection import BlockData, typed_event
from offchain.store import WorkerStore
from pallets_spec.vocabulary import PayoutKind
from scoring.catalog import Catalogue

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
E = 10  # blocks per epoch
DIM = 8

CREATORS = [f"5Creator{i}{'x' * 38}" for i in range(1, 5)]
HONEST = [f"5Listener{i}{'y' * 37}" for i in range(1, 4)]
FARM = [f"5Farm{i}{'z' * 41}" for i in range(1, 6)]
CURATOR = "5Curator" + "c" * 39
ORACLE = "5Oracle" + "o" * 40

# token -> (mint block, creator index, co-author index or None, genre, status)
TRACKS = {
    1: (1, 0, 1, "bach_chorale", "scored"),
    2: (2, 1, None, "folk_song", "scored"),
    3: (3, 2, None, "ragtime_piano", "scored"),
    4: (4, 3, 0, "string_quartet", "scored"),
    5: (5, 3, None, "bach_chorale", "duplicate"),
    6: (12, 0, None, "synthwave", "scored"),
    7: (13, 1, None, "synthwave", "scored"),
    8: (14, 2, None, None, "undecodable"),
}


def _cid(tok: int, what: str) -> str:
    return f"bafy{what}{tok:04d}" + "a" * 40


def bp(tok: int) -> tuple[int, int]:
    """(novelty, quality) in basis points of a scored token."""
    return 9000 - 700 * tok, 6000 + 450 * tok


def score_details(tok: int) -> dict[str, Any]:
    """Score details as the scoring stage stores them, plus component names the scoring rework may add."""
    rng = np.random.default_rng(tok)
    return {
        "pcm_sha256": f"{tok:064x}",
        "versions": {"model": "1", "rule": "ami-score-rule/2"},
        "genre": TRACKS[tok][3],
        "genre_z": round(float(rng.uniform(0, 2)), 4),
        "typicality": round(float(rng.uniform(0, 1)), 4),
        "originality": round(float(rng.uniform(0, 1)), 4),
        "harmonic_surprise": round(0.1 * tok, 4),  # a component name the dashboard was never told about
        "quality_parts": {"loudness_fit": round(1 - 0.05 * tok, 4), "clipping": 0.0},
        "matches": {"token:1": {"fp": 0.5, "emb": 0.77}} if tok != 1 else {},
        "declared_genre": TRACKS[tok][3],
        "scored_genre": TRACKS[tok][3],
    }


def embeddings() -> tuple[list[int], np.ndarray]:
    """Catalogue rows: tokens 1-5 (classical, epoch 0) around one axis, 6-7 (synthwave, epoch 1) another."""
    rng = np.random.default_rng(42)
    toks = [1, 2, 3, 4, 5, 6, 7]
    rows = []
    for t in toks:
        base = np.zeros(DIM)
        base[0 if t <= 5 else 1] = 1.0
        rows.append(base + 0.05 * rng.standard_normal(DIM))
    return toks, np.array(rows)


def _chain_events(score: bool) -> dict[int, list[DomainEvent]]:
    """The contract events of the story, by block: mints, published scores (when `score`), listens of an
    honest crowd and of a farm, a tag and a challenge."""
    blocks: dict[int, list[DomainEvent]] = {}

    def ev(block: int, kind: str, **fields: Any) -> None:
        evs = blocks.setdefault(block, [])
        evs.append(typed_event(kind, len(evs), fields))

    for tok, (blk, c, co, _g, _s) in TRACKS.items():
        splits = [(CREATORS[c], 10000)] if co is None else [(CREATORS[c], 7000), (CREATORS[co], 3000)]
        ev(
            blk,
            "Minted",
            token_id=tok,
            creator=CREATORS[c],
            audio_cid=_cid(tok, "audio"),
            metadata_cid=_cid(tok, "meta"),
            royalty_splits=splits,
        )
    for tok, (blk, *_rest, status) in TRACKS.items():
        if score and status == "scored" and tok != 7:  # token 7's score is still waiting to be published
            n, q = bp(tok)
            ev(
                blk + 1,
                "ScoreSubmitted",
                token_id=tok,
                novelty_bp=n,
                quality_bp=q,
                model_version=1,
                oracle=ORACLE,
                commitment="0x" + f"{tok:02x}" * 32,
            )
    # Epoch 0: honest listens and a farm of identical wallets; epoch 1: listens to the new tracks.
    for i, who in enumerate(HONEST):
        ev(6, "Listened", token_id=1 + i, listener=who, seconds=90 + 10 * i)
    for who in FARM:
        ev(7, "Listened", token_id=3, listener=who, seconds=31)
    ev(8, "Tagged", token_id=2, curator=CURATOR, tag="folk-revival")
    for i, who in enumerate(HONEST):
        ev(15 + i, "Listened", token_id=6 + i % 2, listener=who, seconds=120)
        ev(15 + i, "Listened", token_id=2, listener=who, seconds=60)
    ev(25, "Challenged", challenge_id=0, token_id=2, validator=ORACLE, evidence="0x" + "ee" * 32)
    return blocks


async def _record_verdict(store: WorkerStore, tok: int) -> None:
    """What the worker records for a minted track: its score (submitted), or its rejection."""
    status = TRACKS[tok][4]
    if status == "scored":
        await store.record_score(tok, *bp(tok), 1, bytes([tok]) * 32, score_details(tok))
        await store.mark_score_submitted(tok)
    elif status == "duplicate":
        await store.record_rejection(tok, "duplicate", "duplicate of token:1")
    else:
        await store.record_rejection(tok, "undecodable", "CorruptAudio: truncated WAV")


async def _build_worker(folder: Path, score: bool = True) -> Path:
    path = folder / "worker.sqlite"
    store = await WorkerStore.open(path)
    try:
        # Block by block, as the worker does: a minted track is scored (or rejected) before the next block,
        # whose ScoreSubmitted event then marks it published.
        for b, evs in sorted(_chain_events(score).items()):
            await store.ingest([BlockData(b, f"0x{b:064x}", tuple(evs))])
            for e in evs:
                if e.label == "Minted" and score:
                    await _record_verdict(store, int(e.token_id))
        budgets = {
            PayoutKind.CREATE: 400_000,
            PayoutKind.LISTEN: 300_000,
            PayoutKind.DISCOVERY: 100_000,
            PayoutKind.ENGAGEMENT: 100_000,
            PayoutKind.ROYALTY: 100_000,
        }
        params = PolicyParams(budgets=budgets, listen_reward_per_wallet=60_000)
        if score:
            for epoch in (0, 1):
                s = settle_epoch(await store.epoch_input(epoch, E), params)
                await store.save_settlement(s, epoch * E, (epoch + 1) * E - 1)
            # Epoch 0's payouts are confirmed on chain (Paid events in block 26), epoch 1's are not yet.
            paid = [
                typed_event(
                    "Paid",
                    i,
                    {
                        "payout_id": "0x" + p.payout_id.hex(),
                        "to": p.account,
                        "amount": p.amount,
                        "kind": int(p.kind),
                        "epoch": p.epoch,
                    },
                )
                for i, p in enumerate(await store.payouts(epoch=0))
            ]
            await store.ingest([BlockData(26, "0x" + "26" * 32, tuple(paid))])
    finally:
        await store.close()
    return path


def _build_catalogue(folder: Path) -> None:
    toks, rows = embeddings()
    cat = Catalogue(DIM, 0)
    cat.add(
        [f"token:{t}" for t in toks],
        rows,
        labels=[TRACKS[t][3] for t in toks],
        pcm_sha256=[f"{t:064x}" for t in toks],
    )
    cat.save(folder / "catalogue")


async def _build_validator(folder: Path) -> Path:
    vdir = folder / "validator"
    vdir.mkdir()
    await _build_worker_into(vdir / "ledger.sqlite")
    db = await ValidatorDb.open(vdir / "validator.sqlite")
    try:
        await db.save_audit(
            SubjectAudit(subject="score:1:1", kind="score", status=Status.MATCH, token_id=1), 30
        )
        mismatch = SubjectAudit(
            subject="score:2:1",
            kind="score",
            status=Status.MISMATCH,
            token_id=2,
            findings=[
                Finding(
                    kind=FindingKind.SCORE_MISMATCH,
                    subject="score:2:1",
                    detail="novelty differs from the recomputation of token:2",
                    expected={"novelty_bp": 7500},
                    published={"novelty_bp": 7600},
                )
            ],
            evidence={"token_id": 2, "expected": {"novelty_bp": 7500}, "published": {"novelty_bp": 7600}},
        ).seal()
        await db.save_audit(mismatch, 30)
        await db.save_audit(
            SubjectAudit(
                subject="epoch:1",
                kind="epoch",
                status=Status.PENDING,
                token_id=(1 << 63) | 1,
                reason="epoch ends at block 19; grace period not over",
            ),
            30,
        )
        await db.record_challenge_intent("score:2:1", 2, str(mismatch.evidence_commitment), "bafyevidence")
        await db.mark_challenge("score:2:1", "sent", tx_hash="0xabc", block=25)
    finally:
        await db.close()
    return vdir


async def _build_worker_into(path: Path) -> None:
    tmp = path.parent / "ledger-build"
    tmp.mkdir()
    built = await _build_worker(tmp, score=False)
    shutil.move(built, path)
    for extra in tmp.iterdir():
        extra.unlink()
    tmp.rmdir()


@dataclass
class Served:
    url: str
    db: Path
    proc: subprocess.Popen[str]

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Expected figures, read with plain sqlite3 (independent of the dashboard's queries)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql, args).fetchall())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard-data")
    asyncio.run(_build_worker(folder))
    _build_catalogue(folder)
    asyncio.run(_build_validator(folder))
    return folder


def serve(*args: str) -> subprocess.Popen[str]:
    """`ami dashboard ARGS --port 0` on 127.0.0.1; returns once it printed its address (first line)."""
    ami = str(Path(sys.executable).with_name("ami"))
    proc = subprocess.Popen(
        [ami, "dashboard", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return proc


def address(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("dashboard: "):
        proc.kill()
        _out, err = proc.communicate(timeout=10)
        raise AssertionError(f"ami dashboard did not start: {line!r} {err}")
    return line.split(" ", 1)[1].strip().rstrip("/")


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> None:
    """Interrupt as Ctrl-C does and wait for the exit (killed only when it does not come)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def served(data_dir: Path) -> Iterator[Served]:
    """The dashboard over the worker's database, with the validator's findings attached."""
    proc = serve("--db", str(data_dir / "worker.sqlite"), "--validator", str(data_dir / "validator"))
    try:
        yield Served(address(proc), data_dir / "worker.sqlite", proc)
    finally:
        stop(proc)


def chromium(width: int) -> webdriver.Chrome:
    """Debian's headless Chromium through its chromedriver (scripts/setup.sh installs both)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium or chromedriver is missing: run ./scripts/setup.sh as root")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={width},900")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


class Browser:
    """A Chromium window of one width: open a page, wait for its figures, collect console errors."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.driver = chromium(width)
        # Headless Chromium will not make a window narrower than 500 px: a phone's width is emulated instead
        # (the tests check window.innerWidth, so a page really lays out at this width).
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
        )

    def open(self, url: str) -> webdriver.Chrome:
        self.driver.get(url)
        WebDriverWait(self.driver, 20).until(
            lambda d: d.execute_script(
                "return document.readyState === 'complete' &&"
                " [...document.querySelectorAll('.figure')].every(f => f.dataset.drawn)"
            )
        )
        return self.driver

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def text(self, css: str) -> str:
        return str(self.driver.find_element("css selector", css).text)

    def texts(self, css: str) -> list[str]:
        return [str(e.text) for e in self.driver.find_elements("css selector", css)]


@pytest.fixture(scope="session", params=[1280, 390], ids=["1280px", "390px"])
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    b = Browser(request.param)
    try:
        yield b
    finally:
        b.driver.quit()


@pytest.fixture(scope="session")
def wide() -> Iterator[Browser]:
    b = Browser(1280)
    try:
        yield b
    finally:
        b.driver.quit()


def number(text: str) -> int:
    """An integer as the dashboard prints it (thousands separated by commas)."""
    return int(text.replace(",", "").strip())
