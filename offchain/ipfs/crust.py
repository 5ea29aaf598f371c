"""Optional Crust storage orders after an IPFS add: a port, its substrate-interface adapter, and a fake.

A Crust order is the extrinsic `Market.place_storage_order(cid, reported_file_size, tips, memo)` on Crust's
chain; its state is the storage map `Market.FilesV2(cid)`. Crust nodes fetch the file over the public IPFS
network, so a loopback node can never fulfil an order: the adapter is only composed here, never run against a
live chain, and everything above it is tested with `FakeCrustOrders`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from offchain.ipfs.cid import normalize_cid
from offchain.ipfs.errors import IpfsError
from offchain.ipfs.store import ContentStore

MAX_MEMO_BYTES = 256
MAX_FILE_SIZE = 1 << 40  # 1 TiB: anything larger is a bug, not a track


class CrustOrderError(IpfsError):
    """A storage order was refused (bad arguments, dispatch error, no inclusion in time)."""


class CrustOrderReceipt(BaseModel):
    """What placing an order gave: the extrinsic hash and the block it was included in."""

    model_config = ConfigDict(frozen=True)

    cid: str
    file_size: int
    extrinsic_hash: str
    block_hash: str | None = None


class CrustOrderStatus(BaseModel):
    """The part of `Market.FilesV2(cid)` the platform looks at."""

    model_config = ConfigDict(frozen=True)

    cid: str
    state: Literal["pending", "stored"]
    file_size: int = Field(ge=0)
    replicas: int = Field(ge=0, description="reported_replica_count: nodes that proved they store it")
    expired_at: int = Field(ge=0, description="block number at which the order ends (0 until first stored)")


@runtime_checkable
class CrustOrderPort(Protocol):
    """Placing and following Crust storage orders."""

    async def place_storage_order(
        self, cid: str, file_size: int, tips: int, memo: bytes
    ) -> CrustOrderReceipt:
        """Order storage of `cid` (`file_size`: cumulative DAG size in bytes, `tips` in the smallest unit)."""
        ...

    async def order_status(self, cid: str) -> CrustOrderStatus | None:
        """The order's state, or None when there is no order for `cid`."""
        ...


def check_order(cid: str, file_size: int, tips: int, memo: bytes) -> str:
    """Validate an order's arguments; returns the canonical CID or raises `CrustOrderError`."""
    try:
        key = normalize_cid(cid)
    except IpfsError as exc:
        raise CrustOrderError(f"storage order: {exc}") from None
    if isinstance(file_size, bool) or not isinstance(file_size, int) or not 0 < file_size <= MAX_FILE_SIZE:
        raise CrustOrderError(f"storage order: file_size must be 1..{MAX_FILE_SIZE} bytes, not {file_size!r}")
    if isinstance(tips, bool) or not isinstance(tips, int) or tips < 0:
        raise CrustOrderError(f"storage order: tips must be a non-negative integer, not {tips!r}")
    if not isinstance(memo, bytes) or len(memo) > MAX_MEMO_BYTES:
        raise CrustOrderError(f"storage order: memo must be at most {MAX_MEMO_BYTES} bytes")
    return key


