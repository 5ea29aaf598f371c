"""The devnet through substrate-interface 1.8.1: connect, storage, signed transfers, pool errors, batches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websockets.sync.client import connect

from ami_node.devnet.testing import DevnetHandle, running_devnet

ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
CHARLIE = Keypair.create_from_uri("//Charlie")
UNIT = 10**12


def rpc(url: str, method: str, params: list[Any] | None = None) -> dict[str, Any]:
    with connect(url) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}))
        return dict(json.loads(ws.recv()))


def free(si: SubstrateInterface, who: str) -> int:
    return int(si.query("System", "Account", [who]).value["data"]["free"])


def transfer(si: SubstrateInterface, signer: Keypair, dest: str, value: int, **kw: Any) -> Any:
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": dest, "value": value})
    return si.create_signed_extrinsic(call=call, keypair=signer, **kw)


def submit_error(si: SubstrateInterface, ext: Any) -> dict[str, Any]:
    with pytest.raises(SubstrateRequestException) as info:
        si.submit_extrinsic(ext, wait_for_inclusion=True)
    err = info.value.args[0]
    assert isinstance(err, dict)
    return err


def test_connect_reports_the_dev_chain(si: SubstrateInterface, dn: DevnetHandle) -> None:
    assert si.chain == "Development"
    si.init_runtime()
    assert si.runtime_version == 100
    assert si.get_block_hash(0) == "0x" + dn.chain.genesis_hash.hex()
    assert si.token_symbol == "UNIT" and si.ss58_format == 42
    methods = rpc(dn.url, "rpc_methods")["result"]["methods"]
    assert "author_submitAndWatchExtrinsic" in methods and "devnet_setFaults" in methods


def test_dev_accounts_are_funded_at_genesis(si: SubstrateInterface) -> None:
    for name in ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"):
        assert free(si, Keypair.create_from_uri(f"//{name}").ss58_address) >= 1 << 59


def test_signed_transfer_lands_finalized_with_events(si: SubstrateInterface) -> None:
    before_bob = free(si, BOB.ss58_address)
    ext = transfer(si, ALICE, BOB.ss58_address, 3 * UNIT, era={"period": 64})
    receipt = si.submit_extrinsic(ext, wait_for_inclusion=True, wait_for_finalization=True)
    assert receipt.is_success and receipt.finalized
    names = [(e.value["module_id"], e.value["event_id"]) for e in receipt.triggered_events]
    assert names == [
        ("Balances", "Withdraw"),
        ("Balances", "Transfer"),
        ("TransactionPayment", "TransactionFeePaid"),
        ("System", "ExtrinsicSuccess"),
    ]
    moved = receipt.triggered_events[1].value["attributes"]
    assert (
        moved["from"] == ALICE.ss58_address
        and moved["to"] == BOB.ss58_address
        and moved["amount"] == 3 * UNIT
    )
    assert receipt.total_fee_amount > 0
    assert free(si, BOB.ss58_address) == before_bob + 3 * UNIT
    block = si.get_block(block_hash=receipt.block_hash)
    assert block["header"]["number"] == si.get_block_number(si.get_chain_finalised_head())


def test_account_next_index_counts_the_pool(si: SubstrateInterface, dn: DevnetHandle) -> None:
    dn.set_faults(hold_finality=True)
    nonce = si.get_account_nonce(CHARLIE.ss58_address)
    # a future nonce waits in the pool; the next index only moves when the gap is filled
    future = transfer(si, CHARLIE, BOB.ss58_address, UNIT, nonce=nonce + 1)
    si.submit_extrinsic(future)
    assert rpc(dn.url, "system_accountNextIndex", [CHARLIE.ss58_address])["result"] == nonce
    pending = rpc(dn.url, "author_pendingExtrinsics")["result"]
    assert "0x" + bytes(future.data.data).hex() in pending
    receipt = si.submit_extrinsic(
        transfer(si, CHARLIE, BOB.ss58_address, UNIT, nonce=nonce), wait_for_inclusion=True
    )
    assert receipt.is_success
    dn.new_block()
    assert rpc(dn.url, "system_accountNextIndex", [CHARLIE.ss58_address])["result"] == nonce + 2
    assert rpc(dn.url, "author_pendingExtrinsics")["result"] == []
    dn.set_faults(hold_finality=False)


def test_bad_signature_is_1010(si: SubstrateInterface) -> None:
    ext = transfer(si, ALICE, BOB.ss58_address, UNIT)
    raw = bytearray(ext.data.data)
    raw[40] ^= 0xFF  # inside the signature
    err = rpc(si.url, "author_submitExtrinsic", ["0x" + raw.hex()])["error"]
    assert err == {"code": 1010, "message": "Invalid Transaction", "data": "Transaction has a bad signature"}


def test_stale_nonce_is_outdated(si: SubstrateInterface) -> None:
    si.submit_extrinsic(transfer(si, ALICE, BOB.ss58_address, UNIT), wait_for_inclusion=True)
    err = submit_error(si, transfer(si, ALICE, BOB.ss58_address, UNIT, nonce=0))
    assert (err["code"], err["data"]) == (1010, "Transaction is outdated")


def test_same_nonce_twice_is_priority_too_low_and_tip_usurps(
    si: SubstrateInterface, dn: DevnetHandle
) -> None:
    dn.set_faults(hold_finality=True)
    nonce = si.get_account_nonce(ALICE.ss58_address)
    gap = nonce + 5  # keep them in the future queue so no block takes them
    si.submit_extrinsic(transfer(si, ALICE, BOB.ss58_address, UNIT, nonce=gap))
    err = rpc(
        dn.url,
        "author_submitExtrinsic",
        ["0x" + bytes(transfer(si, ALICE, BOB.ss58_address, 2 * UNIT, nonce=gap).data.data).hex()],
    )
    assert err["error"]["code"] == 1014 and err["error"]["message"].startswith("Priority is too low")
    better = transfer(si, ALICE, BOB.ss58_address, 2 * UNIT, nonce=gap, tip=1000)
    assert rpc(dn.url, "author_submitExtrinsic", ["0x" + bytes(better.data.data).hex()]).get("result")
    assert len(dn.chain.pool_by_hash) == 1
    dn.call(lambda: dn.chain.pool.clear() or dn.chain.pool_by_hash.clear())
    dn.set_faults(hold_finality=False)


def test_resubmitting_an_included_tx_is_banned(si: SubstrateInterface) -> None:
    ext = transfer(si, ALICE, BOB.ss58_address, UNIT)
    si.submit_extrinsic(ext, wait_for_inclusion=True)
    err = rpc(si.url, "author_submitExtrinsic", ["0x" + bytes(ext.data.data).hex()])["error"]
    assert err["code"] == 1012


def test_unfunded_signer_cannot_pay_fees(si: SubstrateInterface) -> None:
    poor = Keypair.create_from_uri("//NobodyFundedThis")
    err = submit_error(si, transfer(si, poor, BOB.ss58_address, 1))
    assert (err["code"], err["data"]) == (1010, "Inability to pay some fees (e.g. account balance too low)")


def test_expired_era_is_rejected(si: SubstrateInterface, dn: DevnetHandle) -> None:
    ext = transfer(si, ALICE, BOB.ss58_address, UNIT, era={"period": 4})
    dn.new_block(8)  # the 4-block era has run out
    err = submit_error(si, ext)
    assert (err["code"], err["data"]) == (1010, "Transaction has an ancient birth block")


def test_batch_all_is_atomic_and_batch_is_not(si: SubstrateInterface) -> None:
    dave = Keypair.create_from_uri("//Dave")
    ok = si.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": UNIT})
    too_much = si.compose_call(
        "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 1 << 62}
    )
    before = free(si, BOB.ss58_address)
    call = si.compose_call("Utility", "batch_all", {"calls": [ok, too_much]})
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=dave), wait_for_inclusion=True
    )
    assert not receipt.is_success
    assert free(si, BOB.ss58_address) == before  # the first transfer was rolled back
    call = si.compose_call("Utility", "batch", {"calls": [ok, too_much, ok]})
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=dave), wait_for_inclusion=True
    )
    assert receipt.is_success
    names = [e.value["event_id"] for e in receipt.triggered_events]
    assert "BatchInterrupted" in names and names.count("Transfer") == 1
    assert free(si, BOB.ss58_address) == before + UNIT


def test_malformed_and_unknown_requests_get_jsonrpc_errors(dn: DevnetHandle) -> None:
    assert rpc(dn.url, "author_submitExtrinsic", ["0x0400"])["error"]["code"] == 1002
    assert rpc(dn.url, "no_suchMethod")["error"]["code"] == -32601
    assert rpc(dn.url, "chain_getBlockHash", [10**6])["result"] is None
    with connect(dn.url) as ws:
        ws.send(
            json.dumps(
                [
                    {"jsonrpc": "2.0", "id": 1, "method": "system_chain", "params": []},
                    {"jsonrpc": "2.0", "id": 2, "method": "chain_getHeader", "params": []},
                ]
            )
        )
        replies = json.loads(ws.recv())
    assert [r["id"] for r in replies] == [1, 2] and replies[0]["result"] == "Development"


def test_ed25519_signer(si: SubstrateInterface) -> None:
    from substrateinterface import KeypairType

    ed = Keypair.create_from_seed("0x" + "ed" * 32, crypto_type=KeypairType.ED25519)
    si.submit_extrinsic(transfer(si, ALICE, ed.ss58_address, 5 * UNIT), wait_for_inclusion=True)
    receipt = si.submit_extrinsic(transfer(si, ed, BOB.ss58_address, UNIT), wait_for_inclusion=True)
    assert receipt.is_success


def test_sudo_runs_root_calls_and_others_get_bad_origin(si: SubstrateInterface) -> None:
    target = Keypair.create_from_uri("//SudoTarget").ss58_address
    inner = si.compose_call("Balances", "force_set_balance", {"who": target, "new_free": 42 * UNIT})
    call = si.compose_call("Sudo", "sudo", {"call": inner})
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=ALICE), wait_for_inclusion=True
    )
    assert receipt.is_success and free(si, target) == 42 * UNIT
    sudid = [e.value["attributes"] for e in receipt.triggered_events if e.value["event_id"] == "Sudid"]
    assert sudid == [{"sudo_result": {"Ok": ()}}]
    receipt = si.submit_extrinsic(si.create_signed_extrinsic(call=call, keypair=BOB), wait_for_inclusion=True)
    assert not receipt.is_success and receipt.error_message["name"] == "RequireSudo"
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=inner, keypair=BOB), wait_for_inclusion=True
    )
    assert not receipt.is_success and receipt.error_message["name"] == "BadOrigin"


def test_interval_block_production() -> None:
    with running_devnet(block_time_ms=50, finality_lag=1) as dn:
        with connect(dn.url) as ws:
            ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeNewHeads", "params": []})
            )
            json.loads(ws.recv(timeout=5))
            numbers = [
                int(json.loads(ws.recv(timeout=5))["params"]["result"]["number"], 16) for _ in range(4)
            ]
        assert numbers == sorted(numbers) and numbers[-1] - numbers[0] == 3  # empty blocks keep coming
        assert dn.chain.best.number - dn.chain.finalized_number <= 1


def test_an_internal_error_fails_one_extrinsic_and_the_node_goes_on(
    si: SubstrateInterface, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ami_node.devnet import dispatch

    def broken(self: object, origin: object, args: object) -> None:
        raise RuntimeError("simulated devnet bug")

    monkeypatch.setattr(dispatch.BlockBuilder, "_System_remark", broken)
    before = free(si, BOB.ss58_address)
    call = si.compose_call("System", "remark", {"remark": "0x01"})
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=ALICE), wait_for_inclusion=True
    )
    assert not receipt.is_success
    failed = [
        e.value["attributes"] for e in receipt.triggered_events if e.value["event_id"] == "ExtrinsicFailed"
    ]
    assert failed[0]["dispatch_error"] == "Other"
    assert si.submit_extrinsic(
        transfer(si, ALICE, BOB.ss58_address, UNIT), wait_for_inclusion=True
    ).is_success
    assert free(si, BOB.ss58_address) == before + UNIT


def test_query_map_pages_through_accounts(si: SubstrateInterface) -> None:
    accounts = {str(k.value): v.value for k, v in si.query_map("System", "Account", page_size=5)}
    assert len(accounts) >= 12  # six dev accounts and their stashes, at least
    assert accounts[ALICE.ss58_address]["nonce"] == si.get_account_nonce(ALICE.ss58_address)
