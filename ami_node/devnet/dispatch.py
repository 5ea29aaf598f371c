"""Dispatch on the devnet: a block builder applies extrinsics (fees, then the call) and records their events.

The supported calls of System, Balances, Utility, Sudo and Contracts each have a handler; contract calls run
the `pallets_spec` model through `contracts`. A failing call reverts its changes and emits ExtrinsicFailed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ami_node.devnet import contracts as cx
from ami_node.devnet.extrinsic import encode_unsigned
from ami_node.devnet.fees import (
    contract_address,
    contract_gas,
    decode_call,
    dispatch_info,
    nested_calls,
    raw_bytes,
)
from ami_node.devnet.meta import account_bytes, blake2_256, hexstr
from ami_node.devnet.state import (
    BASE_EXTRINSIC,
    CODE_DEPOSIT_PER_BYTE,
    CONTRACT_BASE_DEPOSIT,
    EXISTENTIAL_DEPOSIT,
    MAX_NORMAL_TOTAL,
    ChainCore,
    ContractRecord,
    DispatchFailure,
    PoolTx,
    WorldState,
)

log = logging.getLogger("ami.devnet")
Handler = Callable[[bytes | None, dict[str, Any]], None]


class BlockBuilder:
    """Applies extrinsics to the chain's live state, collecting events and extrinsic bytes.

    Each supported call has its handler in `calls`, keyed by (pallet, call); `origin` None is Root."""

    def __init__(self, chain: ChainCore, number: int) -> None:
        self.chain = chain
        self.rt = chain.rt
        self.number = number
        self.events: list[dict[str, Any]] = []
        self.encoded: list[bytes] = []  # SCALE of self.events, extrinsic by extrinsic
        self.extrinsics: list[bytes] = []
        self.used: list[int] = [0, 0]
        self.phase: Any = "Initialization"
        self.calls: dict[tuple[str, str], Handler] = {
            ("System", "remark"): self._System_remark,
            ("System", "remark_with_event"): self._System_remark_with_event,
            ("Balances", "transfer_allow_death"): self._Balances_transfer_allow_death,
            ("Balances", "transfer_keep_alive"): self._Balances_transfer_keep_alive,
            ("Balances", "transfer_all"): self._Balances_transfer_all,
            ("Balances", "force_transfer"): self._Balances_force_transfer,
            ("Balances", "force_set_balance"): self._Balances_force_set_balance,
            ("Utility", "batch"): self._Utility_batch,
            ("Utility", "batch_all"): self._Utility_batch_all,
            ("Utility", "force_batch"): self._Utility_force_batch,
            ("Sudo", "sudo"): self._Sudo_sudo,
            ("Sudo", "sudo_unchecked_weight"): self._Sudo_sudo,
            ("Contracts", "upload_code"): self._Contracts_upload_code,
            ("Contracts", "instantiate_with_code"): self._Contracts_instantiate_with_code,
            ("Contracts", "instantiate"): self._Contracts_instantiate,
            ("Contracts", "call"): self._Contracts_call,
        }

    @property
    def st(self) -> WorldState:
        return self.chain.state

    def fits(self, tx: PoolTx) -> bool:
        w = (tx.weight[0] + BASE_EXTRINSIC, tx.weight[1])
        return (
            self.used[0] + w[0] <= MAX_NORMAL_TOTAL[0] and self.used[1] + w[1] <= MAX_NORMAL_TOTAL[1]
        ) or (not self.extrinsics[1:])

    def event(self, pallet: str, name: str, attrs: Any, topics: list[bytes] | None = None) -> None:
        self.events.append(
            {
                "phase": self.phase,
                "event": {pallet: {name: attrs}},
                "topics": [hexstr(t) for t in topics or []],
            }
        )

    def apply_inherent(self, ts: int) -> None:
        call = self.rt.encode_call("Timestamp", "set", {"now": ts})
        self.extrinsics.append(encode_unsigned(call))
        self.phase = {"ApplyExtrinsic": 0}
        self.st.timestamp = ts
        self.event(
            "System", "ExtrinsicSuccess", {"dispatch_info": dispatch_info((10_000_000, 1_493), "Mandatory")}
        )
        self.encoded.extend(self.rt.encode_event_list(self.events))

    def apply(self, tx: PoolTx) -> None:
        ext = tx.ext
        assert ext.signer is not None
        who = ext.signer
        self.phase = {"ApplyExtrinsic": len(self.extrinsics)}
        self.extrinsics.append(ext.raw)
        self.used[0] += tx.weight[0] + BASE_EXTRINSIC
        self.used[1] += tx.weight[1]
        nonce, free, reserved = self.st.account(who)
        self.st.accounts[who] = (nonce + 1, free - tx.fee, reserved)
        self.st.total_issuance -= tx.fee
        self.event("Balances", "Withdraw", {"who": hexstr(who), "amount": tx.fee})
        info = dispatch_info(tx.weight, "Normal")
        saved = self.st.copy()  # cheap (copy-on-write contract states)
        mark = len(self.events)
        fee_paid = {"who": hexstr(who), "actual_fee": tx.fee, "tip": ext.tip}
        try:
            self.dispatch(ext.call, who)
            self.event("TransactionPayment", "TransactionFeePaid", fee_paid)
            self.event("System", "ExtrinsicSuccess", {"dispatch_info": info})
            # encode now, so that an event the metadata cannot express fails this extrinsic, not the block
            self.encoded.extend(self.rt.encode_event_list(self.events[len(self.encoded) :]))
            return
        except DispatchFailure as failure:
            error = failure.error
        except Exception:  # a devnet bug must cost one extrinsic, never the node
            log.exception("extrinsic 0x%s failed inside the devnet", ext.hash.hex())
            error = "Other"
        self.chain.state = saved
        del self.events[mark:]
        self.event("TransactionPayment", "TransactionFeePaid", fee_paid)
        self.event("System", "ExtrinsicFailed", {"dispatch_error": error, "dispatch_info": info})
        self.encoded.extend(self.rt.encode_event_list(self.events[len(self.encoded) :]))

    # -- dispatch (origin None = Root)
    def dispatch(self, raw: bytes, origin: bytes | None) -> None:
        pallet, function, args = decode_call(self.rt, raw)
        handler = self.calls.get((pallet, function))
        if handler is None:
            raise DispatchFailure("CannotLookup", f"{pallet}.{function}")
        handler(origin, args)

    def _transactional(self, fn: Callable[[], None]) -> None:
        saved = self.st.copy()
        mark = len(self.events)
        try:
            fn()
        except DispatchFailure:
            self.chain.state = saved
            del self.events[mark:]
            raise

    def _signed(self, origin: bytes | None) -> bytes:
        if origin is None:
            raise DispatchFailure("BadOrigin", "BadOrigin")
        return origin

    def _root(self, origin: bytes | None) -> None:
        if origin is not None:
            raise DispatchFailure("BadOrigin", "BadOrigin")

    def transfer(self, src: bytes, dest: bytes, amount: int, *, keep_alive: bool) -> None:
        ed = EXISTENTIAL_DEPOSIT
        s_nonce, s_free, s_res = self.st.account(src)
        if amount > s_free:
            raise DispatchFailure({"Token": "FundsUnavailable"}, "Token.FundsUnavailable")
        if keep_alive and s_free - amount < ed:
            raise DispatchFailure({"Token": "NotExpendable"}, "Token.NotExpendable")
        d_nonce, d_free, d_res = self.st.account(dest)
        new_account = dest not in self.st.accounts or (d_free == 0 and d_res == 0)
        if new_account and amount < ed:
            raise DispatchFailure({"Token": "BelowMinimum"}, "Token.BelowMinimum")
        if src == dest:
            self.event("Balances", "Transfer", {"from": hexstr(src), "to": hexstr(dest), "amount": amount})
            return
        self.st.accounts[src] = (s_nonce, s_free - amount, s_res)
        self.st.accounts[dest] = (d_nonce, d_free + amount, d_res)
        if new_account:
            self.event("System", "NewAccount", {"account": hexstr(dest)})
            self.event("Balances", "Endowed", {"account": hexstr(dest), "free_balance": amount})
        self.event("Balances", "Transfer", {"from": hexstr(src), "to": hexstr(dest), "amount": amount})

    def _Balances_transfer_keep_alive(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self.transfer(
            self._signed(origin), account_bytes(args["dest"].value), int(args["value"].value), keep_alive=True
        )

    def _Balances_transfer_allow_death(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self.transfer(
            self._signed(origin),
            account_bytes(args["dest"].value),
            int(args["value"].value),
            keep_alive=False,
        )

    def _Balances_transfer_all(self, origin: bytes | None, args: dict[str, Any]) -> None:
        src = self._signed(origin)
        free = self.st.account(src)[1]
        keep = bool(args["keep_alive"].value)
        amount = free - EXISTENTIAL_DEPOSIT if keep else free
        self.transfer(src, account_bytes(args["dest"].value), max(amount, 0), keep_alive=keep)

    def _Balances_force_transfer(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self._root(origin)
        src = account_bytes(args["source"].value)
        self.transfer(src, account_bytes(args["dest"].value), int(args["value"].value), keep_alive=False)

    def _Balances_force_set_balance(self, origin: bytes | None, args: dict[str, Any]) -> None:
        self._root(origin)
        who = account_bytes(args["who"].value)
        new_free = int(args["new_free"].value)
        nonce, free, reserved = self.st.account(who)
        self.st.accounts[who] = (nonce, new_free, reserved)
        self.st.total_issuance += new_free - free
        self.event("Balances", "BalanceSet", {"who": hexstr(who), "free": new_free})

    def _System_remark(self, origin: bytes | None, args: dict[str, Any]) -> None:
        return None

    def _System_remark_with_event(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        self.event(
            "System",
            "Remarked",
            {"sender": hexstr(who), "hash": hexstr(blake2_256(raw_bytes(args["remark"])))},
        )

    def _Utility_batch(self, origin: bytes | None, args: dict[str, Any]) -> None:
        for i, call in enumerate(nested_calls(args["calls"])):
            try:
                self.dispatch(call, origin)
            except DispatchFailure as failure:
                self.event("Utility", "BatchInterrupted", {"index": i, "error": failure.error})
                return
            self.event("Utility", "ItemCompleted", None)
        self.event("Utility", "BatchCompleted", None)

    def _Utility_batch_all(self, origin: bytes | None, args: dict[str, Any]) -> None:
        def run() -> None:
            for call in nested_calls(args["calls"]):
                self.dispatch(call, origin)
                self.event("Utility", "ItemCompleted", None)
            self.event("Utility", "BatchCompleted", None)

        self._transactional(run)

    def _Utility_force_batch(self, origin: bytes | None, args: dict[str, Any]) -> None:
        failed = False
        for call in nested_calls(args["calls"]):
            try:
                self.dispatch(call, origin)
            except DispatchFailure as failure:
                failed = True
                self.event("Utility", "ItemFailed", {"error": failure.error})
                continue
            self.event("Utility", "ItemCompleted", None)
        self.event("Utility", "BatchCompletedWithErrors" if failed else "BatchCompleted", None)

    def _Sudo_sudo(self, origin: bytes | None, args: dict[str, Any]) -> None:
        if origin != self.st.sudo_key:
            raise self.chain.module_error("Sudo", "RequireSudo")
        inner = nested_calls(args["call"])[0]
        try:
            self.dispatch(inner, None)
            result: Any = {"Ok": ()}
        except DispatchFailure as failure:
            result = {"Err": failure.error}
        self.event("Sudo", "Sudid", {"sudo_result": result})

    # -- contracts
    def _store_code(self, who: bytes, code: bytes) -> bytes:
        try:
            cx.model_of(code)
        except cx.CodeRejected as exc:
            raise self.chain.module_error("Contracts", "CodeRejected") from exc
        code_hash = blake2_256(code)
        if code_hash not in self.st.codes:
            deposit = CODE_DEPOSIT_PER_BYTE * len(code)
            self._reserve(who, deposit)
            self.st.codes[code_hash] = code
            self.st.code_owner[code_hash] = (who, deposit)
            self.event(
                "Contracts",
                "CodeStored",
                {"code_hash": hexstr(code_hash), "deposit_held": deposit, "uploader": hexstr(who)},
            )
        return code_hash

    def _reserve(self, who: bytes, amount: int) -> None:
        nonce, free, reserved = self.st.account(who)
        if free - amount < EXISTENTIAL_DEPOSIT:
            raise self.chain.module_error("Contracts", "StorageDepositNotEnoughFunds")
        self.st.accounts[who] = (nonce, free - amount, reserved + amount)

    def _Contracts_upload_code(self, origin: bytes | None, args: dict[str, Any]) -> None:
        code = raw_bytes(args["code"])
        limit = args["storage_deposit_limit"].value
        new_code = blake2_256(code) not in self.st.codes
        if new_code and limit is not None and CODE_DEPOSIT_PER_BYTE * len(code) > int(limit):
            raise self.chain.module_error("Contracts", "StorageDepositLimitExhausted")
        self._store_code(self._signed(origin), code)

    def _Contracts_instantiate_with_code(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)

        def run() -> None:
            code = raw_bytes(args["code"])
            new_code = blake2_256(code) not in self.st.codes
            code_hash = self._store_code(who, code)
            self._instantiate(who, code_hash, args, CODE_DEPOSIT_PER_BYTE * len(code) if new_code else 0)

        self._transactional(run)

    def _Contracts_instantiate(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        code_hash = bytes.fromhex(str(args["code_hash"].value)[2:])
        if code_hash not in self.st.codes:
            raise self.chain.module_error("Contracts", "CodeNotFound")
        self._transactional(lambda: self._instantiate(who, code_hash, args))

    def _instantiate(self, who: bytes, code_hash: bytes, args: dict[str, Any], code_deposit: int = 0) -> None:
        data = raw_bytes(args["data"])
        salt = raw_bytes(args["salt"])
        value = int(args["value"].value)
        gas = args["gas_limit"].value
        address = contract_address(who, code_hash, data, salt)
        if address in self.st.contracts:
            raise self.chain.module_error("Contracts", "DuplicateContract")
        code = self.st.codes[code_hash]
        needed = contract_gas(data)
        if needed[0] > int(gas["ref_time"]) or needed[1] > int(gas["proof_size"]):
            raise self.chain.module_error("Contracts", "OutOfGas")
        limit = args["storage_deposit_limit"].value
        if limit is not None and code_deposit + CONTRACT_BASE_DEPOSIT > int(limit):
            raise self.chain.module_error("Contracts", "StorageDepositLimitExhausted")
        ctx = cx.Ctx(self.number, self.st.timestamp, address)
        try:
            state, out = cx.instantiate(code, data, who, ctx, value)
        except cx.CodeRejected as exc:
            raise self.chain.module_error("Contracts", "CodeRejected") from exc
        if out.trapped:
            raise self.chain.module_error("Contracts", "ContractTrapped")
        if out.reverted or state is None:
            raise self.chain.module_error("Contracts", "ContractReverted")
        self._reserve(who, CONTRACT_BASE_DEPOSIT)
        self.transfer(who, address, EXISTENTIAL_DEPOSIT + value, keep_alive=True)
        self.st.contracts[address] = ContractRecord(code_hash, cx.model_of(code), state, who, self.st.gen)
        self._contract_events(address, out.events)
        self.event(
            "Contracts",
            "Instantiated",
            {"deployer": hexstr(who), "contract": hexstr(address)},
            [blake2_256(who), blake2_256(address)],
        )

    def _Contracts_call(self, origin: bytes | None, args: dict[str, Any]) -> None:
        who = self._signed(origin)
        dest = account_bytes(args["dest"].value)
        value = int(args["value"].value)
        gas = args["gas_limit"].value
        data = raw_bytes(args["data"])
        rec = self.st.contracts.get(dest)
        if rec is None:
            raise self.chain.module_error("Contracts", "ContractNotFound")
        if value and self.st.account(who)[1] - value < EXISTENTIAL_DEPOSIT:
            raise self.chain.module_error("Contracts", "TransferFailed")
        needed = contract_gas(data)
        if needed[0] > int(gas["ref_time"]) or needed[1] > int(gas["proof_size"]):
            raise self.chain.module_error("Contracts", "OutOfGas")
        # the model changes its state in place, and only when the message succeeds
        rec = self.st.own_contract(dest)
        out = cx.call(rec.state, data, who, value, cx.Ctx(self.number, self.st.timestamp, dest))
        if out.trapped:
            raise self.chain.module_error("Contracts", "ContractTrapped")
        if out.reverted:
            raise self.chain.module_error("Contracts", "ContractReverted")
        if value:
            self.transfer(who, dest, value, keep_alive=True)
        self._contract_events(dest, out.events)
        self.event(
            "Contracts",
            "Called",
            {"caller": {"Signed": hexstr(who)}, "contract": hexstr(dest)},
            [blake2_256(who), blake2_256(dest)],
        )

    def _contract_events(self, contract: bytes, events: list[tuple[list[bytes], bytes]]) -> None:
        """One Contracts.ContractEmitted per event the contract's model emitted, with its topics."""
        for topics, ev_data in events:
            attrs = {"contract": hexstr(contract), "data": hexstr(ev_data)}
            self.event("Contracts", "ContractEmitted", attrs, topics)
