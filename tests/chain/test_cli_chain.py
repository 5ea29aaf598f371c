"""`ami` chain commands end to end on the devnet: tx, deploy, mint, listen, tag, playlist, query, balance, and
their error messages and exit codes; several `ami tx` processes signing with one key at once."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ami_node.devnet.testing import DevnetHandle, running_devnet
from ami_node.keys import load_keypair
from ami_node.substrate import SubstrateChainPort
from offchain.cli import app

BOB = load_keypair("//Bob").address
CHARLIE = load_keypair("//Charlie").address
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevnetHandle, dict[str, str]]]:
    dep = tmp_path_factory.mktemp("cli") / "deployment.json"
    with running_devnet() as dn:
        env = {"AMI_NODE_URL": dn.url, "AMI_DEPLOYMENT": str(dep), "AMI_KEY": "//Alice"}
        result = runner.invoke(app, ["deploy"], env=env)
        assert result.exit_code == 0, result.output
        yield dn, env


def ami(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def free(url: str, who: str) -> int:
    async def go() -> int:
        async with SubstrateChainPort(url) as port:
            return await port.free_balance(who)

    return asyncio.run(go())


def test_deploy_wrote_a_usable_deployment(node: tuple[DevnetHandle, dict[str, str]]) -> None:
    _, env = node
    record = json.loads(Path(env["AMI_DEPLOYMENT"]).read_text())
    assert set(record) == {"url", "genesis_hash", "nft", "rewards", "deployer"}
    assert record["deployer"] == load_keypair("//Alice").address
    code, out = ami(
        env, "query", "is_oracle", json.dumps({"account": record["deployer"]}), "--contract", "rewards"
    )
    assert code == 0 and out.strip() == "true"
    code, out = ami(env, "query", "is_validator", json.dumps({"account": record["deployer"]}))
    assert code == 0 and out.strip() == "true"


def test_tx_transfer_prints_events_by_name(node: tuple[DevnetHandle, dict[str, str]]) -> None:
    dn, env = node
    before = free(dn.url, BOB)
    code, out = ami(env, "tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": 4242}))
    assert code == 0, out
    assert re.search(r"finalized in block #\d+", out)
    assert "Balances.Transfer " in out and "System.ExtrinsicSuccess" in out
    assert free(dn.url, BOB) == before + 4242


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["tx", "Balancs", "transfer_keep_alive", "{}"], 2, "did you mean Balances"),
        (["tx", "Balances", "transfer_keepalive", "{}"], 2, "did you mean transfer_keep_alive"),
        (["tx", "Balances", "transfer_keep_alive", '{"dest": "x"}'], 2, "expected (dest"),
        (["tx", "Balances", "transfer_keep_alive", "{dest: 1}"], 2, "not valid JSON"),
        (["tx", "Balances", "transfer_keep_alive", "[1, 2]"], 2, "must be a JSON object"),
        (
            [
                "tx",
                "Balances",
                "transfer_keep_alive",
                f'{{"dest": "{BOB}", "value": 5}}',
                "--key",
                "//Nobody",
            ],
            4,
            "cannot pay the fees",
        ),
        (["tx", "System", "remark", '{"remark": "0x00"}', "--key", "not a key"], 2, "key"),
        (["listen", "999", "5"], 4, "TokenNotFound; nothing was sent"),
        (["tag", "999", "lofi"], 4, "ami_nft.tag would revert: TokenNotFound"),
        (["query", "owner_of", '{"token": 1}'], 2, "expected (token_id: u64)"),
        (["query", "ownr_of"], 2, "did you mean owner_of"),
        (["query", "owner"], 2, "exists in both contracts"),
        (["mint", "/nonexistent.wav"], 2, "is not a file"),
    ],
)
def test_errors_say_what_is_wrong(
    node: tuple[DevnetHandle, dict[str, str]], args: list[str], code: int, needle: str
) -> None:
    _, env = node
    got, out = ami(env, *args)
    assert got == code, out
    assert needle in out, out


def test_unreachable_node_and_missing_deployment(tmp_path: Path) -> None:
    env = {
        "AMI_NODE_URL": "ws://127.0.0.1:9",
        "AMI_RPC_TIMEOUT": "2",
        "AMI_DEPLOYMENT": str(tmp_path / "none.json"),
    }
    code, out = ami(env, "tx", "System", "remark", '{"remark": "0x00"}')
    assert code == 3 and "ami devnet" in out, out
    code, out = ami(env, "listen", "1", "5")
    assert code == 2 and "run `ami deploy` first" in out, out


def test_mint_listen_tag_playlist_query_balance(
    node: tuple[DevnetHandle, dict[str, str]], tmp_path: Path
) -> None:
    _, env = node
    import numpy as np
    import soundfile

    track = tmp_path / "song.wav"
    t = np.arange(22050) / 22050.0
    soundfile.write(track, 0.3 * np.sin(2 * np.pi * 440 * t), 22050)  # one second of A4
    code, out = ami(
        env,
        "mint",
        str(track),
        "--cids-only",
        "--title",
        "Song",
        "--splits",
        json.dumps([[BOB, 2500], [CHARLIE, 7500]]),
    )
    assert code == 0, out
    assert "ami_nft.Minted" in out
    out_mint = out
    token = int(re.search(r"^token (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    audio_cid = re.search(r"^audio (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    code, out = ami(env, "listen", str(token), "42")
    assert code == 0 and "ami_nft.Listened" in out and '"seconds": 42' in out, out
    code, out = ami(env, "tag", str(token), "lofi")
    assert code == 0 and "ami_nft.Tagged" in out, out
    code, out = ami(env, "tag", str(token), "x" * 40)
    assert code == 4 and "InvalidTag" in out, out
    code, out = ami(env, "playlist", "create", "favourites")
    assert code == 0, out
    playlist = int(re.search(r"^playlist (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    code, out = ami(env, "playlist", "add", str(playlist), str(token))
    assert code == 0 and "ami_nft.PlaylistAdded" in out, out
    code, out = ami(env, "query", "token_info", json.dumps({"token_id": token}))
    assert code == 0, out
    info = json.loads(out)
    meta_cid = re.search(r"^metadata (\S+)$", out_mint, re.M).group(1)  # type: ignore[union-attr]
    assert info["metadata_cid"] == meta_cid
    assert info["audio_cid"] == audio_cid and info["royalty_splits"] == [[BOB, 2500], [CHARLIE, 7500]]
    code, out = ami(env, "balance", "//Bob", "--json")
    assert code == 0, out
    balance = json.loads(out)
    assert balance["address"] == BOB and balance["free"] > 0 and balance["mint"] == 0, out
    code, out = ami(env, "mint", str(track), "--cids-only", "--splits", json.dumps([[BOB, 5000]]))
    assert code == 2 and "summing to exactly 10000" in out, out
    noise = tmp_path / "noise.wav"
    noise.write_bytes(os.urandom(3000))
    code, out = ami(env, "mint", str(noise))
    assert code == 2 and "cannot read the length of noise.wav" in out, out
    code, out = ami(env, "mint", str(track), "--cids-only", "--licence", "not a licence!")
    assert code == 2 and "licence" in out, out


@pytest.mark.slow
@pytest.mark.slow
def test_concurrent_tx_processes_with_one_key_all_land(
    node: tuple[DevnetHandle, dict[str, str]], concurrent_transfers: Callable[..., list[Any]]
) -> None:
    """Ten `ami tx` processes with one key at once: the devnet's pool refuses a duplicate nonce (1014) as a
    real pool does; each loser signs again with a fresh nonce and all ten land once."""
    dn, _ = node
    before = free(dn.url, BOB)
    values = [101 * (i + 1) for i in range(10)]
    runs = concurrent_transfers(dn.url, BOB, values)
    assert all(r.code == 0 for r in runs), [r.output[-600:] for r in runs if r.code]
    assert len({r.nonce for r in runs}) == len(values)
    assert free(dn.url, BOB) == before + sum(values)


def test_dispatch_failure_names_the_pallet_error(node: tuple[DevnetHandle, dict[str, str]]) -> None:
    from ami_node.abi import ContractAbi

    _, env = node
    nft = json.loads(Path(env["AMI_DEPLOYMENT"]).read_text())["nft"]
    data = ContractAbi.load("ami_nft").encode_call("listen", token_id=999, seconds=5)
    args = {
        "dest": nft,
        "value": 0,
        "gas_limit": {"ref_time": 10**10, "proof_size": 10**6},
        "storage_deposit_limit": None,
        "data": "0x" + data.hex(),
    }
    code, out = ami(env, "tx", "Contracts", "call", json.dumps(args))  # no dry run on this path: it lands
    assert code == 4, out
    assert re.search(r"failed in block #\d+", out) and "Contracts.ContractReverted" in out, out


@pytest.mark.slow
def test_mint_with_ipfs_stores_what_the_worker_reads(
    node: tuple[DevnetHandle, dict[str, str]], tmp_path: Path
) -> None:
    import numpy as np
    import soundfile

    from offchain.ipfs.client import IpfsClient
    from offchain.ipfs.metadata import load_metadata
    from offchain.ipfs.node import LocalIpfsNode, jsipfs_executable

    jsipfs_executable()  # raises "run ./scripts/setup.sh" when the npm folder is missing
    _, env = node
    track = tmp_path / "tune.flac"
    soundfile.write(track, 0.2 * np.sin(np.arange(44100) / 44100 * 2 * np.pi * 220), 44100)  # 1 s of A3
    with LocalIpfsNode(tmp_path / "repo") as ipfs:
        code, out = ami(
            env, "mint", str(track), "--ipfs", ipfs.api_url, "--genre", "drone", "--title", "Tune"
        )
        assert code == 0, out
        audio_cid = re.search(r"^audio (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
        meta_cid = re.search(r"^metadata (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]

        async def read() -> tuple[Any, bytes]:
            async with IpfsClient(ipfs.api_url) as client:
                return await load_metadata(client, meta_cid), await client.cat(audio_cid, max_bytes=1 << 20)

        meta, audio = asyncio.run(read())
    assert audio == track.read_bytes()
    assert meta.title == "Tune" and meta.genre == "drone" and meta.audio_format == "flac"
    assert meta.audio_cid == audio_cid and abs(meta.duration_s - 1.0) < 1e-3
    assert meta.creator == load_keypair("//Alice").address
