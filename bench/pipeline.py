"""Worker pipeline benchmark: listen events ingested per second (devnet blocks, encoded blocks), resident
memory after 100,000 events, settling an epoch that pays 10,000 accounts, mint-to-published-score latency.

    .venv/bin/python bench/pipeline.py [--events 100000] [--devnet-listens 5000]

Two measurements, each with a baseline from the same run:
1. devnet: listens submitted as Utility.batch_all of Contracts.call(listen) on the local devnet; then a fresh
   worker (real BlockFollower over substrate-interface, real SQLite store) catches up from block 1. Baseline:
   fetching the same blocks through the chain port without decoding or storing (the RPC floor).
2. encoded: `--events` ink! Listened events (real SCALE topics + data) in blocks of 500, decoded by
   ami_node.events.decode_block and written by a running Worker (batched transactions), as in production.
   Baseline: decoding alone (the chain layer's share). Then the process's resident memory (< 500 MB).
3. settlement: an epoch with 10,000 paid listeners: settle_epoch and outbox time, then paid on the devnet by
   the Submitter: extrinsics used vs the block-weight minimum (all distribute weight / max extrinsic weight).
4. latency: tracks rendered from the corpus, minted one by one; seconds from mint to the score published on
   chain (p50/p95; the first includes starting the scoring process).
Targets: >= 5,000 listen events/s ingested on 2 cores; < 500 MB resident after 100,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scalecodec.utils.ss58 import ss58_encode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ami_node.abi import ContractAbi  # noqa: E402
from ami_node.deploy import default_bundles, deploy  # noqa: E402
from ami_node.devnet.testing import running_devnet  # noqa: E402
from ami_node.events import decode_block  # noqa: E402
from ami_node.follower import FollowedBlock  # noqa: E402
from ami_node.keys import load_keypair  # noqa: E402
from ami_node.port import Block, BlockRef, RawEvent  # noqa: E402
from ami_node.submit_codec import AbiCodec  # noqa: E402
from ami_node.submitter import Payout, Submitter  # noqa: E402
from ami_node.substrate import SubstrateChainPort  # noqa: E402
from ami_node.tx import send_call  # noqa: E402
from offchain.config import load_settings  # noqa: E402
from offchain.daemon import assemble, run_worker  # noqa: E402
from offchain.demo import Actor, DemoChain  # noqa: E402
from offchain.economics import EpochInput, ListenRec, PolicyParams, ScoreRec, TrackInfo, settle_epoch  # noqa: E402
from offchain.ipfs.client import IpfsClient  # noqa: E402
from offchain.ipfs.node import LocalIpfsNode  # noqa: E402
from offchain.logging import configure_logging  # noqa: E402
from offchain.pipeline.adapters import ChainBlockSource, SubmitterPayoutSink, to_block_data  # noqa: E402
from offchain.pipeline.worker import Worker, WorkerOptions  # noqa: E402
from offchain.store import WorkerStore  # noqa: E402
from pallets_spec.abi import SpecAbi  # noqa: E402
from pallets_spec.vocabulary import PayoutKind  # noqa: E402
from scoring.corpus import SAMPLE_PIECES, render_piece  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encoded_blocks(n_events: int, per_block: int, contract: str) -> list[Any]:
    spec = SpecAbi("ami_nft")
    ev = spec.contract.event("Listened")
    blocks = []
    n = 0
    number = 1
    while n < n_events:
        raws = []
        for i in range(min(per_block, n_events - n)):
            fields = {
                "token_id": 1 + n % 50,
                "listener": (n % 5000).to_bytes(32, "little"),
                "seconds": 30 + n % 200,
            }
            raws.append(
                RawEvent(
                    i,
                    "Contracts",
                    "ContractEmitted",
                    {},
                    tuple(spec.event_topics(ev, fields)),
                    0,
                    contract=contract,
                    data=spec.encode_event_data(ev, fields),
                )
            )
            n += 1
        blocks.append(Block(BlockRef(number, f"0x{number:064x}"), f"0x{number - 1:064x}", (), tuple(raws)))
        number += 1
    return blocks


class EncodedSource:
    """A BlockSource that decodes pre-encoded blocks as the real follower does (events.decode_block)."""

    def __init__(self, blocks: list[Any], abis: dict[str, Any]) -> None:
        self.raw = blocks
        self.abis = abis

    async def blocks(self, start_after: tuple[int, str] | None) -> Any:
        for b in self.raw:
            if start_after and b.ref.number <= start_after[0]:
                continue
            yield to_block_data(FollowedBlock(b.ref, decode_block(b, self.abis), b))
            await asyncio.sleep(0)
        await asyncio.Event().wait()

    async def finalized_number(self) -> int:
        return len(self.raw)


def ingest_worker(store: WorkerStore, source: Any, **options: Any) -> Worker:
    """A Worker that only ingests ``source``'s blocks into ``store``: no IPFS, scorer, chain writer or payout
    sink, and an epoch that never ends."""
    return Worker(
        store,
        source,
        None,
        None,
        None,
        None,  # type: ignore[arg-type]
        WorkerOptions(epoch_blocks=10**9, scoring_workers=1, **options),
    )


async def until_block(store: WorkerStore, number: int, poll_s: float) -> None:
    """Return once ``store``'s checkpoint has reached block ``number`` (polled every ``poll_s`` seconds)."""
    while True:
        cp = await store.checkpoint()
        if cp and cp[0] >= number:
            return
        await asyncio.sleep(poll_s)


