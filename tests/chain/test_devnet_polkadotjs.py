"""Any Substrate client, not only ours: polkadot-js (@polkadot/api) connects to the devnet, reads an account
and sends a mortal signed transfer until finalized (ami_node/devnet/js/check.mjs)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from scalecodec.utils.ss58 import ss58_encode
from substrateinterface import Keypair

from ami_node.devnet.testing import running_devnet

JS = Path(__file__).resolve().parents[2] / "ami_node" / "devnet" / "js"


def test_polkadot_js_transfers_until_finalized() -> None:
    assert shutil.which("node") and (JS / "node_modules" / "@polkadot" / "api").is_dir(), (
        "needs node and `npm ci` in ami_node/devnet/js: run ./scripts/setup.sh"
    )
    with running_devnet(finality_lag=1) as dn:
        proc = subprocess.run(
            ["node", str(JS / "check.mjs"), dn.url], capture_output=True, text=True, timeout=90, check=False
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        finalized = dn.chain.finalized.number
    assert seen["chain"] == "Development" and seen["specName"] == "substrate-contracts-node"
    assert seen["moved"] == "12345678901234"
    # polkadot-js drops InBlock when Finalized follows before it has fetched that block's events (switchMap)
    assert seen["statuses"][0] == "Ready" and seen["statuses"][-1] == "Finalized"
    assert seen["events"] == [
        "balances.Withdraw",
        "balances.Transfer",
        "transactionPayment.TransactionFeePaid",
        "system.ExtrinsicSuccess",
    ]
    assert seen["failed"] is None and finalized >= 1


def test_polkadot_js_api_contract_deploys_with_its_own_dry_run() -> None:
    """The dApp / contracts-ui flow with @polkadot/api-contract (ami_node/devnet/js/contracts.mjs): dry-run
    `ContractsApi_instantiate`, deploy with the gasRequired and storage deposit it returned, find the contract
    in Contracts.ContractInfoOf / CodeInfoOf / PristineCode, query, send `mint`, decode `Minted`."""
    assert (JS / "node_modules" / "@polkadot" / "api-contract").is_dir(), "run ./scripts/setup.sh (npm ci)"
    bundle = JS.parents[2] / "pallets_spec" / "bundles" / "ami_nft.contract"
    wasm = bytes.fromhex(json.loads(bundle.read_text())["source"]["wasm"][2:])
    new_selector = hashlib.blake2b(b"new", digest_size=32).digest()[:4]  # ink!'s selector rule
    salt = bytes(range(8))
    alice = Keypair.create_from_uri("//Alice")
    with running_devnet(finality_lag=1) as dn:
        reserved_before = dn.call(lambda: dn.chain.state.account(alice.public_key)[2])
        proc = subprocess.run(
            ["node", str(JS / "contracts.mjs"), dn.url, str(bundle), "0x" + salt.hex()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        reserved_after = dn.call(lambda: dn.chain.state.account(alice.public_key)[2])
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    code_hash = hashlib.blake2b(wasm, digest_size=32).digest()
    # pallet-contracts' address rule: blake2-256("contract_addr_v1" ++ deployer ++ code hash ++ input ++ salt)
    expected = hashlib.blake2b(
        b"contract_addr_v1" + alice.public_key + code_hash + new_selector + salt, digest_size=32
    ).digest()
    assert seen["predicted"] == seen["address"] == ss58_encode(expected, 42)
    # a v2 Weight decoded by api-contract: both halves present and below the block's max extrinsic weight
    ref_time, proof_size = int(seen["dryRun"]["refTime"]), int(seen["dryRun"]["proofSize"])
    assert 0 < ref_time < 10**13 and 0 < proof_size < 10**7 and seen["dryRun"]["flags"] == 0
    # the deposit the dry-run announced is what the deployment held
    assert int(seen["dryRun"]["deposit"]) == reserved_after - reserved_before > 0
    assert seen["contractInfo"]["codeHash"] == "0x" + code_hash.hex()
    assert seen["codeInfo"] == {"owner": alice.ss58_address, "refcount": "1", "codeLen": len(wasm)}
    assert seen["pristineLen"] == seen["wasmLen"] == len(wasm)
    assert seen["supply"] == [{"ok": 0}, {"ok": 1}]
    assert seen["events"] == [
        {
            "name": "ami_nft::ami_nft::Minted",
            "args": {
                "tokenId": 1,
                "creator": alice.ss58_address,
                "audioCid": "bafyaudio",
                "metadataCid": "bafymeta",
                "royaltySplits": [[alice.ss58_address, 10000]],
            },
        }
    ]
