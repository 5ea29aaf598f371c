"""`state_call` runtime APIs of the devnet: nonces, contract dry runs, fee queries, metadata.

Parameters are decoded and results encoded with the same scalecodec registry that substrate-interface 1.8.1
uses for `runtime_call` (its core preset's `runtime_api` section), so the layouts match what it decodes.
"""

from __future__ import annotations

from typing import Any

from scalecodec.base import ScaleBytes

from ami_node.devnet import contracts as cx
from ami_node.devnet.chain import Devnet
from ami_node.devnet.extrinsic import encode_compact, parse_extrinsic
from ami_node.devnet.fees import contract_address, contract_gas, fee_for
from ami_node.devnet.meta import account_bytes, blake2_256, hexstr
from ami_node.devnet.state import (
    CODE_DEPOSIT_PER_BYTE,
    CONTRACT_BASE_DEPOSIT,
    EXISTENTIAL_DEPOSIT,
    RpcError,
    Weight,
)


def _decode_params(chain: Devnet, types: list[str], data: bytes) -> list[Any]:
    rc = chain.rt.rc
    sb = ScaleBytes(data)
    out = []
    for type_string in types:
        obj = rc.create_scale_object(type_string, data=sb, metadata=chain.rt.metadata)
        obj.decode(check_remaining=False)
        out.append(obj)
    if sb.offset != len(data):
        raise ValueError(f"{len(data) - sb.offset} trailing bytes after the parameters")
    return out


def call(chain: Devnet, method: str, data: bytes) -> bytes:
    """Answer one state_call; raises RpcError (-32000 family) for unknown methods or undecodable input."""
    handler = _HANDLERS.get(method)
    if handler is None:
        raise RpcError(
            -32000, "Client error: Execution failed: Other: Exported method " + method + " is not found"
        )
    try:
        return handler(chain, data)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RpcError(
            -32000, f"Client error: Execution failed: Could not decode input for {method}", str(exc)
        ) from exc


def _nonce(chain: Devnet, data: bytes) -> bytes:
    (who,) = _decode_params(chain, ["AccountId"], data)
    return chain.state.account(account_bytes(who.value))[0].to_bytes(4, "little")


def _contract_call(chain: Devnet, data: bytes) -> bytes:
    origin, dest, value, gas, _limit, input_data = _decode_params(
        chain, ["AccountId", "AccountId", "Balance", "Option<Weight>", "Option<Balance>", "Vec<u8>"], data
    )
    limit = None if gas.value is None else (int(gas.value["ref_time"]), int(gas.value["proof_size"]))
    result = dry_run_call(
        chain,
        account_bytes(origin.value),
        account_bytes(dest.value),
        int(value.value),
        bytes(input_data.value_object),
        limit,
    )
    return chain.rt.encode("ContractExecResult", result)


def _contract_instantiate(chain: Devnet, data: bytes) -> bytes:
    origin, value, gas, _limit, code, ctor, salt = _decode_params(
        chain,
        ["AccountId", "Balance", "Option<Weight>", "Option<Balance>", "CodeSource", "Bytes", "Bytes"],
        data,
    )
    source = code.value_object
    wasm: bytes | None = None
    if source[0] == "Upload":
        wasm = bytes(source[1].value_object)
        code_hash = blake2_256(wasm)
    else:
        code_hash = bytes.fromhex(str(source[1].value)[2:])
    limit = None if gas.value is None else (int(gas.value["ref_time"]), int(gas.value["proof_size"]))
    result = dry_run_instantiate(
        chain,
        account_bytes(origin.value),
        int(value.value),
        wasm,
        code_hash,
        bytes(ctor.value_object),
        bytes(salt.value_object),
        limit,
    )
    return chain.rt.encode("ContractInstantiateResultV2", result)


def dry_run_call(
    chain: Devnet, origin: bytes, dest: bytes, value: int, data: bytes, gas_limit: Weight | None = None
) -> dict[str, Any]:
    """ContractsApi_call: execute on a copy of the best state; returns the ContractExecResult value."""
    rec = chain.state.contracts.get(dest)
    if rec is None:
        err = chain.module_error("Contracts", "ContractNotFound")
        return _exec_result((0, 0), (0, 0), {"Error": err.error})
    gas = contract_gas(data)
    if gas_limit is not None and (gas[0] > gas_limit[0] or gas[1] > gas_limit[1]):
        return _exec_result(gas_limit, gas, {"Error": chain.module_error("Contracts", "OutOfGas").error})
    ctx = cx.Ctx(chain.best.number + 1, chain.state.timestamp, dest)
    out = cx.dry_run(rec.state, data, origin, value, ctx)
    if out.trapped:
        return _exec_result(gas, gas, {"Error": chain.module_error("Contracts", "ContractTrapped").error})
    flags = ["ForwardInput"] if out.reverted else []  # bit 0 of ReturnFlags is REVERT
    return _exec_result(gas, gas, {"Ok": {"flags": flags, "data": hexstr(out.output)}})


