"""ChainPort adapter on substrate-interface 1.8.1, for real Substrate nodes and the local devnet.

substrate-interface is synchronous: each of the two connections (one for watching blocks, one for composing,
signing and submitting) owns one SubstrateInterface used only from its own single worker thread, so the event
loop never blocks and the library's non-thread-safe state is never shared. Every call has a deadline; when the
websocket drops, the connection is rebuilt with exponential backoff (tenacity) until the deadline passes, then
ChainUnavailable is raised. Types come from the node's own metadata (nothing is hard-coded per runtime).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from hashlib import blake2b
from typing import Any, TypeVar

import structlog
from scalecodec.utils.ss58 import is_valid_ss58_address
from substrateinterface import Keypair as SiKeypair

from ami_node.event_decoder import EventLayout, decode_events, event_layout, hex_bytes, raw_event
from ami_node.keys import Keypair
from ami_node.port import (
    Block,
    BlockRef,
    CallError,
    ChainError,
    DryRun,
    PoolRejected,
    RawEvent,
    SignedTx,
    dispatch_error_text,
)
from ami_node.substrate_link import (
    POOL_ALREADY_IMPORTED,
    POOL_BANNED,
    POOL_INVALID,
    Connection,
    classify_pool_error,
    is_connection_error,
    rpc_error,
)
from pallets_spec.vocabulary import SS58_FORMAT

__all__ = ["SubstrateChainPort"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _rpc(si: Any, method: str, params: list[Any]) -> Any:
    return si.rpc_request(method, params).get("result")


def _header_number(header: dict[str, Any]) -> int:
    n = header["number"]
    return int(n, 16) if isinstance(n, str) else int(n)


def _weight_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, dict):
        return int(value.get("ref_time", 0)), int(value.get("proof_size", 0))
    return int(value), 0


class SubstrateChainPort:
    """ChainPort over substrate-interface: `SubstrateChainPort("ws://127.0.0.1:9944", timeout_s=30.0)`.

    `timeout_s` bounds every call, reconnect attempts included. `poll_interval_s` is how often
    `finalized_heads()` asks for the finalized head.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0, poll_interval_s: float = 0.5) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"node URL must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self._watch = Connection(url, "watch", timeout_s)
        self._submit = Connection(url, "submit", timeout_s)
        # EventRecord layout per decoded runtime metadata object (kept alive beside its id).
        self._layouts: dict[int, tuple[Any, EventLayout | None]] = {}

    async def __aenter__(self) -> SubstrateChainPort:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ reading

    async def _rpc_checked(self, conn: Connection, method: str, params: list[Any]) -> Any:
        def run(si: Any) -> Any:
            try:
                return _rpc(si, method, params)
            except Exception as exc:
                err = rpc_error(exc)
                if err is None:
                    raise
                raise ChainError(f"{method} failed: {err.get('message')} ({err.get('data', '')})") from None

        return await conn.call(run)

    async def genesis_hash(self) -> str:
        return str(await self._rpc_checked(self._watch, "chain_getBlockHash", [0]))

    async def finalized_head(self) -> BlockRef:
        def run(si: Any) -> BlockRef:
            h = _rpc(si, "chain_getFinalizedHead", [])
            return BlockRef(_header_number(_rpc(si, "chain_getHeader", [h])), h)

        return await self._watch.call(run)

    async def best_head(self) -> BlockRef:
        def run(si: Any) -> BlockRef:
            h = _rpc(si, "chain_getBlockHash", [])
            return BlockRef(_header_number(_rpc(si, "chain_getHeader", [h])), h)

        return await self._watch.call(run)

    async def block_hash(self, number: int) -> str | None:
        if number < 0:
            raise ValueError(f"block number must be >= 0, got {number}")
        result = await self._rpc_checked(self._watch, "chain_getBlockHash", [number])
        return str(result) if result else None

    async def block(self, number: int) -> Block:
        def run(si: Any) -> Block:
            h = _rpc(si, "chain_getBlockHash", [number])
            if not h:
                raise ChainError(f"block #{number} does not exist yet")
            signed = _rpc(si, "chain_getBlock", [h])
            if not signed:
                raise ChainError(f"block #{number} ({h}) is not available on the node (pruned?)")
            header = signed["block"]["header"]
            ext_hashes = tuple(
                "0x" + blake2b(hex_bytes(x), digest_size=32).hexdigest()
                for x in signed["block"]["extrinsics"]
            )
            events = self._events(si, h)
            return Block(BlockRef(number, h), header["parentHash"], ext_hashes, events)

        return await self._watch.call(run)

    def _events(self, si: Any, block_hash: str) -> tuple[RawEvent, ...]:
        """The block's System.Events as RawEvents: raw storage bytes, decoded against the block's runtime."""
        si.init_runtime(block_hash=block_hash)
        cached = self._layouts.get(id(si.metadata))
        if cached is None or cached[0] is not si.metadata:
            cached = (si.metadata, event_layout(si))
            self._layouts[id(si.metadata)] = cached
        layout = cached[1]
        if layout is None:
            return tuple(raw_event(i, rec) for i, rec in enumerate(si.get_events(block_hash=block_hash)))
        raw = _rpc(si, "state_getStorage", [layout.storage_key, block_hash])
        return decode_events(si, layout, hex_bytes(raw) if raw else b"")

    async def finalized_heads(self) -> AsyncIterator[BlockRef]:
        """Poll the finalized head and yield each new one; rides out node outages (logs and keeps polling)."""
        last = -1
        while True:
            try:
                ref = await self.finalized_head()
            except ChainError as exc:  # unreachable, or a node mid-restart answering errors
                log.warning("finalized head unavailable, retrying", url=self.url, error=str(exc))
                await asyncio.sleep(min(5.0, self.poll_interval_s * 4))
                continue
            if ref.number > last:
                last = ref.number
                yield ref
            await asyncio.sleep(self.poll_interval_s)

    async def account_next_index(self, address: str) -> int:
        return int(await self._rpc_checked(self._submit, "system_accountNextIndex", [address]))

    async def account_nonce(self, address: str, at: str) -> int:
        def run(si: Any) -> int:
            if not is_valid_ss58_address(address):
                raise CallError(f"not an SS58 address: {address!r}")
            info = si.query("System", "Account", [address], block_hash=at)
            return int(info.value["nonce"])

        return await self._watch.call(run)

    async def free_balance(self, address: str) -> int:
        def run(si: Any) -> int:
            # Any SS58 prefix is accepted (the node's own prefix may not be 42); the key is what counts.
            if not is_valid_ss58_address(address):
                raise CallError(f"not an SS58 address: {address!r}")
            info = si.query("System", "Account", [address])
            return int(info.value["data"]["free"])

        return await self._watch.call(run)

    # ------------------------------------------------------------------ composing

    @staticmethod
    def _describe_call(si: Any, pallet: str, function: str) -> str | None:
        fn = si.get_metadata_call_function(pallet, function)
        if fn is None:
            return None
        args = fn.value.get("fields") or fn.value.get("args") or []
        parts = [f"{a.get('name')}: {a.get('typeName') or a.get('type')}" for a in args]
        return ", ".join(parts) or "no arguments"

    def _compose(self, si: Any, pallet: str, function: str, params: dict[str, Any]) -> Any:
        si.init_runtime()
        expected = self._describe_call(si, pallet, function)
        if expected is None:
            pallets = sorted(p.name for p in si.metadata.pallets)
            if pallet not in pallets:
                raise CallError(f"unknown pallet {pallet!r}; this node has: {', '.join(pallets)}")
            raise CallError(f"pallet {pallet} has no call {function!r}")
        try:
            return si.compose_call(pallet, function, params)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            raise CallError(f"bad arguments for {pallet}.{function} ({exc}); expected ({expected})") from None

    async def compose_call(self, pallet: str, function: str, params: dict[str, Any]) -> Any:
        return await self._submit.call(lambda si: self._compose(si, pallet, function, params))

    async def contract_call(
        self,
        contract: str,
        data: bytes,
        gas_limit: tuple[int, int],
        value: int = 0,
        storage_deposit_limit: int | None = None,
    ) -> Any:
        params = {
            "dest": contract,
            "value": value,
            "gas_limit": {"ref_time": gas_limit[0], "proof_size": gas_limit[1]},
            "storage_deposit_limit": storage_deposit_limit,
            "data": "0x" + bytes(data).hex(),
        }
        return await self.compose_call("Contracts", "call", params)

    async def batch_all(self, calls: Sequence[Any]) -> Any:
        if not calls:
            raise CallError("Utility.batch_all needs at least one call")
        return await self.compose_call("Utility", "batch_all", {"calls": [c.value for c in calls]})

    async def call_weight(self, call: Any, signer: str) -> tuple[int, int]:
        def run(si: Any) -> tuple[int, int]:
            info = si.get_payment_info(call, SiKeypair(ss58_address=signer, ss58_format=SS58_FORMAT))
            return _weight_pair(info["weight"])

        return await self._submit.call(run)

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        def run(si: Any) -> tuple[int, int]:
            bw = si.get_constant("System", "BlockWeights").value
            normal = bw["per_class"]["normal"]
            for candidate in (normal.get("max_extrinsic"), normal.get("max_total"), bw["max_block"]):
                if candidate:
                    return _weight_pair(candidate)
            raise ChainError("runtime BlockWeights constant has no usable limit")

        return await self._submit.call(run)

    # ------------------------------------------------------------------ contracts

    async def contract_dry_run(self, contract: str, data: bytes, origin: str, value: int = 0) -> DryRun:
        conn = self._submit

        def run(si: Any) -> DryRun:
            si.init_runtime()
            params = {
                "origin": origin,
                "dest": contract,
                "value": value,
                "gas_limit": None,
                "storage_deposit_limit": None,
                "input_data": "0x" + bytes(data).hex(),
            }
            # pallet-contracts added `events` to ContractResult (To269 layout); older nodes lack it. The
            # library picks one from a storage item real nodes do not expose, so try both and remember.
            candidates = (
                [conn.exec_result_type]
                if conn.exec_result_type
                else ["ContractExecResultTo269", "ContractExecResultTo267"]
            )
            last: Exception | None = None
            for type_name in candidates:
                si.runtime_config.update_type_registry_types({"ContractExecResult": type_name})
                try:
                    result = si.runtime_call("ContractsApi", "call", params)
                except Exception as exc:
                    if is_connection_error(exc):
                        raise
                    err = rpc_error(exc)
                    if err is not None:
                        detail = f"{err.get('message')} {err.get('data', '')}"
                        raise ChainError(f"contract dry run failed: {detail}") from None
                    last = exc
                    continue
                conn.exec_result_type = type_name
                return _dry_run_from(si, result)
            raise CallError(f"cannot dry-run a call to {contract}: {last}")

        return await conn.call(run)

    # ------------------------------------------------------------------ signing and submitting

    async def sign(self, call: Any, keypair: Keypair, nonce: int, era_period: int = 64) -> SignedTx:
        def run(si: Any) -> SignedTx:
            si.init_runtime()
            head_hash = _rpc(si, "chain_getFinalizedHead", [])
            current = _header_number(_rpc(si, "chain_getHeader", [head_hash]))
            best = _header_number(_rpc(si, "chain_getHeader", []))
            if best - current > era_period // 4:
                # Finality is lagging: an era born at the finalized head would be (nearly) over already.
                # Like polkadot-js, anchor on the best block instead (if it is retracted, the transaction
                # simply expires and is re-signed).
                current = best
            era = {"period": era_period, "current": current}
            era_obj = si.runtime_config.create_scale_object("Era")
            era_obj.encode(era)
            ext = si.create_signed_extrinsic(
                call=call, keypair=keypair.substrate_keypair, era=era, nonce=nonce
            )
            return SignedTx(
                hash="0x" + ext.extrinsic_hash.hex(),
                data=bytes(ext.data.data),
                signer=keypair.address,
                nonce=nonce,
                era_birth=int(era_obj.birth(current)),
                era_death=int(era_obj.death(current)),
            )

        return await self._submit.call(run)

    async def submit(self, tx: SignedTx) -> str:
        """author_submitExtrinsic. "Already imported" (1013) counts as accepted: the same bytes are pooled.

        When the connection dropped during an attempt, the node may have received it; a "stale" answer to the
        retry then may mean it landed, so it is reported as not transient (confirm by scanning blocks rather
        than re-signing with a fresh nonce).
        """
        attempts = 0

        def run(si: Any) -> str:
            nonlocal attempts
            attempts += 1
            try:
                return str(_rpc(si, "author_submitExtrinsic", ["0x" + tx.data.hex()]))
            except Exception as exc:
                err = rpc_error(exc)
                if err is None:
                    raise
                code = int(err.get("code", 0) or 0)
                if code == POOL_ALREADY_IMPORTED or (code == POOL_BANNED and attempts > 1):
                    # After a drop mid-submit, "banned" means the pool already saw these exact bytes on the
                    # first attempt (and included or refused them): the caller confirms by scanning blocks
                    # until the mortal era ends, so it can neither be lost silently nor land twice.
                    return tx.hash
                rejected = classify_pool_error(err)
                if attempts > 1 and rejected.code == POOL_INVALID and rejected.transient:
                    rejected = PoolRejected(
                        rejected.code,
                        f"{rejected.reason} (after a reconnect: the first attempt may have landed; "
                        "confirm by scanning blocks)",
                        False,
                    )
                raise rejected from None

        return await self._submit.call(run)

    async def close(self) -> None:
        await self._watch.close()
        await self._submit.close()


