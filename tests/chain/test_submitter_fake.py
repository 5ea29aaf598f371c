"""Submitter state machine on an in-memory chain fake: batching, retries, reverts, expiry, crash recovery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from submitter_fake_chain import (
    ALICE,
    BOB,
    CHARLIE,
    NFT,
    REWARDS,
    Crash,
    FakeChain,
    FakeCodec,
    expected_balances,
    payouts,
    submitter,
)
from waiting import until

from ami_node.keys import load_keypair
from ami_node.port import (
    Block,
    ChainUnavailable,
    SignedTx,
)
from ami_node.submitter import Payout, PayoutConflict, Submitter, SubmitterError


async def test_payouts_packed_into_few_batches_and_confirmed(tmp_path: Path) -> None:
    chain = FakeChain()
    ps = payouts(1000)
    async with submitter(chain, tmp_path / "o.db", payouts_per_call=100, gas_margin=1.25) as sub:
        assert await sub.enqueue_payouts(1, ps) == 1000
        assert await sub.enqueue_payouts(1, ps[:10]) == 0  # idempotent
        counts = await sub.drain(10)
    assert counts.confirmed == 1000 and counts.pending == counts.submitted == counts.failed == 0
    assert chain.balances == expected_balances(ps)
    # 10 distribute calls of ~105k ref_time each fit the 1.5M budget: one extrinsic carries them all
    assert chain.submits == 1
    batch_calls = [c for b in chain.blocks for c in b.extrinsic_hashes]
    assert len(batch_calls) == 1


async def test_weight_limit_splits_into_several_extrinsics(tmp_path: Path) -> None:
    chain = FakeChain(max_weight=(400_000, 1_000_000))
    ps = payouts(1000)
    async with submitter(chain, tmp_path / "o.db", payouts_per_call=100, gas_margin=1.25) as sub:
        await sub.enqueue_payouts(3, ps)
        await sub.drain(10)
    # 300k budget, 105k*1.25 per call -> 2 calls per extrinsic -> 5 extrinsics
    assert chain.submits == 5
    assert len(chain.paid) == 1000 and chain.balances == expected_balances(ps)


async def test_conflicting_payout_id_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    chain = FakeChain()
    ps = payouts(3)
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_payouts(1, ps)
        changed = Payout(id=ps[1].id, to=ps[1].to, amount=ps[1].amount + 1, kind=ps[1].kind)
        with pytest.raises(PayoutConflict, match="other contents"):
            await sub.enqueue_payouts(1, [*payouts(5, epoch=2), changed])
        assert (await sub.counts()).pending == 3
    with pytest.raises(ValueError, match="32 bytes"):
        Payout(id=b"short", to=BOB, amount=1, kind=0)
    with pytest.raises(ValueError, match="SS58"):
        Payout(id=b"\0" * 32, to="nobody", amount=1, kind=0)


async def test_revert_is_recorded_and_nothing_is_sent(tmp_path: Path) -> None:
    chain = FakeChain(oracle_ok=False)
    ps = payouts(5)
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_payouts(1, ps)
        counts = await sub.drain(5)
        assert counts.failed == 5 and counts.confirmed == 0
        failed = await sub.failed_payouts()
        assert all("NotOracle" in err for _, err in failed)
        assert chain.submits == 0
        # fixing the cause and re-queuing pays them
        chain.oracle_ok = True
        assert await sub.requeue_failed() == 5
        counts = await sub.drain(5)
    assert counts.confirmed == 5 and chain.balances == expected_balances(ps)


async def test_generic_call_revert_and_success(tmp_path: Path) -> None:
    chain = FakeChain()
    async with submitter(chain, tmp_path / "o.db", max_calls_per_tx=1) as sub:
        assert await sub.enqueue_call(
            "listen:1", NFT, "listen", b'{"m": "listen", "token": 1}', abi="ami_nft"
        )
        assert not await sub.enqueue_call(
            "listen:1", NFT, "listen", b'{"m": "listen", "token": 1}', abi="ami_nft"
        )
        with pytest.raises(SubmitterError, match="another input"):
            await sub.enqueue_call("listen:1", NFT, "listen", b'{"m": "listen", "token": 2}', abi="ami_nft")
        await sub.enqueue_call("listen:0", NFT, "listen", b'{"m": "listen", "token": 0}', abi="ami_nft")
        await sub.drain(5)
        ok = await sub.call_status("listen:1")
        bad = await sub.call_status("listen:0")
    assert ok is not None and ok.state == "confirmed" and ok.block_number is not None
    assert bad is not None and bad.state == "failed" and "TokenNotFound" in (bad.error or "")
    assert chain.submits == 1


async def test_transient_pool_rejections_are_retried(tmp_path: Path) -> None:
    chain = FakeChain(reject_next=[1014, 1010, 1014])
    ps = payouts(10)
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_payouts(1, ps)
        counts = await sub.drain(10)
        assert sub.stats["pool_rejections"] == 3
    assert counts.confirmed == 10 and chain.balances == expected_balances(ps)


async def test_many_back_to_back_submissions_without_nonce_collisions(tmp_path: Path) -> None:
    chain = FakeChain(auto_block=False)
    async with submitter(chain, tmp_path / "o.db", max_calls_per_tx=1) as sub:
        for i in range(1, 201):
            await sub.enqueue_call(
                f"l:{i}", NFT, "listen", json.dumps({"m": "listen", "token": i}).encode(), abi="ami_nft"
            )
        await sub.tick()  # all 200 go to the pool before any block
        assert len(chain.pool) == 200 and sub.stats["pool_rejections"] == 0 and chain.collisions == 0
        chain.new_block()
        counts = await sub.drain(10)
    assert counts.confirmed == 200 and chain.nonce == 200


async def test_expired_transaction_is_re_signed(tmp_path: Path) -> None:
    chain = FakeChain(auto_block=False)
    ps = payouts(20)
    async with submitter(chain, tmp_path / "o.db", era_period=8) as sub:
        await sub.enqueue_payouts(1, ps)
        await sub.tick()
        assert chain.submits == 1
        chain.lose_pool()  # the node dropped it (restart, eviction): it can never land now
        for _ in range(9):
            chain.new_block()
            await sub.tick()
        assert sub.stats["expired"] == 1
        assert chain.submits == 2  # signed again with a fresh era
        chain.new_block()
        counts = await sub.drain(5)
    assert counts.confirmed == 20 and chain.balances == expected_balances(ps)


async def test_unavailable_node_during_submit_sends_same_bytes_again(tmp_path: Path) -> None:
    chain = FakeChain(auto_block=False, unavailable_after_accept=1)
    ps = payouts(4)
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_payouts(1, ps)
        with pytest.raises(ChainUnavailable):
            await sub.tick()
        await sub.tick()  # resubmits the signed bytes: the pool says already imported, nothing new is signed
        assert len(chain.pool) == 1
        chain.new_block()
        counts = await sub.drain(5)
    assert counts.confirmed == 4 and chain.balances == expected_balances(ps)


@pytest.mark.parametrize(
    "method,countdown",
    [
        ("dry_run", 1),
        ("sign", 1),
        ("submit", 1),
        ("after_submit", 1),
        ("block", 2),
        ("sign", 2),
        ("after_submit", 2),
        ("dry_run", 4),
    ],
)
async def test_crash_at_any_point_pays_each_payout_once(tmp_path: Path, method: str, countdown: int) -> None:
    chain = FakeChain(max_weight=(300_000, 1_000_000))
    ps = payouts(300)
    db = tmp_path / "o.db"
    async with submitter(chain, db, payouts_per_call=50) as sub:
        await sub.enqueue_payouts(7, ps)
    chain.crash_on[method] = countdown
    sub = await submitter(chain, db, payouts_per_call=50).open()
    with pytest.raises(Crash):
        await sub.drain(5)
    await sub.close()  # uncommitted work is lost, as with SIGKILL
    assert not chain.crash_on
    async with submitter(chain, db, payouts_per_call=50) as sub:
        counts = await sub.drain(10)
    assert counts.confirmed == 300 and counts.failed == 0
    assert chain.balances == expected_balances(ps)
    assert len(chain.paid) == 300


async def test_fresh_outbox_against_a_chain_that_already_paid(tmp_path: Path) -> None:
    chain = FakeChain()
    ps = payouts(30)
    async with submitter(chain, tmp_path / "a.db") as sub:
        await sub.enqueue_payouts(2, ps[:10])
        await sub.drain(5)
    # a second outbox (lost database) gets the same ids plus new ones: batch numbers and paid ids collide
    async with submitter(chain, tmp_path / "b.db") as sub:
        await sub.enqueue_payouts(2, ps)
        counts = await sub.drain(5)
    assert counts.confirmed == 30 and counts.failed == 0
    assert chain.balances == expected_balances(ps)


async def test_outbox_belongs_to_one_signer(tmp_path: Path) -> None:
    chain = FakeChain()
    async with submitter(chain, tmp_path / "o.db"):
        pass
    other = Submitter(chain, load_keypair("//Bob"), tmp_path / "o.db", rewards=REWARDS, codec=FakeCodec())
    with pytest.raises(SubmitterError, match="belongs to signer"):
        await other.open()


async def test_send_call_racers_with_one_key_all_land() -> None:
    from ami_node.tx import send_call

    chain = FakeChain(auto_block=False)

    async def one(i: int) -> int:
        call = ("contract", NFT, json.dumps({"m": "listen", "token": i}).encode(), (1, 1))
        receipt = await send_call(chain, ALICE, call, timeout_s=10, poll_s=0.01)
        assert receipt.success
        return receipt.nonce

    async def blocks() -> None:
        while True:
            await asyncio.sleep(0.02)
            chain.new_block()

    producer = asyncio.create_task(blocks())
    try:
        nonces = await asyncio.gather(*(one(i) for i in range(1, 9)))
    finally:
        producer.cancel()
    assert sorted(nonces) == list(range(8))
    assert chain.nonce == 8
    assert chain.collisions > 0  # the racers did pick the same nonce and recovered


async def test_send_call_reports_dispatch_failure_and_timeout() -> None:
    from ami_node.tx import TxDispatchFailed, TxTimeout, send_call

    chain = FakeChain()
    bad = ("contract", NFT, json.dumps({"m": "listen", "token": 0}).encode(), (1, 1))
    with pytest.raises(TxDispatchFailed, match="ContractReverted"):
        await send_call(chain, ALICE, bad, timeout_s=5, poll_s=0.01)
    stuck = FakeChain(auto_block=False)
    good = ("contract", NFT, json.dumps({"m": "listen", "token": 1}).encode(), (1, 1))
    with pytest.raises(TxTimeout, match="not finalized"):
        await send_call(stuck, ALICE, good, timeout_s=0.2, poll_s=0.01)


async def test_batch_failing_on_chain_is_retried_call_by_call(tmp_path: Path) -> None:
    chain = FakeChain(max_calls_that_fit=1)
    ps = payouts(120)
    async with submitter(chain, tmp_path / "o.db", payouts_per_call=40) as sub:
        await sub.enqueue_payouts(1, ps)
        counts = await sub.drain(10)
    assert counts.confirmed == 120 and counts.failed == 0
    assert chain.balances == expected_balances(ps)
    # one failed batch_all of 3 calls, then each call alone
    assert chain.submits == 4


async def test_calls_failing_in_a_batch_are_retried_alone(tmp_path: Path) -> None:
    chain = FakeChain(max_calls_that_fit=0)
    async with submitter(chain, tmp_path / "o.db", max_calls_per_tx=2) as sub:
        for i in (1, 2):
            body = json.dumps({"m": "listen", "token": i}).encode()
            await sub.enqueue_call(f"l:{i}", NFT, "listen", body, abi="ami_nft")
        counts = await sub.drain(10)
    assert counts.confirmed == 2  # retried alone after the failed batch
    assert chain.submits == 3


async def test_call_that_keeps_failing_on_chain_is_given_up(tmp_path: Path) -> None:
    chain = FakeChain(fail_on_chain={7})
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_call(
            "l:7", NFT, "listen", json.dumps({"m": "listen", "token": 7}).encode(), abi="ami_nft"
        )
        counts = await sub.drain(10)
        status = await sub.call_status("l:7")
    assert counts.failed == 1 and chain.submits == 3
    assert status is not None and status.state == "failed" and "dispatch failed" in (status.error or "")


async def test_runtime_calls_are_batched_and_confirmed(tmp_path: Path) -> None:
    chain = FakeChain()
    async with submitter(chain, tmp_path / "o.db") as sub:
        for i in range(1, 6):
            await sub.enqueue_runtime_call(
                f"t:{i}", "Balances", "transfer_keep_alive", {"dest": BOB, "value": i}
            )
        await sub.enqueue_runtime_call("t:bad", "Balances", "transfer_keep_alive", {"dest": BOB, "value": 0})
        counts = await sub.drain(10)
        bad = await sub.call_status("t:bad")
    # five good transfers in one batch_all; the bad one made that batch fail once, then went alone (3 times)
    assert chain.balances[BOB] == 15
    assert counts.confirmed == 5 and counts.failed == 1
    assert bad is not None and "dispatch failed" in (bad.error or "")
    with pytest.raises(SubmitterError, match="JSON"):
        async with submitter(chain, tmp_path / "o.db") as sub:
            await sub.enqueue_runtime_call("t:x", "Balances", "transfer_keep_alive", {"dest": object()})


async def test_run_loop_survives_node_errors_and_stops_on_request(tmp_path: Path) -> None:
    from ami_node.port import ChainError

    chain = FakeChain()
    failures = [ChainUnavailable("node down"), ChainError("block #3 is not available")]
    real_block = chain.block

    async def flaky_block(number: int) -> Block:
        if failures:
            raise failures.pop(0)
        return await real_block(number)

    chain.block = flaky_block  # type: ignore[method-assign]
    ps = payouts(10)
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_payouts(1, ps)
        stop = asyncio.Event()
        runner = asyncio.create_task(sub.run(stop))

        async def all_confirmed() -> bool:
            return (await sub.counts()).confirmed == 10

        await until(all_confirmed, "ten payouts confirmed", interval=0.05)
        stop.set()
        await asyncio.wait_for(runner, 5)
    assert not failures and chain.balances == expected_balances(ps)


async def test_repeated_ids_inside_one_call(tmp_path: Path) -> None:
    ps = payouts(3)
    async with submitter(FakeChain(), tmp_path / "o.db") as sub:
        assert await sub.enqueue_payouts(1, [*ps, ps[0]]) == 3
        other = Payout(id=ps[2].id, to=ps[2].to, amount=ps[2].amount, kind=(ps[2].kind + 1) % 5)
        fresh = payouts(6)[3:]
        with pytest.raises(PayoutConflict):
            await sub.enqueue_payouts(1, [*fresh, other])
        assert (await sub.counts()).pending == 3  # nothing of the refused call was stored


async def test_a_foreign_database_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "o.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SubmitterError, match="not a usable submitter outbox"):
        await submitter(FakeChain(), junk).open()
    assert junk.read_bytes() == b"this is not sqlite" * 100  # left as it was


async def test_usurped_transaction_is_released_without_waiting_for_its_era(tmp_path: Path) -> None:
    """Another process signing with the submitter's key takes the nonce of its pooled transaction (a
    replacement wins the pool slot): once a finalized state has used that nonce without the submitter's
    transaction, its work is re-signed at once, not after the era's 64 blocks."""

    class Usurping(FakeChain):
        usurp_next: bool = True

        async def submit(self, tx: SignedTx) -> str:
            if not self.usurp_next:
                return await super().submit(tx)
            self.usurp_next = False
            other = ("call", "Balances", "transfer_keep_alive", {"dest": CHARLIE, "value": 7})
            rival = SignedTx("0x" + "77" * 32, b"rival", tx.signer, tx.nonce, tx.era_birth, tx.era_death)
            self.pool[tx.nonce] = (rival, other)  # accepted, then replaced by the other process's
            self.new_block()
            return tx.hash

    chain = Usurping()
    async with submitter(chain, tmp_path / "o.db") as sub:
        await sub.enqueue_runtime_call("t:1", "Balances", "transfer_keep_alive", {"dest": BOB, "value": 5})
        counts = await sub.drain(10)
        status = await sub.call_status("t:1")
        assert sub.stats["usurped"] == 1 and sub.stats["expired"] == 0
    assert counts.confirmed == 1 and status is not None and status.state == "confirmed"
    assert chain.balances[BOB] == 5 and chain.balances[CHARLIE] == 7  # each once
    assert len(chain.blocks) < 64  # released by the nonce, far before the first transaction's era ended


async def test_outbox_before_versioning_opens_and_a_newer_one_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    from ami_node.submitter import OUTBOX_SCHEMA_VERSION

    chain = FakeChain()
    db = tmp_path / "o.db"
    async with submitter(chain, db) as sub:
        await sub.enqueue_payouts(1, payouts(3))
    # A file written before outboxes carried a version has user_version 0 and this very layout.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=0")
    conn.commit()
    conn.close()
    async with submitter(chain, db) as sub:
        counts = await sub.drain(10)
    assert counts.confirmed == 3  # the rows written before the upgrade are paid, once
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == OUTBOX_SCHEMA_VERSION
    conn.execute("PRAGMA journal_mode=DELETE")  # one plain file, so its bytes can be compared
    conn.execute(f"PRAGMA user_version={OUTBOX_SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(SubmitterError, match="newer AMI node"):
        await Submitter(chain, ALICE, db, rewards=REWARDS, codec=FakeCodec()).open()
    assert db.read_bytes() == before
