"""`ami` developer commands that talk to a chain: deploy, mint, listen, tag, playlist, query, tx, balance.

Every command takes `--url` (env AMI_NODE_URL) and, when it signs, `--key` (env AMI_KEY; a dev URI such as
//Alice, a mnemonic, or a polkadot-js keystore file with AMI_KEY_PASSWORD). Contract commands read the
addresses written by `ami deploy` (`--deployment`, env AMI_DEPLOYMENT, default .ami/deployment.json).
Failures print what went wrong and what to do, and exit non-zero: 2 bad input, 3 node unreachable,
4 refused or reverted, 5 timed out.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ami_node.abi import ContractAbi
    from ami_node.deployment import Deployment
    from ami_node.keys import Keypair
    from ami_node.port import ChainPort
    from ami_node.tx import ContractTxResult, TxReceipt

T = TypeVar("T")

DEFAULT_URL = "ws://127.0.0.1:9944"
EXIT_INPUT, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_TIMEOUT = 2, 3, 4, 5

UrlOpt = typer.Option(DEFAULT_URL, "--url", envvar="AMI_NODE_URL", help="node websocket URL")
KeyOpt = typer.Option(
    "//Alice", "--key", envvar="AMI_KEY", help="signing key: dev URI, mnemonic or keystore file"
)
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
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(url: str, body: Callable[[ChainPort], Awaitable[T]]) -> T:
    """Open a port to `url`, run `body`, close, and turn every known failure into a message and exit code."""
    from ami_node.abi import AbiError
    from ami_node.deployment import DeploymentError
    from ami_node.keys import KeyLoadError
    from ami_node.port import CallError, ChainUnavailable, ContractReverted, PoolRejected
    from ami_node.tx import TxDispatchFailed, TxTimeout

    async def main() -> T:
        from ami_node.substrate import SubstrateChainPort

        port = SubstrateChainPort(url, timeout_s=float(os.environ.get("AMI_RPC_TIMEOUT", "20")))
        try:
            return await body(port)
        finally:
            await port.close()

    try:
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
        _fail(f"{exc} (start one with `ami devnet`, or pass --url)", EXIT_UNREACHABLE)
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
    except TxTimeout as exc:
        _fail(str(exc), EXIT_TIMEOUT)
    raise AssertionError("unreachable")


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


def _keypair(key: str) -> Keypair:
    from ami_node.keys import KeyLoadError, load_keypair

    try:
        return load_keypair(key, password=os.environ.get("AMI_KEY_PASSWORD"))
    except KeyLoadError as exc:
        _fail(
            f"{exc} (--key / AMI_KEY takes a dev URI like //Alice, a mnemonic, or a keystore JSON file)",
            EXIT_INPUT,
        )
    raise AssertionError("unreachable")


def _json_arg(text: str | None, what: str, example: str) -> Any:
    if text is None or text == "":
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}); expected e.g. {example}", EXIT_INPUT
        )


def _show(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, bytes | bytearray):
            return "0x" + bytes(v).hex()
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), default=str)


def _print_receipt(receipt: TxReceipt, contracts: dict[str, Any] | None = None) -> None:
    from ami_node.tx import decode_contract_events

    typer.echo(
        f"finalized in block #{receipt.block.number} ({receipt.block.hash}), "
        f"extrinsic {receipt.extrinsic_index}, hash {receipt.hash}, nonce {receipt.nonce}"
    )
    for e in receipt.events:
        if e.name == "ContractEmitted" and contracts and e.contract in contracts:
            decoded = decode_contract_events([e], contracts)
            if decoded:
                label, fields = decoded[0]
                typer.echo(f"  {contracts[e.contract].name}.{label} {_show(fields)}")
                continue
        typer.echo(f"  {e.pallet}.{e.name} {_show(e.attributes)}")


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
) -> ContractTxResult:
    from ami_node.tx import contract_tx

    nft, rewards = _abis()
    abi, address = (nft, dep.nft) if which == "nft" else (rewards, dep.rewards)
    result = await contract_tx(port, keypair, abi, address, message, args, timeout_s=timeout)
    _print_receipt(result.receipt, {dep.nft: nft, dep.rewards: rewards})
    return result


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
        key: str = KeyOpt,
        timeout: float = TimeoutOpt,
        era: int = typer.Option(64, "--era", help="mortality in blocks"),
    ) -> None:
        """Sign and submit any call of any pallet, wait until it is finalized, print its events."""
        params = _json_arg(args_json, "ARGS_JSON", '\'{"dest": "5FHneW46...", "value": 1000}\'')
        if not isinstance(params, dict):
            _fail(
                "ARGS_JSON must be a JSON object of the call's named arguments, e.g. '{\"value\": 1}'",
                EXIT_INPUT,
            )
        keypair = _keypair(key)

        async def body(port: ChainPort) -> TxReceipt:
            from ami_node.tx import send_call

            composed = await port.compose_call(pallet, call, params)
            return await send_call(port, keypair, composed, era_period=era, timeout_s=timeout)

        receipt = _run(url, body)
        _print_receipt(receipt)

    @app.command("balance")
    def balance_cmd(
        address: str = typer.Argument(..., help="SS58 address (or a dev URI such as //Bob)"),
        url: str = UrlOpt,
        deployment: Path | None = DeploymentOpt,
    ) -> None:
        """Print an account's free balance and, when contracts are deployed, its MINT balance."""
        if address.startswith("//"):
            address = _keypair(address).address

        async def body(port: ChainPort) -> tuple[int, int | None]:
            from ami_node.deployment import DeploymentError

            free = await port.free_balance(address)
            try:
                dep = _load_deployment(deployment)
            except DeploymentError:
                return free, None
            _, rewards = _abis()
            dry = await port.contract_dry_run(
                dep.rewards, rewards.encode_call("balance_of", account=address), address
            )
            return free, int(rewards.decode_return("balance_of", dry.output)) if dry.success else None

        free, mint = _run(url, body)
        typer.echo(f"{address}: free {free}" + ("" if mint is None else f", MINT {mint}"))

    @app.command("query")
    def query_cmd(
        message: str = typer.Argument(..., help="contract message, e.g. total_supply, owner_of, balance_of"),
        args_json: str = typer.Argument("{}", help="arguments as a JSON object, e.g. '{\"token_id\": 1}'"),
        contract: str | None = typer.Option(
            None, "--contract", help="nft or rewards (when the name is in both)"
        ),
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
    ) -> None:
        """Dry-run a contract message (a read; nothing is sent) and print what it returns."""
        args = _json_arg(args_json, "ARGS_JSON", "'{\"token_id\": 1}'")
        if not isinstance(args, dict):
            _fail("ARGS_JSON must be a JSON object of the message's arguments", EXIT_INPUT)
        nft, rewards = _abis()
        which = _which_contract(message, contract, nft, rewards)
        dep = _load_or_fail(deployment)
        origin = _keypair(key).address

        async def body(port: ChainPort) -> Any:
            abi, address = (nft, dep.nft) if which == "nft" else (rewards, dep.rewards)
            data = abi.encode_call(message, **args)
            dry = await port.contract_dry_run(address, data, origin)
            if not dry.success and not dry.output:
                raise CliError(f"{abi.name}.{message} trapped: {dry.error}", EXIT_REFUSED)
            return abi.decode_return(message, dry.output)

        typer.echo(_show(_run(url, body)))

    @app.command("deploy")
    def deploy_cmd(
        url: str = UrlOpt,
        key: str = KeyOpt,
        out: Path | None = typer.Option(None, "--out", help="where to write the deployment JSON"),
        bundles: Path | None = typer.Option(
            None, "--bundles", help="folder with ami_nft/ami_rewards .contract"
        ),
        timeout: float = TimeoutOpt,
    ) -> None:
        """Upload and instantiate both contracts, make the signer oracle and validator, save the record."""
        keypair = _keypair(key)
        folder = bundles or _default_bundles()

        async def body(port: ChainPort) -> Deployment:
            return await deploy(port, keypair, url, folder, timeout)

        dep = _run(url, body)
        path = dep.save(out)
        typer.echo(f"ami_nft     {dep.nft}\nami_rewards {dep.rewards}\nwritten to {path}")

    @app.command("mint")
    def mint_cmd(
        file: Path = typer.Argument(..., help="audio file to mint (wav, flac, mp3, ogg, opus, m4a)"),
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
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
    ) -> None:
        """Mint a track: audio and its metadata to IPFS (--ipfs; else CIDs computed locally), then `mint`."""
        if not file.is_file():
            _fail(f"{file} is not a file", EXIT_INPUT)
        audio = file.read_bytes()
        if not audio:
            _fail(f"{file} is empty", EXIT_INPUT)
        keypair = _keypair(key)
        royalty = _parse_splits(splits, keypair.address)
        dep = _load_or_fail(deployment)
        fields = {
            "title": title or file.stem,
            "creator": keypair.address,
            "genre": genre,
            "duration_s": duration if duration is not None else _audio_seconds(file),
            "royalty_splits": [list(p) for p in royalty],
            "licence": licence,
            "audio_format": _audio_format(file),
        }
        if description:
            fields["description"] = description

        async def body(port: ChainPort) -> ContractTxResult:
            audio_cid, meta_cid = await _store_track(audio, fields, metadata_cid, ipfs)
            typer.echo(f"audio {audio_cid}\nmetadata {meta_cid}")
            args = {"audio_cid": audio_cid, "metadata_cid": meta_cid, "royalty_splits": royalty}
            return await _contract_call(port, keypair, "nft", dep, "mint", args, timeout)

        result = _run(url, body)
        minted = next((f for label, f in result.events if label == "Minted"), None)
        typer.echo(f"token {minted['token_id'] if minted else result.value}")

    @app.command("listen")
    def listen_cmd(
        token: int = typer.Argument(..., min=0, help="token id"),
        seconds: int = typer.Argument(..., min=1, max=2**32 - 1, help="seconds listened"),
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
    ) -> None:
        """Record a listen of TOKEN for SECONDS."""
        _simple_nft_call(url, key, deployment, timeout, "listen", {"token_id": token, "seconds": seconds})

    @app.command("tag")
    def tag_cmd(
        token: int = typer.Argument(..., min=0, help="token id"),
        tag: str = typer.Argument(..., help="tag text (1..32 bytes)"),
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
    ) -> None:
        """Tag TOKEN with TAG."""
        _simple_nft_call(url, key, deployment, timeout, "tag", {"token_id": token, "tag": tag})

    playlist = typer.Typer(help="Create playlists and add tracks to them.", no_args_is_help=True)

    @playlist.command("create")
    def playlist_create(
        name: str = typer.Argument(..., help="playlist name"),
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
    ) -> None:
        """Create a playlist owned by the signer; prints its id."""
        result = _simple_nft_call(url, key, deployment, timeout, "create_playlist", {"name": name})
        created = next((f for label, f in result.events if label == "PlaylistCreated"), None)
        typer.echo(f"playlist {created['playlist_id'] if created else result.value}")

    @playlist.command("add")
    def playlist_add(
        playlist_id: int = typer.Argument(..., min=0, help="playlist id"),
        token: int = typer.Argument(..., min=0, help="token id"),
        url: str = UrlOpt,
        key: str = KeyOpt,
        deployment: Path | None = DeploymentOpt,
        timeout: float = TimeoutOpt,
    ) -> None:
        """Add TOKEN to a playlist the signer owns."""
        _simple_nft_call(
            url, key, deployment, timeout, "add_to_playlist", {"playlist_id": playlist_id, "token_id": token}
        )

    app.add_typer(playlist, name="playlist")


