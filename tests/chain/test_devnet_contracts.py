"""AMI contracts on the devnet through substrate-interface 1.8.1: deploy bundles, dry-run, exec, events."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from scalecodec.base import ScaleBytes
from scalecodec.utils.ss58 import ss58_encode
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.contracts import ContractCode, ContractInstance

from ami_node.devnet.testing import DevnetHandle
from pallets_spec.abi import selector

ROOT = Path(__file__).resolve().parents[2]
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


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
    wasm = _nft_wasm()
    result = _instantiate_v2(si, _instantiate_params({"Upload": wasm}, "0x01"))
    assert result["result"]["Ok"]["result"]["flags"] == [] and result["gas_required"]["ref_time"] > 0
    # the predicted address is pallet-contracts' rule over (deployer, code hash, input, salt)
    code_hash = hashlib.blake2b(bytes.fromhex(wasm[2:]), digest_size=32).digest()
    address = hashlib.blake2b(
        b"contract_addr_v1" + BOB.public_key + code_hash + selector("new") + b"\x01", digest_size=32
    ).digest()
    assert result["result"]["Ok"]["account_id"] == ss58_encode(address, 42)
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


# ContractsApi version 2's instantiate result, as @polkadot/types 16.5 declares it (ContractInstantiateResult,
# WeightV2, ContractReturnFlags u32): written out here, independent of the devnet's own registry.
# substrate-interface's core preset still has the version 1 layout (u64 gas, u64 flags), so no runtime_call.
V2_TYPES = {
    "T2Flags": {"type": "set", "value_type": "u32", "value_list": {"Revert": 1}},
    "T2Weight": {
        "type": "struct",
        "type_mapping": [["ref_time", "Compact<u64>"], ["proof_size", "Compact<u64>"]],
    },
    "T2Exec": {"type": "struct", "type_mapping": [["flags", "T2Flags"], ["data", "Bytes"]]},
    "T2Ok": {"type": "struct", "type_mapping": [["result", "T2Exec"], ["account_id", "AccountId"]]},
    "T2Result": {"type": "enum", "type_mapping": [["Ok", "T2Ok"], ["Error", "sp_runtime::dispatcherror"]]},
    "T2Instantiate": {
        "type": "struct",
        "type_mapping": [
            ["gas_consumed", "T2Weight"],
            ["gas_required", "T2Weight"],
            ["storage_deposit", "StorageDeposit"],
            ["debug_message", "Bytes"],
            ["result", "T2Result"],
        ],
    },
}


def _nft_wasm() -> str:
    """The NFT contract's Wasm code (hex) from its bundle."""
    return json.loads((ROOT / "pallets_spec" / "bundles" / "ami_nft.contract").read_text())["source"]["wasm"]


def _instantiate_params(code: dict[str, str], salt: str) -> dict[str, Any]:
    """ContractsApi.instantiate's arguments: //Bob deploys `code` ({"Upload": wasm} or {"Existing": hash})
    through the `new` constructor with `salt`, no value and no limits."""
    return {
        "origin": BOB.ss58_address,
        "value": 0,
        "gas_limit": None,
        "storage_deposit_limit": None,
        "code": code,
        "data": "0x" + selector("new").hex(),
        "salt": salt,
    }


def _instantiate_v2(si: SubstrateInterface, params: dict[str, Any]) -> Any:
    si.init_runtime()
    si.runtime_config.update_type_registry_types(V2_TYPES)
    api = si.runtime_config.type_registry["runtime_api"]["ContractsApi"]["methods"]["instantiate"]
    data = b""
    for param in api["params"]:
        obj = si.runtime_config.create_scale_object(param["type"], metadata=si.metadata)
        data += bytes(obj.encode(params[param["name"]]).data)
    raw = si.rpc_request("state_call", ["ContractsApi_instantiate", "0x" + data.hex()])["result"]
    obj = si.runtime_config.create_scale_object("T2Instantiate", ScaleBytes(raw), metadata=si.metadata)
    return obj.decode(check_remaining=True)  # strict: a layout mismatch leaves or lacks bytes