async def bench_encoded(n_events: int) -> dict[str, Any]:
    contract = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    abis = {contract: ContractAbi.load("ami_nft")}
    blocks = encoded_blocks(n_events, 500, contract)
    with tempfile.TemporaryDirectory() as tmp:
        store = await WorkerStore.open(Path(tmp) / "a.sqlite")
        worker = ingest_worker(store, EncodedSource(blocks, abis), poll_s=0.05)
        t0 = time.perf_counter()
        task = asyncio.create_task(worker.run())
        await until_block(store, len(blocks), 0.02)
        full = time.perf_counter() - t0
        rss = rss_mb()
        worker.stop()
        await asyncio.wait_for(task, 30)
        stored = (await store.counts())["listens"]
        await store.close()
        # Baseline: decoding alone, on the same blocks (the chain layer's share of the cost).
        t0 = time.perf_counter()
        for b in blocks[:40]:
            to_block_data(FollowedBlock(b.ref, decode_block(b, abis), b))
        decode_only = sum(len(b.events) for b in blocks[:40]) / (time.perf_counter() - t0)
    rate = stored / full
    return {
        "events": stored,
        "ingest_events_per_s": round(rate),
        "decode_only_events_per_s": round(decode_only),
        "ratio_vs_decode_only": round(rate / decode_only, 3),
        "target_events_per_s": 5000,
        "ratio_vs_target": round(rate / 5000, 2),
        "rss_mb_after": round(rss, 1),
        "rss_target_mb": 500,
    }


