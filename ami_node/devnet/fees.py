"""What a call costs on the devnet: decoding a runtime call, its declared weight, the fee, contract gas."""

from __future__ import annotations

from typing import Any

from scalecodec.base import ScaleBytes

from ami_node.devnet.meta import Runtime, blake2_256
from ami_node.devnet.state import (
    BAD_CALL,
    BASE_EXTRINSIC,
    FEE_WEIGHT_DIVISOR,
    LEN_FEE,
    Weight,
    invalid_tx,
)


def fee_for(weight: Weight, length: int, tip: int) -> int:
    return (BASE_EXTRINSIC + weight[0]) // FEE_WEIGHT_DIVISOR + LEN_FEE * length + tip


def contract_gas(data: bytes) -> Weight:
    """Deterministic gas of a contract execution, known before running it: base + per input byte."""
    return 400_000_000 + 50_000 * len(data), 40_000 + 16 * len(data)


def contract_address(deployer: bytes, code_hash: bytes, data: bytes, salt: bytes) -> bytes:
    """pallet-contracts' DefaultAddressGenerator: blake2-256 of a prefix, deployer, code hash, input, salt."""
    return blake2_256(b"contract_addr_v1" + deployer + code_hash + data + salt)


SUPPORTED = {
    ("System", "remark"),
    ("System", "remark_with_event"),
    ("Balances", "transfer_allow_death"),
    ("Balances", "transfer_keep_alive"),
    ("Balances", "transfer_all"),
    ("Balances", "force_transfer"),
    ("Balances", "force_set_balance"),
    ("Utility", "batch"),
    ("Utility", "batch_all"),
    ("Utility", "force_batch"),
    ("Sudo", "sudo"),
    ("Sudo", "sudo_unchecked_weight"),
    ("Contracts", "upload_code"),
    ("Contracts", "instantiate_with_code"),
    ("Contracts", "instantiate"),
    ("Contracts", "call"),
}


def decode_call(rt: Runtime, raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """(pallet, call, {arg name: ScaleType}) of one encoded RuntimeCall.

    scalecodec 1.2.12 keeps a call's argument values on the metadata's shared Field objects, so nested calls
    of the same function overwrite each other: nested calls are therefore re-decoded from their own bytes
    (see `nested_calls`) and the arguments are read right after each decode."""
    obj = rt.rc.create_scale_object("Call", data=ScaleBytes(raw), metadata=rt.metadata)
    obj.decode(check_remaining=True)
    vo = obj.value_object
    args = {a.value["name"]: a.value_object["value"] for a in vo["call_args"]}
    return vo["call_module"].name, vo["call_function"].name, args


def nested_calls(arg: Any) -> list[bytes]:
    """The encoded calls inside a `Vec<RuntimeCall>` or `Box<RuntimeCall>` argument."""
    items = arg.value_object if isinstance(arg.value_object, list) else [arg]
    return [bytes(c.get_used_bytes()) for c in items]


def raw_bytes(arg: Any) -> bytes:
    return bytes(arg.value_object)


def call_weight(rt: Runtime, raw: bytes) -> Weight:
    """The declared weight of a call (for fees and block limits); RpcError for unsupported calls."""
    pallet, function, args = decode_call(rt, raw)
    if (pallet, function) not in SUPPORTED:
        raise invalid_tx(BAD_CALL + f": {pallet}.{function} is not supported by the devnet")
    if pallet == "Utility":
        inner = [call_weight(rt, c) for c in nested_calls(args["calls"])]
        return (10_000_000 + sum(w[0] + 5_000_000 for w in inner), sum(w[1] for w in inner))
    if pallet == "Sudo":
        w = call_weight(rt, nested_calls(args["call"])[0])
        return (w[0] + 20_000_000, w[1])
    if pallet == "Contracts":
        if function == "upload_code":
            return (500_000_000 + 100 * len(raw_bytes(args["code"])), 10_000)
        gas = args["gas_limit"].value
        extra = 100 * len(raw_bytes(args["code"])) if function == "instantiate_with_code" else 0
        return (300_000_000 + extra + int(gas["ref_time"]), int(gas["proof_size"]))
    if pallet == "System":
        return (10_000_000 + len(raw_bytes(args["remark"])), 0)
    return (300_000_000, 3_593)


def dispatch_info(weight: Weight, cls: str) -> dict[str, Any]:
    """The DispatchInfo of an extrinsic event: its weight, class and that it pays a fee."""
    return {"weight": {"ref_time": weight[0], "proof_size": weight[1]}, "class": cls, "pays_fee": "Yes"}
