"""Running one chain use case for an `ami` command: reach the node, open a port, report each failure.

Every failure becomes one line and its exit code: 1 unexpected, 2 bad input, 3 node unreachable, 4 refused or
reverted, 5 timed out.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlparse

import typer
from websocket import WebSocketException

from ami_node.abi import AbiError
from ami_node.deploy import DeployError, DeployRefused
from ami_node.deployment import DeploymentError
from ami_node.keys import KeyLoadError
from ami_node.port import CallError, ChainPort, ChainUnavailable, ContractReverted, PoolRejected
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import TxDispatchFailed, TxExpired, TxReceipt, TxTimeout, TxUsurped
from offchain.chain_actions import ContractTrapped, runtime_metadata
from offchain.cli.exits import EXIT_INPUT, EXIT_REFUSED, EXIT_TIMEOUT, EXIT_UNEXPECTED, EXIT_UNREACHABLE

T = TypeVar("T")

DEFAULT_URL = "ws://127.0.0.1:9944"


class CliError(Exception):
    """A failure with the exit code to use; its message already says what to do."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int) -> None:
    """Print `message` as one line on stderr (whatever a library put in it) and exit with `code`."""
    text = " ".join(message.split())
    typer.echo(f"error: {text[:500]}{'…' if len(text) > 500 else ''}", err=True)
    raise typer.Exit(code)


@contextmanager
def failing_on(errors: type[Exception] | tuple[type[Exception], ...], prefix: str = "") -> Iterator[None]:
    """Turn `errors` raised inside into one line (after `prefix`) and exit 2 (bad input)."""
    try:
        yield
    except errors as exc:
        fail(f"{prefix}{exc}", EXIT_INPUT)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line of at most 200 characters."""
    text = " ".join(str(exc).split())
    return text[:200] + ("…" if len(text) > 200 else "")


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


def run_on_chain(url: str, body: Callable[[ChainPort], Awaitable[T]], connect_timeout: float = 5.0) -> T:
    """Open a port to `url`, run `body`, close, and turn every failure into one line and its exit code."""

    async def main() -> T:
        port = SubstrateChainPort(url, timeout_s=float(os.environ.get("AMI_RPC_TIMEOUT", "20")))
        try:
            return await body(port)
        finally:
            await port.close()

    try:
        probe_node(url, connect_timeout)
        return asyncio.run(main())
    except typer.Exit:
        raise
    except CliError as exc:
        fail(str(exc), exc.code)
    except Exception as exc:  # no traceback reaches a user: one line, exit 1, the details on request
        known = _known_failure(url, exc)
        if known is None and os.environ.get("AMI_DEBUG"):
            raise
        fail(*(known or _unexpected_failure(url, exc)))
    raise AssertionError("unreachable")


def _pool_rejected(url: str, exc: PoolRejected) -> str:
    reason = exc.reason.lower()
    hint = ""
    if "pay" in reason or "balance" in reason:
        hint = "; the signer cannot pay the fees: fund it (e.g. `ami tx Balances transfer_keep_alive ...`)"
    elif "signature" in reason:
        hint = "; check --key and that the node is the chain you expect"
    return f"{exc}{hint}"


# What each known failure prints and exits with, first match wins.
_FAILURES: tuple[
    tuple[type[Exception] | tuple[type[Exception], ...], int, Callable[[str, Any], str]], ...
] = (
    (DeployRefused, EXIT_REFUSED, lambda url, exc: str(exc)),
    (
        (KeyLoadError, DeploymentError, AbiError, DeployError, ValueError),
        EXIT_INPUT,
        lambda url, exc: str(exc),
    ),
    (CallError, EXIT_INPUT, lambda url, exc: call_error_hint(url, str(exc))),
    (
        ChainUnavailable,
        EXIT_UNREACHABLE,
        lambda url, exc: (
            f"{one_line(exc)} (is it a Substrate node's RPC port? start one with `ami devnet`, or pass --url)"
        ),
    ),
    ((ContractReverted, ContractTrapped), EXIT_REFUSED, lambda url, exc: str(exc)),
    (PoolRejected, EXIT_REFUSED, _pool_rejected),
    (TxDispatchFailed, EXIT_REFUSED, lambda url, exc: f"{exc}{module_error_hint(url, exc.receipt)}"),
    # each message says whether it may still land
    ((TxTimeout, TxUsurped, TxExpired), EXIT_TIMEOUT, lambda url, exc: str(exc)),
)


def _known_failure(url: str, exc: Exception) -> tuple[str, int] | None:
    for errors, code, text in _FAILURES:
        if isinstance(exc, errors):
            return text(url, exc), code
    return None


def _unexpected_failure(url: str, exc: Exception) -> tuple[str, int]:
    if isinstance(exc, WebSocketException):  # something answers at --url, but no Substrate RPC
        return (
            f"no Substrate node at {url}: {one_line(exc)} (is it the node's RPC port? pass --url)",
            EXIT_UNREACHABLE,
        )
    return (
        f"unexpected {type(exc).__name__} talking to {url}: {one_line(exc)} (is it a Substrate node? "
        "AMI_DEBUG=1 shows the traceback)",
        EXIT_UNEXPECTED,
    )


def call_error_hint(url: str, message: str) -> str:
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


def module_error_hint(url: str, receipt: TxReceipt) -> str:
    """ " (Pallet.Error: its docs)" for a dispatch failure that is a pallet's module error, from the node's
    metadata; "" when there is none or it cannot be looked up."""
    failed = receipt.event("System", "ExtrinsicFailed")
    attrs = failed.attributes if failed is not None else None
    err = attrs.get("dispatch_error") if isinstance(attrs, dict) else None
    module = err.get("Module") if isinstance(err, dict) else None
    if not isinstance(module, dict) or "index" not in module:
        return ""
    try:
        raw = module.get("error")
        error_index = bytes.fromhex(raw[2:])[0] if isinstance(raw, str) else int(raw or 0)
        with runtime_metadata(url) as md:
            variant = md.get_module_error(module_index=int(module["index"]), error_index=error_index)
            pallet = next((p.name for p in md.pallets if p.value.get("index") == int(module["index"])), "?")
        info = variant.value if variant is not None else {}
        docs = " ".join(info.get("docs") or []).split(". ")[0].rstrip(".")
        return f" ({pallet}.{info.get('name')}{': ' + docs if docs else ''})"
    except Exception:  # only an explanation; the error itself was already reported
        return ""


def _pallet_calls(url: str, pallet: str) -> list[str]:
    """Call names of `pallet` from the node's metadata (only used to explain an error)."""
    try:
        with runtime_metadata(url) as md:
            for p in md.pallets:
                if p.name == pallet and p.calls is not None:
                    return sorted(str(c.name) for c in p.calls)
    except Exception:
        return []
    return []
