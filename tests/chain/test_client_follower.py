"""BlockFollower and decode_block over the in-memory ChainPort.

Order, gaps, skipped notices, canonical checks, restart from a checkpoint, events keyed by (block, index);
plus the memory port's pool rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from waiting import Calls

from ami_node.abi import ContractAbi
from ami_node.events import Listened, Minted, OracleAdded, Paid, decode_block
from ami_node.follower import BlockFollower, FollowedBlock, NonCanonicalBlock
from ami_node.keys import load_keypair
from ami_node.memory import MemoryChainPort
from ami_node.port import BlockRef, ChainPort, PoolRejected

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")
GAS = (10**10, 10**6)


@pytest.fixture
def chain() -> MemoryChainPort:
    return MemoryChainPort()


async def _send(chain: MemoryChainPort, contract: str, data: bytes, key=ALICE) -> str:  # type: ignore[no-untyped-def]
    call = await chain.contract_call(contract, data, GAS)
    tx = await chain.sign(call, key, await chain.account_next_index(key.address))
    return await chain.submit(tx)


async def _take(it: AsyncIterator[FollowedBlock], n: int, timeout: float = 5.0) -> list[FollowedBlock]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(it), timeout))
    return out


def test_memory_port_satisfies_the_protocol(chain: MemoryChainPort) -> None:
    assert isinstance(chain, ChainPort)


async def test_follows_contract_events_in_order_keyed_by_block_and_index(chain: MemoryChainPort) -> None:
    nft_addr = chain.deploy("ami_nft", ALICE.address)
    nft = ContractAbi.load("ami_nft")
    await _send(chain, nft_addr, nft.encode_call("add_oracle", account=BOB.address))
    await _send(
        chain,
        nft_addr,
        nft.encode_call(
            "mint", audio_cid="bafyA", metadata_cid="bafyM", royalty_splits=[(ALICE.address, 10_000)]
        ),
    )
    await _send(chain, nft_addr, nft.encode_call("listen", token_id=1, seconds=42), key=BOB)
    follower = BlockFollower(chain, {nft_addr: nft}, start_after=None)
    blocks = await _take(follower.blocks(), 3)
    assert [b.ref.number for b in blocks] == [1, 2, 3]
    events = [e for b in blocks for e in b.events]
    assert [type(e) for e in events] == [OracleAdded, Minted, Listened]
    minted = events[1]
    assert isinstance(minted, Minted)
    assert (minted.token_id, minted.creator, minted.audio_cid, minted.metadata_cid) == (
        1,
        ALICE.address,
        "bafyA",
        "bafyM",
    )
    assert minted.royalty_splits == [(ALICE.address, 10_000)]
    assert minted.contract == nft_addr and minted.block_hash == blocks[1].ref.hash
    listened = events[2]
    assert isinstance(listened, Listened) and listened.listener == BOB.address and listened.seconds == 42
    # The key is the event's position in System.Events, not a counter of decoded events.
    raw = blocks[1].block
    assert raw is not None
    assert minted.key == (2, next(e.index for e in raw.events if e.name == "ContractEmitted"))
    assert len({e.key for e in events}) == 3


async def test_other_contracts_and_undecodable_events_are_skipped(chain: MemoryChainPort) -> None:
    nft = ContractAbi.load("ami_nft")
    watched = chain.deploy("ami_nft", ALICE.address)
    other = chain.deploy("ami_nft", ALICE.address)
    await _send(chain, other, nft.encode_call("add_oracle", account=BOB.address))
    chain.emit(watched, [b"\x00" * 32], b"garbage")  # unknown signature topic
    chain.emit(watched, [nft.events["OracleAdded"].signature_topic or b""], b"\x01\x02")  # short data
    chain.produce_block()
    await _send(chain, watched, nft.encode_call("add_oracle", account=BOB.address))
    blocks = await _take(BlockFollower(chain, {watched: nft}, start_after=None).blocks(), 3)
    assert [len(b.events) for b in blocks] == [0, 0, 1]


async def test_gaps_are_filled_when_finality_jumps(chain: MemoryChainPort) -> None:
    chain.auto_finalize = False
    for _ in range(5):
        chain.produce_block()
    chain.finalize(5)
    blocks = await _take(BlockFollower(chain, {}, start_after=None).blocks(), 5)
    assert [b.ref.number for b in blocks] == [1, 2, 3, 4, 5]
    for prev, cur in zip(blocks, blocks[1:], strict=False):
        assert cur.block is not None and cur.block.parent_hash == prev.ref.hash


async def test_skipped_notices_do_not_skip_blocks(chain: MemoryChainPort) -> None:
    chain.skip_notices = {2, 3, 5}
    it = BlockFollower(chain, {}, start_after=None).blocks()
    chain.produce_block()  # #1, notified
    first = await _take(it, 1)
    for _ in range(4):  # #2..#5 finalized; only #4's notice is sent
        chain.produce_block()
    rest = await _take(it, 3)  # #2, #3, #4 (walking up to the notified #4)
    chain.produce_block()  # #6 notified: #5 is filled in
    last = await _take(it, 2)
    assert [b.ref.number for b in first + rest + last] == [1, 2, 3, 4, 5, 6]


async def test_unfinalized_blocks_are_not_yielded(chain: MemoryChainPort) -> None:
    chain.auto_finalize = False
    chain.produce_block()
    chain.produce_block()
    chain.finalize(1)
    it = BlockFollower(chain, {}, start_after=None).blocks()
    assert [b.ref.number for b in await _take(it, 1)] == [1]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(it), 0.2)


async def test_restart_from_checkpoint_resumes_after_it(chain: MemoryChainPort) -> None:
    for _ in range(6):
        chain.produce_block()
    first = await _take(BlockFollower(chain, {}, start_after=None).blocks(), 3)
    checkpoint = first[-1].ref
    resumed = await _take(BlockFollower(chain, {}, start_after=checkpoint).blocks(), 3)
    assert [b.ref.number for b in resumed] == [4, 5, 6]


async def test_non_canonical_checkpoint_is_refused(chain: MemoryChainPort) -> None:
    for _ in range(3):
        chain.produce_block()
    bogus = BlockRef(2, "0x" + "ab" * 32)
    with pytest.raises(NonCanonicalBlock, match="checkpoint block #2"):
        await _take(BlockFollower(chain, {}, start_after=bogus).blocks(), 1)
    with pytest.raises(NonCanonicalBlock, match="does not exist"):
        await _take(BlockFollower(chain, {}, start_after=BlockRef(99, "0x00")).blocks(), 1)


async def test_chain_changing_under_the_follower_is_detected(chain: MemoryChainPort) -> None:
    for _ in range(3):
        chain.produce_block()
    it = BlockFollower(chain, {}, start_after=None).blocks()
    await _take(it, 3)
    chain.rewrite_from(2)  # the node now serves another history from #2
    chain.produce_block()
    with pytest.raises(NonCanonicalBlock, match="has parent"):
        await _take(it, 1)


async def test_outage_is_ridden_out(chain: MemoryChainPort) -> None:
    chain.produce_block()
    follower = BlockFollower(chain, {}, start_after=None, retry_delay_s=0.01)
    it = follower.blocks()
    await _take(it, 1)
    fetches = Calls(chain, "block")
    chain.down = True
    chain.produce_block()  # notice sent while down: the block fetch fails and is retried
    nxt = asyncio.ensure_future(anext(it))
    await fetches.more(2)  # failed, then asked again: the follower neither gave up nor yielded
    assert not nxt.done()
    chain.down = False
    fb = await asyncio.wait_for(nxt, 5)
    assert fb.ref.number == 2


async def test_batch_all_is_all_or_nothing_and_decodes_paid_events(chain: MemoryChainPort) -> None:
    rw_addr = chain.deploy("ami_rewards", ALICE.address)
    rw = ContractAbi.load("ami_rewards")
    await _send(chain, rw_addr, rw.encode_call("add_oracle", account=ALICE.address))

    def distribute(batch: int, ids: list[int]) -> bytes:
        return rw.encode_call(
            "distribute",
            epoch=1,
            batch=batch,
            payouts=[{"id": bytes([i]) * 32, "to": BOB.address, "amount": 100 + i, "kind": 1} for i in ids],
        )

    good = await chain.contract_call(rw_addr, distribute(0, [1, 2]), GAS)
    dup = await chain.contract_call(rw_addr, distribute(1, [2]), GAS)  # payout 2 twice: refused
    for calls in ([good, dup], [good]):
        batch = await chain.batch_all(calls)
        tx = await chain.sign(batch, ALICE, await chain.account_next_index(ALICE.address))
        await chain.submit(tx)
    failed, ok = chain.blocks[-2], chain.blocks[-1]
    assert [e.name for e in failed.events] == ["ExtrinsicFailed"]
    paid = [e for e in decode_block(ok, {rw_addr: rw}) if isinstance(e, Paid)]
    assert [(p.payout_id, p.amount, p.to) for p in paid] == [
        ("0x" + "01" * 32, 101, BOB.address),
        ("0x" + "02" * 32, 102, BOB.address),
    ]
    dry = await chain.contract_dry_run(rw_addr, distribute(2, [1]), ALICE.address)
    assert not dry.success
    with pytest.raises(Exception) as info:
        rw.decode_return("distribute", dry.output)
    assert getattr(info.value, "error", None) == "PayoutAlreadyPaid"


async def test_pool_rejects_stale_and_duplicate_nonces(chain: MemoryChainPort) -> None:
    chain.instant = False
    call = await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 5})
    tx0 = await chain.sign(call, ALICE, 0)
    await chain.submit(tx0)
    assert await chain.account_next_index(ALICE.address) == 1  # pool-aware
    with pytest.raises(PoolRejected) as prio:
        await chain.submit(await chain.sign(call, ALICE, 0))
    assert prio.value.code == 1014 and prio.value.transient
    chain.produce_block()
    with pytest.raises(PoolRejected) as stale:
        await chain.submit(await chain.sign(call, ALICE, 0))
    assert stale.value.code == 1010 and stale.value.transient
    assert await chain.free_balance(BOB.address) == 10**21 + 5


async def test_memory_compose_checks_calls_and_arguments(chain: MemoryChainPort) -> None:
    from ami_node.port import CallError

    with pytest.raises(CallError, match="no call Sudo.sudo"):
        await chain.compose_call("Sudo", "sudo", {})
    with pytest.raises(CallError, match=r"expected \['dest', 'value'\]"):
        await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address})
    with pytest.raises(CallError, match="not an SS58 address"):
        await chain.compose_call("Balances", "transfer_keep_alive", {"dest": "nobody", "value": 1})
    with pytest.raises(CallError, match="at least one call"):
        await chain.batch_all([])


async def test_every_contract_event_becomes_its_domain_event(chain: MemoryChainPort) -> None:
    from ami_node.events import EVENT_TYPES, Transfer

    nft_addr, rw_addr = chain.deploy("ami_nft", ALICE.address), chain.deploy("ami_rewards", ALICE.address)
    nft, rw = ContractAbi.load("ami_nft"), ContractAbi.load("ami_rewards")
    payout = {"id": b"\x07" * 32, "to": ALICE.address, "amount": 50, "kind": 0}
    steps = [
        (nft_addr, nft, "add_oracle", {"account": BOB.address}),
        (nft_addr, nft, "remove_oracle", {"account": BOB.address}),
        (
            nft_addr,
            nft,
            "mint",
            {"audio_cid": "a", "metadata_cid": "m", "royalty_splits": [(ALICE.address, 10_000)]},
        ),
        (nft_addr, nft, "listen", {"token_id": 1, "seconds": 1}),
        (nft_addr, nft, "tag", {"token_id": 1, "tag": "t"}),
        (nft_addr, nft, "create_playlist", {"name": "p"}),
        (nft_addr, nft, "add_to_playlist", {"playlist_id": 1, "token_id": 1}),
        (nft_addr, nft, "transfer", {"to": BOB.address, "token_id": 1}),
        (rw_addr, rw, "add_oracle", {"account": ALICE.address}),
        (rw_addr, rw, "add_validator", {"account": ALICE.address}),
        (
            rw_addr,
            rw,
            "submit_score",
            {"token_id": 1, "novelty_bp": 1, "quality_bp": 2, "model_version": 1, "commitment": b"\x03" * 32},
        ),
        (rw_addr, rw, "distribute", {"epoch": 1, "batch": 0, "payouts": [payout]}),
        (rw_addr, rw, "challenge", {"token_id": 1, "evidence": b"\x04" * 32}),
        (rw_addr, rw, "transfer", {"to": BOB.address, "amount": 20}),
        (rw_addr, rw, "remove_validator", {"account": ALICE.address}),
        (rw_addr, rw, "remove_oracle", {"account": ALICE.address}),
    ]
    for addr, abi, label, args in steps:
        await _send(chain, addr, abi.encode_call(label, **args))
    contracts = {nft_addr: nft, rw_addr: rw}
    events = [e for b in chain.blocks for e in decode_block(b, contracts)]
    assert {type(e) for e in events} == set(EVENT_TYPES.values())
    transfer = next(e for e in events if isinstance(e, Transfer))
    assert (transfer.from_, transfer.to, transfer.amount) == (ALICE.address, BOB.address, 20)
    assert transfer.model_dump(by_alias=True)["from"] == ALICE.address
    assert len({e.key for e in events}) == len(events)
