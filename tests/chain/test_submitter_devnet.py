"""Submitter and one-off transactions against the local devnet through substrate-interface (the real adapter).

Covers: back-to-back submissions from one key without nonce collisions, injected pool rejections retried, a
revert reported and nothing sent, an expired mortal transaction signed again, and a submitter process
SIGKILLed mid-run and restarted that pays every payout exactly once (checked on chain).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import until

from ami_node.abi import ContractAbi
from ami_node.deployment import Deployment
from ami_node.devnet.testing import DevnetHandle, running_devnet
from ami_node.keys import load_keypair
from ami_node.submitter import Payout, Submitter
from ami_node.substrate import SubstrateChainPort

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")
RECIPIENTS = [load_keypair(s).address for s in ("//Bob", "//Charlie", "//Dave", "//Eve", "//Ferdie")]
REPO = Path(__file__).resolve().parents[2]


def make_payouts(tag: str, n: int) -> list[Payout]:
    return [
        Payout(
            id=hashlib.sha256(f"{tag}:{i}".encode()).digest(),
            to=RECIPIENTS[i % len(RECIPIENTS)],
            amount=1_000 + i,
            kind=i % 5,
        )
        for i in range(n)
    ]


def expected(ps: list[Payout]) -> dict[str, int]:
    out = dict.fromkeys(RECIPIENTS, 0)
    for p in ps:
        out[p.to] += p.amount
    return out


async def mint_balances(port: SubstrateChainPort, rewards: str) -> dict[str, int]:
    abi = ContractAbi.load("ami_rewards")
    out = {}
    for who in RECIPIENTS:
        dry = await port.contract_dry_run(rewards, abi.encode_call("balance_of", account=who), who)
        out[who] = int(abi.decode_return("balance_of", dry.output))
    return out


async def paid_events(port: SubstrateChainPort, rewards: str, since: int) -> list[bytes]:
    """Payout ids of every Paid event of `rewards` in finalized blocks after `since`, each fully decoded
    from its data (independently of the submitter's own topic-based fast path)."""
    abi = ContractAbi.load("ami_rewards")
    head = await port.finalized_head()
    ids: list[bytes] = []
    for n in range(since + 1, head.number + 1):
        for e in (await port.block(n)).events:
            if e.name == "ContractEmitted" and e.contract == rewards and e.data is not None:
                label, fields = abi.decode_event(e.topics, e.data)
                if label == "Paid":
                    ids.append(bytes.fromhex(fields["payout_id"].removeprefix("0x")))
    return ids


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[DevnetHandle, Deployment]]:
    from ami_node.deploy import default_bundles, deploy

    with running_devnet() as dn:

        async def go() -> Deployment:
            async with SubstrateChainPort(dn.url) as port:
                return await deploy(port, ALICE, dn.url, default_bundles(), 60)

        yield dn, asyncio.run(go())


