"""The done-when scenario of the hostile-input work, shared by tests/hostile and bench/hostile.py: one creator
mints `n` hostile tracks in one block (strings that are no CIDs, directory CIDs, content nobody has), then
another creator mints one honest track; the worker runs as its own process against the devnet and a js-ipfs
node. Returns how long the honest track took from its finalized mint to its published score, the worker's
peak RSS, and every track's verdict."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
# bench/hostile.py puts only this folder on sys.path; the worker process lives in tests/.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from worker_process import WORKER_PROCESS, worker_settings  # noqa: E402


def honest_audio(seconds: float = 12.0) -> bytes:
    """A WAV the real engine accepts: a chord with a little noise (deterministic)."""
    rate = 22_050
    t = np.arange(int(seconds * rate)) / rate
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    x = x + 0.01 * np.random.default_rng(3).standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _db(path: Path) -> dict[int, tuple[str, str | None]]:
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT token_id, status, reason FROM tracks").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {int(t): (str(s), r) for t, s, r in rows}


def _readyz(port: int) -> tuple[int, list[str]]:
    """The worker's /readyz answer: (HTTP status, reasons)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())["reasons"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["reasons"]


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def _mint_all(url: str, ipfs_url: str, tmp: Path, n: int) -> dict[str, Any]:
    from ami_node.deploy import default_bundles, deploy
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from ami_node.tx import send_call
    from offchain.ipfs.cid import compute_cid
    from offchain.ipfs.client import IpfsClient

    port = SubstrateChainPort(url)
    try:
        dep = await deploy(port, load_keypair("//Alice"), url, default_bundles(), 120)
        dep.save(tmp / "deployment.json")
        from ami_node.abi import ContractAbi

        nft = ContractAbi.load("ami_nft")
        mallory = load_keypair("//Bob")
        async with IpfsClient(ipfs_url) as ipfs:
            dirs = [
                await ipfs.add(f"dir {i}".encode() * 99, verify=False, wrap_with_directory=True)
                for i in range(3)
            ]
        # In token order: strings that are no CIDs (10%), directory CIDs (20%), then content nobody has.
        cids = []
        for i in range(n):
            if i < n // 10:
                cids.append(f"not-a-cid-{i}")
            elif i < 3 * n // 10:
                cids.append(dirs[i % 3])
            else:
                cids.append(compute_cid(os.urandom(64) + i.to_bytes(4, "big")))
        calls = []
        gas = None
        for cid in cids:
            data = nft.encode_call(
                "mint", audio_cid=cid, metadata_cid=cid, royalty_splits=[(mallory.address, 10000)]
            )
            if gas is None:
                dry = await port.contract_dry_run(dep.nft, data, mallory.address)
                gas = (dry.gas_required[0] * 2, dry.gas_required[1] * 2)
            calls.append(await port.contract_call(dep.nft, data, gas))
        receipt = await send_call(port, mallory, await port.batch_all(calls), timeout_s=300)
        return {"deployment": dep, "hostile_block": receipt.block.number}
    finally:
        await port.close()


async def _mint_honest(url: str, ipfs_url: str, dep: Any, audio: bytes) -> tuple[int, float]:
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from offchain.demo import Actor, DemoChain
    from offchain.ipfs.client import IpfsClient

    async with IpfsClient(ipfs_url) as ipfs:
        cid = await ipfs.add(audio)
        meta = await ipfs.add(json.dumps({"title": "honest", "genre": "folk song"}).encode())
    port = SubstrateChainPort(url)
    try:
        chain = DemoChain(port, dep)
        carol = Actor("Charlie", load_keypair("//Charlie"))
        token = await chain.nft_tx(
            carol, "mint", audio_cid=cid, metadata_cid=meta, royalty_splits=[(carol.address, 10000)]
        )
        return int(token), time.monotonic()
    finally:
        await port.close()


def run_scenario(tmp: Path, n: int, scorer: str = "hash", timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the scenario in `tmp`; see the module docstring."""
    from ami_node.devnet.testing import running_devnet
    from offchain.ipfs.node import LocalIpfsNode, free_port

    phases: dict[str, float] = {}
    t0 = time.monotonic()
    with running_devnet() as dn, LocalIpfsNode(tmp / "ipfs") as node:
        phases["services_s"] = time.monotonic() - t0
        world = asyncio.run(_mint_all(dn.url, node.api_url, tmp, n))
        phases["deploy_and_mint_s"] = time.monotonic() - t0 - phases["services_s"]
        settings = worker_settings(
            dn.url, node.api_url, tmp, epoch_blocks=1000, http_port=free_port(), backoff_max_s=2.0
        )
        proc = subprocess.Popen(
            [sys.executable, str(WORKER_PROCESS), json.dumps(settings), scorer, "--check-oracle"],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "worker.log", "w"),  # noqa: SIM115 - closed with the process
        )
        try:
            deadline = time.monotonic() + timeout_s
            # The worker has seen every hostile mint before the honest one is minted.
            while len(_db(tmp / "worker.sqlite")) < n:
                assert proc.poll() is None, (tmp / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the worker never recorded the hostile mints"
                time.sleep(0.1)
            phases["worker_saw_mints_s"] = time.monotonic() - t0 - sum(phases.values())
            token, minted_at = asyncio.run(
                _mint_honest(dn.url, node.api_url, world["deployment"], honest_audio())
            )
            while _db(tmp / "worker.sqlite").get(token, ("",))[0] != "published":
                assert proc.poll() is None, (tmp / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    f"honest track {token}: {_db(tmp / 'worker.sqlite').get(token)}"
                )
                time.sleep(0.1)
            latency = time.monotonic() - minted_at
            tracks = _db(tmp / "worker.sqlite")  # the verdicts when the honest score was published
            ready = _readyz(settings["http_port"])
            rss = _peak_rss_mb(proc.pid)
        finally:
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            phases["worker_stop_s"] = time.monotonic() - stopping
    hostile = {t: v for t, v in tracks.items() if t != token}
    return {
        "hostile_mints": n,
        "honest_token": token,
        "honest_latency_s": round(latency, 2),
        "worker_peak_rss_mb": round(rss, 1),
        "hostile_verdicts": dict(Counter(f"{s}:{r}" if r else s for s, r in hostile.values())),
        "worker_exit": proc.returncode,
        "readyz_at_publish": ready,
        "phases": {k: round(v, 2) for k, v in phases.items()},
    }
