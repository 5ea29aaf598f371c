"""The `ami` command line: one typer app, each area adds its own subcommands in its own module."""

from __future__ import annotations

import typer

from offchain.cli import audit, chain, devnet, ipfs, scoring, worker

app = typer.Typer(
    name="ami",
    help="AMI node: off-chain worker, developer tools and validator for the AMI music NFT platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """AMI node: off-chain worker, developer tools and validator for the AMI music NFT platform."""


# Each module owns its commands; heavy imports (torch, substrate-interface) stay inside the commands so that
# `ami --help` and light commands start fast.
for module in (devnet, chain, scoring, ipfs, worker, audit):
    module.register(app)


@app.command("version")
def version() -> None:
    """Print the installed AMI node version."""
    from importlib.metadata import version as package_version

    typer.echo(package_version("ami-node"))


def main() -> None:
    app()
