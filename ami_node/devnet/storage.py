"""The storage a client reads from the devnet: the world state encoded as the runtime's storage items."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ami_node.devnet.extrinsic import decode_compact, encode_compact
from ami_node.devnet.meta import Runtime, blake2_256, hexstr
from ami_node.devnet.state import BLOCK_HASH_KEPT, CONTRACT_BASE_DEPOSIT, Block, WorldState


def materialize(
    rt: Runtime, st: WorldState, blocks: Sequence[Block], number: int, events: bytes
) -> dict[bytes, bytes]:
    """The full storage a client reads at block `number` with state `st` (`blocks`: the canonical chain)."""
    out: dict[bytes, bytes] = {}
    for who, (nonce, free, reserved) in st.accounts.items():
        out[rt.account_key(who)] = _account_value(nonce, free, reserved)
    out[rt.storage_key("System", "Events")] = events
    out[rt.storage_key("System", "Number")] = number.to_bytes(4, "little")
    out[rt.storage_key("System", "EventCount")] = _event_count(events).to_bytes(4, "little")
    if blocks:
        out[rt.block_hash_key(0)] = blocks[0].hash
    # the last BLOCK_HASH_KEPT hashes (the runtime keeps 2400; enough for eras of up to 256 blocks)
    for n in range(max(1, number - BLOCK_HASH_KEPT), min(number, len(blocks))):
        out[rt.block_hash_key(n)] = blocks[n].hash
    if number > 0 and number - 1 < len(blocks):
        out[rt.storage_key("System", "ParentHash")] = blocks[number - 1].hash
    out[rt.storage_key("Timestamp", "Now")] = st.timestamp.to_bytes(8, "little")
    out[rt.storage_key("Balances", "TotalIssuance")] = st.total_issuance.to_bytes(16, "little")
    out[rt.storage_key("Sudo", "Key")] = st.sudo_key
    out[rt.storage_key("TransactionPayment", "NextFeeMultiplier")] = (10**18).to_bytes(16, "little")
    # what polkadot-js apps and contracts-ui read to show a contract (ContractInfoOf, CodeInfoOf, ...)
    refcount: dict[bytes, int] = {}
    for address, rec in st.contracts.items():
        refcount[rec.code_hash] = refcount.get(rec.code_hash, 0) + 1
        key, value = _contract_info(rt, address, rec.code_hash)
        out[key] = value
    for code_hash, code in st.codes.items():
        owner, deposit = st.code_owner.get(code_hash, (b"\x00" * 32, 0))
        pristine_key, info_key, info = _code_info(
            rt, code_hash, owner, deposit, refcount.get(code_hash, 0), len(code)
        )
        out[pristine_key] = encode_compact(len(code)) + code
        out[info_key] = info
    out[rt.storage_key("Contracts", "Nonce")] = len(st.contracts).to_bytes(8, "little")
    return out


def archived(rt: Runtime, block: Block) -> dict[bytes, bytes]:
    """What stays readable after a block's full state is pruned: its events and header facts (followers
    read System.Events of old finalized blocks)."""
    out = {
        rt.storage_key("System", "Events"): block.events,
        rt.storage_key("System", "Number"): block.number.to_bytes(4, "little"),
        rt.storage_key("System", "EventCount"): _event_count(block.events).to_bytes(4, "little"),
        rt.storage_key("System", "ParentHash"): block.parent_hash,
        rt.storage_key("Timestamp", "Now"): block.timestamp.to_bytes(8, "little"),
    }
    return out


def _account_value(nonce: int, free: int, reserved: int) -> bytes:
    # frame_system::AccountInfo<u32, pallet_balances::AccountData<u128>>: nonce, consumers, providers,
    # sufficients, free, reserved, frozen, flags. By hand: it is on the hot path and fixed-size.
    providers = 1 if free or reserved else 0
    flags = 1 << 127  # IS_NEW_LOGIC, as upgraded accounts carry
    return (
        nonce.to_bytes(4, "little")
        + (0).to_bytes(4, "little")
        + providers.to_bytes(4, "little")
        + (0).to_bytes(4, "little")
        + free.to_bytes(16, "little")
        + reserved.to_bytes(16, "little")
        + (0).to_bytes(16, "little")
        + flags.to_bytes(16, "little")
    )


@functools.lru_cache(maxsize=4096)
def _contract_info(rt: Runtime, address: bytes, code_hash: bytes) -> tuple[bytes, bytes]:
    """Contracts.ContractInfoOf key and value (the metadata's ContractInfo); the models hold no child-trie
    items, so only the base deposit the deployer paid is non-zero. trie_id: derived from the address."""
    value = rt.encode_storage_value(
        "Contracts",
        "ContractInfoOf",
        {
            "trie_id": hexstr(blake2_256(b"ami_trie" + address)),
            "code_hash": hexstr(code_hash),
            "storage_bytes": 0,
            "storage_items": 0,
            "storage_byte_deposit": 0,
            "storage_item_deposit": 0,
            "storage_base_deposit": CONTRACT_BASE_DEPOSIT,
            "delegate_dependencies": [[]],
        },
    )
    return rt.storage_key("Contracts", "ContractInfoOf", hexstr(address)), value


@functools.lru_cache(maxsize=4096)
def _code_info(
    rt: Runtime, code_hash: bytes, owner: bytes, deposit: int, refcount: int, code_len: int
) -> tuple[bytes, bytes, bytes]:
    """Contracts.PristineCode key, Contracts.CodeInfoOf key and value (owner, deposit, refcount, ...)."""
    info = rt.encode_storage_value(
        "Contracts",
        "CodeInfoOf",
        {
            "owner": hexstr(owner),
            "deposit": deposit,
            "refcount": refcount,
            "determinism": "Enforced",
            "code_len": code_len,
        },
    )
    h = hexstr(code_hash)
    return rt.storage_key("Contracts", "PristineCode", h), rt.storage_key("Contracts", "CodeInfoOf", h), info


def _event_count(events: bytes) -> int:
    return decode_compact(events, 0)[0] if events else 0
