"""`ami` developer commands that talk to a chain: deploy, mint, listen, tag, playlist, query, tx, balance.

Every command takes `--url` (env AMI_NODE_URL), `--connect-timeout` and `--json`; signing commands take the
key by the one scheme of offchain/cli/key.py (`--key-file`, env AMI_KEY, a prompt; keystore passwords from
`--password-file` or AMI_KEY_PASSWORD). Contract commands read the addresses written by `ami deploy`
(`--deployment`, env AMI_DEPLOYMENT, default .ami/deployment.json). Failures print one line saying what went
wrong and what to do, and exit non-zero: 1 unexpected error, 2 bad input, 3 node unreachable, 4 refused or
reverted, 5 timed out.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import typer

from offchain.cli.key import KeyFileOpt, KeyOpt, PasswordFileOpt, resolve_keypair

if TYPE_CHECKING:
    from ami_node.abi import ContractAbi
    from ami_node.deployment import Deployment
    from ami_node.keys import Keypair
    from ami_node.port import ChainPort
    from ami_node.tx import ContractTxResult, TxReceipt

T = TypeVar("T")

DEFAULT_URL = "ws://127.0.0.1:9944"
EXIT_UNEXPECTED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_TIMEOUT = 1, 2, 3, 4, 5

UrlOpt = typer.Option(DEFAULT_URL, "--url", envvar="AMI_NODE_URL", help="node websocket URL")
ConnectTimeoutOpt = typer.Option(
    5.0, "--connect-timeout", envvar="AMI_CONNECT_TIMEOUT", min=0.1, help="seconds to reach the node"
)
JsonOpt = typer.Option(False, "--json", help="print the result as JSON (amounts raw)")
DeploymentOpt = typer.Option(
    None, "--deployment", envvar="AMI_DEPLOYMENT", help="deployment JSON written by `ami deploy`"
)
TimeoutOpt = typer.Option(120.0, "--timeout", help="seconds to wait for finalization")


class CliError(Exception):
    """A failure with the exit code to use; its message already says what to do."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str, code: int) -> None:
    # One line, whatever a library put in the message (a server's HTML page, a multi-line repr).
    text = " ".join(message.split())
    typer.echo(f"error: {text[:500]}{'…' if len(text) > 500 else ''}", err=True)
    raise typer.Exit(code)


