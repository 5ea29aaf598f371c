"""`ami` commands of the NFT contract's users: mint a track, listen, tag, create and fill playlists.

Each command parses its arguments, runs one use case of offchain/chain_actions.py with the signing options of
offchain/cli/chain_options.py, and prints the receipt (and with `--json`, the data) as offchain/cli/chain.py's
commands do, with the same exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ami_node.port import ChainPort
from ami_node.tx import ContractTxResult, contract_tx
from offchain.chain_actions import Minted, mint_track
from offchain.cli import chain_input
from offchain.cli.chain_options import Signer, with_signer
from offchain.cli.chain_output import contract_result
from offchain.cli.chain_session import CliError, fail, failing_on
from offchain.cli.exits import EXIT_INPUT
from offchain.ipfs.metadata import MetadataError
from offchain.ipfs.upload import TrackFileError, UnresolvedCid, audio_format, audio_seconds

TokenArg = typer.Argument(..., min=0, max=2**64 - 1, help="token id")


def _nft_call(signer: Signer, message: str, args: dict[str, Any]) -> dict[str, Any]:
    """Sign and submit `message` of the NFT contract; its receipt and returned value as data."""
    keypair = signer.keypair()
    contracts = signer.contracts()
    checked = chain_input.checked_args(contracts.nft, message, args)

    async def body(port: ChainPort) -> ContractTxResult:
        abi, address = contracts.pick("nft")
        return await contract_tx(port, keypair, abi, address, message, checked, timeout_s=signer.timeout)

    return contract_result(signer.run(body), contracts.by_address())


def _audio_file(file: Path, max_bytes: int) -> tuple[bytes, str, float]:
    """The file's bytes, format and length; exit 2 saying why when the worker could not take it."""
    audio = chain_input.audio_bytes(file, max_bytes)
    with failing_on(TrackFileError):
        fmt = audio_format(file)
    try:
        seconds = audio_seconds(file)  # also proves the file decodes, even when --duration is given
    except TrackFileError as exc:
        fail(f"{exc} pass --duration to skip", EXIT_INPUT)
    return audio, fmt, seconds


def mint_cmd(
    signer: Signer,
    file: Path = typer.Argument(..., help="audio file to mint (wav, flac, mp3, ogg, opus)"),
    title: str | None = typer.Option(None, "--title", help="track title (default: the file name)"),
    genre: str = typer.Option("unknown", "--genre", help="genre label for the metadata"),
    licence: str = typer.Option("CC-BY-4.0", "--licence", help="SPDX-style licence id"),
    description: str | None = typer.Option(None, "--description", help="free text for the metadata"),
    duration: float | None = typer.Option(None, "--duration", help="seconds (default: read from the file)"),
    splits: str | None = typer.Option(
        None, "--splits", help="royalty splits JSON [[address, basis points], ...] summing to 10000"
    ),
    metadata_cid: str | None = typer.Option(None, "--metadata-cid", help="use this metadata CID as is"),
    ipfs: str | None = typer.Option(None, "--ipfs", envvar="AMI_IPFS_API", help="IPFS API URL to add to"),
    cids_only: bool = typer.Option(
        False, "--cids-only", help="mint without storing: CIDs computed locally (pin the files yourself)"
    ),
    max_bytes: int = typer.Option(
        50 * 1024 * 1024, "--max-bytes", min=1, help="refuse audio files larger than this (the worker's cap)"
    ),
) -> None:
    """Mint a track (audio and metadata to IPFS, then `mint`); size, format and CIDs checked first."""
    audio, fmt, seconds = _audio_file(file, max_bytes)
    if ipfs is None and not cids_only:
        fail(
            "give --ipfs URL (or env AMI_IPFS_API) so the worker can fetch the track; --cids-only mints "
            "without storing anything (the worker rejects it unless you pin the files elsewhere)",
            EXIT_INPUT,
        )
    if metadata_cid is not None:
        chain_input.cid(metadata_cid, "--metadata-cid")
    keypair = signer.keypair()
    royalty = chain_input.royalty_splits(splits, keypair.address)
    contracts = signer.contracts()
    fields = {
        "title": title or file.stem,
        "creator": keypair.address,
        "genre": genre,
        "duration_s": duration if duration is not None else seconds,
        "royalty_splits": [list(p) for p in royalty],
        "licence": licence,
        "audio_format": fmt,
        **({"description": description} if description else {}),
    }

    async def body(port: ChainPort) -> Minted:
        try:
            return await mint_track(
                port,
                keypair,
                contracts,
                audio,
                fields,
                royalty,
                ipfs=None if cids_only else ipfs,
                metadata_cid=metadata_cid,
                timeout=signer.timeout,
            )
        except MetadataError as exc:
            raise CliError(f"{exc} (see --title, --genre, --licence, --description, --duration)") from None
        except UnresolvedCid as exc:
            raise CliError(f"--metadata-cid {exc}") from None

    minted = signer.run(body)
    data = {
        **contract_result(minted.result, contracts.by_address()),
        "token_id": minted.token_id,
        "audio_cid": minted.audio_cid,
        "metadata_cid": minted.metadata_cid,
    }
    lines = [f"audio {minted.audio_cid}", f"metadata {minted.metadata_cid}", f"token {minted.token_id}"]
    signer.emit(data, lines)


def listen_cmd(
    signer: Signer,
    token: int = TokenArg,
    seconds: int = typer.Argument(..., min=1, max=2**32 - 1, help="seconds listened"),
) -> None:
    """Record a listen of TOKEN for SECONDS."""
    signer.emit(_nft_call(signer, "listen", {"token_id": token, "seconds": seconds}), [])


def tag_cmd(
    signer: Signer,
    token: int = TokenArg,
    tag: str = typer.Argument(..., help="tag text (1..32 bytes)"),
) -> None:
    """Tag TOKEN with TAG."""
    signer.emit(_nft_call(signer, "tag", {"token_id": token, "tag": tag}), [])


def playlist_create(signer: Signer, name: str = typer.Argument(..., help="playlist name")) -> None:
    """Create a playlist owned by the signer; prints its id."""
    data = _nft_call(signer, "create_playlist", {"name": name})
    created = next((e for e in data["receipt"]["events"] if e["event"] == "PlaylistCreated"), None)
    data["playlist_id"] = created["fields"]["playlist_id"] if created else data["value"]
    signer.emit(data, [f"playlist {data['playlist_id']}"])


def playlist_add(
    signer: Signer,
    playlist_id: int = typer.Argument(..., min=0, max=2**64 - 1, help="playlist id"),
    token: int = TokenArg,
) -> None:
    """Add TOKEN to a playlist the signer owns."""
    signer.emit(_nft_call(signer, "add_to_playlist", {"playlist_id": playlist_id, "token_id": token}), [])


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.command("mint")(with_signer(mint_cmd))
    app.command("listen")(with_signer(listen_cmd))
    app.command("tag")(with_signer(tag_cmd))
    playlist = typer.Typer(help="Create playlists and add tracks to them.", no_args_is_help=True)
    playlist.command("create")(with_signer(playlist_create))
    playlist.command("add")(with_signer(playlist_add))
    app.add_typer(playlist, name="playlist")
