"""Fixtures of the operator tests: the `ami` app run in-process, and a devnet with the contracts deployed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from ami_node.devnet.testing import DevnetHandle, running_devnet
from offchain.cli import app


@dataclass(frozen=True)
class Run:
    """What one `ami` invocation did: exit code, stdout and stderr apart."""

    code: int
    out: str
    err: str

    @property
    def flat_err(self) -> str:
        """stderr as one line of words: typer draws usage errors in a box that wraps at the terminal width."""
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", self.err).split())


@pytest.fixture
def ami() -> object:
    """`ami(*args, env={...}, input=None)` runs the CLI in-process with a clean key environment."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
        base = {"AMI_KEY": None, "AMI_KEY_PASSWORD": None, "AMI_DEPLOYMENT": None, "AMI_NODE_URL": None}
        result = runner.invoke(app, list(args), env={**base, **(env or {})}, input=input)  # type: ignore[dict-item]
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@dataclass(frozen=True)
class Deployed:
    devnet: DevnetHandle
    env: dict[str, str]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """A devnet on 127.0.0.1, both contracts deployed by `ami deploy` with roles for Bob and Charlie."""
    from ami_node.keys import load_keypair

    dep = tmp_path_factory.mktemp("operator") / "deployment.json"
    bob, charlie = load_keypair("//Bob").address, load_keypair("//Charlie").address
    with running_devnet() as dn:
        env = {"AMI_NODE_URL": dn.url, "AMI_DEPLOYMENT": str(dep), "AMI_KEY": "//Alice"}
        result = CliRunner().invoke(
            app, ["deploy", "--json", "--oracle", bob, "--validator", charlie], env=env
        )
        assert result.exit_code == 0, result.output
        yield Deployed(dn, env)