def probe_node(url: str, connect_timeout: float) -> None:
    """Fail fast, in one line, when `url` is not a websocket URL or nothing accepts a connection there.

    substrate-interface would otherwise retry for its whole call timeout and log every attempt.
    """
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        raise CliError(f"--url {url!r} is not a URL; expected e.g. {DEFAULT_URL}") from None
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise CliError(f"--url must be a websocket URL such as {DEFAULT_URL}, not {url!r}")
    address = (parsed.hostname, port or (443 if parsed.scheme == "wss" else 80))
    try:
        socket.create_connection(address, timeout=connect_timeout).close()
    except TimeoutError:
        raise CliError(
            f"node unreachable at {url}: no answer within {connect_timeout:g} s (raise --connect-timeout?)",
            EXIT_UNREACHABLE,
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(
            f"node unreachable at {url}: {reason} (start one with `ami devnet`, or pass --url)",
            EXIT_UNREACHABLE,
        ) from None


def _run(url: str, body: Callable[[ChainPort], Awaitable[T]], connect_timeout: float = 5.0) -> T:
    """Open a port to `url`, run `body`, close, and turn every failure into one line and its exit code."""
    from ami_node.abi import AbiError
    from ami_node.deployment import DeploymentError
    from ami_node.keys import KeyLoadError
    from ami_node.port import CallError, ChainUnavailable, ContractReverted, PoolRejected
    from ami_node.tx import TxDispatchFailed, TxExpired, TxTimeout, TxUsurped

    async def main() -> T:
        from ami_node.substrate import SubstrateChainPort

        port = SubstrateChainPort(url, timeout_s=float(os.environ.get("AMI_RPC_TIMEOUT", "20")))
        try:
            return await body(port)
        finally:
            await port.close()

    try:
        probe_node(url, connect_timeout)
        return asyncio.run(main())
    except CliError as exc:
        _fail(str(exc), exc.code)
    except (KeyLoadError, DeploymentError, AbiError) as exc:
        _fail(str(exc), EXIT_INPUT)
    except ValueError as exc:
        _fail(str(exc), EXIT_INPUT)
    except CallError as exc:
        _fail(_call_error_hint(url, str(exc)), EXIT_INPUT)
    except ChainUnavailable as exc:
        _fail(
            f"{_one_line(exc)} (is it a Substrate node's RPC port? start one with `ami devnet`, "
            "or pass --url)",
            EXIT_UNREACHABLE,
        )
    except ContractReverted as exc:
        _fail(f"{exc}", EXIT_REFUSED)
    except PoolRejected as exc:
        hint = ""
        if "pay" in exc.reason.lower() or "balance" in exc.reason.lower():
            hint = (
                "; the signer cannot pay the fees: fund it (e.g. `ami tx Balances transfer_keep_alive ...`)"
            )
        elif "signature" in exc.reason.lower():
            hint = "; check --key and that the node is the chain you expect"
        _fail(f"{exc}{hint}", EXIT_REFUSED)
    except TxDispatchFailed as exc:
        _fail(f"{exc}{_module_error_hint(url, exc.receipt)}", EXIT_REFUSED)
    except (TxTimeout, TxUsurped, TxExpired) as exc:  # each message says whether it may still land
        _fail(str(exc), EXIT_TIMEOUT)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # no traceback reaches a user: one line, exit 1, the details on request
        if os.environ.get("AMI_DEBUG"):
            raise
        from websocket import WebSocketException

        if isinstance(exc, WebSocketException):  # something answers at --url, but no Substrate RPC
            _fail(
                f"no Substrate node at {url}: {_one_line(exc)} (is it the node's RPC port? pass --url)",
                EXIT_UNREACHABLE,
            )
        _fail(
            f"unexpected {type(exc).__name__} talking to {url}: {_one_line(exc)} (is it a Substrate node? "
            "AMI_DEBUG=1 shows the traceback)",
            EXIT_UNEXPECTED,
        )
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _call_error_hint(url: str, message: str) -> str:
    """Add close matches to "unknown pallet" / "no call" errors."""
    m = re.search(r"unknown pallet '([^']+)'; this node has: (.*)$", message)
    if m:
        names = [n.strip() for n in m.group(2).split(",")]
        close = difflib.get_close_matches(m.group(1), names, n=3, cutoff=0.5)
        if not close:
            close = [n for n in names if n.lower() == m.group(1).lower()]
        return (
            f"unknown pallet {m.group(1)!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "")
            + (f" (this node has: {m.group(2)})")
        )
    m = re.search(r"pallet (\S+) has no call '([^']+)'", message)
    if m:
        calls = _pallet_calls(url, m.group(1))
        close = difflib.get_close_matches(m.group(2), calls, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"{message}{hint} (calls: {', '.join(calls)})" if calls else message + hint
    return message


def _module_error_hint(url: str, receipt: TxReceipt) -> str:
    """ " (Pallet.Error: its docs)" for a dispatch failure that is a pallet's module error, from the node's
    metadata; "" when there is none or it cannot be looked up."""
    failed = receipt.event("System", "ExtrinsicFailed")
    attrs = failed.attributes if failed is not None else None
    err = attrs.get("dispatch_error") if isinstance(attrs, dict) else None
    module = err.get("Module") if isinstance(err, dict) else None
    if not isinstance(module, dict) or "index" not in module:
        return ""
    try:
        from substrateinterface import SubstrateInterface

        raw = module.get("error")
        error_index = bytes.fromhex(raw[2:])[0] if isinstance(raw, str) else int(raw or 0)
        si = SubstrateInterface(url=url, ss58_format=42)
        try:
            si.init_runtime()
            variant = si.metadata.get_module_error(module_index=int(module["index"]), error_index=error_index)
            pallet = next(
                (p.name for p in si.metadata.pallets if p.value.get("index") == int(module["index"])), "?"
            )
        finally:
            si.close()
        info = variant.value if variant is not None else {}
        docs = " ".join(info.get("docs") or []).split(". ")[0].rstrip(".")
        return f" ({pallet}.{info.get('name')}{': ' + docs if docs else ''})"
    except Exception:  # only an explanation; the error itself was already reported
        return ""


def _check_runtime_call(url: str, pallet: str, call: str, params: dict[str, Any]) -> None:
    """Check `params` strictly against the node's metadata for `pallet.call` before anything is signed
    (ArgumentError, exit 2). An unknown pallet or call is left to compose_call, which explains it."""
    from substrateinterface import SubstrateInterface

    from ami_node.argtypes import check_call_args

    si = SubstrateInterface(url=url, ss58_format=42)
    try:
        si.init_runtime()
        md = si.metadata
        found = next((p for p in md.pallets if p.name == pallet), None)
        variant = next((c for c in (found.calls or []) if c.name == call), None) if found else None
        if variant is None:
            return
        types = {int(t["id"]): t["type"] for t in md.portable_registry.value["types"]}
        check_call_args(types, list(variant.value["fields"]), params, f"{pallet}.{call}")
    finally:
        si.close()


def _pallet_calls(url: str, pallet: str) -> list[str]:
    """Call names of `pallet` from the node's metadata (only used to explain an error)."""
    try:
        from substrateinterface import SubstrateInterface

        si = SubstrateInterface(url=url, ss58_format=42)
        try:
            si.init_runtime()
            for p in si.metadata.pallets:
                if p.name == pallet and p.calls is not None:
                    return sorted(str(c.name) for c in p.calls)
        finally:
            si.close()
    except Exception:
        return []
    return []


def _keypair(key: str | None, key_file: Path | None, url: str | None, password_file: Path | None) -> Keypair:
    return resolve_keypair(key, key_file, url, password_file)


def _json_arg(text: str | None, what: str, example: str) -> Any:
    if text is None or text == "":
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}); expected e.g. {example}", EXIT_INPUT
        )
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        _fail(f"{what} is not usable JSON ({_one_line(exc)})", EXIT_INPUT)


