"""SubstrateChainPort.block() decodes System.Events from raw storage (fast path for ContractEmitted) and must
give exactly the RawEvents that substrate-interface's own get_events() decoding gives,
on real devnet blocks."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from scalecodec.base import ScaleBytes
from substrateinterface import SubstrateInterface
from waiting import until

from ami_node.abi import ContractAbi, metadata_dir
from ami_node.devnet.testing import DevnetHandle
from ami_node.event_decoder import decode_events, event_layout, raw_event
from ami_node.keys import load_keypair
from ami_node.port import ChainError
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import send_call

ALICE, BOB, CHARLIE = load_keypair("//Alice"), load_keypair("//Bob"), load_keypair("//Charlie")
NFT = ContractAbi.load("ami_nft")
GAS = (10**10, 10**6)


def _reference(url: str, hashes: list[str]) -> list[tuple[Any, ...]]:
    """The events of each block through substrate-interface's full scalecodec decoding (the old path)."""
    si = SubstrateInterface(url=url, ss58_format=42)
    try:
        return [tuple(raw_event(i, r) for i, r in enumerate(si.get_events(block_hash=h))) for h in hashes]
    finally:
        si.close()


async def test_block_events_equal_scalecodec_decoding_for_every_event_kind(dn: DevnetHandle) -> None:
    async with SubstrateChainPort(dn.url, timeout_s=20.0) as port:
        bundle = ContractAbi.load(metadata_dir().parent / "bundles" / "ami_nft.contract")
        assert bundle.wasm is not None
        deploy = await port.compose_call("Contracts", "instantiate_with_code", {
            "value": 0, "gas_limit": {"ref_time": 10**11, "proof_size": 10**6}, "storage_deposit_limit": None,
            "code": "0x" + bundle.wasm.hex(), "data": "0x" + NFT.constructor("new").hex(),
            "salt": "0x" + os.urandom(8).hex()})
        await send_call(port, ALICE, deploy, timeout_s=30)
        head = await port.finalized_head()
        block = await port.block(head.number)
        nft = str(next(e for e in block.events if e.name == "Instantiated").attributes["contract"])
        mint = NFT.encode_call("mint", audio_cid="a", metadata_cid="m",
                               royalty_splits=[(BOB.address, 10_000)])
        await send_call(port, BOB, await port.contract_call(nft, mint, GAS), timeout_s=30)
        calls = [await port.contract_call(nft, NFT.encode_call("listen", token_id=1, seconds=s), GAS)
                 for s in range(30, 60)]
        calls.append(await port.contract_call(nft, NFT.encode_call("tag", token_id=1, tag="lofi"), GAS))
        await send_call(port, CHARLIE, await port.batch_all(calls), timeout_s=30)
        transfer = await port.compose_call("Balances", "transfer_keep_alive",
                                           {"dest": load_keypair("//Fresh").address, "value": 10**15})
        await send_call(port, ALICE, transfer, timeout_s=30)
        # A failing extrinsic (ExtrinsicFailed with a module error): a revert inside batch_all.
        revert = await port.contract_call(nft, NFT.encode_call("add_oracle", account=BOB.address), GAS)
        with pytest.raises(Exception):  # noqa: B017 - the failure's type belongs to tx.py; its events matter here
            await send_call(port, BOB, await port.batch_all([revert]), timeout_s=30)
        best = (await port.best_head()).number

        async def finalized_to_best() -> bool:
            return (await port.finalized_head()).number >= best

        await until(finalized_to_best, "finality reaching the failed batch's block")
        head = await port.finalized_head()
        blocks = [await port.block(n) for n in range(0, head.number + 1)]
    reference = await asyncio.to_thread(_reference, dn.url, [b.ref.hash for b in blocks])

    kinds = {(e.pallet, e.name) for b in blocks for e in b.events}
    for kind in [("Contracts", "ContractEmitted"), ("Contracts", "Instantiated"), ("Contracts", "Called"),
                 ("Balances", "Transfer"), ("System", "ExtrinsicSuccess"), ("System", "ExtrinsicFailed")]:
        assert kind in kinds
    assert sum(e.name == "ContractEmitted" for b in blocks for e in b.events) >= 32
    for b, ref in zip(blocks, reference, strict=True):
        assert b.events == ref, f"block #{b.ref.number} differs"


async def test_crafted_records_text_data_trailing_bytes_and_truncation(dn: DevnetHandle) -> None:
    si = await asyncio.to_thread(SubstrateInterface, url=dn.url, ss58_format=42)
    try:
        await asyncio.to_thread(si.init_runtime)
        layout = event_layout(si)
        assert layout is not None and layout.emitted is not None and layout.apply_extrinsic is not None
        # Flat events (accounts, unsigned integers) take the direct parser too; the equality test above
        # covers them on real blocks (transfers, fees).
        flat = {(p, e): fields for p, e, fields in layout.flat.values()}
        assert flat[("Balances", "Transfer")] == (("from", 0), ("to", 0), ("amount", 16))
        assert ("Utility", "ItemCompleted") not in flat  # no fields: left to scalecodec
        pallet, event = layout.emitted
        # Data that happens to be UTF-8 text: scalecodec reports attributes["data"] as that text.
        for data, ext_phase in ((b"hello", True), (b"\xff\x00\x01", False)):
            phase = bytes([layout.apply_extrinsic]) + (7).to_bytes(4, "little") if ext_phase else bytes(
                [next(i for i, n in layout.phase_sizes.items() if n == 0)])
            record = (phase + bytes([pallet, event]) + bytes(BOB.public_key) + bytes([len(data) << 2]) + data
                      + bytes([2 << 2]) + b"\x11" * 32 + b"\x22" * 32)
            raw = bytes([1 << 2]) + record
            fast = decode_events(si, layout, raw)
            obj = si.runtime_config.create_scale_object(f"Vec<{layout.record_type}>", metadata=si.metadata)
            obj.decode(ScaleBytes(raw))
            assert fast == (raw_event(0, obj.elements[0]),)
            assert fast[0].data == data and fast[0].contract == BOB.address
            assert fast[0].extrinsic_index == (7 if ext_phase else None)
            with pytest.raises(ChainError, match="trailing"):
                decode_events(si, layout, raw + b"\x00")
            with pytest.raises(ChainError, match="truncated"):
                decode_events(si, layout, raw[:-5])
    finally:
        si.close()
