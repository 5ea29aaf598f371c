"""`ami demo`: the whole platform on one machine, end to end, in a few minutes.

Starts the local devnet (ami_node.devnet) and a js-ipfs node, deploys the two contracts, renders real
compositions (music21 corpus through FluidSynth, scoring/corpus.py) and mints them (plus a near-copy of one
and a corrupt file), simulates honest listeners, a curator and a sybil farm over three epochs while the worker
runs, waits until every payout is confirmed on chain, and prints per track its scores and per account what
it was paid and why. Everything runs on loopback and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import socket
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import structlog
from rich.console import Console
from rich.table import Table

from ami_node.deploy import default_bundles, deploy
from ami_node.devnet.testing import running_devnet
from ami_node.keys import load_keypair
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import contract_tx, send_call
from offchain.chain_actions import Contracts, read_contract
from offchain.config import load_settings
from offchain.daemon import assemble, run_worker
from offchain.ipfs.client import IpfsClient
from offchain.ipfs.metadata import store_track
from offchain.ipfs.node import LocalIpfsNode
from offchain.logging import configure_logging
from pallets_spec.vocabulary import PAYOUT_KIND_LABELS
from scoring.corpus import RenderError, render_piece

log = structlog.get_logger("ami.demo")

# (corpus piece, creator, co-author with a 30 % royalty share or None)
DEMO_PIECES: tuple[tuple[str, str, str | None], ...] = (
    ("bach_bwv66_6", "//Bob", "//Charlie"),
    ("folk_altdeu10_1", "//Charlie", None),
    ("joplin_maple_leaf", "//Dave", None),
    ("haydn_op74no1_m1", "//Eve", "//Bob"),
)
# The genre each demo piece's creator declares (normalised by the scoring rule to the reference's names).
DEMO_GENRES = {
    "bach_bwv66_6": "Bach chorale",
    "folk_altdeu10_1": "Folk song",
    "joplin_maple_leaf": "Ragtime piano",
    "haydn_op74no1_m1": "String quartet",
}
HONEST = ("//Ann", "//Ben", "//Cat", "//Dan")
# What the honest listeners play in each epoch: (listener, piece, seconds).
EPOCH_LISTENS: tuple[tuple[tuple[str, str, int], ...], ...] = (
    # Epoch 0: early listeners find the Bach chorale and the folk song.
    (("//Ann", "bach_bwv66_6", 120), ("//Ben", "bach_bwv66_6", 95), ("//Ann", "folk_altdeu10_1", 60)),
    # Epoch 1: more listening; a too-short listen earns nothing.
    (
        ("//Ann", "bach_bwv66_6", 130),
        ("//Cat", "haydn_op74no1_m1", 80),
        ("//Dan", "bach_bwv66_6", 40),
        ("//Ben", "haydn_op74no1_m1", 10),
    ),
    # Epoch 2: the folk song catches on (discovery for its early listener, engagement for the curator).
    (
        ("//Ben", "folk_altdeu10_1", 70),
        ("//Cat", "folk_altdeu10_1", 65),
        ("//Dan", "folk_altdeu10_1", 90),
        ("//Ann", "haydn_op74no1_m1", 45),
        ("//Dan", "haydn_op74no1_m1", 50),
    ),
)
CURATOR = "//Kim"
FARM = tuple(f"//Farm{i}" for i in range(1, 9))
FUNDER = "//Ferdie"
WORKER_KEY = "//Alice"


# Where progress and tables go: stdout, or stderr when the caller prints JSON on stdout (`ami demo --json`).
_OUT: dict[str, bool] = {"stderr": False}


def _say(*parts: Any, **kw: Any) -> None:
    print(*parts, file=sys.stderr if _OUT["stderr"] else sys.stdout, flush=True)


class DemoError(Exception):
    """The demo could not run (a missing system package, a service that did not start); says what to do."""


@dataclass
class Actor:
    label: str
    keypair: Any

    @property
    def address(self) -> str:
        return str(self.keypair.address)


class DemoChain:
    """Contract calls as the demo's users, through the same chain port and use cases the CLI uses."""

    def __init__(self, port: Any, deployment: Any) -> None:
        self.port = port
        self.dep = deployment
        self.contracts = Contracts.of(deployment)
        self.nft = self.contracts.nft
        self.rewards = self.contracts.rewards

    async def nft_tx(self, who: Actor, message: str, **args: Any) -> Any:
        res = await contract_tx(self.port, who.keypair, self.nft, self.dep.nft, message, args, timeout_s=120)
        return res.value

    async def query(self, contract: str, message: str, origin: Actor, **args: Any) -> Any:
        return await read_contract(self.port, self.contracts, contract, message, args, origin.address)

    async def fund(self, funder: Actor, actors: list[Actor], amount: int) -> None:
        calls = [
            await self.port.compose_call(
                "Balances", "transfer_keep_alive", {"dest": a.address, "value": amount}
            )
            for a in actors
        ]
        await send_call(self.port, funder.keypair, await self.port.batch_all(calls), timeout_s=120)


