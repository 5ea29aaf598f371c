"""Developer script: mint sample tracks on a deployed AMI NFT contract.

Renders real music (music21 corpus pieces through FluidSynth, see scoring/corpus.py) or takes the audio files
you name, stores each on IPFS (--ipfs) or computes its CID locally, and mints it. Needs `ami deploy` first.

    .venv/bin/python scripts/mint_samples.py --count 3 --seconds 15
    .venv/bin/python scripts/mint_samples.py --ipfs http://127.0.0.1:5001 a.wav b.flac
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from ami_node.abi import ContractAbi
from ami_node.deployment import Deployment, DeploymentError
from ami_node.keys import load_keypair
from ami_node.nonce import NonceManager
from ami_node.port import ChainError
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import contract_tx
from offchain.ipfs.upload import audio_format, audio_seconds, store_track_files
from scoring.corpus import SAMPLE_PIECES, render_piece


def render_samples(count: int, seconds: float, folder: Path) -> list[Path]:
    return [
        render_piece(piece, folder / f"{piece.name}.wav", seconds=seconds) for piece in SAMPLE_PIECES[:count]
    ]


async def mint_all(args: argparse.Namespace, files: list[Path]) -> int:
    genres = {piece.name: piece.style for piece in SAMPLE_PIECES}
    dep = Deployment.load(args.deployment)
    keypair = load_keypair(args.key)
    nft = ContractAbi.load("ami_nft")
    async with SubstrateChainPort(args.url) as port:
        nonces = NonceManager(port, keypair.address)  # one owner of the key's nonce for the whole run
        for path in files:
            fields = {
                "title": path.stem,
                "creator": keypair.address,
                "genre": genres.get(path.stem, "unknown"),
                "duration_s": audio_seconds(path),
                "royalty_splits": [[keypair.address, 10000]],
                "licence": "CC-BY-4.0",
                "audio_format": audio_format(path),
            }
            audio_cid, meta_cid = await store_track_files(path.read_bytes(), fields, args.ipfs)
            result = await contract_tx(
                port,
                keypair,
                nft,
                dep.nft,
                "mint",
                {
                    "audio_cid": audio_cid,
                    "metadata_cid": meta_cid,
                    "royalty_splits": [(keypair.address, 10000)],
                },
                nonces=nonces,
            )
            token = next((f["token_id"] for label, f in result.events if label == "Minted"), result.value)
            print(f"token {token}  {path.name}  audio {audio_cid}  block #{result.receipt.block.number}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path, help="audio files to mint (default: render samples)")
    parser.add_argument("--url", default="ws://127.0.0.1:9944")
    parser.add_argument("--key", default="//Alice")
    parser.add_argument("--deployment", default=None, help="deployment JSON (default .ami/deployment.json)")
    parser.add_argument("--ipfs", default=None, help="IPFS API URL; without it CIDs are computed locally")
    parser.add_argument(
        "--count", type=int, default=3, help="sample pieces to render when no files are given"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each rendered sample")
    args = parser.parse_args()
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"error: not files: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = args.files or render_samples(args.count, args.seconds, Path(tmp))
            return asyncio.run(mint_all(args, files))
    except (DeploymentError, ChainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
