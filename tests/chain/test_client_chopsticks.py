"""SubstrateChainPort against a real Substrate runtime run offline by chopsticks (Rococo Asset Hub genesis).

The devnet serves contracts-node metadata but is our own emulator; this checks the adapter on a runtime we did
not write: heads, blocks and events, compose/sign/submit with the runtime's own signed extensions, pool
errors, Utility.batch_all, weights, and a clear CallError for a pallet the runtime lacks (no Contracts here).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from ami_node.keys import load_keypair
from ami_node.port import Block, CallError, PoolRejected
from ami_node.substrate import SubstrateChainPort

HERE = Path(__file__).parent / "chopsticks"
BIN = HERE / "node_modules" / ".bin" / "chopsticks"
SPEC_JS = HERE / "node_modules/@substrate/connect-known-chains/dist/esm/specs/rococo_v2_2_asset_hub.js"

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    """chopsticks comes with scripts/setup.sh (npm ci); without it this is a failure, not a skip."""
    if not BIN.exists():
        pytest.fail("chopsticks is not installed: run ./scripts/setup.sh")

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("chopsticks")
    text = SPEC_JS.read_text(encoding="utf-8")  # `export const chainSpec = `{...}`;`
    spec = tmp / "spec.json"
    spec.write_text(text[text.index("`") + 1 : text.rindex("`")], encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp / "chopsticks.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN), f"--genesis={spec}", "--host=127.0.0.1", f"--port={port}",
             "--build-block-mode=Instant"],
            cwd=HERE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while b"RPC listening" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chopsticks did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        ws_url = f"ws://127.0.0.1:{port}"
        with connect(ws_url) as ws:  # fund //Alice (chopsticks' dev RPC writes storage directly)
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "dev_setStorage", "params": [
                {"System": {"Account": [[[ALICE.address], {"providers": 1,
                                                           "data": {"free": str(10**18)}}]]}}]}))
            assert "result" in json.loads(ws.recv())
        yield ws_url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def _landed(port: SubstrateChainPort, tx_hash: str) -> Block:
    for _ in range(200):
        head = await port.finalized_head()
        for n in range(max(1, head.number - 2), head.number + 1):
            block = await port.block(n)
            if tx_hash in block.extrinsic_hashes:
                return block
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tx_hash} did not land")


async def test_real_runtime_transfer_batch_and_errors(url: str) -> None:
    port = SubstrateChainPort(url, timeout_s=30.0)
    try:
        fin, best = await port.finalized_head(), await port.best_head()
        assert 0 <= fin.number <= best.number and await port.block_hash(fin.number) == fin.hash
        assert await port.free_balance(ALICE.address) == 10**18
        bob_before = await port.free_balance(BOB.address)

        params = {"dest": BOB.address, "value": 10**12}
        call = await port.compose_call("Balances", "transfer_keep_alive", params)
        nonce = await port.account_next_index(ALICE.address)
        tx = await port.sign(call, ALICE, nonce, era_period=64)
        assert await port.submit(tx) == tx.hash
        block = await _landed(port, tx.hash)
        xt = block.extrinsic_hashes.index(tx.hash)
        mine = [(e.pallet, e.name) for e in block.events if e.extrinsic_index == xt]
        assert ("Balances", "Transfer") in mine and mine[-1] == ("System", "ExtrinsicSuccess")
        assert await port.free_balance(BOB.address) == bob_before + 10**12

        with pytest.raises(PoolRejected) as stale:  # the nonce is used now
            await port.submit(await port.sign(call, ALICE, nonce))
        assert stale.value.code == 1010 and stale.value.transient

        batch = await port.batch_all([call, call])
        used, limit = await port.call_weight(batch, ALICE.address), await port.max_extrinsic_weight()
        assert 0 < used[0] < limit[0]
        btx = await port.sign(batch, ALICE, await port.account_next_index(ALICE.address))
        await port.submit(btx)
        bblock = await _landed(port, btx.hash)
        bxt = bblock.extrinsic_hashes.index(btx.hash)
        names = [e.name for e in bblock.events if e.extrinsic_index == bxt]
        assert names.count("ItemCompleted") == 2 and "BatchCompleted" in names
        assert await port.free_balance(BOB.address) == bob_before + 3 * 10**12

        with pytest.raises(CallError, match="unknown pallet 'Contracts'"):
            await port.compose_call("Contracts", "call", {})
    finally:
        await port.close()
