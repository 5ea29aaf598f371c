"""Deploying the AMI contracts: upload and instantiate ami_nft and ami_rewards, grant their roles.

The use case behind `ami deploy`, and what the demo, the tests and the benchmarks call to get a deployment.
It returns the `Deployment` record without saving it; the caller decides where it goes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pallets_spec
from ami_node.abi import ContractAbi
from ami_node.deployment import Deployment
from ami_node.keys import Keypair
from ami_node.port import ChainPort
from ami_node.tx import contract_tx, send_call

CONTRACTS = ("ami_nft", "ami_rewards")


class DeployError(Exception):
    """Nothing can be deployed from what was given (a missing or stub bundle); the message says what to do."""


class DeployRefused(DeployError):
    """The chain took the upload but did not instantiate the contract."""


@dataclass(frozen=True)
class Roles:
    """Who `deploy` makes oracle (both contracts) and validator (rewards)."""

    oracles: list[str]
    validators: list[str]


def default_bundles() -> Path:
    """The folder of the contracts' .contract bundles shipped with pallets_spec."""
    return Path(pallets_spec.__file__).resolve().parent / "bundles"


def is_stub_wasm(wasm: bytes) -> bool:
    """True for the placeholder Wasm of pallets_spec's generated bundles: a real ink! contract imports the
    host functions of pallet-contracts (modules "seal0", "seal1", ...), the stub imports only memory."""
    return b"seal" not in wasm


async def node_rpc(port: ChainPort, method: str) -> Any:
    """A plain RPC on the substrate-interface port (None when the port has no RPC, e.g. a test double)."""
    rpc = getattr(port, "_rpc_checked", None)
    if rpc is None:
        return None
    return await rpc(port._watch, method, [])  # type: ignore[attr-defined]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _checked_bundle(port: ChainPort, url: str, bundle: Path, allow_stub: bool) -> ContractAbi:
    """The bundle's ABI with its Wasm; a stub Wasm only for the local devnet, unless `allow_stub`."""
    if not bundle.is_file():
        raise DeployError(f"no contract bundle {bundle}; build it (cargo contract build) or pass --bundles")
    abi = ContractAbi.load(bundle)
    if not abi.wasm:
        raise DeployError(f"{bundle} has no source.wasm; pass a .contract bundle, not bare metadata")
    if is_stub_wasm(abi.wasm) and not allow_stub:
        version = str(await node_rpc(port, "system_version") or "")
        if not version.endswith("-ami-devnet"):
            raise DeployError(
                f"{bundle} holds a stub Wasm (no contract code), and {url} is not the local devnet "
                f"(node version {version or 'unknown'!r}); build the contracts with cargo-contract 5 "
                "(docker/Dockerfile, target contracts) and pass --bundles, or --allow-stub"
            )
    return abi


async def _instantiate(
    port: ChainPort,
    keypair: Keypair,
    name: str,
    abi: ContractAbi,
    max_weight: tuple[int, int],
    timeout: float,
) -> tuple[str, int]:
    """Upload and instantiate one contract with its `new` constructor, with half the block's maximum
    extrinsic weight as gas limit: (its address, the block number)."""
    max_ref, max_proof = max_weight
    call = await port.compose_call(
        "Contracts",
        "instantiate_with_code",
        {
            "value": 0,
            "gas_limit": {"ref_time": max_ref // 2, "proof_size": max_proof // 2},
            "storage_deposit_limit": None,
            "code": "0x" + (abi.wasm or b"").hex(),
            "data": "0x" + abi.constructor("new").hex(),
            "salt": "0x" + os.urandom(8).hex(),
        },
    )
    receipt = await send_call(port, keypair, call, timeout_s=timeout)
    inst = receipt.event("Contracts", "Instantiated")
    if inst is None or not isinstance(inst.attributes, dict):
        raise DeployRefused(f"instantiating {name} emitted no Contracts.Instantiated event")
    return str(inst.attributes["contract"]), receipt.block.number


async def deploy(
    port: ChainPort,
    keypair: Keypair,
    url: str,
    folder: Path,
    timeout: float,
    *,
    roles: Roles | None = None,
    allow_stub: bool = False,
    progress: Callable[[str], None] = _to_stderr,
) -> Deployment:
    """Upload + instantiate ami_nft and ami_rewards from `folder`'s .contract bundles, make `roles.oracles`
    oracle on both and `roles.validators` validator on rewards (default: the signer); return the Deployment
    (not yet saved). Stub bundles go only to the local devnet, unless `allow_stub`. Each instantiation is
    reported as one line to `progress` (stderr by default).

    Raises DeployError when a bundle is missing or a stub on a real node (before anything is signed), and
    DeployRefused when the chain instantiates nothing."""
    roles = roles or Roles([keypair.address], [keypair.address])
    addresses: dict[str, str] = {}
    abis: dict[str, ContractAbi] = {}
    max_weight = await port.max_extrinsic_weight()
    for name in CONTRACTS:
        abis[name] = await _checked_bundle(port, url, folder / f"{name}.contract", allow_stub)
        addresses[name], block = await _instantiate(port, keypair, name, abis[name], max_weight, timeout)
        progress(f"{name} instantiated at {addresses[name]} (block #{block})")
    grants = [("ami_nft", "add_oracle", a) for a in roles.oracles]
    grants += [("ami_rewards", "add_oracle", a) for a in roles.oracles]
    grants += [("ami_rewards", "add_validator", a) for a in roles.validators]
    for name, message, account in grants:
        await contract_tx(
            port, keypair, abis[name], addresses[name], message, {"account": account}, timeout_s=timeout
        )
    genesis = await port.block_hash(0)
    return Deployment(
        url=url,
        genesis_hash=str(genesis),
        nft=addresses["ami_nft"],
        rewards=addresses["ami_rewards"],
        deployer=keypair.address,
    )
