"""Any Substrate client, not only ours: polkadot-js (@polkadot/api) connects to the devnet, reads an account
and sends a mortal signed transfer until finalized (ami_node/devnet/js/check.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

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