async def bench_devnet(n_listens: int, batch: int = 250) -> dict[str, Any]:
    alice, bob = load_keypair("//Alice"), load_keypair("//Bob")
    with running_devnet() as dn, tempfile.TemporaryDirectory() as tmp:
        port = SubstrateChainPort(dn.url)
        dep = await deploy(port, alice, dn.url, default_bundles(), 120)
        chain = DemoChain(port, dep)
        token = await chain.nft_tx(
            Actor("Bob", bob),
            "mint",
            audio_cid="QmBench",
            metadata_cid="QmBench",
            royalty_splits=[(bob.address, 10000)],
        )
        data = chain.nft.encode_call("listen", token_id=int(token), seconds=45)
        dry = await port.contract_dry_run(dep.nft, data, alice.address)
        gas = (dry.gas_required[0] * 2, dry.gas_required[1] * 2)
        t0 = time.perf_counter()
        done = 0
        while done < n_listens:
            k = min(batch, n_listens - done)
            one = await port.contract_call(dep.nft, data, gas)
            await send_call(port, alice, await port.batch_all([one] * k), timeout_s=120)
            done += k
        submit_s = time.perf_counter() - t0
        head = (await port.finalized_head()).number
        abis = {dep.nft: chain.nft, dep.rewards: chain.rewards}

        t0 = time.perf_counter()
        for n in range(1, head + 1):
            await port.block(n)
        fetch_s = time.perf_counter() - t0

        store = await WorkerStore.open(Path(tmp) / "w.sqlite")
        worker = ingest_worker(store, ChainBlockSource(port, abis))
        t0 = time.perf_counter()
        task = asyncio.create_task(worker.run())
        await until_block(store, head, 0.05)
        ingest_s = time.perf_counter() - t0
        listens = (await store.counts())["listens"]
        worker.stop()
        await asyncio.wait_for(task, 30)
        await store.close()
        await port.close()
    return {
        "listens": listens,
        "blocks": head,
        "submit_s": round(submit_s, 2),
        "ingest_events_per_s": round(listens / ingest_s),
        "rpc_fetch_only_events_per_s": round(listens / fetch_s),
        "ratio_vs_rpc_fetch_only": round(fetch_s / ingest_s, 3),
        "ratio_vs_target": round(listens / ingest_s / 5000, 2),
    }


