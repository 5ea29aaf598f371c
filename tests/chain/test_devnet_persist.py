"""Devnet persistence across restarts (--state DIR), the shipped metadata's provenance, and `ami devnet`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.contracts import ContractCode, ContractInstance
from websockets.sync.client import connect

from ami_node.devnet.meta import RUNTIME_DIR
from ami_node.devnet.testing import running_devnet

ROOT = Path(__file__).resolve().parents[2]
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


def test_metadata_files_match_their_recorded_provenance() -> None:
    text = (RUNTIME_DIR / "PROVENANCE.md").read_text()
    assert "@polkadot/types-support" in text and "Apache-2.0" in text
    rows = re.findall(
        r"\| `(substrate-contracts-node-[a-z]+\.(?:hex|json))` \|[^|]*\| `([0-9a-f]{64})` \|", text
    )
    assert {name for name, _ in rows} == {
        "substrate-contracts-node-metadata.hex",
        "substrate-contracts-node-rpc.json",
        "substrate-contracts-node-version.json",
    }
    for name, digest in rows:
        assert hashlib.sha256((RUNTIME_DIR / name).read_bytes()).hexdigest() == digest, name
    assert len(json.loads((RUNTIME_DIR / "substrate-contracts-node-rpc.json").read_text())["methods"]) == 97


def test_state_survives_a_restart(tmp_path: Path) -> None:
    bundle = ROOT / "pallets_spec" / "bundles" / "ami_nft.contract"
    wasm = tmp_path / "nft.wasm"
    wasm.write_bytes(bytes.fromhex(json.loads(bundle.read_text())["source"]["wasm"][2:]))
    state = tmp_path / "chain"
    with running_devnet(state_dir=state) as dn:
        si = SubstrateInterface(url=dn.url)
        call = si.compose_call(
            "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 7 * 10**12}
        )
        si.submit_extrinsic(si.create_signed_extrinsic(call=call, keypair=ALICE), wait_for_finalization=True)
        code = ContractCode.create_from_contract_files(str(wasm), str(bundle), si)
        nft = code.deploy(keypair=ALICE, constructor="new", args={}, upload_code=True)
        splits = [(ALICE.ss58_address, 10000)]
        mint = {"audio_cid": "a", "metadata_cid": "m", "royalty_splits": splits}
        assert nft.exec(ALICE, "mint", mint, wait_for_finalization=True).is_success
        genesis = si.get_block_hash(0)
        head = si.get_chain_finalised_head()
        bob_free = si.query("System", "Account", [BOB.ss58_address]).value["data"]["free"]
        nonce = si.get_account_nonce(ALICE.ss58_address)
        si.close()
    with running_devnet(state_dir=state) as dn:
        si = SubstrateInterface(url=dn.url)
        assert si.get_block_hash(0) == genesis
        assert si.get_chain_finalised_head() == head
        assert si.query("System", "Account", [BOB.ss58_address]).value["data"]["free"] == bob_free
        assert si.get_account_nonce(ALICE.ss58_address) == nonce
        again = ContractInstance.create_from_address(nft.contract_address, str(bundle), substrate=si)
        assert again.read(BOB, "total_supply").value["result"]["Ok"]["data"] == {"Ok": 1}
        block = si.get_block(block_hash=head)
        assert len(block["extrinsics"]) == 2  # the timestamp inherent and the mint
        receipt = again.exec(ALICE, "mint", mint, wait_for_inclusion=True)  # the chain continues
        assert receipt.is_success
        assert si.get_block_number(receipt.block_hash) == si.get_block_number(head) + 1
        si.close()


def test_ami_devnet_command_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from offchain.cli import main; main()", "devnet", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"ws://127\.0\.0\.1:\d+", first)
        assert url, first
        lines = [proc.stdout.readline() for _ in range(9)]
        assert any(ALICE.ss58_address in line for line in lines)
        with connect(url.group(0)) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system_name", "params": []}))
            assert json.loads(ws.recv(timeout=10))["result"] == "Substrate Contracts Node"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_unusable_state_or_port_is_a_clear_error_and_data_stays(tmp_path: Path) -> None:
    import socket

    from ami_node.devnet.store import SqliteStore, StoreError

    junk = tmp_path / "devnet.sqlite"
    junk.write_bytes(b"not a database")
    with pytest.raises(StoreError, match="not a devnet state database"):
        SqliteStore(tmp_path)
    assert junk.read_bytes() == b"not a database"
    cmd = [sys.executable, "-c", "from offchain.cli import main; main()", "devnet", "--port", "0"]
    proc = subprocess.run([*cmd, "--state", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a devnet state database" in proc.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cmd[-1] = str(taken.getsockname()[1])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot serve on 127.0.0.1" in proc.stderr
