"""How the `ami` chain commands print: a receipt and its events, a contract call's result, JSON, amounts."""

from __future__ import annotations

import json
from typing import Any

import typer

from ami_node.abi import ContractAbi
from ami_node.tx import ContractTxResult, TxReceipt, decode_contract_events
from offchain.projection import jsonable

MINT_DECIMALS = 0  # the rewards contract's MINT has no decimals: a balance is a count of whole MINT


def show(value: Any) -> str:
    """`value` as one line of JSON."""
    return json.dumps(jsonable(value), default=str)


def receipt_data(receipt: TxReceipt, contracts: dict[str, ContractAbi] | None = None) -> dict[str, Any]:
    """The receipt as JSON-able data; contract events decoded by name when their contract is known."""
    events: list[dict[str, Any]] = []
    for e in receipt.events:
        if e.name == "ContractEmitted" and contracts and e.contract in contracts:
            decoded = decode_contract_events([e], contracts)
            if decoded:
                label, fields = decoded[0]
                events.append(
                    {"contract": contracts[e.contract].name, "event": label, "fields": jsonable(fields)}
                )
                continue
        events.append({"pallet": e.pallet, "event": e.name, "fields": jsonable(e.attributes)})
    return {
        "block": receipt.block.number,
        "block_hash": str(receipt.block.hash),
        "extrinsic_index": receipt.extrinsic_index,
        "hash": receipt.hash,
        "nonce": receipt.nonce,
        "success": receipt.success,
        "events": events,
    }


def contract_result(result: ContractTxResult, contracts: dict[str, ContractAbi]) -> dict[str, Any]:
    """A contract call's receipt (its events decoded with `contracts`, address -> ABI) and returned value."""
    return {"receipt": receipt_data(result.receipt, contracts), "value": jsonable(result.value)}


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


def emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    """Print `data` as JSON, or the receipt (when there is one) followed by `lines`."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if "receipt" in data:
        _print_receipt(data["receipt"])
    for line in lines:
        typer.echo(line)


def format_amount(raw: int, decimals: int, symbol: str) -> str:
    """`raw` smallest units as a decimal amount with its symbol: 1_500_000 with 6 decimals -> "1.5 MINT"."""
    sign = "-" if raw < 0 else ""
    whole, frac = divmod(abs(raw), 10**decimals) if decimals else (abs(raw), 0)
    text = f"{whole:,}"
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{text} {symbol}"