def _show(value: Any) -> str:
    return json.dumps(_plain(value), default=str)


def _receipt_data(receipt: TxReceipt, contracts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The receipt as JSON-able data; contract events decoded by name when their contract is known."""
    from ami_node.tx import decode_contract_events

    events: list[dict[str, Any]] = []
    for e in receipt.events:
        if e.name == "ContractEmitted" and contracts and e.contract in contracts:
            decoded = decode_contract_events([e], contracts)
            if decoded:
                label, fields = decoded[0]
                events.append(
                    {"contract": contracts[e.contract].name, "event": label, "fields": _plain(fields)}
                )
                continue
        events.append({"pallet": e.pallet, "event": e.name, "fields": _plain(e.attributes)})
    return {
        "block": receipt.block.number,
        "block_hash": str(receipt.block.hash),
        "extrinsic_index": receipt.extrinsic_index,
        "hash": receipt.hash,
        "nonce": receipt.nonce,
        "success": receipt.success,
        "events": events,
    }


def _print_receipt(data: dict[str, Any]) -> None:
    # One fact a line, short enough for 80 columns; hashes on their own lines.
    typer.echo(
        f"finalized in block #{data['block']}, extrinsic {data['extrinsic_index']}, nonce {data['nonce']}"
    )
    typer.echo(f"  block hash {data['block_hash']}")
    typer.echo(f"  tx hash    {data['hash']}")
    for e in data["events"]:
        typer.echo(
            f"  {e.get('contract') or e.get('pallet')}.{e['event']} {json.dumps(e['fields'], default=str)}"
        )


def _emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    """Print `data` as JSON, or the receipt (when there is one) followed by `lines`."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if "receipt" in data:
        _print_receipt(data["receipt"])
    for line in lines:
        typer.echo(line)


def _plain(v: Any) -> Any:
    """JSON-able data: bytes as 0x-hex, tuples as lists, keys as strings."""
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _load_deployment(path: Path | None) -> Deployment:
    from ami_node.deployment import Deployment

    return Deployment.load(path)


def _abis() -> tuple[ContractAbi, ContractAbi]:
    from ami_node.abi import ContractAbi

    return ContractAbi.load("ami_nft"), ContractAbi.load("ami_rewards")


async def _contract_call(
    port: ChainPort,
    keypair: Keypair,
    which: str,
    dep: Deployment,
    message: str,
    args: dict[str, Any],
    timeout: float,
    value: int = 0,
) -> ContractTxResult:
    from ami_node.tx import contract_tx

    nft, rewards = _abis()
    abi, address = (nft, dep.nft) if which == "nft" else (rewards, dep.rewards)
    return await contract_tx(port, keypair, abi, address, message, args, timeout_s=timeout, value=value)


def _contract_result(result: ContractTxResult, dep: Deployment) -> dict[str, Any]:
    nft, rewards = _abis()
    return {
        "receipt": _receipt_data(result.receipt, {dep.nft: nft, dep.rewards: rewards}),
        "value": _plain(result.value),
    }


def format_amount(raw: int, decimals: int, symbol: str) -> str:
    """`raw` smallest units as a decimal amount with its symbol: 1_500_000 with 6 decimals -> "1.5 MINT"."""
    sign = "-" if raw < 0 else ""
    whole, frac = divmod(abs(raw), 10**decimals) if decimals else (abs(raw), 0)
    text = f"{whole:,}"
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{text} {symbol}"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""

    @app.command("tx")
    def tx_cmd(
        pallet: str = typer.Argument(..., help="pallet name, e.g. Balances"),
        call: str = typer.Argument(..., help="call name, e.g. transfer_keep_alive"),
        args_json: str = typer.Argument(
            "{}", help='arguments as a JSON object, e.g. \'{"dest": "5F..", "value": 1}\''
        ),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        timeout: float = TimeoutOpt,
        era: int = typer.Option(64, "--era", min=4, max=65536, help="mortality in blocks (4..65536)"),
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Sign and submit any call of any pallet, wait until it is finalized, print its events."""
        from ami_node.argtypes import check_no_floats

        params = _json_arg(args_json, "ARGS_JSON", '\'{"dest": "5FHneW46...", "value": 1000}\'')
        if not isinstance(params, dict):
            _fail(
                "ARGS_JSON must be a JSON object of the call's named arguments, e.g. '{\"value\": 1}'",
                EXIT_INPUT,
            )
        try:
            check_no_floats(params)
        except ValueError as exc:
            _fail(str(exc), EXIT_INPUT)
        keypair = _keypair(key, key_file, url, password_file)

        async def body(port: ChainPort) -> TxReceipt:
            from ami_node.tx import send_call

            _check_runtime_call(url, pallet, call, params)
            composed = await port.compose_call(pallet, call, params)
            return await send_call(port, keypair, composed, era_period=era, timeout_s=timeout)

        receipt = _run(url, body, connect_timeout)
        _emit(as_json, {"receipt": _receipt_data(receipt)}, [])

    @app.command("balance")
    def balance_cmd(
        address: str = typer.Argument(..., help="SS58 address (or a dev URI such as //Bob)"),
        url: str = UrlOpt,
        deployment: Path | None = DeploymentOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Print an account's free balance and, when contracts are deployed, its MINT balance."""
        from ami_node.keys import KeyLoadError, address_info

        if address.startswith("//"):
            address = _keypair(address, None, None, None).address
        try:
            address_info(address)
        except KeyLoadError as exc:
            _fail(f"ADDRESS: {exc}", EXIT_INPUT)

        async def body(port: ChainPort) -> tuple[int, int | None, dict[str, Any]]:
            from ami_node.deployment import DeploymentError

            free = await port.free_balance(address)
            props = await _chain_properties(port)
            try:
                dep = _load_deployment(deployment)
            except DeploymentError:
                return free, None, props
            _, rewards = _abis()
            dry = await port.contract_dry_run(
                dep.rewards, rewards.encode_call("balance_of", account=address), address
            )
            mint = int(rewards.decode_return("balance_of", dry.output)) if dry.success else None
            return free, mint, props

        free, mint, props = _run(url, body, connect_timeout)
        data = {"address": address, "free": free, "mint": mint, **props}
        text = f"{address}\n  free {format_amount(free, props['decimals'], props['symbol'])}"
        if mint is not None:
            text += f"\n  MINT {format_amount(mint, MINT_DECIMALS, 'MINT')}"
        _emit(as_json, data, [text])

    @app.command("query")
    def query_cmd(
        message: str = typer.Argument(..., help="contract message, e.g. total_supply, owner_of, balance_of"),
        args_json: str = typer.Argument("{}", help="arguments as a JSON object, e.g. '{\"token_id\": 1}'"),
        contract: str | None = typer.Option(
            None, "--contract", help="nft or rewards (when the name is in both)"
        ),
        origin: str | None = typer.Option(
            None, "--origin", help="SS58 address the read runs as (default: the dev account)"
        ),
        url: str = UrlOpt,
        deployment: Path | None = DeploymentOpt,
        connect_timeout: float = ConnectTimeoutOpt,
    ) -> None:
        """Dry-run a contract message (a read; nothing is sent, no key needed) and print its JSON result."""
        from ami_node.keys import KeyLoadError, address_info, load_keypair

        args = _json_arg(args_json, "ARGS_JSON", "'{\"token_id\": 1}'")
        if not isinstance(args, dict):
            _fail("ARGS_JSON must be a JSON object of the message's arguments", EXIT_INPUT)
        nft, rewards = _abis()
        which = _which_contract(message, contract, nft, rewards)
        dep = _load_or_fail(deployment)
        try:
            caller = address_info(origin).ss58_address if origin else load_keypair("//Alice").address
        except KeyLoadError as exc:
            _fail(f"--origin: {exc}", EXIT_INPUT)

        async def body(port: ChainPort) -> Any:
            abi, address = (nft, dep.nft) if which == "nft" else (rewards, dep.rewards)
            data = abi.encode_call(message, **check_contract_args(abi, message, args))
            dry = await port.contract_dry_run(address, data, caller)
            if not dry.success and not dry.output:
                raise CliError(f"{abi.name}.{message} trapped: {dry.error}", EXIT_REFUSED)
            return abi.decode_return(message, dry.output)

        typer.echo(_show(_run(url, body, connect_timeout)))

    @app.command("call")
    def call_cmd(
        contract: str = typer.Argument(..., help="nft, rewards, or a contract address from the deployment"),
        message: str = typer.Argument(..., help="contract message, e.g. add_oracle, add_validator, listen"),
        args_json: str = typer.Argument(
            "{}", help='arguments as a JSON object, e.g. \'{"account": "5F.."}\''
        ),
        value: int = typer.Option(
            0, "--value", min=0, max=2**128 - 1, help="balance to transfer with the call"
        ),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Execute a contract message (signed; dry-run first, nothing is sent if it would revert)."""
        args = _json_arg(args_json, "ARGS_JSON", '\'{"account": "5F..."}\'')
        if not isinstance(args, dict):
            _fail("ARGS_JSON must be a JSON object of the message's arguments", EXIT_INPUT)
        nft, rewards = _abis()
        dep = _load_or_fail(deployment)
        by_address = {dep.nft: "nft", dep.rewards: "rewards"}
        if contract not in ("nft", "rewards") and contract not in by_address:
            _fail(f"CONTRACT must be nft, rewards, {dep.nft} or {dep.rewards}, not {contract!r}", EXIT_INPUT)
        which = by_address.get(contract, contract)
        abi = nft if which == "nft" else rewards
        if message not in abi.messages:
            close = difflib.get_close_matches(message, sorted(abi.messages), n=3, cutoff=0.5)
            hint = (
                f"; did you mean {', '.join(close)}?"
                if close
                else f"; known: {', '.join(sorted(abi.messages))}"
            )
            _fail(f"{abi.name} has no message {message!r}{hint}", EXIT_INPUT)
        checked = _checked_or_fail(abi, message, args)
        keypair = _keypair(key, key_file, url, password_file)

        async def body(port: ChainPort) -> ContractTxResult:
            return await _contract_call(port, keypair, which, dep, message, checked, timeout, value)

        result = _contract_result(_run(url, body, connect_timeout), dep)
        _emit(as_json, result, [f"returned {_show(result['value'])}"])

    @app.command("deploy")
    def deploy_cmd(
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        out: Path | None = typer.Option(None, "--out", help="where to write the deployment JSON"),
        bundles: Path | None = typer.Option(
            None, "--bundles", help="folder with ami_nft/ami_rewards .contract"
        ),
        oracle: list[str] = typer.Option(
            [],
            "--oracle",
            help="SS58 address to make oracle on both contracts (repeatable; default: the signer)",
        ),
        validator: list[str] = typer.Option(
            [],
            "--validator",
            help="SS58 address to make validator of rewards (repeatable; default: the signer)",
        ),
        allow_stub: bool = typer.Option(
            False, "--allow-stub", help="deploy stub bundles (no real Wasm) to a chain that is not a devnet"
        ),
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Upload and instantiate both contracts, grant the oracle and validator roles, save the record."""
        from ami_node.keys import KeyLoadError, address_info

        try:
            oracles = [address_info(a).ss58_address for a in oracle]
            validators = [address_info(a).ss58_address for a in validator]
        except KeyLoadError as exc:
            _fail(f"--oracle/--validator: {exc}", EXIT_INPUT)
        keypair = _keypair(key, key_file, url, password_file)
        folder = bundles or _default_bundles()
        roles = Roles(oracles or [keypair.address], validators or [keypair.address])

        async def body(port: ChainPort) -> Deployment:
            return await deploy(port, keypair, url, folder, timeout, roles=roles, allow_stub=allow_stub)

        dep = _run(url, body, connect_timeout)
        path = dep.save(out)
        data = {
            "nft": dep.nft,
            "rewards": dep.rewards,
            "written_to": str(path),
            "oracles": roles.oracles,
            "validators": roles.validators,
        }
        _emit(as_json, data, [f"ami_nft     {dep.nft}", f"ami_rewards {dep.rewards}", f"written to {path}"])

    @app.command("mint")
    def mint_cmd(
        file: Path = typer.Argument(..., help="audio file to mint (wav, flac, mp3, ogg, opus)"),
        title: str | None = typer.Option(None, "--title", help="track title (default: the file name)"),
        genre: str = typer.Option("unknown", "--genre", help="genre label for the metadata"),
        licence: str = typer.Option("CC-BY-4.0", "--licence", help="SPDX-style licence id"),
        description: str | None = typer.Option(None, "--description", help="free text for the metadata"),
        duration: float | None = typer.Option(
            None, "--duration", help="seconds (default: read from the file)"
        ),
        splits: str | None = typer.Option(
            None, "--splits", help="royalty splits JSON [[address, basis points], ...] summing to 10000"
        ),
        metadata_cid: str | None = typer.Option(None, "--metadata-cid", help="use this metadata CID as is"),
        ipfs: str | None = typer.Option(None, "--ipfs", envvar="AMI_IPFS_API", help="IPFS API URL to add to"),
        cids_only: bool = typer.Option(
            False, "--cids-only", help="mint without storing: CIDs computed locally (pin the files yourself)"
        ),
        max_bytes: int = typer.Option(
            50 * 1024 * 1024,
            "--max-bytes",
            min=1,
            help="refuse audio files larger than this (the worker's cap)",
        ),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Mint a track (audio and metadata to IPFS, then `mint`); size, format and CIDs checked first."""
        audio = _read_audio(file, max_bytes)
        fmt = _audio_format(file)
        seconds = _audio_seconds(file)  # also proves the file decodes, even when --duration is given
        if ipfs is None and not cids_only:
            _fail(
                "give --ipfs URL (or env AMI_IPFS_API) so the worker can fetch the track; --cids-only mints "
                "without storing anything (the worker rejects it unless you pin the files elsewhere)",
                EXIT_INPUT,
            )
        if metadata_cid is not None:
            _check_cid(metadata_cid, "--metadata-cid")
        keypair = _keypair(key, key_file, url, password_file)
        royalty = _parse_splits(splits, keypair.address)
        dep = _load_or_fail(deployment)
        fields = {
            "title": title or file.stem,
            "creator": keypair.address,
            "genre": genre,
            "duration_s": duration if duration is not None else seconds,
            "royalty_splits": [list(p) for p in royalty],
            "licence": licence,
            "audio_format": fmt,
        }
        if description:
            fields["description"] = description

        async def body(port: ChainPort) -> tuple[str, str, ContractTxResult]:
            audio_cid, meta_cid = await _store_track(audio, fields, metadata_cid, None if cids_only else ipfs)
            args = {"audio_cid": audio_cid, "metadata_cid": meta_cid, "royalty_splits": royalty}
            return audio_cid, meta_cid, await _contract_call(port, keypair, "nft", dep, "mint", args, timeout)

        audio_cid, meta_cid, result = _run(url, body, connect_timeout)
        minted = next((f for label, f in result.events if label == "Minted"), None)
        token = minted["token_id"] if minted else result.value
        data = {
            **_contract_result(result, dep),
            "token_id": token,
            "audio_cid": audio_cid,
            "metadata_cid": meta_cid,
        }
        _emit(as_json, data, [f"audio {audio_cid}", f"metadata {meta_cid}", f"token {token}"])

    @app.command("listen")
    def listen_cmd(
        token: int = typer.Argument(..., min=0, max=2**64 - 1, help="token id"),
        seconds: int = typer.Argument(..., min=1, max=2**32 - 1, help="seconds listened"),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Record a listen of TOKEN for SECONDS."""
        signer = _Signer(url, key, key_file, password_file, deployment, timeout, connect_timeout)
        data = signer.nft_call("listen", {"token_id": token, "seconds": seconds})
        _emit(as_json, data, [])

    @app.command("tag")
    def tag_cmd(
        token: int = typer.Argument(..., min=0, max=2**64 - 1, help="token id"),
        tag: str = typer.Argument(..., help="tag text (1..32 bytes)"),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Tag TOKEN with TAG."""
        signer = _Signer(url, key, key_file, password_file, deployment, timeout, connect_timeout)
        _emit(as_json, signer.nft_call("tag", {"token_id": token, "tag": tag}), [])

    playlist = typer.Typer(help="Create playlists and add tracks to them.", no_args_is_help=True)

    @playlist.command("create")
    def playlist_create(
        name: str = typer.Argument(..., help="playlist name"),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Create a playlist owned by the signer; prints its id."""
        signer = _Signer(url, key, key_file, password_file, deployment, timeout, connect_timeout)
        data = signer.nft_call("create_playlist", {"name": name})
        created = next((e for e in data["receipt"]["events"] if e["event"] == "PlaylistCreated"), None)
        data["playlist_id"] = created["fields"]["playlist_id"] if created else data["value"]
        _emit(as_json, data, [f"playlist {data['playlist_id']}"])

    @playlist.command("add")
    def playlist_add(
        playlist_id: int = typer.Argument(..., min=0, max=2**64 - 1, help="playlist id"),
        token: int = typer.Argument(..., min=0, max=2**64 - 1, help="token id"),
        url: str = UrlOpt,
        key: str | None = KeyOpt,
        key_file: Path | None = KeyFileOpt,
        password_file: Path | None = PasswordFileOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
        connect_timeout: float = ConnectTimeoutOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Add TOKEN to a playlist the signer owns."""
        signer = _Signer(url, key, key_file, password_file, deployment, timeout, connect_timeout)
        data = signer.nft_call("add_to_playlist", {"playlist_id": playlist_id, "token_id": token})
        _emit(as_json, data, [])

    app.add_typer(playlist, name="playlist")


MINT_DECIMALS = 0  # the rewards contract's MINT has no decimals: a balance is a count of whole MINT


@dataclass(frozen=True)
class Roles:
    """Who `ami deploy` makes oracle (both contracts) and validator (rewards)."""

    oracles: list[str]
    validators: list[str]


@dataclass(frozen=True)
class _Signer:
    """The options every signing contract command shares."""

    url: str
    key: str | None
    key_file: Path | None
    password_file: Path | None
    deployment: Path | None
    timeout: float
    connect_timeout: float

    def nft_call(self, message: str, args: dict[str, Any]) -> dict[str, Any]:
        keypair = _keypair(self.key, self.key_file, self.url, self.password_file)
        dep = _load_or_fail(self.deployment)
        nft, _ = _abis()
        checked = _checked_or_fail(nft, message, args)

        async def body(port: ChainPort) -> ContractTxResult:
            return await _contract_call(port, keypair, "nft", dep, message, checked, self.timeout)

        return _contract_result(_run(self.url, body, self.connect_timeout), dep)


def _load_or_fail(path: Path | None) -> Deployment:
    from ami_node.deployment import DeploymentError

    try:
        return _load_deployment(path)
    except DeploymentError as exc:
        _fail(str(exc), EXIT_INPUT)
    raise AssertionError("unreachable")


def _checked_or_fail(abi: ContractAbi, message: str, args: dict[str, Any]) -> dict[str, Any]:
    from ami_node.argtypes import ArgumentError

    try:
        return check_contract_args(abi, message, args)
    except ArgumentError as exc:
        _fail(str(exc), EXIT_INPUT)
    raise AssertionError("unreachable")


def check_contract_args(abi: ContractAbi, message: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` checked strictly against the message's metadata before anything is signed."""
    from ami_node.argtypes import check_contract_args as check

    return check(abi, message, args)


def _read_audio(file: Path, max_bytes: int) -> bytes:
    """The file's bytes, after checking its size from the file system (a huge file is never read)."""
    if not file.is_file():
        _fail(f"{file} is not a file", EXIT_INPUT)
    size = file.stat().st_size
    if size == 0:
        _fail(f"{file} is empty", EXIT_INPUT)
    if size > max_bytes:
        _fail(
            f"{file.name} is {size:,} bytes, over the {max_bytes:,}-byte cap of the worker (--max-bytes)",
            EXIT_INPUT,
        )
    return file.read_bytes()


def _check_cid(value: str, what: str) -> None:
    from offchain.ipfs.cid import parse_cid
    from offchain.ipfs.errors import InvalidCid

    try:
        parse_cid(value)
    except InvalidCid as exc:
        _fail(f"{what} is not a CID: {exc}", EXIT_INPUT)


def _which_contract(message: str, contract: str | None, nft: ContractAbi, rewards: ContractAbi) -> str:
    if contract is not None:
        if contract not in ("nft", "rewards"):
            _fail(f"--contract must be nft or rewards, not {contract!r}", EXIT_INPUT)
        return contract
    in_nft, in_rewards = message in nft.messages, message in rewards.messages
    if in_nft and in_rewards:
        _fail(f"{message!r} exists in both contracts; pass --contract nft or --contract rewards", EXIT_INPUT)
    if not in_nft and not in_rewards:
        names = sorted(set(nft.messages) | set(rewards.messages))
        close = difflib.get_close_matches(message, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names)}"
        _fail(f"no contract message {message!r}{hint}", EXIT_INPUT)
    return "nft" if in_nft else "rewards"


def _parse_splits(text: str | None, signer: str) -> list[tuple[str, int]]:
    if text is None:
        return [(signer, 10000)]
    raw = _json_arg_or_fail(text)
    try:
        splits = [(str(a), int(b)) for a, b in raw]
    except (TypeError, ValueError):
        _fail(
            '--splits must be a JSON list of [address, basis points] pairs, e.g. [["5F...", 10000]]',
            EXIT_INPUT,
        )
    if not 1 <= len(splits) <= 16 or sum(b for _, b in splits) != 10000 or any(b <= 0 for _, b in splits):
        _fail("--splits needs 1..16 entries of positive basis points summing to exactly 10000", EXIT_INPUT)
    return splits


def _json_arg_or_fail(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"not valid JSON: {exc.msg} at column {exc.colno}", EXIT_INPUT)
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        _fail(f"not usable JSON: {_one_line(exc)}", EXIT_INPUT)


_SNDFILE_CONTAINER = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "opus": "OGG", "mp3": "MP3"}


def _audio_format(file: Path) -> str:
    import soundfile

    from offchain.ipfs.metadata import AUDIO_FORMATS

    fmt = file.suffix.lower().lstrip(".")
    # Only what the worker can decode: the metadata's formats whose container libsndfile reads here.
    available = set(soundfile.available_formats())
    decodable = [f for f in AUDIO_FORMATS if _SNDFILE_CONTAINER.get(f) in available]
    if fmt not in decodable:
        _fail(
            f"{file.name}: unsupported audio format {fmt!r}; use one of {', '.join(decodable)}",
            EXIT_INPUT,
        )
    return fmt


def _audio_seconds(file: Path) -> float:
    import soundfile

    try:
        return float(soundfile.info(str(file)).duration)
    except Exception as exc:  # libsndfile says why in its own words
        _fail(
            f"cannot read the length of {file.name} ({exc}); is it audio? pass --duration to skip", EXIT_INPUT
        )
    raise AssertionError("unreachable")


async def _store_track(
    audio: bytes, fields: dict[str, Any], metadata_cid: str | None, ipfs: str | None
) -> tuple[str, str]:
    """(audio CID, metadata CID) of the audio and its TrackMetadata document (offchain/ipfs/metadata.py):
    added to the IPFS node at `ipfs`, or computed locally (the same CIDs kubo gives) when it is None."""
    from offchain.ipfs.client import IpfsClient
    from offchain.ipfs.metadata import MetadataError, store_track
    from offchain.ipfs.store import MemoryContentStore

    try:
        # store_track validates the metadata before it stores anything
        if ipfs is None:
            audio_cid, meta_cid, _ = await store_track(MemoryContentStore(), audio, **fields)
        else:
            async with IpfsClient(ipfs) as client:
                audio_cid, meta_cid, _ = await store_track(client, audio, **fields)
                if metadata_cid is not None:
                    await _resolves(client, metadata_cid)
    except MetadataError as exc:
        raise CliError(f"{exc} (see --title, --genre, --licence, --description, --duration)") from None
    return audio_cid, metadata_cid or meta_cid


async def _resolves(client: Any, cid: str) -> None:
    """The IPFS node has `cid` (a metadata CID given as is must be fetchable by the worker)."""
    from offchain.ipfs.errors import IpfsError

    try:
        await client.stat(cid)
    except IpfsError as exc:
        raise CliError(f"--metadata-cid {cid} does not resolve on the IPFS node: {exc}") from None


def _default_bundles() -> Path:
    import pallets_spec

    return Path(pallets_spec.__file__).resolve().parent / "bundles"


def is_stub_wasm(wasm: bytes) -> bool:
    """True for the placeholder Wasm of pallets_spec's generated bundles: a real ink! contract imports the
    host functions of pallet-contracts (modules "seal0", "seal1", ...), the stub imports only memory."""
    return b"seal" not in wasm


async def _node_rpc(port: ChainPort, method: str) -> Any:
    """A plain RPC on the substrate-interface port (None when the port has no RPC, e.g. a test double)."""
    rpc = getattr(port, "_rpc_checked", None)
    if rpc is None:
        return None
    return await rpc(port._watch, method, [])  # type: ignore[attr-defined]


async def _chain_properties(port: ChainPort) -> dict[str, Any]:
    """The native token's decimals and symbol from system_properties (Substrate's defaults 12 / UNIT)."""
    props = await _node_rpc(port, "system_properties") or {}
    decimals = props.get("tokenDecimals", 12)
    symbol = props.get("tokenSymbol", "UNIT")
    decimals = decimals[0] if isinstance(decimals, list) else decimals
    symbol = symbol[0] if isinstance(symbol, list) else symbol
    return {"decimals": int(decimals), "symbol": str(symbol)}


async def deploy(
    port: ChainPort,
    keypair: Keypair,
    url: str,
    folder: Path,
    timeout: float,
    *,
    roles: Roles | None = None,
    allow_stub: bool = False,
) -> Deployment:
    """Upload + instantiate ami_nft and ami_rewards from `folder`'s .contract bundles, make `roles.oracles`
    oracle on both and `roles.validators` validator on rewards (default: the signer); return the Deployment
    (not yet saved). Stub bundles go only to the local devnet, unless `allow_stub`."""
    roles = roles or Roles([keypair.address], [keypair.address])
    from ami_node.abi import ContractAbi
    from ami_node.deployment import Deployment
    from ami_node.tx import contract_tx, send_call

    addresses: dict[str, str] = {}
    abis: dict[str, ContractAbi] = {}
    max_ref, max_proof = await port.max_extrinsic_weight()
    for name in ("ami_nft", "ami_rewards"):
        bundle = folder / f"{name}.contract"
        if not bundle.is_file():
            raise CliError(f"no contract bundle {bundle}; build it (cargo contract build) or pass --bundles")
        abi = ContractAbi.load(bundle)
        if not abi.wasm:
            raise CliError(f"{bundle} has no source.wasm; pass a .contract bundle, not bare metadata")
        if is_stub_wasm(abi.wasm) and not allow_stub:
            version = str(await _node_rpc(port, "system_version") or "")
            if not version.endswith("-ami-devnet"):
                raise CliError(
                    f"{bundle} holds a stub Wasm (no contract code), and {url} is not the local devnet "
                    f"(node version {version or 'unknown'!r}); build the contracts with cargo-contract 5 "
                    "(docker/Dockerfile, target contracts) and pass --bundles, or --allow-stub"
                )
        call = await port.compose_call(
            "Contracts",
            "instantiate_with_code",
            {
                "value": 0,
                "gas_limit": {"ref_time": max_ref // 2, "proof_size": max_proof // 2},
                "storage_deposit_limit": None,
                "code": "0x" + abi.wasm.hex(),
                "data": "0x" + abi.constructor("new").hex(),
                "salt": "0x" + os.urandom(8).hex(),
            },
        )
        receipt = await send_call(port, keypair, call, timeout_s=timeout)
        inst = receipt.event("Contracts", "Instantiated")
        if inst is None or not isinstance(inst.attributes, dict):
            raise CliError(f"instantiating {name} emitted no Contracts.Instantiated event", EXIT_REFUSED)
        addresses[name] = str(inst.attributes["contract"])
        abis[name] = abi
        typer.echo(f"{name} instantiated at {addresses[name]} (block #{receipt.block.number})", err=True)
    me = keypair.address
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
        deployer=me,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `ami` command")
