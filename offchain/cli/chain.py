"""`ami` commands that submit or read anything on a chain: deploy, tx, call, query, balance.

Each command parses its arguments, runs one use case (ami_node/deploy.py, offchain/chain_actions.py) on a
port to `--url`, and prints the result (offchain/cli/chain_output.py). Failures print one line saying what
went wrong and what to do, and exit non-zero: 1 unexpected error, 2 bad input, 3 node unreachable,
4 refused or reverted, 5 timed out (offchain/cli/chain_session.py). The options are in
offchain/cli/chain_options.py; the NFT's own commands (mint, listen, tag, playlist) in offchain/cli/tracks.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ami_node.deploy import Roles, default_bundles, deploy
from ami_node.deployment import Deployment, DeploymentError
from ami_node.keys import load_keypair
from ami_node.port import ChainPort
from ami_node.tx import ContractTxResult, TxReceipt, contract_tx
from offchain.chain_actions import (
    Balances,
    Contracts,
    balances,
    contract_abis,
    read_contract,
    submit_call,
)
from offchain.cli import chain_input
from offchain.cli.chain_options import (
    ConnectTimeoutOpt,
    DeploymentOpt,
    JsonOpt,
    Signer,
    UrlOpt,
    load_deployment,
    with_signer,
)
from offchain.cli.chain_output import MINT_DECIMALS, contract_result, emit, format_amount, receipt_data, show
from offchain.cli.chain_session import run_on_chain
from offchain.cli.signing import resolve_keypair


def tx_cmd(
    signer: Signer,
    pallet: str = typer.Argument(..., help="pallet name, e.g. Balances"),
    call: str = typer.Argument(..., help="call name, e.g. transfer_keep_alive"),
    args_json: str = typer.Argument(
        "{}", help='arguments as a JSON object, e.g. \'{"dest": "5F..", "value": 1}\''
    ),
    era: int = typer.Option(64, "--era", min=4, max=65536, help="mortality in blocks (4..65536)"),
) -> None:
    """Sign and submit any call of any pallet, wait until it is finalized, print its events."""
    params = chain_input.call_params(args_json)
    keypair = signer.keypair()

    async def body(port: ChainPort) -> TxReceipt:
        return await submit_call(
            port, signer.url, keypair, pallet, call, params, era=era, timeout=signer.timeout
        )

    signer.emit({"receipt": receipt_data(signer.run(body))}, [])


def balance_cmd(
    address: str = typer.Argument(..., help="SS58 address (or a dev URI such as //Bob)"),
    url: str = UrlOpt,
    deployment: Path | None = DeploymentOpt,
    connect_timeout: float = ConnectTimeoutOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Print an account's free balance and, when contracts are deployed, its MINT balance."""
    if address.startswith("//"):
        address = resolve_keypair(address, None, None, None).address
    chain_input.ss58(address, "ADDRESS")
    try:
        dep: Deployment | None = Deployment.load(deployment)
    except DeploymentError:
        dep = None

    async def body(port: ChainPort) -> Balances:
        return await balances(port, address, dep)

    found = run_on_chain(url, body, connect_timeout)
    props = found.properties
    data = {"address": address, "free": found.free, "mint": found.mint, **props}
    text = f"{address}\n  free {format_amount(found.free, props['decimals'], props['symbol'])}"
    if found.mint is not None:
        text += f"\n  MINT {format_amount(found.mint, MINT_DECIMALS, 'MINT')}"
    emit(as_json, data, [text])