def test_instantiate_dry_run_errors_and_existing_code(si: SubstrateInterface, nft: ContractInstance) -> None:
    """Existing code by hash, an unknown hash, a too small gas limit and a second deploy at the same address
    answer as pallet-contracts does (Ok / CodeNotFound / OutOfGas / DuplicateContract)."""
    code_hash = "0x" + nft.metadata.metadata_dict["source"]["hash"][2:]
    base = _instantiate_params({"Existing": code_hash}, "0x0102")
    ok = _instantiate_v2(si, base)
    assert "Ok" in ok["result"] and ok["storage_deposit"]["Charge"] > 0  # the code is there: no code deposit
    again = _instantiate_v2(
        si, {**base, "code": {"Upload": "0x" + nft.metadata.metadata_dict["source"]["wasm"][2:]}}
    )
    assert again["storage_deposit"] == ok["storage_deposit"]

    def error_of(params: dict[str, Any]) -> str:
        err = _instantiate_v2(si, params)["result"]["Error"]["Module"]
        return str(
            si.metadata.get_module_error(
                module_index=err["index"], error_index=int(err["error"][2:4], 16)
            ).name
        )

    assert error_of({**base, "code": {"Existing": "0x" + "ab" * 32}}) == "CodeNotFound"
    assert error_of({**base, "gas_limit": {"ref_time": 10, "proof_size": 10}}) == "OutOfGas"
    # the fixture deployed ami_nft from ALICE with an empty salt: the same inputs give the same address
    assert error_of({**base, "origin": ALICE.ss58_address, "salt": "0x"}) == "DuplicateContract"
    info = si.query("Contracts", "ContractInfoOf", [nft.contract_address])
    assert info.value["code_hash"] == code_hash and info.value["storage_base_deposit"] > 0
    code_info = si.query("Contracts", "CodeInfoOf", [code_hash])
    assert code_info.value["owner"] == ALICE.ss58_address and code_info.value["refcount"] >= 1


def test_dry_run_honours_a_gas_limit(nft: ContractInstance) -> None:
    from substrateinterface.exceptions import ContractReadFailedException

    with pytest.raises(ContractReadFailedException) as info:
        nft.read(ALICE, "total_supply", gas_limit={"ref_time": 10, "proof_size": 10})
    assert info.value.args[0] == {"Module": {"index": 8, "error": "0x02000000"}}  # Contracts.OutOfGas


def test_storage_deposit_limit_below_the_deposit_fails_and_holds_nothing(si: SubstrateInterface) -> None:
    wasm = _nft_wasm()
    params = _instantiate_params({"Upload": wasm}, "0x5a")
    dry = _instantiate_v2(si, params)
    deposit = dry["storage_deposit"]["Charge"]
    reserved = si.query("System", "Account", [BOB.ss58_address]).value["data"]["reserved"]
    call = si.compose_call(
        "Contracts",
        "instantiate_with_code",
        {
            "value": 0,
            "gas_limit": dry["gas_required"],
            "storage_deposit_limit": deposit - 1,
            "code": wasm,
            "data": params["data"],
            "salt": params["salt"],
        },
    )
    receipt = si.submit_extrinsic(si.create_signed_extrinsic(call=call, keypair=BOB), wait_for_inclusion=True)
    assert not receipt.is_success and receipt.error_message["name"] == "StorageDepositLimitExhausted"
    assert si.query("System", "Account", [BOB.ss58_address]).value["data"]["reserved"] == reserved
    address = dry["result"]["Ok"]["account_id"]
    assert si.query("Contracts", "ContractInfoOf", [address]).value is None


def test_upload_code_dry_run_deposit_is_what_the_extrinsic_holds(
    si: SubstrateInterface, nft: ContractInstance
) -> None:
    """Stored code costs nothing to upload again; new code costs DepositPerByte x length (the metadata's
    constant), and a limit below that is refused the same way by the dry run and by the extrinsic."""
    stored = bytes.fromhex(_nft_wasm()[2:])
    # the same module plus one more custom section (id 0, name "x"): other bytes, same model
    fresh = stored + bytes([0, 3, 1]) + b"x" + b"\x07"
    per_byte = si.get_constant("Contracts", "DepositPerByte").value

    def dry(code: bytes, limit: int | None) -> Any:
        params = {"origin": BOB.ss58_address, "code": "0x" + code.hex(), "storage_deposit_limit": limit}
        return si.runtime_call("ContractsApi", "upload_code", params).value

    assert dry(stored, None)["Ok"]["deposit"] == 0
    assert dry(fresh, None)["Ok"]["deposit"] == per_byte * len(fresh)
    refused = dry(fresh, per_byte * len(fresh) - 1)["Error"]["Module"]
    assert si.metadata.get_module_error(refused["index"], int(refused["error"][2:4], 16)).name == (
        "StorageDepositLimitExhausted"
    )
    call = si.compose_call(
        "Contracts",
        "upload_code",
        {
            "code": "0x" + fresh.hex(),
            "storage_deposit_limit": per_byte * len(fresh) - 1,
            "determinism": "Enforced",
        },
    )
    receipt = si.submit_extrinsic(si.create_signed_extrinsic(call=call, keypair=BOB), wait_for_inclusion=True)
    assert not receipt.is_success and receipt.error_message["name"] == "StorageDepositLimitExhausted"
    code_hash = "0x" + hashlib.blake2b(fresh, digest_size=32).hexdigest()
    assert si.query("Contracts", "CodeInfoOf", [code_hash]).value is None
