"""Thin adapters from the worker's ports to the real chain follower, IPFS client and submitter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ami_node.abi import ContractAbi
from ami_node.follower import BlockFollower, FollowedBlock
from ami_node.port import BlockRef, ChainPort
from ami_node.submitter import Payout, Submitter
from offchain.ipfs import errors as e
from offchain.ipfs.cid import NotAFile
from offchain.ipfs.client import IpfsClient
from offchain.pipeline.ports import (
    ContentInvalid,
    ContentMismatch,
    ContentNotAFile,
    ContentNotFound,
    ContentTooLarge,
    ScoreOutcome,
    StorageUnavailable,
)
from offchain.projection import BlockData
from offchain.store import OutboxPayout


def to_block_data(fb: FollowedBlock) -> BlockData:
    """A followed block as the stores take it: its number, hash and typed domain events."""
    return BlockData(fb.ref.number, fb.ref.hash, tuple(fb.events))


class ChainBlockSource:
    """BlockSource over ami_node.follower.BlockFollower (finalized, in order, gaps filled, hashes checked)."""

    def __init__(
        self, port: ChainPort, contracts: Mapping[str, ContractAbi], retry_delay_s: float = 1.0
    ) -> None:
        self.port = port
        self.contracts = dict(contracts)
        self.retry_delay_s = retry_delay_s

    async def blocks(self, start_after: tuple[int, str] | None) -> AsyncIterator[BlockData]:
        ref = BlockRef(start_after[0], start_after[1]) if start_after else None
        follower = BlockFollower(self.port, self.contracts, start_after=ref, retry_delay_s=self.retry_delay_s)
        async for fb in follower.blocks():
            yield to_block_data(fb)

    async def finalized_number(self) -> int:
        return (await self.port.finalized_head()).number


class IpfsContentFetcher:
    """ContentFetcher over offchain.ipfs.client.IpfsClient (which verifies every read against its CID)."""

    def __init__(self, client: IpfsClient) -> None:
        self.client = client

    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        try:
            return await self.client.cat(cid, max_bytes=max_bytes)
        except NotAFile as exc:
            raise ContentNotAFile(str(exc)) from exc
        except e.InvalidCid as exc:
            raise ContentInvalid(str(exc)) from exc
        except e.CidMismatch as exc:
            raise ContentMismatch(str(exc)) from exc
        except e.IpfsTooLarge as exc:
            raise ContentTooLarge(str(exc)) from exc
        except (e.IpfsNotFound, e.IpfsTimeout) as exc:
            raise ContentNotFound(str(exc)) from exc
        except e.IpfsUnavailable as exc:
            raise StorageUnavailable(str(exc)) from exc
        except e.IpfsError as exc:  # any other refusal by the node is about this content, not the node
            raise ContentInvalid(str(exc)) from exc


class SubmitterPayoutSink:
    """PayoutSink over ami_node.submitter.Submitter (its outbox dedupes by payout id)."""

    def __init__(self, submitter: Submitter) -> None:
        self.submitter = submitter

    async def enqueue_payouts(self, epoch: int, payouts: Sequence[OutboxPayout]) -> int:
        items = [Payout(**p.on_chain().abi_fields()) for p in payouts]
        return await self.submitter.enqueue_payouts(epoch, items)


class SubmitterScorePublisher:
    """ScorePublisher: `submit_score` queued in the submitter under the key score:<token>:<model version>."""

    def __init__(self, submitter: Submitter, rewards: str, abi: Any | None = None) -> None:
        self.submitter = submitter
        self.rewards = rewards
        self.abi = abi or ContractAbi.load("ami_rewards")

    async def publish_score(self, token_id: int, outcome: ScoreOutcome) -> None:
        data = self.abi.encode_call(
            "submit_score",
            token_id=token_id,
            novelty_bp=outcome.novelty_bp,
            quality_bp=outcome.quality_bp,
            model_version=outcome.model_version,
            commitment=outcome.commitment,
        )
        await self.submitter.enqueue_call(
            f"score:{token_id}:{outcome.model_version}",
            self.rewards,
            "submit_score",
            bytes(data),
            abi="ami_rewards",
        )
