"""The devnet's runtime description: the shipped substrate-contracts-node V14 metadata loaded into scalecodec.

Everything SCALE the devnet emits (storage values, System.Events, ContractsApi results) is encoded here with
the same scalecodec type registry a substrate-interface 1.8.1 client builds from this metadata, so what we
encode is by construction what clients decode.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from scalecodec.utils.ss58 import ss58_decode, ss58_encode
from substrateinterface.utils.hasher import blake2_128_concat, two_x64_concat, xxh128

from pallets_spec.scale import encode_compact
from pallets_spec.vocabulary import SS58_FORMAT

RUNTIME_DIR = Path(__file__).parent / "runtime"
METADATA_FILE = RUNTIME_DIR / "substrate-contracts-node-metadata.hex"
RPC_FILE = RUNTIME_DIR / "substrate-contracts-node-rpc.json"
VERSION_FILE = RUNTIME_DIR / "substrate-contracts-node-version.json"


# ContractsApi version 2 (what the runtime version advertises, and what substrate-contracts-node v0.42 and
# @polkadot/api-contract speak): gas as `Weight { ref_time: Compact<u64>, proof_size: Compact<u64> }` and
# return flags as a u32 bit set. substrate-interface's core preset still describes `instantiate` in the
# version 1 layout (u64 gas, u64 flags), so the devnet encodes its answer with these types instead.
CONTRACTS_API_V2_TYPES: dict[str, Any] = {
    "ReturnFlagsV2": {"type": "set", "value_type": "u32", "value_list": {"Revert": 1}},
    "ExecReturnValueV2": {"type": "struct", "type_mapping": [["flags", "ReturnFlagsV2"], ["data", "Bytes"]]},
    "InstantiateReturnValueOkV2": {
        "type": "struct",
        "type_mapping": [["result", "ExecReturnValueV2"], ["account_id", "AccountId"]],
    },
    "InstantiateReturnValueV2": {
        "type": "enum",
        "type_mapping": [["Ok", "InstantiateReturnValueOkV2"], ["Error", "sp_runtime::dispatcherror"]],
    },
    "ContractInstantiateResultV2": {
        "type": "struct",
        "type_mapping": [
            ["gas_consumed", "Weight"],
            ["gas_required", "Weight"],
            ["storage_deposit", "StorageDeposit"],
            ["debug_message", "Bytes"],
            ["result", "InstantiateReturnValueV2"],
        ],
    },
}


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def account_bytes(value: Any) -> bytes:
    """An AccountId from bytes, 0x-hex, SS58, or a MultiAddress dict (what scalecodec hands us)."""
    if isinstance(value, dict):
        if "Id" in value:
            return account_bytes(value["Id"])
        raise ValueError(f"unsupported address form {sorted(value)}; only MultiAddress::Id is supported")
    if isinstance(value, bytes | bytearray):
        if len(value) != 32:
            raise ValueError("an AccountId is 32 bytes")
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("0x"):
            raw = bytes.fromhex(value[2:])
            if len(raw) != 32:
                raise ValueError("an AccountId is 32 bytes")
            return raw
        return bytes.fromhex(ss58_decode(value))
    raise ValueError(f"not an account: {value!r}")


def ss58(account: bytes) -> str:
    return ss58_encode(account, SS58_FORMAT)


def hexstr(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(value: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("expected a 0x-prefixed hex string")
    return bytes.fromhex(value[2:])


@dataclass(frozen=True)
class ModuleError:
    pallet_index: int
    error_index: int
    pallet: str
    name: str


class Runtime:
    """Loaded metadata plus helpers to encode and decode with it; shared, immutable after init."""

    def __init__(self) -> None:
        self.metadata_hex = METADATA_FILE.read_text().strip()
        self.rpc_methods: list[str] = json.loads(RPC_FILE.read_text())["methods"]
        self.version: dict[str, Any] = json.loads(VERSION_FILE.read_text())
        rc = RuntimeConfigurationObject()
        rc.update_type_registry(load_type_registry_preset("core"))
        metadata = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(self.metadata_hex))
        metadata.decode()
        rc.add_portable_registry(metadata)
        # Same compatibility switch substrate-interface applies after loading a V14 runtime.
        rc.update_type_registry_types({"Weight": "sp_weights::weight_v2::Weight"})
        core = load_type_registry_preset("core")
        for api in ("ContractsApi", "TransactionPaymentApi"):
            rc.update_type_registry_types(core["runtime_api"][api].get("types", {}))
        rc.update_type_registry_types(CONTRACTS_API_V2_TYPES)
        self.rc = rc
        self.metadata = metadata
        self.spec_version: int = int(self.version["specVersion"])
        self.transaction_version: int = int(self.version["transactionVersion"])
        self._pallets = {p.name: p for p in metadata.pallets}
        self._storage_functions: dict[tuple[str, str], Any] = {}
        self._event_indexes: dict[tuple[str, str], bytes] = {}

    # -- storage
    @staticmethod
    @functools.cache
    def storage_prefix(pallet: str, item: str) -> bytes:
        return bytes(xxh128(pallet.encode())) + bytes(xxh128(item.encode()))

    def storage_function(self, pallet: str, item: str) -> Any:
        key = (pallet, item)
        if key not in self._storage_functions:  # scalecodec rebuilds every entry on each lookup
            self._storage_functions[key] = self._pallets[pallet].get_storage_function(item)
        return self._storage_functions[key]

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - the Runtime lives for the whole process
    def block_hash_key(self, number: int) -> bytes:
        """System.BlockHash key (Twox64Concat of a u32), by hand: one per block on the hot path."""
        raw = number.to_bytes(4, "little")
        return self.storage_prefix("System", "BlockHash") + bytes(two_x64_concat(raw))

    def storage_key(self, pallet: str, item: str, *keys: Any) -> bytes:
        fn = self.storage_function(pallet, item)
        key = self.storage_prefix(pallet, item)
        if not keys:
            return bytes(key)
        hashers = fn.value["type"]["Map"]["hashers"]
        param_types = fn.get_params_type_string()
        for hasher, type_string, value in zip(hashers, param_types, keys, strict=True):
            encoded = bytes(self.rc.create_scale_object(type_string).encode(value).data)
            key += bytes(_HASHERS[hasher](encoded))
        return bytes(key)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - the Runtime lives for the whole process
    def account_key(self, who: bytes) -> bytes:
        """System.Account key of an AccountId (hot path: computed without scalecodec)."""
        return self.storage_prefix("System", "Account") + hashlib.blake2b(who, digest_size=16).digest() + who

    def encode_storage_value(self, pallet: str, item: str, value: Any) -> bytes:
        type_string = self.storage_function(pallet, item).get_value_type_string()
        return self.encode(type_string, value)

    # -- generic
    def encode(self, type_string: str, value: Any) -> bytes:
        return bytes(self.rc.create_scale_object(type_string, metadata=self.metadata).encode(value).data)

    def decode(self, type_string: str, data: bytes) -> Any:
        obj = self.rc.create_scale_object(type_string, data=ScaleBytes(data), metadata=self.metadata)
        return obj.decode(check_remaining=True)

    def decode_call(self, data: bytes) -> dict[str, Any]:
        """Decode one RuntimeCall; ValueError on unknown pallet/call or malformed (or trailing) bytes."""
        obj = self.rc.create_scale_object("Call", data=ScaleBytes(data), metadata=self.metadata)
        try:
            return dict(obj.decode(check_remaining=True))
        except Exception as exc:  # scalecodec raises a zoo of types for bad input
            raise ValueError(f"cannot decode call: {exc}") from exc

    def encode_call(self, module: str, function: str, args: dict[str, Any]) -> bytes:
        obj = self.rc.create_scale_object("Call", metadata=self.metadata)
        return bytes(obj.encode({"call_module": module, "call_function": function, "call_args": args}).data)

    def encode_events(self, records: list[dict[str, Any]]) -> bytes:
        """Vec<EventRecord> of System.Events; the frequent contract events take a hand-written fast path
        (scalecodec costs ~1 ms per record), checked against scalecodec by the tests."""
        return encode_compact(len(records)) + b"".join(self.encode_event_list(records))

    def encode_event_list(self, records: list[dict[str, Any]]) -> list[bytes]:
        out = []
        for record in records:
            fast = self._fast_record(record)
            out.append(fast if fast is not None else self.encode_event_record(record))
        return out

    def encode_event_record(self, record: dict[str, Any]) -> bytes:
        """One EventRecord through scalecodec (the reference encoding)."""
        vec = self.encode_storage_value("System", "Events", [record])
        return vec[1:]  # drop the one-byte compact length of a one-element Vec

    def event_index(self, pallet: str, name: str) -> bytes:
        key = (pallet, name)
        if key not in self._event_indexes:
            p = self._pallets[pallet]
            (variant,) = [e for e in p.events if e.name == name]
            self._event_indexes[key] = bytes([p["index"].value, variant.value["index"]])
        return self._event_indexes[key]

    def _fast_record(self, record: dict[str, Any]) -> bytes | None:
        ((pallet, inner),) = record["event"].items()
        ((name, attrs),) = inner.items()
        if (pallet, name) == ("Contracts", "ContractEmitted"):
            data = unhex(attrs["data"])
            body = unhex(attrs["contract"]) + encode_compact(len(data)) + data
        elif (pallet, name) == ("Contracts", "Called") and "Signed" in attrs["caller"]:
            body = b"\x01" + unhex(attrs["caller"]["Signed"]) + unhex(attrs["contract"])
        elif pallet == "Utility" and name in ("ItemCompleted", "BatchCompleted"):
            body = b""
        else:
            return None
        phase = record["phase"]
        if isinstance(phase, dict):
            head = b"\x00" + int(phase["ApplyExtrinsic"]).to_bytes(4, "little")
        else:
            head = b"\x01" if phase == "Finalization" else b"\x02"
        topics = record.get("topics") or []
        return (
            head
            + self.event_index(pallet, name)
            + body
            + encode_compact(len(topics))
            + b"".join(unhex(t) for t in topics)
        )

    def module_error(self, pallet: str, name: str) -> ModuleError:
        p = self._pallets[pallet]
        for index, err in enumerate(p.errors):
            if err.name == name:
                return ModuleError(p["index"].value, index, pallet, name)
        raise KeyError(f"{pallet}.{name}")

    def constant(self, pallet: str, name: str) -> Any:
        for c in self._pallets[pallet]["constants"]:
            if c["name"].value == name:
                return self.decode(_const_type(c), bytes(c["value"].value_object))
        raise KeyError(f"{pallet}.{name}")

    def runtime_version_json(self) -> dict[str, Any]:
        return dict(self.version)


def _const_type(constant: Any) -> str:
    return f"scale_info::{constant['type'].value}"


_HASHERS = {
    "Blake2_128Concat": blake2_128_concat,
    "Twox64Concat": two_x64_concat,
    "Identity": lambda b: b,
    "Twox128": xxh128,
    "Blake2_256": blake2_256,
}


@functools.cache
def runtime() -> Runtime:
    """The process-wide Runtime (metadata parsing takes ~1 s, do it once)."""
    return Runtime()