@pytest.fixture
def fresh_rewards(deployed: tuple[DevnetHandle, Deployment]) -> Iterator[tuple[DevnetHandle, str]]:
    """A new ami_rewards instance per test, so MINT balances start at zero."""
    dn, dep = deployed

    async def go() -> str:
        from ami_node.tx import send_call

        abi = ContractAbi.load(REPO / "pallets_spec" / "bundles" / "ami_rewards.contract")
        async with SubstrateChainPort(dn.url) as port:
            mx = await port.max_extrinsic_weight()
            call = await port.compose_call(
                "Contracts",
                "instantiate_with_code",
                {
                    "value": 0,
                    "gas_limit": {"ref_time": mx[0] // 2, "proof_size": mx[1] // 2},
                    "storage_deposit_limit": None,
                    "code": "0x" + (abi.wasm or b"").hex(),
                    "data": "0x" + abi.constructor("new").hex(),
                    "salt": "0x" + os.urandom(8).hex(),
                },
            )
            receipt = await send_call(port, ALICE, call, timeout_s=60)
            inst = receipt.event("Contracts", "Instantiated")
            assert inst is not None
            address = str(inst.attributes["contract"])
            data = abi.encode_call("add_oracle", account=ALICE.address)
            gas = (await port.contract_dry_run(address, data, ALICE.address)).gas_required
            await send_call(port, ALICE, await port.contract_call(address, data, (gas[0] * 2, gas[1] * 2)))
            return address

    yield dn, asyncio.run(go())


async def test_back_to_back_submissions_from_one_key_never_collide(
    deployed: tuple[DevnetHandle, Deployment], tmp_path: Path
) -> None:
    dn, _ = deployed
    charlie = load_keypair("//Charlie")
    async with SubstrateChainPort(dn.url) as port:
        before = await port.free_balance(BOB.address)
        start_nonce = await port.account_next_index(charlie.address)
        async with Submitter(
            port, charlie, tmp_path / "o.db", rewards=None, poll_s=0.02, max_calls_per_tx=1
        ) as sub:
            for i in range(500):
                await sub.enqueue_runtime_call(
                    f"t:{i}", "Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 7}
                )
            await sub.tick()  # all 500 signed and submitted in a row, one extrinsic each
            assert sub.stats["txs_submitted"] == 500
            counts = await sub.drain(120)
            assert sub.stats["pool_rejections"] == 0  # not a single nonce collision
        assert counts.confirmed == 500
        assert await port.account_next_index(charlie.address) == start_nonce + 500
        assert await port.free_balance(BOB.address) == before + 500 * 7


async def test_submitter_pays_and_retries_injected_pool_rejections(
    fresh_rewards: tuple[DevnetHandle, str], tmp_path: Path
) -> None:
    dn, rewards = fresh_rewards
    ps = make_payouts("rejections", 120)
    dn.set_faults(reject_next=3, reject_code=1014)
    async with SubstrateChainPort(dn.url) as port:
        since = (await port.finalized_head()).number
        db = tmp_path / "o.db"
        async with Submitter(port, ALICE, db, rewards=rewards, poll_s=0.05, payouts_per_call=40) as sub:
            await sub.enqueue_payouts(1, ps)
            counts = await sub.drain(60)
            assert sub.stats["pool_rejections"] == 3
        assert counts.confirmed == 120 and counts.failed == 0
        assert await mint_balances(port, rewards) == expected(ps)
        ids = await paid_events(port, rewards, since)
        assert sorted(ids) == sorted(p.id for p in ps)


async def test_revert_is_reported_and_nothing_is_sent(
    fresh_rewards: tuple[DevnetHandle, str], tmp_path: Path
) -> None:
    dn, rewards = fresh_rewards
    dave = load_keypair("//Dave")  # not an oracle
    async with SubstrateChainPort(dn.url) as port:
        nonce_before = await port.account_next_index(dave.address)
        async with Submitter(port, dave, tmp_path / "o.db", rewards=rewards, poll_s=0.05) as sub:
            await sub.enqueue_payouts(1, make_payouts("revert", 3))
            counts = await sub.drain(30)
            failed = await sub.failed_payouts()
        assert counts.failed == 3 and counts.confirmed == 0
        assert all("NotOracle" in err for _, err in failed)
        assert await port.account_next_index(dave.address) == nonce_before  # no extrinsic was sent


async def test_expired_mortal_transaction_is_signed_again(
    fresh_rewards: tuple[DevnetHandle, str], tmp_path: Path
) -> None:
    from ami_node.tx import contract_tx

    dn, rewards = fresh_rewards
    ps = make_payouts("expiry", 10)
    # its own oracle key, so that the stuck transaction left in the pool cannot disturb other tests
    eve = load_keypair("//Eve")
    async with SubstrateChainPort(dn.url) as port:
        abi = ContractAbi.load("ami_rewards")
        await contract_tx(port, ALICE, abi, rewards, "add_oracle", {"account": eve.address}, timeout_s=30)
        async with Submitter(port, eve, tmp_path / "o.db", rewards=rewards, poll_s=0.05, era_period=8) as sub:
            await sub.tick()  # recovery done, nothing to send
            # A nonce ahead of the account's: the node keeps the transaction as "future" and never includes
            # it, like a transaction the pool lost.
            real = await port.account_next_index(eve.address)
            sub.nonces._next = real + 3
            await sub.enqueue_payouts(1, ps)
            await sub.tick()
            assert sub.stats["txs_submitted"] == 1
            dn.new_block(count=10)
            counts = await sub.drain(30)
            assert sub.stats["expired"] == 1
            assert sub.stats["txs_submitted"] == 2
        assert counts.confirmed == 10
        assert await mint_balances(port, rewards) == expected(ps)


CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, sys
    sys.path[:0] = [{tests!r}, {tests_root!r}]  # this module, and tests/waiting.py that it imports
    from test_submitter_devnet import make_payouts
    from ami_node.keys import load_keypair
    from ami_node.submitter import Submitter
    from ami_node.substrate import SubstrateChainPort

    async def main():
        async with SubstrateChainPort({url!r}) as port:
            async with Submitter(port, load_keypair("//Alice"), {db!r}, rewards={rewards!r}, poll_s=0.02,
                                 payouts_per_call=15, max_calls_per_tx=2) as sub:
                await sub.enqueue_payouts(4, make_payouts("crash", 240))
                print("counts", await sub.drain(120), flush=True)

    asyncio.run(main())
    """
)


def _progress(db: Path) -> tuple[int, int]:
    """(transactions signed so far, payouts confirmed) read from the child's outbox."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            txs = con.execute("SELECT COUNT(*) FROM txs WHERE hash IS NOT NULL").fetchone()[0]
            done = con.execute("SELECT COUNT(*) FROM payouts WHERE state = 'confirmed'").fetchone()[0]
            return int(txs), int(done)
        finally:
            con.close()
    except sqlite3.Error:
        return 0, 0


@pytest.mark.slow
async def test_sigkilled_submitter_pays_every_payout_exactly_once(
    fresh_rewards: tuple[DevnetHandle, str], tmp_path: Path
) -> None:
    dn, rewards = fresh_rewards
    db = tmp_path / "outbox.db"
    here = Path(__file__).parent
    code = CHILD.format(tests=str(here), tests_root=str(here.parent), url=dn.url, db=str(db), rewards=rewards)
    async with SubstrateChainPort(dn.url) as port:
        since = (await port.finalized_head()).number
    dn.set_faults(finality_lag=2)  # keeps transactions in flight (included, not final) for a while
    # kill points: as soon as a transaction is signed, after some payouts are final, later again
    kill_when = [lambda t, c: t >= 1, lambda t, c: c >= 30, lambda t, c: c >= 120]
    kills = 0
    try:
        for cond in kill_when:
            child = subprocess.Popen(
                [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + 60
            ticks = 0
            while child.poll() is None and time.monotonic() < deadline:
                if cond(*_progress(db)):
                    child.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                await asyncio.sleep(0.01)
                ticks += 1
                if ticks % 20 == 0:  # a block every ~0.2 s: the devnet keeps state of the last 256 only
                    dn.new_block()
            child.wait(timeout=30)
        assert kills >= 2, f"the child finished before it could be killed {kills}: {_progress(db)}"
        # the last run goes to the end, with blocks coming in
        child = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        while child.poll() is None:
            dn.new_block()
            await asyncio.sleep(0.25)
        out = child.stdout.read().decode() if child.stdout else ""
        assert child.returncode == 0, out[-3000:]
        assert "confirmed=240" in out, out[-3000:]
    finally:
        dn.set_faults(finality_lag=0)
    ps = make_payouts("crash", 240)
    async with SubstrateChainPort(dn.url) as port:
        assert await mint_balances(port, rewards) == expected(ps)
        ids = await paid_events(port, rewards, since)
    assert len(ids) == 240 and sorted(ids) == sorted(p.id for p in ps)


async def test_reorgs_and_dropped_connections_never_double_pay(
    fresh_rewards: tuple[DevnetHandle, str], tmp_path: Path
) -> None:
    dn, rewards = fresh_rewards
    ps = make_payouts("reorg", 60)
    async with SubstrateChainPort(dn.url, timeout_s=10) as port:
        since = (await port.finalized_head()).number
        # Finality is held while the faults are injected, so none of the payouts can confirm before every
        # reorg and drop has happened to it; then blocks finalize three behind the head until all confirm.
        dn.set_faults(finality_lag=3, hold_finality=True)
        try:
            async with Submitter(
                port,
                ALICE,
                tmp_path / "o.db",
                rewards=rewards,
                poll_s=0.05,
                payouts_per_call=10,
                max_calls_per_tx=1,
            ) as sub:
                await sub.enqueue_payouts(9, ps)
                stop = asyncio.Event()
                task = asyncio.create_task(sub.run(stop))
                await until(
                    lambda: dn.chain.best.number - dn.chain.finalized_number >= 2,
                    "two unfinalized blocks holding payouts",
                    timeout=30,
                )
                for fault in ["reorg", "drop", "reorg", "drop", "reorg"]:
                    if fault == "reorg":
                        dn.reorg(2)  # the last two unfinalized blocks are replaced; their txs re-queued
                    else:
                        dn.drop_connections()
                    dn.new_block()
                    await asyncio.sleep(0.15)  # the submitter runs between faults (a pace, not a wait)
                assert (await sub.counts()).confirmed == 0
                dn.set_faults(hold_finality=False)
                deadline = time.monotonic() + 90
                while (await sub.counts()).confirmed < 60:
                    assert time.monotonic() < deadline, await sub.counts()
                    dn.new_block()
                    await asyncio.sleep(0.15)
                stop.set()
                await asyncio.wait_for(task, 30)
        finally:
            dn.set_faults(finality_lag=0, hold_finality=False)
        assert await mint_balances(port, rewards) == expected(ps)
        ids = await paid_events(port, rewards, since)
    assert sorted(ids) == sorted(p.id for p in ps)
