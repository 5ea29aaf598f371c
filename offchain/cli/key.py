"""`ami key generate` and `ami key inspect`: make a signing key, or show a key's address (never its secret).

Keys are taken as every command takes them: offchain/cli/signing.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ami_node.keys import (
    MNEMONIC_WORD_COUNTS,
    KeyInfo,
    KeyLoadError,
    address_info,
    generate_mnemonic,
    key_info,
    load_keypair,
)
from offchain.cli.exits import fail_with
from offchain.cli.signing import KeyFileOpt, PasswordFileOpt, is_file, read_password, resolve_keypair


def _print_info(info: KeyInfo, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    data = {**(extra or {}), **info.as_dict()}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    network = "substrate" if info.ss58_format == 42 else f"ss58 format {info.ss58_format}"
    if extra and "mnemonic" in extra:
        typer.echo(f"Secret phrase:     {extra['mnemonic']}")
    if extra and "written_to" in extra:
        typer.echo(f"Written to:        {extra['written_to']}")
    typer.echo(f"Network ID:        {network}")
    typer.echo(f"Public key (hex):  {info.public_key}")
    typer.echo(f"Account ID:        {info.account_id}")
    typer.echo(f"SS58 Address:      {info.ss58_address}")
    typer.echo(f"Crypto:            {info.crypto}")


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; never overwrite an existing key."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail_with(f"{str(path)!r} already exists; refusing to overwrite a key")
    except OSError as exc:
        fail_with(f"cannot create {str(path)!r}: {exc.strerror}")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def generate_cmd(
    words: Annotated[int, typer.Option("--words", help="Mnemonic length: 12, 15, 18, 21 or 24.")] = 12,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the key to this new file (mode 600) instead of printing it."),
    ] = None,
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt",
            help="With --out: write an encrypted polkadot-js keystore JSON (asks a password).",
        ),
    ] = False,
    password_file: Path | None = PasswordFileOpt,
    ss58_format: Annotated[int, typer.Option("--ss58-format", min=0, max=16383)] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a new sr25519 key from a random mnemonic. Without --out the phrase is printed: keep it."""
    if words not in MNEMONIC_WORD_COUNTS:
        fail_with(f"--words must be one of 12, 15, 18, 21, 24, not {words}")
    if encrypt and out is None:
        fail_with("--encrypt needs --out FILE")
    phrase = generate_mnemonic(words)
    keypair = load_keypair(phrase)
    info = key_info(keypair, ss58_format)
    if out is None:
        _print_info(info, as_json, {"mnemonic": phrase})
        return
    if encrypt:
        password = read_password(password_file, "the new keystore")
        if not password:
            fail_with("an empty password does not protect the keystore")
        _write_private(out, json.dumps(keypair.export_keystore(password)))
    else:
        _write_private(out, phrase + "\n")
    _print_info(info, as_json, {"written_to": str(out)})


def inspect_cmd(
    source: Annotated[
        str | None,
        typer.Argument(
            help="An SS58 address or 0x public key (with --public); else the key is taken as every "
            "command takes it (--key-file, AMI_KEY, prompt).",
            show_default=False,
        ),
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="SOURCE is a 0x public key, not a seed.")] = False,
    key_file: Path | None = KeyFileOpt,
    password_file: Path | None = PasswordFileOpt,
    ss58_format: Annotated[int, typer.Option("--ss58-format", min=0, max=16383)] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a key's SS58 address, public key and account id (never its secret)."""
    if source is not None:
        text = source.strip()
        if public or not (text.startswith(("0x", "//")) or " " in text or is_file(Path(text).expanduser())):
            # One token that is no dev URI, seed, mnemonic or file: a public address.
            try:
                _print_info(address_info(text, ss58_format), as_json)
            except KeyLoadError as exc:
                fail_with(f"{exc}; SOURCE is an SS58 address, a dev URI, a mnemonic, a 0x seed or a key file")
            return
    keypair = resolve_keypair(source, key_file, None, password_file)
    _print_info(key_info(keypair, ss58_format), as_json)


def register(app: typer.Typer) -> None:
    """Add `ami key generate` and `ami key inspect`."""
    key_app = typer.Typer(help="Signing keys: generate one, or show a key's address.", no_args_is_help=True)
    key_app.command("generate")(generate_cmd)
    key_app.command("inspect")(inspect_cmd)
    app.add_typer(key_app, name="key")
