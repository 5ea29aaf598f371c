"""What a developer does with the AMI contracts: any call, balances, contract reads and calls, mint.

The use cases behind the `ami` chain commands (offchain/cli/chain.py, offchain/cli/tracks.py); the demo calls
the same ones. Each takes an open chain port and returns plain data; none prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from substrateinterface import SubstrateInterface

from ami_node.abi import ContractAbi
from ami_node.argtypes import check_call_args, check_contract_args
from ami_node.deploy import node_rpc
from ami_node.deployment import Deployment
from ami_node.keys import Keypair
from ami_node.port import ChainPort
from ami_node.tx import ContractTxResult, TxReceipt, contract_tx, send_call
from offchain.ipfs.upload import store_track_files

METADATA_SS58_FORMAT = 42  # only to read the node's metadata; addresses are never encoded with it


class ContractTrapped(Exception):
    """A contract read trapped without returning anything."""


@contextmanager
def runtime_metadata(url: str) -> Iterator[Any]:
    """The node's runtime metadata at `url`, read by a short-lived substrate-interface connection."""
    si = SubstrateInterface(url=url, ss58_format=METADATA_SS58_FORMAT)
    try:
        si.init_runtime()
        yield si.metadata
    finally:
        si.close()


def contract_abis() -> tuple[ContractAbi, ContractAbi]:
    """The ABIs of ami_nft and ami_rewards."""
    return ContractAbi.load("ami_nft"), ContractAbi.load("ami_rewards")


@dataclass(frozen=True)
class Contracts:
    """The two deployed contracts: their addresses and their ABIs."""

    deployment: Deployment
    nft: ContractAbi
    rewards: ContractAbi

    @classmethod
    def of(cls, deployment: Deployment) -> Contracts:
        return cls(deployment, *contract_abis())

    def pick(self, which: str) -> tuple[ContractAbi, str]:
        """(ABI, address) of "nft" or "rewards"."""
        if which == "nft":
            return self.nft, self.deployment.nft
        return self.rewards, self.deployment.rewards

    def by_address(self) -> dict[str, ContractAbi]:
        return {self.deployment.nft: self.nft, self.deployment.rewards: self.rewards}


def check_runtime_call(url: str, pallet: str, call: str, params: dict[str, Any]) -> None:
    """Check `params` strictly against the node's metadata for `pallet.call` before anything is signed
    (ArgumentError). An unknown pallet or call is left to compose_call, which explains it."""
    with runtime_metadata(url) as md:
        found = next((p for p in md.pallets if p.name == pallet), None)
        variant = next((c for c in (found.calls or []) if c.name == call), None) if found else None
        if variant is None:
            return
        types = {int(t["id"]): t["type"] for t in md.portable_registry.value["types"]}
        check_call_args(types, list(variant.value["fields"]), params, f"{pallet}.{call}")


async def submit_call(
    port: ChainPort,
    url: str,
    keypair: Keypair,
    pallet: str,
    call: str,
    params: dict[str, Any],
    *,
    era: int,
    timeout: float,
) -> TxReceipt:
    """Check, sign and submit `pallet.call(params)`, mortal for `era` blocks; its finalized receipt."""
    check_runtime_call(url, pallet, call, params)
    composed = await port.compose_call(pallet, call, params)
    return await send_call(port, keypair, composed, era_period=era, timeout_s=timeout)


async def chain_properties(port: ChainPort) -> dict[str, Any]:
    """The native token's decimals and symbol from system_properties (Substrate's defaults 12 / UNIT)."""
    props = await node_rpc(port, "system_properties") or {}
    decimals = props.get("tokenDecimals", 12)
    symbol = props.get("tokenSymbol", "UNIT")
    decimals = decimals[0] if isinstance(decimals, list) else decimals
    symbol = symbol[0] if isinstance(symbol, list) else symbol
    return {"decimals": int(decimals), "symbol": str(symbol)}


@dataclass(frozen=True)
class Balances:
    """An account's free balance (smallest units of the native token) and MINT (None: no contracts)."""

    free: int
    mint: int | None
    properties: dict[str, Any]  # the native token's "decimals" and "symbol"


async def balances(port: ChainPort, address: str, deployment: Deployment | None) -> Balances:
    """The free balance of `address` and, when the contracts are deployed, its MINT balance."""
    free = await port.free_balance(address)
    props = await chain_properties(port)
    if deployment is None:
        return Balances(free, None, props)
    rewards = ContractAbi.load("ami_rewards")
    dry = await port.contract_dry_run(
        deployment.rewards, rewards.encode_call("balance_of", account=address), address
    )
    mint = int(rewards.decode_return("balance_of", dry.output)) if dry.success else None
    return Balances(free, mint, props)


async def read_contract(
    port: ChainPort, contracts: Contracts, which: str, message: str, args: dict[str, Any], origin: str
) -> Any:
    """Dry-run `message` of contract `which` ("nft" or "rewards") as `origin`: its decoded return value.
    ContractTrapped when it trapped without output."""
    abi, address = contracts.pick(which)
    data = abi.encode_call(message, **check_contract_args(abi, message, args))
    dry = await port.contract_dry_run(address, data, origin)
    if not dry.success and not dry.output:
        raise ContractTrapped(f"{abi.name}.{message} trapped: {dry.error}")
    return abi.decode_return(message, dry.output)


@dataclass(frozen=True)
class Minted:
    """A minted track: its CIDs, its token id and the mint call's result."""

    audio_cid: str
    metadata_cid: str
    token_id: Any
    result: ContractTxResult


async def mint_track(
    port: ChainPort,
    keypair: Keypair,
    contracts: Contracts,
    audio: bytes,
    fields: dict[str, Any],
    royalty_splits: list[tuple[str, int]],
    *,
    ipfs: str | None,
    metadata_cid: str | None = None,
    timeout: float = 120.0,
) -> Minted:
    """Store the audio and its metadata `fields` (offchain/ipfs/upload.py; on the IPFS node at `ipfs`, or
    CIDs only when it is None), then `mint` them with `royalty_splits`. A `metadata_cid` replaces the
    metadata document and must resolve on the IPFS node."""
    audio_cid, meta_cid = await store_track_files(audio, fields, ipfs, metadata_cid=metadata_cid)
    args = {"audio_cid": audio_cid, "metadata_cid": meta_cid, "royalty_splits": royalty_splits}
    result = await contract_tx(
        port, keypair, contracts.nft, contracts.deployment.nft, "mint", args, timeout_s=timeout
    )
    minted = next((f for label, f in result.events if label == "Minted"), None)
    return Minted(audio_cid, meta_cid, minted["token_id"] if minted else result.value, result)
