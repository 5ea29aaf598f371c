"""The devnet's transaction pool: validation on submit, nonce slots per signer, replacement, bans, staleness.

It behaves as substrate's pool does where clients can tell: the same error codes (1010 invalid, 1012 banned,
1013 known, 1014 priority too low, 1016 pool full), ready and future transactions, `usurped` for a replaced
one, and stale transactions (era over) purged and banned after each block.
"""

from __future__ import annotations

from ami_node.devnet.extrinsic import Extrinsic, MalformedExtrinsic, parse_extrinsic
from ami_node.devnet.fees import call_weight, decode_call, fee_for
from ami_node.devnet.meta import hexstr
from ami_node.devnet.state import (
    ANCIENT_BIRTH,
    BAD_SIGNATURE,
    BAN_SECONDS,
    BLOCK_HASH_COUNT,
    CANNOT_PAY,
    EXHAUSTS,
    EXISTENTIAL_DEPOSIT,
    MAX_EXTRINSIC,
    OUTDATED,
    POOL_LIMIT,
    TOO_LOW_PRIORITY,
    ChainCore,
    PoolTx,
    RpcError,
    Weight,
    invalid_tx,
)


class TxPool:
    """The pooled transactions of one chain: `by_signer[who][nonce]` and `by_hash`, plus recent bans."""

    def __init__(self, chain: ChainCore) -> None:
        self.chain = chain
        self.by_signer: dict[bytes, dict[int, PoolTx]] = {}
        self.by_hash: dict[bytes, PoolTx] = {}
        self.banned: dict[bytes, float] = {}
        self.seq = 0

    def submit(self, raw: bytes) -> bytes:
        """Validate and pool an extrinsic; returns its hash or raises RpcError with substrate's codes."""
        faults = self.chain.faults
        if faults.reject_next > 0:
            faults.reject_next -= 1
            code = faults.reject_code
            if code == 1014:
                raise RpcError(1014, "Priority is too low: (0 vs 0)", TOO_LOW_PRIORITY)
            if code == 1012:
                raise RpcError(1012, "Transaction is temporarily banned")
            raise invalid_tx(OUTDATED)
        try:
            ext = parse_extrinsic(raw)
        except MalformedExtrinsic as exc:
            raise RpcError(
                1002, "Verification Error: Runtime error: Could not decode extrinsic", str(exc)
            ) from exc
        if self.banned.get(ext.hash, 0.0) > self.chain.clock():
            raise RpcError(1012, "Transaction is temporarily banned")
        if ext.hash in self.by_hash:
            raise RpcError(1013, "Transaction Already Imported")
        self.insert(ext, notify=True)
        return ext.hash

    def insert(self, ext: Extrinsic, *, notify: bool) -> None:
        """Pool a parsed extrinsic (new, or retracted by a reorg); RpcError when the pool refuses it."""
        if not ext.signed:
            raise RpcError(
                1011,
                "Unknown Transaction Validity",
                "Could not find an unsigned validator for the unsigned transaction",
            )
        assert ext.signer is not None
        number = self.chain.best.number + 1
        self.check_signature(ext, number)
        weight = self.check_call(ext.call)
        if weight[0] > MAX_EXTRINSIC[0] or weight[1] > MAX_EXTRINSIC[1]:
            raise invalid_tx(EXHAUSTS)
        fee = fee_for(weight, len(ext.raw), ext.tip)
        nonce, free, _ = self.chain.state.account(ext.signer)
        if ext.nonce < nonce:
            raise invalid_tx(OUTDATED)
        if free < fee + EXISTENTIAL_DEPOSIT:
            raise invalid_tx(CANNOT_PAY)
        slot = self.by_signer.setdefault(ext.signer, {})
        old = slot.get(ext.nonce)
        if old is None and len(self.by_hash) >= POOL_LIMIT:
            if not slot:
                del self.by_signer[ext.signer]
            raise RpcError(
                1016, "Immediately Dropped", "The transaction couldn't enter the pool because of the limit"
            )
        if old is not None:
            if ext.tip <= old.ext.tip:
                raise RpcError(1014, f"Priority is too low: ({old.ext.tip} vs {ext.tip})", TOO_LOW_PRIORITY)
            self.remove(old)
            self.chain.emit("tx", (old.ext.hash, {"usurped": hexstr(ext.hash)}))
        self.seq += 1
        tx = PoolTx(ext, self.seq, weight, fee, ext.era.death(number))
        slot[ext.nonce] = tx
        self.by_hash[ext.hash] = tx
        if notify:
            ready = tx in self.ready_chain(ext.signer)
            self.chain.emit("tx", (ext.hash, "ready" if ready else "future"))

    def has_ready(self) -> bool:
        return any(self.ready_chain(who) for who in self.by_signer)

    def ready_chain(self, who: bytes) -> list[PoolTx]:
        """`who`'s pooled transactions with consecutive nonces from its account nonce on."""
        txs = self.by_signer.get(who, {})
        nonce = self.chain.state.account(who)[0]
        out = []
        while nonce in txs:
            out.append(txs[nonce])
            nonce += 1
        return out

    def senders(self) -> list[bytes]:
        """Signers in the order of their oldest pooled transaction (the order a block takes them in)."""
        return sorted(self.by_signer, key=lambda w: min(t.seq for t in self.by_signer[w].values()))

    def included(self, txs: list[PoolTx]) -> None:
        """Take transactions a block included out of the pool, and ban their hashes for a while."""
        for tx in txs:
            self.remove(tx)
            self.banned[tx.ext.hash] = self.chain.clock() + BAN_SECONDS

    def purge_stale(self, number: int) -> list[PoolTx]:
        """Drop pooled transactions (ready or future) whose era ended by block `number`, and ban them.

        As substrate's pool does after each import (clear_stale: `valid_till <= number`): such a transaction
        can never be included, and left pooled it would hold its nonce slot (1014) and inflate
        system_accountNextIndex forever.
        """
        stale = [tx for tx in self.by_hash.values() if tx.valid_till <= number]
        self.included(stale)
        if len(self.banned) > 4 * POOL_LIMIT:  # keep the ban list bounded: forget expired bans
            now = self.chain.clock()
            self.banned = {h: t for h, t in self.banned.items() if t > now}
        return stale

    def remove(self, tx: PoolTx) -> None:
        assert tx.ext.signer is not None
        slot = self.by_signer.get(tx.ext.signer, {})
        if slot.get(tx.ext.nonce) is tx:
            del slot[tx.ext.nonce]
        if not slot:
            self.by_signer.pop(tx.ext.signer, None)
        self.by_hash.pop(tx.ext.hash, None)

    def revalidate(self, tx: PoolTx, number: int) -> str | None:
        """Why `tx` cannot go into block `number` any more (era, signature, fees), or None when it can."""
        try:
            self.check_signature(tx.ext, number)
        except RpcError as exc:
            return str(exc.data)
        assert tx.ext.signer is not None
        if self.chain.state.account(tx.ext.signer)[1] < tx.fee + EXISTENTIAL_DEPOSIT:
            return CANNOT_PAY
        return None

    def check_signature(self, ext: Extrinsic, current: int) -> None:
        chain = self.chain
        birth = ext.era.birth(current)
        if birth >= len(chain.blocks) or birth < current - BLOCK_HASH_COUNT - 1:
            raise invalid_tx(ANCIENT_BIRTH)
        rt = chain.rt
        birth_hash = chain.blocks[birth].hash
        payload = ext.signing_payload(rt.spec_version, rt.transaction_version, chain.genesis_hash, birth_hash)
        if ext.verify(payload):
            return
        # An expired era moves the birth block into a later cycle: say so rather than "bad signature".
        if not ext.era.immortal:
            earlier = birth - ext.era.period
            for _ in range(64):  # bounded: a signature check costs ~50 us
                if earlier < 0:
                    break
                old = chain.blocks[earlier].hash
                payload = ext.signing_payload(
                    rt.spec_version, rt.transaction_version, chain.genesis_hash, old
                )
                if ext.verify(payload):
                    raise invalid_tx(ANCIENT_BIRTH)
                earlier -= ext.era.period
        raise invalid_tx(BAD_SIGNATURE)

    def check_call(self, call: bytes) -> Weight:
        """The call's weight; RpcError 1002 when it does not decode, 1010 when the devnet lacks it."""
        rt = self.chain.rt
        try:
            decode_call(rt, call)
        except Exception as exc:  # scalecodec raises many types for bad bytes
            raise RpcError(
                1002, "Verification Error: Runtime error: Could not decode call", str(exc)
            ) from exc
        return call_weight(rt, call)

    def next_index(self, who: bytes) -> int:
        """`system_accountNextIndex`: the account nonce, counting the signer's ready pooled transactions."""
        nonce = self.chain.state.account(who)[0]
        txs = self.by_signer.get(who, {})
        while nonce in txs:
            nonce += 1
        return nonce

    def pending(self) -> list[bytes]:
        return [t.ext.raw for t in sorted(self.by_hash.values(), key=lambda t: t.seq)]