def _render_tracks(folder: Path, seconds: float) -> list[tuple[str, bytes]]:
    """(piece name, WAV bytes) for the demo pieces, a gain-changed copy of the first, and a corrupt file."""
    out: list[tuple[str, bytes]] = []
    for name, _creator, _co in DEMO_PIECES:
        path = folder / f"{name}.wav"
        if not path.exists():
            try:
                render_piece(name, path, seconds=seconds)
            except RenderError as exc:
                raise DemoError(f"cannot render {name}: {exc} (run ./scripts/setup.sh)") from exc
        out.append((name, path.read_bytes()))
    # A near-copy: the first track 2 dB quieter, re-encoded (other bytes, so another CID; same music).
    data, rate = sf.read(io.BytesIO(out[0][1]), dtype="float64")
    buf = io.BytesIO()
    sf.write(buf, np.clip(data * 10 ** (-2 / 20), -1, 1), rate, format="WAV", subtype="PCM_16")
    out.append((f"{out[0][0]}_copy", buf.getvalue()))
    # A corrupt upload: a WAV header promising far more data than the file holds.
    out.append(("corrupt_upload", out[1][1][:4096]))
    return out


async def _until(what: str, cond: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def _demo(workdir: Path, epoch_blocks: int, track_seconds: float, serve: bool = False) -> dict:
    actor = {
        uri: Actor(uri.strip("/"), load_keypair(uri))
        for uri in (
            WORKER_KEY,
            FUNDER,
            CURATOR,
            *HONEST,
            *FARM,
            *{c for _, c, _ in DEMO_PIECES},
            *{c for _, _, c in DEMO_PIECES if c},
        )
    }
    labels = {a.address: a.label for a in actor.values()}

    _say("rendering sample tracks (music21 corpus -> FluidSynth)...", flush=True)
    tracks = await asyncio.to_thread(_render_tracks, workdir / "audio", track_seconds)

    with contextlib.ExitStack() as stack:
        _say("starting the devnet and the IPFS node...", flush=True)
        dn = stack.enter_context(running_devnet())
        try:
            node = await asyncio.to_thread(LocalIpfsNode(workdir / "ipfs").start)
        except Exception as exc:
            raise DemoError(f"the local IPFS node did not start: {exc} (run ./scripts/setup.sh)") from exc
        stack.callback(node.stop)

        port = SubstrateChainPort(dn.url)
        try:
            deployment = await deploy(port, actor[WORKER_KEY].keypair, dn.url, default_bundles(), 120)
            dep_path = workdir / "deployment.json"
            deployment.save(dep_path)
            chain = DemoChain(port, deployment)
            await chain.fund(actor[FUNDER], [actor[u] for u in (CURATOR, *HONEST, *FARM)], 10**15)

            # Store and mint: creators upload audio + metadata to IPFS, then mint with their royalty splits.
            minted: dict[int, dict[str, Any]] = {}
            creators = [(c, co) for _, c, co in DEMO_PIECES] + [("//Ferdie", None), ("//Eve", None)]
            async with IpfsClient(node.api_url) as ipfs:
                for (name, audio), (creator, co) in zip(tracks, creators, strict=True):
                    who = actor[creator]
                    splits = (
                        [(who.address, 10000)]
                        if co is None
                        else [(who.address, 7000), (actor[co].address, 3000)]
                    )
                    # Metadata as creators store it (offchain/ipfs/metadata.py): its genre is the one the
                    # worker scores novelty against (offchain/scoring_rule.py).
                    audio_cid, meta_cid, _ = await store_track(
                        ipfs,
                        audio,
                        title=name,
                        creator=who.address,
                        genre=DEMO_GENRES.get(name.removesuffix("_copy"), "Folk song"),
                        duration_s=float(track_seconds),
                        royalty_splits=[list(sp) for sp in splits],
                        licence="CC-BY-4.0",
                        audio_format="wav",
                    )
                    token = await chain.nft_tx(
                        who, "mint", audio_cid=audio_cid, metadata_cid=meta_cid, royalty_splits=splits
                    )
                    minted[int(token)] = {
                        "name": name,
                        "genre": DEMO_GENRES.get(name.removesuffix("_copy"), "Folk song"),
                        "creator": who.label,
                        "splits": {labels[a]: bp for a, bp in splits},
                    }
            _say(f"minted {len(minted)} tracks: " + ", ".join(f"#{t} {m['name']}" for t, m in minted.items()))

            settings = load_settings(
                None,
                node_url=dn.url,
                ipfs_api_url=node.api_url,
                deployment=dep_path,
                signing_key=WORKER_KEY,
                db_path=workdir / "worker.sqlite",
                epoch_blocks=epoch_blocks,
                # --serve prints the dashboard's address, so it needs the port before the worker binds it.
                http_port=free_port() if serve else 0,
                log_level="warning",
                log_json=True,
                scoring_workers=1,
                backoff_initial_s=0.2,
                backoff_max_s=2.0,
            )
            stop = asyncio.Event()
            async with assemble(settings) as a:
                runner = asyncio.create_task(run_worker(a, settings, stop))
                try:
                    report = await _drive(dn, chain, a, actor, minted, labels, epoch_blocks)
                    if serve:
                        await _serve_until_interrupted(settings.http_port)
                finally:
                    stop.set()
                    await runner
        finally:
            await port.close()
    return report


async def _drive(
    dn: Any,
    chain: DemoChain,
    a: Any,
    actor: dict[str, Actor],
    minted: dict[int, dict[str, Any]],
    labels: dict[str, str],
    E: int,
) -> dict[str, Any]:
    store = a.worker.store
    toks = sorted(minted)
    _, t_folk, t_rag, t_haydn = toks[:4]
    piece = dict(zip((name for name, _, _ in DEMO_PIECES), toks, strict=False))

    async def scored_all() -> bool:
        return all(t.status in ("published", "rejected") for t in await store.tracks()) and len(
            await store.tracks()
        ) == len(minted)

    _say("the worker scores the tracks (fetch from IPFS, verify, decode, features, novelty, quality)...")
    await _until("every track scored or rejected", scored_all, 600)

    async def listen(who: str, token: int, seconds: int) -> None:
        await chain.nft_tx(actor[who], "listen", token_id=token, seconds=seconds)

    async def head() -> int:
        return int(dn.call(lambda: dn.chain.finalized.number))

    async def end_epoch(e: int) -> None:
        target = (e + 1) * E  # the first block of the next epoch: epoch e is final
        h = await head()
        if h > (e + 1) * E - 1:
            raise DemoError(f"epoch {e} overflowed its {E} blocks (at #{h}); use a larger --epoch-blocks")
        dn.new_block(target - h)

        async def settled() -> bool:
            return any(ep["epoch"] == e for ep in await store.epochs())

        await _until(f"epoch {e} settled", settled, 120)

    async def honest_listens(e: int) -> None:
        await asyncio.gather(*(listen(who, piece[name], s) for who, name, s in EPOCH_LISTENS[e]))

    async def farm(token: int) -> None:
        # The farm: 8 wallets with the same script (same track, same count, same seconds).
        await asyncio.gather(*(listen(w, token, 31) for w in FARM))
        await asyncio.gather(*(listen(w, token, 31) for w in FARM))

    # Epoch 0: the curator tags the folk song after its first listen.
    await honest_listens(0)
    await chain.nft_tx(actor[CURATOR], "tag", token_id=t_folk, tag="folk-revival")
    await farm(t_rag)
    await end_epoch(0)
    _say("epoch 0 settled")
    # Epoch 1: the curator makes a playlist of the quartet before the listens.
    pl = await chain.nft_tx(actor[CURATOR], "create_playlist", name="demo picks")
    await chain.nft_tx(actor[CURATOR], "add_to_playlist", playlist_id=int(pl), token_id=t_haydn)
    await honest_listens(1)
    await farm(t_rag)
    await end_epoch(1)
    _say("epoch 1 settled")
    await honest_listens(2)
    await farm(t_rag)
    await end_epoch(2)
    _say("epoch 2 settled; waiting for the payouts to be confirmed in finalized blocks...")

    async def all_paid() -> bool:
        c = await store.counts()
        return c["payouts_pending"] == 0 and c["payouts_paid"] > 0

    await _until("every payout confirmed on chain", all_paid, 300)
    return await _report(chain, store, actor, minted, labels)


async def _report(
    chain: DemoChain,
    store: Any,
    actor: dict[str, Actor],
    minted: dict[int, dict[str, Any]],
    labels: dict[str, str],
) -> dict[str, Any]:
    console = Console(stderr=_OUT["stderr"])
    tracks = []
    t = Table(
        "token",
        "piece",
        "creator",
        "royalty splits",
        "status",
        "novelty bp",
        "quality bp",
        "reason",
        title="Tracks",
    )
    scored = await store.catalogue_scores()
    for tr in await store.tracks():
        m = minted.get(tr.token_id, {})
        tracks.append(
            {
                "token": tr.token_id,
                **m,
                "scored_genre": scored.get(tr.token_id, {}).get("scored_genre"),
                "status": tr.status,
                "novelty_bp": tr.novelty_bp,
                "quality_bp": tr.quality_bp,
                "reason": tr.reason,
            }
        )
        t.add_row(
            str(tr.token_id),
            m.get("name", "?"),
            m.get("creator", "?"),
            ", ".join(f"{k} {v / 100:.0f}%" for k, v in m.get("splits", {}).items()),
            tr.status,
            str(tr.novelty_bp if tr.novelty_bp is not None else "-"),
            str(tr.quality_bp if tr.quality_bp is not None else "-"),
            tr.reason or "",
        )
    console.print(t)

    pay = Table("epoch", "account", "kind", "token", "amount", "why", title="Payouts (confirmed on chain)")
    rows = await store.payouts()
    totals: dict[str, int] = defaultdict(int)
    for p in rows:
        who = labels.get(p.account, p.account[:10])
        totals[who] += p.amount
        pay.add_row(
            str(p.epoch),
            who,
            PAYOUT_KIND_LABELS[int(p.kind)],
            "-" if p.token_id is None else str(p.token_id),
            f"{p.amount:,}",
            p.reason,
        )
    console.print(pay)

    bal = Table("account", "paid by the worker", "MINT balance on chain", title="Totals")
    balances = {}
    for label, total in sorted(totals.items(), key=lambda kv: -kv[1]):
        acct = next(a for a in actor.values() if a.label == label)
        balances[label] = int(await chain.query("rewards", "balance_of", acct, account=acct.address))
        bal.add_row(label, f"{total:,}", f"{balances[label]:,}")
    console.print(bal)
    farm_total = sum(v for k, v in totals.items() if k.startswith("Farm"))
    honest_best = max((v for k, v in totals.items() if k in {h.strip("/") for h in HONEST}), default=0)
    epochs = await store.epochs()
    console.print(
        f"sybil farm ({len(FARM)} wallets, identical behaviour) earned {farm_total:,} in total; "
        f"the best honest listener earned {honest_best:,}."
    )
    for ep in epochs:
        console.print(f"epoch {ep['epoch']}: paid {ep['paid']}, unallocated {ep['unallocated']}")
    return {
        "tracks": tracks,
        "payouts": [p.__dict__ | {"payout_id": "0x" + p.payout_id.hex(), "kind": int(p.kind)} for p in rows],
        "totals": dict(totals),
        "balances": balances,
        "epochs": epochs,
        "farm_total": farm_total,
    }


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve_until_interrupted(port: int) -> None:
    """`ami demo --serve`: keep the devnet, IPFS, the worker and its dashboard up until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _say(f"dashboard: http://127.0.0.1:{port}/")
    _say("serving until interrupted (Ctrl-C)...")
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_demo(
    workdir: Path | None = None,
    epoch_blocks: int = 60,
    track_seconds: float = 20.0,
    to_stderr: bool = False,
    serve: bool = False,
) -> dict[str, Any]:
    """Run the demo; returns the report (tracks, payouts, totals, balances, epochs) it printed (on stderr
    with `to_stderr`, leaving stdout to the caller). With `serve`, everything stays up after the report,
    the dashboard's address printed, until SIGINT or SIGTERM."""
    configure_logging("warning", json=True)
    _OUT["stderr"] = to_stderr
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ami-demo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(workdir, epoch_blocks, track_seconds, serve))