def _load_or_fail(path: Path | None) -> Deployment:
    from ami_node.deployment import DeploymentError

    try:
        return _load_deployment(path)
    except DeploymentError as exc:
        _fail(str(exc), EXIT_INPUT)
    raise AssertionError("unreachable")


def _simple_nft_call(
    url: str, key: str, deployment: Path | None, timeout: float, message: str, args: dict[str, Any]
) -> ContractTxResult:
    keypair = _keypair(key)
    dep = _load_or_fail(deployment)

    async def body(port: ChainPort) -> ContractTxResult:
        return await _contract_call(port, keypair, "nft", dep, message, args, timeout)

    return _run(url, body)


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


def _audio_format(file: Path) -> str:
    from offchain.ipfs.metadata import AUDIO_FORMATS

    fmt = file.suffix.lower().lstrip(".")
    if fmt not in AUDIO_FORMATS:
        _fail(
            f"{file.name}: unsupported audio format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}",
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
    except MetadataError as exc:
        raise CliError(f"{exc} (see --title, --genre, --licence, --description, --duration)") from None
    return audio_cid, metadata_cid or meta_cid


def _default_bundles() -> Path:
    import pallets_spec

    return Path(pallets_spec.__file__).resolve().parent / "bundles"


async def deploy(port: ChainPort, keypair: Keypair, url: str, folder: Path, timeout: float) -> Deployment:
    """Upload + instantiate ami_nft and ami_rewards from `folder`'s .contract bundles, grant the signer the
    oracle role on both and the validator role on rewards; return the Deployment (not yet saved)."""
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
    grants = [("ami_nft", "add_oracle"), ("ami_rewards", "add_oracle"), ("ami_rewards", "add_validator")]
    for name, message in grants:
        await contract_tx(
            port, keypair, abis[name], addresses[name], message, {"account": me}, timeout_s=timeout
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
