"""The options of the `ami` chain commands, declared once, and `with_signer`, which adds the signing ones.

Every chain command takes `--url` (env AMI_NODE_URL), `--connect-timeout` and most `--json`; signing commands
take the key by the one scheme of offchain/cli/key.py (`--key-file`, env AMI_KEY, a prompt; keystore passwords
from `--password-file` or AMI_KEY_PASSWORD) and `--timeout`. Contract commands read the addresses written by
`ami deploy` (`--deployment`, env AMI_DEPLOYMENT, default .ami/deployment.json).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from ami_node.deployment import Deployment, DeploymentError
from ami_node.keys import Keypair
from ami_node.port import ChainPort
from offchain.chain_actions import Contracts
from offchain.cli.chain_output import emit
from offchain.cli.chain_session import DEFAULT_URL, failing_on, run_on_chain
from offchain.cli.signing import KeyFileOpt, KeyOpt, PasswordFileOpt, resolve_keypair

T = TypeVar("T")

UrlOpt = typer.Option(DEFAULT_URL, "--url", envvar="AMI_NODE_URL", help="node websocket URL")
ConnectTimeoutOpt = typer.Option(
    5.0, "--connect-timeout", envvar="AMI_CONNECT_TIMEOUT", min=0.1, help="seconds to reach the node"
)
JsonOpt = typer.Option(False, "--json", help="print the result as JSON (amounts raw)")
DeploymentOpt = typer.Option(
    None, "--deployment", envvar="AMI_DEPLOYMENT", help="deployment JSON written by `ami deploy`"
)
TimeoutOpt = typer.Option(120.0, "--timeout", help="seconds to wait for finalization")


def load_deployment(path: Path | None) -> Deployment:
    """The deployment record at `path` (default .ami/deployment.json); exit 2 saying what to do if absent."""
    with failing_on(DeploymentError):
        return Deployment.load(path)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Signer:
    """The options every signing command shares, and what they give: the key, the contracts, a port."""

    url: str
    key: str | None
    key_file: Path | None
    password_file: Path | None
    timeout: float
    connect_timeout: float
    as_json: bool
    deployment: Path | None = None

    def keypair(self) -> Keypair:
        return resolve_keypair(self.key, self.key_file, self.url, self.password_file)

    def contracts(self) -> Contracts:
        return Contracts.of(load_deployment(self.deployment))

    def run(self, body: Callable[[ChainPort], Awaitable[T]]) -> T:
        return run_on_chain(self.url, body, self.connect_timeout)

    def emit(self, data: dict[str, Any], lines: list[str]) -> None:
        emit(self.as_json, data, lines)


# Each field of Signer as a command parameter: its type and its typer option.
_SIGNER_OPTIONS: dict[str, tuple[Any, Any]] = {
    "url": (str, UrlOpt),
    "key": (str | None, KeyOpt),
    "key_file": (Path | None, KeyFileOpt),
    "password_file": (Path | None, PasswordFileOpt),
    "deployment": (Path | None, DeploymentOpt),
    "timeout": (float, TimeoutOpt),
    "connect_timeout": (float, ConnectTimeoutOpt),
    "as_json": (bool, JsonOpt),
}


def with_signer(command: Callable[..., None], *, deployment: bool = True) -> Callable[..., None]:
    """`command(signer, **own)` as a typer command: its own parameters followed by the signing options
    (`--deployment` too unless `deployment` is False), which reach it gathered in one Signer."""
    names = [n for n in _SIGNER_OPTIONS if deployment or n != "deployment"]
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
    shared = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for n in names
        for kind, option in [_SIGNER_OPTIONS[n]]
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        signer = Signer(**{n: kwargs.pop(n) for n in names})
        command(signer, **kwargs)

    params = [*own, *shared]
    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return wrapper
