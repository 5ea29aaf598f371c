"""SubstrateChainPort (substrate-interface 1.8.1) against the local devnet over a real websocket.

Transfer, events, contract deploy / dry-run / call / revert, the follower on a real node, pool errors, and
reconnecting when the devnet drops connections.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from waiting import Calls, finalized_block_with

from ami_node.abi import ContractAbi, metadata_dir
from ami_node.devnet.testing import DevnetHandle, running_devnet
from ami_node.events import Listened, Minted, Tagged, decode_block
from ami_node.follower import BlockFollower
from ami_node.keys import load_keypair
from ami_node.port import Block, CallError, ChainPort, ChainUnavailable, PoolRejected
from ami_node.substrate import SubstrateChainPort

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")
CHARLIE = load_keypair("//Charlie")
NFT = ContractAbi.load("ami_nft")


@pytest.fixture(scope="module")
def port(dn: DevnetHandle) -> Iterator[SubstrateChainPort]:
    # Shared by the module's tests (each runs on its own event loop): the port holds no loop-bound state, and
    # decoding the node's metadata once per connection is the slow part of connecting.
    p = SubstrateChainPort(dn.url, timeout_s=10.0, poll_interval_s=0.05)
    yield p
    asyncio.run(p.close())


async def _send(port: SubstrateChainPort, call: Any, key: Any = ALICE) -> Block:
    tx = await port.sign(call, key, await port.account_next_index(key.address))
    assert await port.submit(tx) == tx.hash
    return await finalized_block_with(port, tx.hash)


async def _deploy_nft(port: SubstrateChainPort) -> str:
    bundle = ContractAbi.load(metadata_dir().parent / "bundles" / "ami_nft.contract")
    assert bundle.wasm is not None
    call = await port.compose_call("Contracts", "instantiate_with_code", {
        "value": 0, "gas_limit": {"ref_time": 10**11, "proof_size": 10**6}, "storage_deposit_limit": None,
        "code": "0x" + bundle.wasm.hex(), "data": "0x" + NFT.constructor("new").hex(),
        "salt": "0x" + os.urandom(8).hex()})  # a fresh address per deployment
    block = await _send(port, call)
    instantiated = [e for e in block.events if e.pallet == "Contracts" and e.name == "Instantiated"]
    assert len(instantiated) == 1
    return str(instantiated[0].attributes["contract"])


async def test_protocol_and_heads(port: SubstrateChainPort) -> None:
    assert isinstance(port, ChainPort)
    fin, best = await port.finalized_head(), await port.best_head()
    assert fin.number <= best.number
    assert await port.block_hash(fin.number) == fin.hash
    assert await port.block_hash(10**6) is None


async def test_transfer_lands_with_events_and_pool_aware_nonces(port: SubstrateChainPort) -> None:
    before = await port.free_balance(CHARLIE.address)
    call = await port.compose_call("Balances", "transfer_keep_alive",
                                   {"dest": CHARLIE.address, "value": 12_345})
    n0 = await port.account_next_index(ALICE.address)
    tx = await port.sign(call, ALICE, n0, era_period=32)
    assert tx.era_death - tx.era_birth == 32 and tx.signer == ALICE.address and tx.nonce == n0
    await port.submit(tx)
    block = await finalized_block_with(port, tx.hash)
    xt = block.extrinsic_hashes.index(tx.hash)
    mine = [e for e in block.events if e.extrinsic_index == xt]
    assert ("Balances", "Transfer") in {(e.pallet, e.name) for e in mine}
    assert (mine[-1].pallet, mine[-1].name) == ("System", "ExtrinsicSuccess")
    assert [e.index for e in block.events] == list(range(len(block.events)))
    assert await port.free_balance(CHARLIE.address) == before + 12_345
    assert await port.account_next_index(ALICE.address) == n0 + 1
    weight = await port.call_weight(call, ALICE.address)
    limit = await port.max_extrinsic_weight()
    assert 0 < weight[0] < limit[0]


async def test_compose_errors_say_what_is_expected(port: SubstrateChainPort) -> None:
    with pytest.raises(CallError, match="unknown pallet 'Nope'.*Balances"):
        await port.compose_call("Nope", "x", {})
    with pytest.raises(CallError, match="has no call 'teleport'"):
        await port.compose_call("Balances", "teleport", {})
    with pytest.raises(CallError, match=r"bad arguments for Balances.transfer_keep_alive.*expected \(dest"):
        await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address})
    with pytest.raises(CallError, match="not an SS58 address"):
        await port.free_balance("bogus")


async def test_contract_deploy_dry_run_call_and_follow(port: SubstrateChainPort) -> None:
    nft = await _deploy_nft(port)
    mint = NFT.encode_call("mint", audio_cid="bafyaudio", metadata_cid="bafymeta",
                           royalty_splits=[(ALICE.address, 7_000), (BOB.address, 3_000)])
    dry = await port.contract_dry_run(nft, mint, ALICE.address)
    assert dry.success and NFT.decode_return("mint", dry.output) == 1
    assert dry.gas_required[0] > 0
    # A revert is reported with its decoded ink! error, and nothing is sent.
    revert = await port.contract_dry_run(nft, NFT.encode_call("add_oracle", account=BOB.address), BOB.address)
    assert not revert.success
    assert NFT.decode_error_output("add_oracle", revert.output) == "NotContractOwner"
    # A trap (value sent to a non-payable message) is a dispatch error, named from the node's metadata.
    trap = await port.contract_dry_run(nft, mint, ALICE.address, value=1)
    assert not trap.success and trap.error == "Contracts::ContractTrapped"

    await _send(port, await port.contract_call(nft, mint, dry.gas_required))
    listen_data = NFT.encode_call("listen", token_id=1, seconds=30)
    listen = await port.contract_call(nft, listen_data, dry.gas_required)
    await _send(port, listen, key=BOB)
    tag = await port.contract_call(nft, NFT.encode_call("tag", token_id=1, tag="lofi"), dry.gas_required)
    await _send(port, tag, key=CHARLIE)

    follower = BlockFollower(port, {nft: NFT}, start_after=None)
    events: list[Any] = []
    blocks = follower.blocks()
    while len(events) < 3:
        fb = await asyncio.wait_for(anext(blocks), 10)
        events.extend(fb.events)
    assert [type(e) for e in events] == [Minted, Listened, Tagged]
    minted, listened, tagged = events
    assert minted.royalty_splits == [(ALICE.address, 7_000), (BOB.address, 3_000)]
    assert minted.audio_cid == "bafyaudio" and minted.creator == ALICE.address
    assert listened.listener == BOB.address and listened.seconds == 30
    assert tagged.curator == CHARLIE.address and tagged.tag == "lofi"
    assert len({e.key for e in events}) == 3 and all(e.contract == nft for e in events)


async def test_pool_rejections_are_typed(dn: DevnetHandle, port: SubstrateChainPort) -> None:
    call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 1})
    dn.set_faults(reject_next=1, reject_code=1014)
    tx = await port.sign(call, ALICE, await port.account_next_index(ALICE.address))
    with pytest.raises(PoolRejected) as low:
        await port.submit(tx)
    assert low.value.code == 1014 and low.value.transient
    await port.submit(tx)  # the same bytes go through once the fault is spent
    await finalized_block_with(port, tx.hash)
    with pytest.raises(PoolRejected) as again:  # its nonce is used now
        await port.submit(await port.sign(call, ALICE, tx.nonce))
    assert again.value.code == 1010 and again.value.transient
    bad = await port.sign(call, ALICE, await port.account_next_index(ALICE.address))
    forged = bad.data[:-40] + bytes(40 - 1) + bad.data[-1:]  # corrupt the tail (part of the call)
    with pytest.raises(PoolRejected) as invalid:
        await port.submit(type(bad)(bad.hash, forged, bad.signer, bad.nonce, bad.era_birth, bad.era_death))
    assert not invalid.value.transient


async def test_reconnects_when_the_devnet_drops_connections(
    dn: DevnetHandle, port: SubstrateChainPort
) -> None:
    await port.finalized_head()
    assert dn.drop_connections() >= 1
    assert (await port.finalized_head()).number >= 0  # the watch connection is rebuilt
    # Every 20th message closes the socket: calls crossing a drop fail midway and must be retried whole.
    dn.set_faults(drop_every_n_messages=20)
    try:
        call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 7})
        for _ in range(3):
            block = await _send(port, call)
            assert block.ref.number >= 1
    finally:
        dn.set_faults(drop_every_n_messages=0)


async def test_unreachable_node_raises_chain_unavailable_within_the_timeout() -> None:
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{s.getsockname()[1]}"
    port = SubstrateChainPort(url, timeout_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ChainUnavailable, match="unreachable"):
        await port.finalized_head()
    assert loop.time() - start < 5.0
    await port.close()


async def test_batch_all_lands_each_call_once(port: SubstrateChainPort) -> None:
    nft = await _deploy_nft(port)
    gas = (10**10, 10**6)
    mint = NFT.encode_call("mint", audio_cid="a", metadata_cid="m", royalty_splits=[(ALICE.address, 10_000)])
    await _send(port, await port.contract_call(nft, mint, gas))
    calls = [
        await port.contract_call(nft, NFT.encode_call("listen", token_id=1, seconds=s), gas) for s in (5, 6)
    ] + [await port.contract_call(nft, NFT.encode_call("tag", token_id=1, tag="ambient"), gas)]
    batch = await port.batch_all(calls)
    weight = await port.call_weight(batch, ALICE.address)
    single = await port.call_weight(calls[0], ALICE.address)
    assert weight[0] > single[0]
    block = await _send(port, batch)
    events = decode_block(block, {nft: NFT})
    assert [(type(e).__name__, getattr(e, "seconds", None)) for e in events] == [
        ("Listened", 5), ("Listened", 6), ("Tagged", None)]


async def test_follower_waits_for_finality(dn: DevnetHandle, port: SubstrateChainPort) -> None:
    start = await port.finalized_head()
    blocks = BlockFollower(port, {}, start_after=start).blocks()
    dn.set_faults(hold_finality=True)
    try:
        call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 3})
        tx = await port.sign(call, ALICE, await port.account_next_index(ALICE.address))
        await port.submit(tx)
        nxt = asyncio.ensure_future(anext(blocks))
        for _ in range(50):  # the block is produced but not finalized: nothing is yielded
            if (await port.best_head()).number > start.number:
                break
            await asyncio.sleep(0.02)
        # The follower polls the finalized head: two more polls after the block is best, and a block it was
        # going to yield would have been (it polls again only once it has nothing to yield).
        await Calls(port, "finalized_head").more(2)
        assert (await port.best_head()).number > start.number and not nxt.done()
    finally:
        dn.set_faults(hold_finality=False)
    fb = await asyncio.wait_for(nxt, 10)
    assert fb.ref.number == start.number + 1
    assert fb.block is not None and tx.hash in fb.block.extrinsic_hashes


async def test_survives_a_node_restart(tmp_path: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with running_devnet(port=free, state_dir=tmp_path) as dn:
        port = SubstrateChainPort(dn.url, timeout_s=10.0, poll_interval_s=0.05)
        call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 9})
        landed = await _send(port, call)
        await port.finalized_head()  # the watch connection is open when the node goes away
    probe = SubstrateChainPort(dn.url, timeout_s=1.0)
    with pytest.raises(ChainUnavailable, match="unreachable"):  # down: a clear error within the deadline
        await probe.finalized_head()
    await probe.close()
    with running_devnet(port=free, state_dir=tmp_path):
        head = await port.finalized_head()  # same port, same chain: the connection is reopened
        assert head.number >= landed.ref.number
        assert await port.block_hash(landed.ref.number) == landed.ref.hash
        await _send(port, call)
        await port.close()  # before the devnet stops: its shutdown waits for open clients' close frames


async def test_signing_anchors_on_best_when_finality_lags(dn: DevnetHandle, port: SubstrateChainPort) -> None:
    dn.set_faults(hold_finality=True)
    try:
        dn.new_block(40)
        fin, best = await port.finalized_head(), await port.best_head()
        assert best.number - fin.number >= 40
        call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 4})
        tx = await port.sign(call, ALICE, await port.account_next_index(ALICE.address), era_period=64)
        assert tx.era_birth > fin.number and tx.era_birth <= best.number < tx.era_death
        await port.submit(tx)
    finally:
        dn.set_faults(hold_finality=False)
    await finalized_block_with(port, tx.hash)


async def test_stale_after_a_dropped_submit_is_not_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    from substrateinterface.exceptions import SubstrateRequestException
    from websocket import WebSocketConnectionClosedException

    import ami_node.substrate as adapter
    import ami_node.substrate_link as link
    from ami_node.port import SignedTx

    answers: list[BaseException] = [
        WebSocketConnectionClosedException("dropped while waiting for the answer"),
        SubstrateRequestException({"code": 1010, "message": "Invalid Transaction",
                                   "data": "Transaction is outdated"}),
    ]

    def fake_rpc(si: Any, method: str, params: list[Any]) -> Any:
        assert method == "author_submitExtrinsic"
        raise answers.pop(0)

    monkeypatch.setattr(adapter, "_rpc", fake_rpc)
    monkeypatch.setattr(link.Connection, "_ensure", lambda self: object())
    port = SubstrateChainPort("ws://127.0.0.1:1", timeout_s=5.0)
    tx = SignedTx("0x" + "11" * 32, b"\x01\x02", ALICE.address, 0, 0, 64)
    with pytest.raises(PoolRejected) as info:
        await port.submit(tx)
    assert info.value.code == 1010 and not info.value.transient and "may have landed" in info.value.reason
    assert not answers
    await port.close()


async def test_follower_ignores_reorgs_of_unfinalized_blocks(
    dn: DevnetHandle, port: SubstrateChainPort
) -> None:
    dn.set_faults(hold_finality=True)
    start = await port.finalized_head()
    blocks = BlockFollower(port, {}, start_after=start).blocks()
    first = asyncio.ensure_future(anext(blocks))  # the follower runs while the doomed branch is best
    try:
        call = await port.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.address, "value": 2})
        tx = await port.sign(call, ALICE, await port.account_next_index(ALICE.address))
        await port.submit(tx)  # included in an unfinalized block that the reorg retracts
        dn.new_block(3)
        old_best = await port.best_head()
        await Calls(port, "finalized_head").more(2)  # the follower looked at finality since: nothing to yield
        assert not first.done()
        dn.reorg(3, 4)
        new_best = await port.best_head()
        assert new_best.number == old_best.number + 1
        assert await port.block_hash(old_best.number) != old_best.hash
        dn.finalize()
    finally:
        dn.set_faults(hold_finality=False)
    followed = [await asyncio.wait_for(first, 10)]
    while followed[-1].ref.number < new_best.number:
        followed.append(await asyncio.wait_for(anext(blocks), 10))
    assert [f.ref.number for f in followed] == list(range(start.number + 1, new_best.number + 1))
    assert followed[-1].ref.hash == new_best.hash  # the canonical branch, chained parent to child
    assert sum(tx.hash in (f.block.extrinsic_hashes if f.block else ()) for f in followed) == 1
