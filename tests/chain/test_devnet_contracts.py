"""AMI contracts on the devnet through substrate-interface 1.8.1: deploy bundles, dry-run, exec, events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.contracts import ContractCode, ContractInstance

from ami_node.devnet.testing import DevnetHandle, running_devnet

ROOT = Path(__file__).resolve().parents[2]
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


@pytest.fixture(scope="module")
def dn() -> Iterator[DevnetHandle]:
    with running_devnet() as handle:
        yield handle


@pytest.fixture(scope="module")
def si(dn: DevnetHandle) -> Iterator[SubstrateInterface]:
    s = SubstrateInterface(url=dn.url)
    yield s
    s.close()


def code_of(si: SubstrateInterface, name: str, tmp: Path) -> ContractCode:
    bundle = ROOT / "pallets_spec" / "bundles" / f"{name}.contract"
    wasm = tmp / f"{name}.wasm"
    wasm.write_bytes(bytes.fromhex(json.loads(bundle.read_text())["source"]["wasm"][2:]))
    return ContractCode.create_from_contract_files(
        wasm_file=str(wasm), metadata_file=str(bundle), substrate=si
    )


@pytest.fixture(scope="module")
def nft(si: SubstrateInterface, tmp_path_factory: pytest.TempPathFactory) -> ContractInstance:
    code = code_of(si, "ami_nft", tmp_path_factory.mktemp("nft"))
    return code.deploy(keypair=ALICE, constructor="new", args={}, upload_code=True)


@pytest.fixture(scope="module")
def rewards(si: SubstrateInterface, tmp_path_factory: pytest.TempPathFactory) -> ContractInstance:
    code = code_of(si, "ami_rewards", tmp_path_factory.mktemp("rewards"))
    # upload first, then instantiate by code hash (the other deploy path)
    # substrate-interface's upload_wasm omits this metadata's `determinism` field: compose it ourselves
    call = si.compose_call(
        "Contracts",
        "upload_code",
        {"code": "0x" + code.wasm_bytes.hex(), "storage_deposit_limit": None, "determinism": "Enforced"},
    )
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=ALICE), wait_for_inclusion=True
    )
    assert receipt.is_success
    assert [e.value["event_id"] for e in receipt.triggered_events if e.value["module_id"] == "Contracts"] == [
        "CodeStored"
    ]
    return code.deploy(keypair=ALICE, constructor="new", args={})


MINT = {"audio_cid": "bafyaudio", "metadata_cid": "bafymeta", "royalty_splits": [(ALICE.ss58_address, 10000)]}


def test_deploy_emits_instantiated_and_reads_work(nft: ContractInstance, si: SubstrateInterface) -> None:
    assert nft.contract_address.startswith("5")
    assert nft.read(BOB, "owner").value["result"]["Ok"]["data"] == {"Ok": ALICE.ss58_address}
    assert nft.read(BOB, "total_supply").value["result"]["Ok"]["data"] == {"Ok": 0}
    info = si.query("System", "Account", [nft.contract_address]).value
    assert info["data"]["free"] >= 10**9  # the contract account holds the existential deposit


def test_exec_mint_events_are_decoded_by_the_receipt(nft: ContractInstance) -> None:
    dry = nft.read(ALICE, "mint", MINT)
    assert dry.value["result"]["Ok"]["flags"] == []
    token = dry.value["result"]["Ok"]["data"]["Ok"]["Ok"]
    receipt = nft.exec(ALICE, "mint", MINT, wait_for_finalization=True)
    assert receipt.is_success
    (event,) = receipt.contract_events
    assert event.name == "Minted"
    args = {a["label"]: a["value"] for a in event.value["args"]}
    assert args["token_id"] == token and args["creator"] == ALICE.ss58_address
    assert args["audio_cid"] == "bafyaudio"
    chain_events = [e.value for e in receipt.triggered_events if e.value["module_id"] == "Contracts"]
    assert [e["event_id"] for e in chain_events] == ["ContractEmitted", "Called"]
    assert len(chain_events[0]["topics"]) == 3  # signature topic + two #[ink(topic)] fields
    assert nft.read(BOB, "owner_of", {"token_id": token}).value["result"]["Ok"]["data"] == {
        "Ok": ALICE.ss58_address
    }


def test_revert_dry_run_is_decoded_and_exec_fails(nft: ContractInstance) -> None:
    bad = dict(MINT, audio_cid="")
    dry = nft.read(ALICE, "mint", bad)
    assert dry.value["result"]["Ok"]["flags"] == ["ForwardInput"]  # bit 0 (REVERT); scalecodec's name for it
    assert dry.value["result"]["Ok"]["data"] == {"Ok": {"Err": "InvalidCid"}}
    receipt = nft.exec(ALICE, "mint", bad, gas_limit=dry.gas_required)
    assert not receipt.is_success
    assert receipt.error_message["name"] == "ContractReverted"
    assert receipt.contract_events == []


def test_out_of_gas_and_unknown_contract(nft: ContractInstance, si: SubstrateInterface) -> None:
    receipt = nft.exec(ALICE, "mint", MINT, gas_limit={"ref_time": 1000, "proof_size": 1000})
    assert not receipt.is_success and receipt.error_message["name"] == "OutOfGas"
    ghost = ContractInstance(contract_address=BOB.ss58_address, metadata=nft.metadata, substrate=si)
    from substrateinterface.exceptions import ContractReadFailedException

    with pytest.raises(ContractReadFailedException):
        ghost.read(ALICE, "total_supply")


def test_rewards_distribute_in_batch_all(rewards: ContractInstance, si: SubstrateInterface) -> None:
    assert rewards.exec(ALICE, "add_oracle", {"account": ALICE.ss58_address}).is_success
    payouts = [
        {"id": "0x" + bytes([i]).hex() * 32, "to": BOB.ss58_address, "amount": 100 + i, "kind": 1}
        for i in range(3)
    ]
    calls = []
    for batch, chunk in enumerate((payouts[:2], payouts[2:])):
        data = rewards.metadata.generate_message_data(
            "distribute", {"epoch": 7, "batch": batch, "payouts": chunk}
        )
        calls.append(
            si.compose_call(
                "Contracts",
                "call",
                {
                    "dest": rewards.contract_address,
                    "value": 0,
                    "gas_limit": {"ref_time": 10**10, "proof_size": 10**6},
                    "storage_deposit_limit": None,
                    "data": data.to_hex(),
                },
            )
        )
    call = si.compose_call("Utility", "batch_all", {"calls": calls})
    receipt = si.submit_extrinsic(
        si.create_signed_extrinsic(call=call, keypair=ALICE), wait_for_inclusion=True
    )
    assert receipt.is_success
    emitted = [e for e in receipt.triggered_events if e.value["event_id"] == "ContractEmitted"]
    assert len(emitted) == 5  # 3 Paid + 2 BatchDistributed
    assert rewards.read(BOB, "balance_of", {"account": BOB.ss58_address}).value["result"]["Ok"]["data"] == {
        "Ok": 303
    }
    # paying the same batch again reverts inside batch_all: nothing changes
    again = si.create_signed_extrinsic(call=call, keypair=ALICE)
    receipt = si.submit_extrinsic(again, wait_for_inclusion=True)
    assert not receipt.is_success and receipt.error_message["name"] == "ContractReverted"
    assert rewards.read(BOB, "balance_of", {"account": BOB.ss58_address}).value["result"]["Ok"]["data"] == {
        "Ok": 303
    }


def test_contracts_api_call_result_layout_is_strictly_decodable(
    rewards: ContractInstance, dn: DevnetHandle
) -> None:
    """The exact ContractExecResult layout (To267 for this metadata): strict decoding leaves no bytes."""
    paid_in_the_batch_test = "0x" + "00" * 32
    result = rewards.read(BOB, "is_paid", {"payout_id": paid_in_the_batch_test})
    assert set(result.value) == {"gas_consumed", "gas_required", "storage_deposit", "debug_message", "result"}
    assert result.value["result"]["Ok"]["data"] == {"Ok": True}


def test_instantiate_and_upload_dry_runs(si: SubstrateInterface) -> None:
    from pallets_spec.abi import selector

    bundle = ROOT / "pallets_spec" / "bundles" / "ami_nft.contract"
    wasm = json.loads(bundle.read_text())["source"]["wasm"]
    params = {
        "origin": BOB.ss58_address,
        "value": 0,
        "gas_limit": None,
        "storage_deposit_limit": None,
        "code": {"Upload": wasm},
        "data": "0x" + selector("new").hex(),
        "salt": "0x01",
    }
    result = si.runtime_call("ContractsApi", "instantiate", params).value
    assert result["result"]["Ok"]["result"]["flags"] == [] and result["gas_required"] > 0
    assert result["result"]["Ok"]["account_id"].startswith("5")
    ok = si.runtime_call(
        "ContractsApi",
        "upload_code",
        {"origin": BOB.ss58_address, "code": wasm, "storage_deposit_limit": None},
    )
    assert (
        ok.value["Ok"]["code_hash"]
        == "0x" + hashlib.blake2b(bytes.fromhex(wasm[2:]), digest_size=32).hexdigest()
    )
    not_ami = "0x0061736d01000000"  # a valid empty Wasm module naming no model
    bad = si.runtime_call(
        "ContractsApi",
        "upload_code",
        {"origin": BOB.ss58_address, "code": not_ami, "storage_deposit_limit": None},
    )
    assert bad.value == {"Error": {"Module": {"index": 8, "error": "0x1a000000"}}}  # Contracts.CodeRejected
    assert si.metadata.get_module_error(module_index=8, error_index=26).name == "CodeRejected"


def test_dry_run_honours_a_gas_limit(nft: ContractInstance) -> None:
    from substrateinterface.exceptions import ContractReadFailedException

    with pytest.raises(ContractReadFailedException) as info:
        nft.read(ALICE, "total_supply", gas_limit={"ref_time": 10, "proof_size": 10})
    assert info.value.args[0] == {"Module": {"index": 8, "error": "0x02000000"}}  # Contracts.OutOfGas
