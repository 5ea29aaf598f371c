"""The arguments of the `ami` chain commands, parsed and checked before anything is signed (else exit 2)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ami_node.abi import ContractAbi
from ami_node.argtypes import ArgumentError, check_contract_args, check_no_floats
from ami_node.keys import KeyLoadError, address_info
from offchain.chain_actions import Contracts
from offchain.cli.chain_session import fail, failing_on, one_line
from offchain.cli.exits import EXIT_INPUT
from offchain.ipfs.cid import parse_cid
from offchain.ipfs.errors import InvalidCid


def json_object(text: str | None, what: str, example: str, shape: str) -> dict[str, Any]:
    """`text` parsed as a JSON object (an empty text is {}); else exit 2 naming `what`, `example`, `shape`."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}); expected e.g. {example}", EXIT_INPUT
        )
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        fail(f"{what} is not usable JSON ({one_line(exc)})", EXIT_INPUT)
    if not isinstance(value, dict):
        fail(shape, EXIT_INPUT)
    return value


def call_params(text: str) -> dict[str, Any]:
    """ARGS_JSON of `ami tx`: the named arguments of a runtime call, none a fraction."""
    params = json_object(
        text,
        "ARGS_JSON",
        '\'{"dest": "5FHneW46...", "value": 1000}\'',
        "ARGS_JSON must be a JSON object of the call's named arguments, e.g. '{\"value\": 1}'",
    )
    with failing_on(ValueError):
        check_no_floats(params)
    return params


def message_args(text: str, example: str) -> dict[str, Any]:
    """ARGS_JSON of a contract message: a JSON object of its arguments."""
    return json_object(
        text, "ARGS_JSON", example, "ARGS_JSON must be a JSON object of the message's arguments"
    )


def checked_args(abi: ContractAbi, message: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` checked strictly against the message's metadata."""
    with failing_on(ArgumentError):
        return check_contract_args(abi, message, args)
    raise AssertionError("unreachable")


def ss58(address: str, what: str) -> str:
    """`address` (SS58 of any network, or a 0x public key) as SS58; exit 2 after `what: ` when it is not."""
    with failing_on(KeyLoadError, f"{what}: "):
        return address_info(address).ss58_address
    raise AssertionError("unreachable")


def which_contract(message: str, contract: str | None, nft: ContractAbi, rewards: ContractAbi) -> str:
    """ "nft" or "rewards": `contract` when given, else the one contract that has `message`."""
    if contract is not None:
        if contract not in ("nft", "rewards"):
            fail(f"--contract must be nft or rewards, not {contract!r}", EXIT_INPUT)
        return contract
    in_nft, in_rewards = message in nft.messages, message in rewards.messages
    if in_nft and in_rewards:
        fail(f"{message!r} exists in both contracts; pass --contract nft or --contract rewards", EXIT_INPUT)
    if not in_nft and not in_rewards:
        names = sorted(set(nft.messages) | set(rewards.messages))
        close = difflib.get_close_matches(message, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names)}"
        fail(f"no contract message {message!r}{hint}", EXIT_INPUT)
    return "nft" if in_nft else "rewards"


def contract_by_name(contract: str, contracts: Contracts) -> str:
    """ "nft" or "rewards" for CONTRACT given as either name or as one of the deployment's addresses."""
    dep = contracts.deployment
    by_address = {dep.nft: "nft", dep.rewards: "rewards"}
    if contract not in ("nft", "rewards") and contract not in by_address:
        fail(f"CONTRACT must be nft, rewards, {dep.nft} or {dep.rewards}, not {contract!r}", EXIT_INPUT)
    return by_address.get(contract, contract)


def known_message(abi: ContractAbi, message: str) -> None:
    """Exit 2, with close matches, when `abi` has no `message`."""
    if message not in abi.messages:
        close = difflib.get_close_matches(message, sorted(abi.messages), n=3, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(abi.messages))}"
        )
        fail(f"{abi.name} has no message {message!r}{hint}", EXIT_INPUT)


def royalty_splits(text: str | None, signer: str) -> list[tuple[str, int]]:
    """--splits: [[address, basis points], ...] summing to 10000 (default: all to the signer)."""
    if text is None:
        return [(signer, 10000)]
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"not valid JSON: {exc.msg} at column {exc.colno}", EXIT_INPUT)
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        fail(f"not usable JSON: {one_line(exc)}", EXIT_INPUT)
    try:
        splits = [(str(a), int(b)) for a, b in raw]
    except (TypeError, ValueError):
        fail(
            '--splits must be a JSON list of [address, basis points] pairs, e.g. [["5F...", 10000]]',
            EXIT_INPUT,
        )
    if not 1 <= len(splits) <= 16 or sum(b for _, b in splits) != 10000 or any(b <= 0 for _, b in splits):
        fail("--splits needs 1..16 entries of positive basis points summing to exactly 10000", EXIT_INPUT)
    return splits


def cid(value: str, what: str) -> None:
    """Exit 2 when `value` is not a CID."""
    try:
        parse_cid(value)
    except InvalidCid as exc:
        fail(f"{what} is not a CID: {exc}", EXIT_INPUT)


def audio_bytes(file: Path, max_bytes: int) -> bytes:
    """The file's bytes, after checking its size from the file system (a huge file is never read)."""
    if not file.is_file():
        fail(f"{file} is not a file", EXIT_INPUT)
    size = file.stat().st_size
    if size == 0:
        fail(f"{file} is empty", EXIT_INPUT)
    if size > max_bytes:
        fail(
            f"{file.name} is {size:,} bytes, over the {max_bytes:,}-byte cap of the worker (--max-bytes)",
            EXIT_INPUT,
        )
    return file.read_bytes()
