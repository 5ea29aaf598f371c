"""What the submitter needs of the contracts' ABI: encode `distribute`, name a dry run's revert, and find the
payout ids a block's `Paid` events carry. `AbiCodec` does it with the contracts' ink! metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from ami_node.abi import ContractAbi
from ami_node.payouts import Payout
from ami_node.port import Block, ContractReverted, DryRun

__all__ = ["AbiCodec", "SubmitterCodec"]


class SubmitterCodec(Protocol):
    """What the submitter needs to know of the contracts' ABI (kept apart: only ami_node.abi knows ink!)."""

    def encode_distribute(self, epoch: int, batch: int, payouts: Sequence[Payout]) -> bytes: ...

    def revert_reason(self, abi: str, message: str, dry: DryRun) -> str:
        """The decoded error of a failed dry run, e.g. "NotOracle"."""
        ...

    def paid_ids(self, block: Block, rewards: str) -> Iterable[bytes]:
        """Payout ids of the `Paid` events that contract `rewards` emitted in `block`."""
        ...


class AbiCodec:
    """SubmitterCodec over ami_node.abi and ami_node.events (the real contracts' metadata)."""

    def __init__(self) -> None:
        self._abis = {name: ContractAbi.load(name) for name in ("ami_nft", "ami_rewards")}

    def encode_distribute(self, epoch: int, batch: int, payouts: Sequence[Payout]) -> bytes:
        items = [p.abi_fields() for p in payouts]
        return bytes(
            self._abis["ami_rewards"].encode_call("distribute", epoch=epoch, batch=batch, payouts=items)
        )

    def revert_reason(self, abi: str, message: str, dry: DryRun) -> str:
        contract_abi = self._abis.get(abi)
        if contract_abi is not None and dry.output:
            try:
                contract_abi.decode_return(message, dry.output)
            except ContractReverted as exc:
                return exc.error
            except Exception:  # an undecodable output falls back to what the node said
                pass
        return dry.error or "contract trapped"

    def paid_ids(self, block: Block, rewards: str) -> Iterable[bytes]:
        abi = self._abis["ami_rewards"]
        paid = abi.events["Paid"].signature_topic
        for event in block.events:
            if event.name != "ContractEmitted" or event.contract != rewards or event.data is None:
                continue
            if paid is not None and len(event.topics) >= 2 and event.topics[0] == paid:
                # Fast path: `payout_id: [u8; 32]` is a topic field, and a 32-byte encoding is its own topic.
                yield bytes(event.topics[1])
                continue
            try:
                label, fields = abi.decode_event(event.topics, event.data)
            except ValueError:
                continue  # not one of this contract version's events
            if label == "Paid":
                yield bytes.fromhex(str(fields["payout_id"]).removeprefix("0x"))
