"""Contract commands a script can rely on, on the devnet: `ami deploy` granting roles to named addresses,
`ami call` for role grants, strict argument typing before anything is signed, --json results, mint checks,
and one-line failures with the documented exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from ami_node.deploy import is_stub_wasm
from ami_node.keys import load_keypair
from ami_node.substrate import SubstrateChainPort
from offchain.cli.chain_output import format_amount

ALICE = load_keypair("//Alice").address
BOB = load_keypair("//Bob").address
CHARLIE = load_keypair("//Charlie").address
DAVE = load_keypair("//Dave").address


def next_nonce(url: str, who: str) -> int:
    async def go() -> int:
        async with SubstrateChainPort(url) as port:
            return await port.account_next_index(who)

    return asyncio.run(go())


def query(ami: Any, env: dict[str, str], message: str, args: dict[str, Any], contract: str) -> Any:
    r = ami("query", message, json.dumps(args), "--contract", contract, env=env)
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_deploy_grants_roles_to_the_named_addresses(ami: Any, deployed: Any) -> None:
    env = deployed.env
    assert query(ami, env, "is_oracle", {"account": BOB}, "nft") is True
    assert query(ami, env, "is_oracle", {"account": BOB}, "rewards") is True
    assert query(ami, env, "is_validator", {"account": CHARLIE}, "rewards") is True
    # the deployer named others, so it holds no role itself
    assert query(ami, env, "is_oracle", {"account": ALICE}, "rewards") is False
    assert query(ami, env, "is_validator", {"account": BOB}, "rewards") is False


def test_call_grants_a_role_and_prints_json(ami: Any, deployed: Any) -> None:
    env = deployed.env
    r = ami("call", "rewards", "add_validator", json.dumps({"account": DAVE}), "--json", env=env)
    assert r.code == 0, r.err
    result = json.loads(r.out)
    receipt = result["receipt"]
    assert receipt["success"] is True and receipt["block"] > 0
    assert any(e.get("pallet") == "System" and e["event"] == "ExtrinsicSuccess" for e in receipt["events"])
    assert query(ami, env, "is_validator", {"account": DAVE}, "rewards") is True
    r = ami("call", "rewards", "add_validatr", "{}", env=env)
    assert r.code == 2 and "did you mean add_validator" in r.err
    r = ami("call", "nfts", "listen", "{}", env=env)
    assert r.code == 2 and "CONTRACT must be nft, rewards" in r.err


def test_arguments_are_typed_strictly_before_signing(ami: Any, deployed: Any) -> None:
    env, url = deployed.env, deployed.devnet.url
    before = next_nonce(url, ALICE)
    cases = [
        (["call", "nft", "listen", '{"token_id": 0, "seconds": 0.99}'], "expected an integer (u32)"),
        (["call", "nft", "listen", '{"token_id": 0, "seconds": 1.5}'], "got the fraction 1.5"),
        (["call", "nft", "listen", '{"token_id": true, "seconds": 30}'], "got the boolean true"),
        (
            ["call", "nft", "listen", '{"token_id": 18446744073709551616, "seconds": 30}'],
            "out of range for u64",
        ),
        (["call", "nft", "listen", '{"token_id": 0, "seconds": 30, "extra": 1}'], "unknown extra"),
        (["call", "rewards", "add_oracle", '{"account": 123}'], "expected an SS58 address"),
        (["call", "nft", "listen", "{" + '"token_id": ' + "9" * 5001 + ', "seconds": 30}'], "ARGS_JSON"),
        (
            ["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": 0.99})],
            "not an integer",
        ),
        (["tx", "Balances", "transfer_keep_alive", '{"dest": "x", "value": ' + "9" * 100 + "}"], "bits"),
        (["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": 123, "value": 1})], "SS58 address"),
        (["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": True})], "boolean true"),
        (
            ["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": 2**128})],
            "range for u128",
        ),
        (
            ["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": 1, "x": 2})],
            "unknown x",
        ),
        (["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB})], "missing value"),
        (["listen", "0", "1.5"], "Invalid value for 'seconds'"),
        (["listen", "0", "99999999999"], "4294967295"),
        (["tx", "System", "remark", '{"remark": "0x00"}', "--era", "-5"], "--era"),
    ]
    for args, needle in cases:
        r = ami(*args, env=env)
        assert r.code == 2, (args, r.out, r.err)
        assert needle in r.flat_err, (args, r.err)
        assert "Traceback" not in r.err + r.out
    assert next_nonce(url, ALICE) == before  # nothing was signed and sent


def test_json_results_parse_and_text_fits_80_columns(ami: Any, deployed: Any, tmp_path: Path) -> None:
    env = deployed.env
    r = ami(
        "tx",
        "Balances",
        "transfer_keep_alive",
        json.dumps({"dest": DAVE, "value": 10**12}),
        "--json",
        env=env,
    )
    assert r.code == 0, r.err
    events = json.loads(r.out)["receipt"]["events"]
    transfer = next(e for e in events if e["event"] == "Transfer")
    assert transfer["fields"]["amount"] == 10**12  # raw planck in JSON
    r = ami("balance", DAVE, env=env)
    assert r.code == 0 and " UNIT" in r.out and all(len(line) <= 80 for line in r.out.splitlines()), r.out
    raw = json.loads(ami("balance", DAVE, "--json", env=env).out)
    assert f"free {format_amount(raw['free'], raw['decimals'], raw['symbol'])}" in r.out
    r = ami("tx", "System", "remark", '{"remark": "0x00"}', env=env)
    assert r.code == 0 and all(len(line) <= 80 for line in r.out.splitlines()[:3]), r.out


def test_format_amount_worked_examples() -> None:
    assert format_amount(1_500_000_000_000, 12, "UNIT") == "1.5 UNIT"
    assert format_amount(1, 12, "UNIT") == "0.000000000001 UNIT"
    assert format_amount(1_234_000_000_000_000, 12, "UNIT") == "1,234 UNIT"
    assert format_amount(42, 0, "MINT") == "42 MINT"


def _wav(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(22050 * seconds)) / 22050.0
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 22050)
    return path


def test_mint_checks_before_signing(ami: Any, deployed: Any, tmp_path: Path) -> None:
    env, url = deployed.env, deployed.devnet.url
    before = next_nonce(url, ALICE)
    track = _wav(tmp_path / "song.wav")
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(track.read_bytes())
    cases = [
        (["mint", str(track), "--max-bytes", "1000"], "over the 1,000-byte cap"),
        (["mint", str(track)], "give --ipfs URL"),
        (["mint", str(track), "--cids-only", "--metadata-cid", "not-a-cid"], "--metadata-cid is not a CID"),
        (["mint", str(m4a), "--cids-only"], "unsupported audio format 'm4a'"),
    ]
    for args, needle in cases:
        r = ami(*args, env=env)
        assert r.code == 2 and needle in r.err, (args, r.err)
    assert next_nonce(url, ALICE) == before
    r = ami("mint", str(track), "--cids-only", "--json", env=env)
    assert r.code == 0, r.err
    minted = json.loads(r.out)
    info = query(ami, env, "token_info", {"token_id": minted["token_id"]}, "nft")
    assert info["audio_cid"] == minted["audio_cid"] and info["metadata_cid"] == minted["metadata_cid"]


def test_shipped_bundles_are_stubs_the_devnet_accepts() -> None:
    from ami_node.abi import ContractAbi
    from ami_node.deploy import default_bundles

    for name in ("ami_nft", "ami_rewards"):
        abi = ContractAbi.from_file(default_bundles() / f"{name}.contract")
        assert abi.wasm is not None and is_stub_wasm(abi.wasm)
    # a real ink! contract imports pallet-contracts' host functions from the "seal0" module
    real_import = b"\x00asm\x01\x00\x00\x00\x02\x0e\x01\x05seal0\x05input\x00\x00"
    assert not is_stub_wasm(real_import)


def test_unreachable_and_foreign_nodes_fail_in_one_line(ami: Any, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = ami("tx", "System", "remark", '{"remark": "0x00"}', "--url", f"ws://127.0.0.1:{port}")
    assert r.code == 3 and "node unreachable" in r.err and len(r.err.strip().splitlines()) == 2, r.err
    r = ami("balance", BOB, "--url", "http://127.0.0.1:9944")
    assert r.code == 2 and "websocket URL" in r.err
    # a server that is no Substrate node: one line, exit 3, no traceback
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # its log would mix with the CLI's stderr
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        # AMI_RPC_TIMEOUT bounds the chain client's reconnect attempts (it retries the handshake)
        r = ami("balance", BOB, "--url", f"ws://127.0.0.1:{server.server_port}", env={"AMI_RPC_TIMEOUT": "3"})
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert r.code == 3 and "Substrate node" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


class _RealNodePort:
    """Just enough of a chain port for `deploy` up to its first upload: a node that says it is
    substrate-contracts-node 0.42.0 (not the devnet), and records whether anything was composed."""

    _watch = None

    def __init__(self) -> None:
        self.composed: list[str] = []

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        return (2_000_000_000_000, 5_000_000)

    async def _rpc_checked(self, conn: Any, method: str, params: list[Any]) -> Any:
        assert method == "system_version"
        return "0.42.0-ab8d2f1"

    async def compose_call(self, pallet: str, call: str, params: dict[str, Any]) -> Any:
        self.composed.append(f"{pallet}.{call}")
        raise RuntimeError("stop here: the upload would be signed next")


def test_deploy_refuses_stub_bundles_on_a_real_node() -> None:
    import pytest

    from ami_node.deploy import DeployError, default_bundles, deploy

    port = _RealNodePort()
    with pytest.raises(DeployError, match="stub Wasm.*not the local devnet.*--allow-stub"):
        asyncio.run(deploy(port, load_keypair("//Alice"), "ws://node:9944", default_bundles(), 10))  # type: ignore[arg-type]
    assert port.composed == []  # nothing was signed or sent
    with pytest.raises(RuntimeError, match="stop here"):
        asyncio.run(
            deploy(port, load_keypair("//Alice"), "ws://node:9944", default_bundles(), 10, allow_stub=True)  # type: ignore[arg-type]
        )
    assert port.composed == ["Contracts.instantiate_with_code"]