def _dry_run_from(si: Any, result: Any) -> DryRun:
    value = result.value
    gas_required = _weight_pair(value["gas_required"])
    deposit = value.get("storage_deposit") or {}
    storage_deposit = int(deposit.get("Charge", 0)) if isinstance(deposit, dict) else 0
    outcome = value["result"]
    if "Ok" in outcome:
        ok_obj = result.value_object["result"].value_object[1]
        raw = ok_obj.value_object["data"].value_object
        output = bytes(raw) if isinstance(raw, bytes | bytearray) else hex_bytes(outcome["Ok"]["data"])
        flags = int.from_bytes(bytes(ok_obj.value_object["flags"].get_used_bytes()), "little")
        reverted = bool(flags & 1)  # pallet-contracts ReturnFlags::REVERT
        return DryRun(not reverted, output, "reverted" if reverted else None, gas_required, storage_deposit)
    error = dispatch_error_text(outcome.get("Error"), _metadata_error_namer(si))
    return DryRun(False, b"", error, gas_required, storage_deposit)


def _metadata_error_namer(si: Any) -> Callable[[int, int], str | None]:
    """Names a module error "Pallet::Error" (e.g. "Contracts::ContractTrapped") from the node's metadata."""

    def name(index: int, error_index: int) -> str | None:
        with contextlib.suppress(Exception):
            pallet = next(p for p in si.metadata.pallets if p["index"] == index)
            return f"{pallet.name}::{si.metadata.get_module_error(index, error_index).name}"
        return None

    return name