class SubstrateCrustOrders:
    """`CrustOrderPort` over a substrate-interface connection to Crust's chain (ss58 prefix 66, sr25519).

    substrate-interface is blocking, so each call runs in a worker thread; `submit_timeout` bounds the wait
    for inclusion, because substrate-interface waits forever after an `invalid` or `usurped` status.

    Args:
        substrate: a `substrateinterface.SubstrateInterface` connected to Crust (or an object with the same
            `compose_call`, `create_signed_extrinsic`, `submit_extrinsic` and `query` methods).
        keypair: the `substrateinterface.Keypair` that pays for the orders.
        era_period: blocks for which a signed order stays valid (mortal, so it can never land later).
    """

    def __init__(self, substrate: Any, keypair: Any, *, era_period: int = 64, submit_timeout: float = 120.0):
        self._substrate = substrate
        self._keypair = keypair
        self._era = {"period": era_period}
        self._submit_timeout = submit_timeout
        self._lock = asyncio.Lock()  # one submission at a time: substrate-interface is not thread-safe

    def _place(self, cid: str, file_size: int, tips: int, memo: bytes) -> CrustOrderReceipt:
        call = self._substrate.compose_call(
            call_module="Market",
            call_function="place_storage_order",
            call_params={
                "cid": cid.encode("ascii"),
                "reported_file_size": file_size,
                "tips": tips,
                "memo": memo,
            },
        )
        extrinsic = self._substrate.create_signed_extrinsic(call=call, keypair=self._keypair, era=self._era)
        receipt = self._substrate.submit_extrinsic(extrinsic, wait_for_inclusion=True)
        if not receipt.is_success:
            raise CrustOrderError(f"storage order for {cid} failed: {receipt.error_message}")
        return CrustOrderReceipt(
            cid=cid, file_size=file_size, extrinsic_hash=receipt.extrinsic_hash, block_hash=receipt.block_hash
        )

    async def place_storage_order(
        self, cid: str, file_size: int, tips: int, memo: bytes
    ) -> CrustOrderReceipt:
        key = check_order(cid, file_size, tips, memo)
        async with self._lock:
            try:
                return await asyncio.wait_for(
                    asyncio.to_thread(self._place, key, file_size, tips, memo), self._submit_timeout
                )
            except TimeoutError:
                raise CrustOrderError(
                    f"storage order for {key} was not included within {self._submit_timeout}s"
                ) from None

    def _status(self, cid: str) -> CrustOrderStatus | None:
        result = self._substrate.query("Market", "FilesV2", [cid.encode("ascii")])
        value = getattr(result, "value", result)
        if not value:
            return None
        replicas = int(value.get("reported_replica_count", 0))
        return CrustOrderStatus(
            cid=cid,
            state="stored" if replicas > 0 else "pending",
            file_size=int(value.get("file_size", 0)),
            replicas=replicas,
            expired_at=int(value.get("expired_at", 0)),
        )

    async def order_status(self, cid: str) -> CrustOrderStatus | None:
        key = normalize_cid(cid)
        return await asyncio.to_thread(self._status, key)


class FakeCrustOrders:
    """An in-memory `CrustOrderPort`: orders are pending until `fulfil(cid, replicas)` is called."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.orders: list[tuple[str, int, int, bytes]] = []
        self._status: dict[str, CrustOrderStatus] = {}
        self.refuse = refuse

    async def place_storage_order(
        self, cid: str, file_size: int, tips: int, memo: bytes
    ) -> CrustOrderReceipt:
        key = check_order(cid, file_size, tips, memo)
        if self.refuse:
            raise CrustOrderError(f"storage order for {key} failed: Market.InsufficientCurrency")
        self.orders.append((key, file_size, tips, memo))
        self._status.setdefault(
            key, CrustOrderStatus(cid=key, state="pending", file_size=file_size, replicas=0, expired_at=0)
        )
        return CrustOrderReceipt(cid=key, file_size=file_size, extrinsic_hash=f"0x{len(self.orders):064x}")

    async def order_status(self, cid: str) -> CrustOrderStatus | None:
        return self._status.get(normalize_cid(cid))

    def fulfil(self, cid: str, replicas: int, expired_at: int = 1_000_000) -> None:
        key = normalize_cid(cid)
        old = self._status[key]
        self._status[key] = old.model_copy(
            update={"state": "stored", "replicas": replicas, "expired_at": expired_at}
        )


async def add_with_order(
    store: ContentStore,
    orders: CrustOrderPort | None,
    data: bytes,
    *,
    cid_version: int = 1,
    tips: int = 0,
    memo: bytes = b"",
) -> tuple[str, CrustOrderReceipt | None]:
    """Add `data` (pinned) and, when `orders` is given, order its storage on Crust for its DAG size.

    A refused order raises `CrustOrderError` after the content is stored and pinned: a retry only re-orders.
    """
    cid = await store.add(data, cid_version=cid_version, pin=True)
    if orders is None:
        return cid, None
    # Crust's own tools report the cumulative DAG size as the file size.
    size = (await store.stat(cid)).cumulative_size
    return cid, await orders.place_storage_order(cid, max(size, 1), tips, memo)
