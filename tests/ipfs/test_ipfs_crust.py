"""Crust storage orders: the substrate-interface adapter against a recording fake chain, and the fake port."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from offchain.ipfs.cid import build_dag, compute_cid
from offchain.ipfs.crust import (
    CrustOrderError,
    CrustOrderPort,
    FakeCrustOrders,
    SubstrateCrustOrders,
    add_with_order,
)
from offchain.ipfs.store import MemoryContentStore


@dataclass
class _Receipt:
    is_success: bool
    error_message: Any = None
    extrinsic_hash: str = "0x" + "ab" * 32
    block_hash: str = "0x" + "cd" * 32


@dataclass
class _Query:
    value: Any


class _FakeSubstrate:
    """Records what the adapter asks of substrate-interface; answers like Crust's chain would."""

    def __init__(self, *, success: bool = True, delay: float = 0.0, files: dict[bytes, Any] | None = None):
        self.calls: list[tuple[str, Any]] = []
        self.success = success
        self.delay = delay
        self.files = files or {}

    def compose_call(self, call_module: str, call_function: str, call_params: dict[str, Any]) -> dict:
        self.calls.append(("compose_call", (call_module, call_function, call_params)))
        return {"call": (call_module, call_function, call_params)}

    def create_signed_extrinsic(self, call: dict, keypair: Any, era: dict) -> dict:
        self.calls.append(("sign", (keypair, era)))
        return {"signed": call}

    def submit_extrinsic(self, extrinsic: dict, wait_for_inclusion: bool) -> _Receipt:
        self.calls.append(("submit", wait_for_inclusion))
        time.sleep(self.delay)
        if self.success:
            return _Receipt(True)
        return _Receipt(False, {"name": "InsufficientCurrency", "type": "Module"})

    def query(self, module: str, storage_function: str, params: list[Any]) -> _Query:
        self.calls.append(("query", (module, storage_function, params)))
        return _Query(self.files.get(params[0]))


CID = compute_cid(b"a track", 0)


async def test_adapter_composes_place_storage_order() -> None:
    chain = _FakeSubstrate()
    orders = SubstrateCrustOrders(chain, keypair="alice-keypair", era_period=32)
    assert isinstance(orders, CrustOrderPort)
    receipt = await orders.place_storage_order(CID, 1234, 5, b"ami")
    assert receipt.cid == CID and receipt.file_size == 1234 and receipt.extrinsic_hash == "0x" + "ab" * 32
    assert chain.calls[0] == (
        "compose_call",
        (
            "Market",
            "place_storage_order",
            {"cid": CID.encode(), "reported_file_size": 1234, "tips": 5, "memo": b"ami"},
        ),
    )
    assert chain.calls[1] == ("sign", ("alice-keypair", {"period": 32}))
    assert chain.calls[2] == ("submit", True)


async def test_adapter_reports_dispatch_errors_and_timeouts() -> None:
    with pytest.raises(CrustOrderError, match="InsufficientCurrency"):
        await SubstrateCrustOrders(_FakeSubstrate(success=False), "k").place_storage_order(CID, 1, 0, b"")
    slow = SubstrateCrustOrders(_FakeSubstrate(delay=0.5), "k", submit_timeout=0.1)
    with pytest.raises(CrustOrderError, match="not included"):
        await slow.place_storage_order(CID, 1, 0, b"")


@pytest.mark.parametrize(
    ("cid", "size", "tips", "memo"),
    [
        ("not-a-cid", 1, 0, b""),
        (CID, 0, 0, b""),
        (CID, 1, -1, b""),
        (CID, 1, 0, b"m" * 257),
        (CID, True, 0, b""),
    ],
)
async def test_bad_orders_never_reach_the_chain(cid: str, size: int, tips: int, memo: bytes) -> None:
    chain = _FakeSubstrate()
    with pytest.raises(CrustOrderError):
        await SubstrateCrustOrders(chain, "k").place_storage_order(cid, size, tips, memo)
    assert chain.calls == []


async def test_adapter_reads_files_v2() -> None:
    files = {
        CID.encode(): {"file_size": 1234, "expired_at": 99, "reported_replica_count": 3, "spower": 0},
    }
    orders = SubstrateCrustOrders(_FakeSubstrate(files=files), "k")
    status = await orders.order_status(CID)
    assert (
        status is not None and status.state == "stored" and status.replicas == 3 and status.expired_at == 99
    )
    assert await orders.order_status(compute_cid(b"no order")) is None


async def test_add_with_order_uses_the_dag_size() -> None:
    store, orders = MemoryContentStore(), FakeCrustOrders()
    data = b"\x01" * 600_000
    cid, receipt = await add_with_order(store, orders, data, tips=7, memo=b"track 1")
    assert receipt is not None and receipt.cid == cid
    assert orders.orders == [(cid, build_dag(data).dag_size, 7, b"track 1")]
    status = await orders.order_status(cid)
    assert status is not None and status.state == "pending"
    orders.fulfil(cid, replicas=4)
    status = await orders.order_status(cid)
    assert status is not None and status.state == "stored" and status.replicas == 4
    # without a port the step is skipped
    assert await add_with_order(store, None, b"plain") == (compute_cid(b"plain"), None)


async def test_a_refused_order_leaves_the_content_stored() -> None:
    store, orders = MemoryContentStore(), FakeCrustOrders(refuse=True)
    with pytest.raises(CrustOrderError):
        await add_with_order(store, orders, b"kept anyway")
    cid = compute_cid(b"kept anyway")
    assert await store.cat(cid, max_bytes=100) == b"kept anyway" and await store.is_pinned(cid)