def settlement_input(n_accounts: int) -> Any:
    """An epoch with `n_accounts` honest listeners over 50 scored tracks (1..3 listens each)."""
    creator = load_keypair("//Bob").address
    tracks = {t: TrackInfo(t, creator, ((creator, 10000),), (1, t)) for t in range(1, 51)}
    scores = tuple(ScoreRec(t, 3000 + t * 50, 4000 + t * 40, (2, t)) for t in tracks)
    rng = random.Random(7)
    listens = []
    for i in range(n_accounts):
        # Distinct valid SS58 addresses from seeds (deriving 10,000 sr25519 keys would dominate the run).
        who = ss58_encode(hashlib.sha256(f"listener{i}".encode()).digest(), 42)
        for k in range(rng.randint(1, 3)):
            at = (3 + i // 500, (i % 500) * 3 + k)
            listens.append(ListenRec(rng.randint(1, 50), who, rng.randint(31, 400), at))
    return EpochInput(0, 0, 10**6, tracks, scores=scores, listens=tuple(listens))


async def bench_settlement(n_accounts: int) -> dict[str, Any]:
    """Settle an epoch paying `n_accounts` listeners; pay it on the devnet through the Submitter."""
    inp = settlement_input(n_accounts)
    params = PolicyParams(
        budgets={PayoutKind.CREATE: 10**12, PayoutKind.LISTEN: 10**12, PayoutKind.ROYALTY: 10**11},
        listen_reward_per_wallet=10**10,
    )
    t0 = time.perf_counter()
    settlement = settle_epoch(inp, params)
    settle_s = time.perf_counter() - t0
    alice = load_keypair("//Alice")
    with running_devnet() as dn, tempfile.TemporaryDirectory() as tmp:
        store = await WorkerStore.open(Path(tmp) / "w.sqlite")
        t0 = time.perf_counter()
        await store.save_settlement(settlement, 0, 10**6)
        outbox_s = time.perf_counter() - t0
        rows = await store.payouts()
        port = SubstrateChainPort(dn.url)
        dep = await deploy(port, alice, dn.url, default_bundles(), 120)
        sub = Submitter(port, alice, Path(tmp) / "outbox.sqlite", rewards=dep.rewards)
        await sub.open()
        # The block-weight floor: the weight of all distribute calls over the most one extrinsic may use.
        codec = AbiCodec()
        sample = [Payout(id=r.payout_id, to=r.account, amount=r.amount, kind=int(r.kind)) for r in rows[:100]]
        dry = await port.contract_dry_run(dep.rewards, codec.encode_distribute(0, 0, sample), alice.address)
        max_ref, _ = await port.max_extrinsic_weight()
        min_txs = math.ceil(dry.gas_required[0] * len(rows) / len(sample) / max_ref)
        t0 = time.perf_counter()
        await SubmitterPayoutSink(sub).enqueue_payouts(0, rows)
        counts = await sub.drain(timeout_s=600)
        pay_s = time.perf_counter() - t0
        txs = sub.stats["txs_submitted"]
        await sub.close()
        await port.close()
        await store.close()
    return {
        "accounts": n_accounts,
        "payouts": len(rows),
        "settle_epoch_s": round(settle_s, 2),
        "outbox_write_s": round(outbox_s, 2),
        "paid_on_devnet_s": round(pay_s, 1),
        "confirmed": counts.confirmed,
        "extrinsics_used": txs,
        "extrinsics_block_weight_minimum": min_txs,
        "ratio_used_vs_minimum": round(txs / max(min_txs, 1), 2),
    }


async def bench_latency(n_tracks: int, seconds: float) -> dict[str, Any]:
    """Mint-to-published-score latency with the real scoring engine, devnet and IPFS node."""
    with tempfile.TemporaryDirectory() as tmp_s, running_devnet() as dn:
        tmp = Path(tmp_s)
        audio = []
        for piece in SAMPLE_PIECES[:n_tracks]:
            render_piece(piece.name, tmp / f"{piece.name}.wav", seconds=seconds)
            audio.append((tmp / f"{piece.name}.wav").read_bytes())
        with LocalIpfsNode(tmp / "ipfs") as node:
            port = SubstrateChainPort(dn.url)
            dep = await deploy(port, load_keypair("//Alice"), dn.url, default_bundles(), 120)
            dep.save(tmp / "deployment.json")
            chain = DemoChain(port, dep)
            bob = Actor("Bob", load_keypair("//Bob"))
            settings = load_settings(
                None,
                node_url=dn.url,
                ipfs_api_url=node.api_url,
                deployment=tmp / "deployment.json",
                signing_key="//Alice",
                db_path=tmp / "w.sqlite",
                http_port=0,
                log_level="error",
            )
            stop = asyncio.Event()
            lat = []
            async with assemble(settings) as a, IpfsClient(node.api_url) as ipfs:
                runner = asyncio.create_task(run_worker(a, settings, stop))
                for data in audio:
                    cid = await ipfs.add(data)
                    t0 = time.perf_counter()
                    tok = int(
                        await chain.nft_tx(
                            bob,
                            "mint",
                            audio_cid=cid,
                            metadata_cid=cid,
                            royalty_splits=[(bob.address, 10000)],
                        )
                    )
                    while True:
                        tr = await a.worker.store.track(tok)
                        if tr is not None and tr.status in ("published", "rejected"):
                            break
                        await asyncio.sleep(0.05)
                    lat.append(time.perf_counter() - t0)
                stop.set()
                await runner
            await port.close()
    lat.sort()
    return {
        "tracks": len(lat),
        "track_seconds": seconds,
        "latency_p50_s": round(lat[len(lat) // 2], 2),
        "latency_p95_s": round(lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))], 2),
        "first_includes_engine_start": True,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--devnet-listens", type=int, default=5_000)
    ap.add_argument("--devnet-batch", type=int, default=1_000, help="listens per extrinsic (and block)")
    ap.add_argument("--settle-accounts", type=int, default=10_000)
    ap.add_argument("--latency-tracks", type=int, default=6)
    args = ap.parse_args()
    configure_logging("error")
    out: dict[str, Any] = {}
    if args.devnet_listens > 0:
        out["devnet"] = asyncio.run(bench_devnet(args.devnet_listens, args.devnet_batch))
        print(json.dumps({"devnet": out["devnet"]}), flush=True)
    if args.events > 0:
        out["encoded"] = asyncio.run(bench_encoded(args.events))
        print(json.dumps({"encoded": out["encoded"]}), flush=True)
    if args.settle_accounts > 0:
        out["settlement"] = asyncio.run(bench_settlement(args.settle_accounts))
        print(json.dumps({"settlement": out["settlement"]}), flush=True)
    if args.latency_tracks > 0:
        out["latency"] = asyncio.run(bench_latency(args.latency_tracks, 20.0))
        print(json.dumps({"latency": out["latency"]}), flush=True)


if __name__ == "__main__":
    main()