def query_cmd(
    message: str = typer.Argument(..., help="contract message, e.g. total_supply, owner_of, balance_of"),
    args_json: str = typer.Argument("{}", help="arguments as a JSON object, e.g. '{\"token_id\": 1}'"),
    contract: str | None = typer.Option(None, "--contract", help="nft or rewards (when the name is in both)"),
    origin: str | None = typer.Option(
        None, "--origin", help="SS58 address the read runs as (default: the dev account)"
    ),
    url: str = UrlOpt,
    deployment: Path | None = DeploymentOpt,
    connect_timeout: float = ConnectTimeoutOpt,
) -> None:
    """Dry-run a contract message (a read; nothing is sent, no key needed) and print its JSON result."""
    args = chain_input.message_args(args_json, "'{\"token_id\": 1}'")
    nft, rewards = contract_abis()
    which = chain_input.which_contract(message, contract, nft, rewards)
    contracts = Contracts(load_deployment(deployment), nft, rewards)
    caller = chain_input.ss58(origin, "--origin") if origin else load_keypair("//Alice").address

    async def body(port: ChainPort) -> Any:
        return await read_contract(port, contracts, which, message, args, caller)

    typer.echo(show(run_on_chain(url, body, connect_timeout)))


def call_cmd(
    signer: Signer,
    contract: str = typer.Argument(..., help="nft, rewards, or a contract address from the deployment"),
    message: str = typer.Argument(..., help="contract message, e.g. add_oracle, add_validator, listen"),
    args_json: str = typer.Argument("{}", help='arguments as a JSON object, e.g. \'{"account": "5F.."}\''),
    value: int = typer.Option(0, "--value", min=0, max=2**128 - 1, help="balance to transfer with the call"),
) -> None:
    """Execute a contract message (signed; dry-run first, nothing is sent if it would revert)."""
    args = chain_input.message_args(args_json, '\'{"account": "5F..."}\'')
    contracts = signer.contracts()
    which = chain_input.contract_by_name(contract, contracts)
    abi, address = contracts.pick(which)
    chain_input.known_message(abi, message)
    checked = chain_input.checked_args(abi, message, args)
    keypair = signer.keypair()

    async def body(port: ChainPort) -> ContractTxResult:
        return await contract_tx(
            port, keypair, abi, address, message, checked, timeout_s=signer.timeout, value=value
        )

    result = contract_result(signer.run(body), contracts.by_address())
    signer.emit(result, [f"returned {show(result['value'])}"])


def deploy_cmd(
    signer: Signer,
    out: Path | None = typer.Option(None, "--out", help="where to write the deployment JSON"),
    bundles: Path | None = typer.Option(None, "--bundles", help="folder with ami_nft/ami_rewards .contract"),
    oracle: list[str] = typer.Option(
        [], "--oracle", help="SS58 address to make oracle on both contracts (repeatable; default: the signer)"
    ),
    validator: list[str] = typer.Option(
        [], "--validator", help="SS58 address to make validator of rewards (repeatable; default: the signer)"
    ),
    allow_stub: bool = typer.Option(
        False, "--allow-stub", help="deploy stub bundles (no real Wasm) to a chain that is not a devnet"
    ),
) -> None:
    """Upload and instantiate both contracts, grant the oracle and validator roles, save the record."""
    oracles = [chain_input.ss58(a, "--oracle/--validator") for a in oracle]
    validators = [chain_input.ss58(a, "--oracle/--validator") for a in validator]
    keypair = signer.keypair()
    folder = bundles or default_bundles()
    roles = Roles(oracles or [keypair.address], validators or [keypair.address])

    async def body(port: ChainPort) -> Deployment:
        return await deploy(
            port,
            keypair,
            signer.url,
            folder,
            signer.timeout,
            roles=roles,
            allow_stub=allow_stub,
            progress=_err,
        )

    dep = signer.run(body)
    path = dep.save(out)
    data = {
        "nft": dep.nft,
        "rewards": dep.rewards,
        "written_to": str(path),
        "oracles": roles.oracles,
        "validators": roles.validators,
    }
    signer.emit(data, [f"ami_nft     {dep.nft}", f"ami_rewards {dep.rewards}", f"written to {path}"])


def _err(line: str) -> None:
    typer.echo(line, err=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.command("tx")(with_signer(tx_cmd, deployment=False))
    app.command("balance")(balance_cmd)
    app.command("query")(query_cmd)
    app.command("call")(with_signer(call_cmd))
    app.command("deploy")(with_signer(deploy_cmd, deployment=False))