def dry_run_instantiate(
    chain: Devnet,
    origin: bytes,
    value: int,
    code: bytes | None,
    code_hash: bytes,
    data: bytes,
    salt: bytes,
    gas_limit: Weight | None = None,
) -> dict[str, Any]:
    """ContractsApi_instantiate: what `instantiate[_with_code]` would do on the best state, changing
    nothing. `code` is the uploaded Wasm, or None for `CodeSource::Existing(code_hash)`. Returns the
    ContractInstantiateResultV2 value: the address and storage deposit the extrinsic will use, and the
    gas it checks against its limit."""
    gas = contract_gas(data)

    def fail(name: str, consumed: Weight = (0, 0)) -> dict[str, Any]:
        err = chain.module_error("Contracts", name).error
        return _instantiate_result(consumed, gas, 0, {"Error": err})

    code_deposit = 0
    if code is None:
        code = chain.state.codes.get(code_hash)
        if code is None:
            return fail("CodeNotFound")
    elif code_hash not in chain.state.codes:
        code_deposit = CODE_DEPOSIT_PER_BYTE * len(code)
    address = contract_address(origin, code_hash, data, salt)
    if address in chain.state.contracts:
        return fail("DuplicateContract")
    if gas_limit is not None and (gas[0] > gas_limit[0] or gas[1] > gas_limit[1]):
        return fail("OutOfGas", gas_limit)
    deposit = code_deposit + CONTRACT_BASE_DEPOSIT
    # the extrinsic holds the deposit and moves ED + value to the contract, keeping the deployer alive
    if chain.state.account(origin)[1] - deposit - EXISTENTIAL_DEPOSIT - value < EXISTENTIAL_DEPOSIT:
        return fail("StorageDepositNotEnoughFunds")
    ctx = cx.Ctx(chain.best.number + 1, chain.state.timestamp, address)
    try:
        _, out = cx.instantiate(code, data, origin, ctx, value)
    except cx.CodeRejected:
        return fail("CodeRejected")
    if out.trapped:
        return fail("ContractTrapped", gas)
    ret = {"flags": ["Revert"] if out.reverted else [], "data": hexstr(out.output)}
    ok = {"Ok": {"result": ret, "account_id": hexstr(address)}}
    return _instantiate_result(gas, gas, 0 if out.reverted else deposit, ok)


def _instantiate_result(
    consumed: Weight, required: Weight, deposit: int, result: dict[str, Any]
) -> dict[str, Any]:
    return {
        "gas_consumed": {"ref_time": consumed[0], "proof_size": consumed[1]},
        "gas_required": {"ref_time": required[0], "proof_size": required[1]},
        "storage_deposit": {"Charge": deposit},
        "debug_message": "0x",
        "result": result,
    }


def _exec_result(consumed: Weight, required: Weight, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "gas_consumed": {"ref_time": consumed[0], "proof_size": consumed[1]},
        "gas_required": {"ref_time": required[0], "proof_size": required[1]},
        "storage_deposit": {"Charge": 0},
        "debug_message": "0x",
        "result": result,
    }


def _get_storage(chain: Devnet, data: bytes) -> bytes:
    """`GetStorageResult = Result<Option<Vec<u8>>, ContractAccessError>`. The contract models keep typed
    state, not a key-value child trie, so an existing contract answers Ok(None) for every key."""
    address, _key = _decode_params(chain, ["AccountId", "Bytes"], data)
    if account_bytes(address.value) not in chain.state.contracts:
        return b"\x01\x00"  # Err(ContractAccessError::DoesntExist)
    return b"\x00\x00"  # Ok(None)


def _upload_code(chain: Devnet, data: bytes) -> bytes:
    _origin, code, limit = _decode_params(chain, ["AccountId", "Bytes", "Option<Balance>"], data)
    wasm = bytes(code.value_object)
    code_hash = blake2_256(wasm)
    try:
        cx.model_of(wasm)
    except cx.CodeRejected:
        err = chain.module_error("Contracts", "CodeRejected")
        return chain.rt.encode("CodeUploadResult", {"Error": err.error})
    # what Contracts.upload_code would hold: nothing when the code is already stored
    deposit = 0 if code_hash in chain.state.codes else CODE_DEPOSIT_PER_BYTE * len(wasm)
    if limit.value is not None and deposit > int(limit.value):
        err = chain.module_error("Contracts", "StorageDepositLimitExhausted")
        return chain.rt.encode("CodeUploadResult", {"Error": err.error})
    return chain.rt.encode("CodeUploadResult", {"Ok": {"code_hash": hexstr(code_hash), "deposit": deposit}})


def _query_info(chain: Devnet, data: bytes) -> bytes:
    if len(data) < 4:
        raise ValueError("expected an extrinsic and its u32 length")
    raw, _length = data[:-4], int.from_bytes(data[-4:], "little")
    ext = parse_extrinsic(raw)
    weight = chain.txpool.check_call(ext.call)
    return chain.rt.encode(
        "RuntimeDispatchInfo",
        {
            "weight": {"ref_time": weight[0], "proof_size": weight[1]},
            "class": "Normal",
            "partialFee": fee_for(weight, len(raw), 0),
        },
    )


def _metadata(chain: Devnet, data: bytes) -> bytes:
    meta = bytes.fromhex(chain.rt.metadata_hex[2:])
    return encode_compact(len(meta)) + meta


def _metadata_at_version(chain: Devnet, data: bytes) -> bytes:
    version = int.from_bytes(data[:4], "little")
    if version != 14:
        return b"\x00"
    return b"\x01" + _metadata(chain, b"")


def _metadata_versions(chain: Devnet, data: bytes) -> bytes:
    return encode_compact(1) + (14).to_bytes(4, "little")


_HANDLERS = {
    "AccountNonceApi_account_nonce": _nonce,
    "ContractsApi_call": _contract_call,
    "ContractsApi_instantiate": _contract_instantiate,
    "ContractsApi_upload_code": _upload_code,
    "ContractsApi_get_storage": _get_storage,
    "TransactionPaymentApi_query_info": _query_info,
    "Metadata_metadata": _metadata,
    "Metadata_metadata_at_version": _metadata_at_version,
    "Metadata_metadata_versions": _metadata_versions,
}
