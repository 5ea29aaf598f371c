"""One signing-key scheme for every `ami` command (--key-file, AMI_KEY, a prompt); `ami key generate/inspect`.

Where a command's key comes from, first match wins:
  1. `--key-file PATH`: a file holding a dev URI, a mnemonic, a 0x seed, or a polkadot-js keystore JSON;
  2. `--key VALUE`: accepted, but a secret there is visible to every local user (ps, /proc/PID/cmdline), so
     a warning is printed unless it is a public dev URI such as //Alice;
  3. the environment variable AMI_KEY (the same forms, or the path of a key file);
  4. on a node at a loopback address only, the dev account //Alice (said on stderr);
  5. a hidden prompt when stdin is a terminal; otherwise exit 2 saying what to set.
Keystore passwords come from `--password-file`, AMI_KEY_PASSWORD, or a hidden prompt on a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from ami_node.keys import (
    MNEMONIC_WORD_COUNTS,
    KeyInfo,
    KeyLoadError,
    Keypair,
    PasswordRequired,
    address_info,
    generate_mnemonic,
    is_public_dev_uri,
    key_file_warning,
    key_info,
    load_keypair,
)
from offchain.cli.exits import fail_with

KEY_ENV = "AMI_KEY"
PASSWORD_ENV = "AMI_KEY_PASSWORD"
DEV_KEY = "//Alice"
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

KeyOpt = typer.Option(
    None,
    "--key",
    help="Signing key on the command line (other local users can read it: prefer --key-file or env AMI_KEY).",
    show_default=False,
)
KeyFileOpt = typer.Option(
    None,
    "--key-file",
    help="File holding the signing key: dev URI, mnemonic, 0x seed or polkadot-js keystore JSON.",
)
PasswordFileOpt = typer.Option(
    None,
    "--password-file",
    help="File holding the keystore password (else env AMI_KEY_PASSWORD or a prompt).",
)


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def is_loopback_url(url: str) -> bool:
    """True when `url`'s host is a loopback address (a local devnet, where dev keys are the norm)."""
    try:
        return (urlparse(url).hostname or "") in _LOOPBACK_HOSTS
    except ValueError:
        return False


def command_line_secret_warning(value: str) -> str | None:
    """The warning to print for a key given as a command-line argument, or None when it is no secret."""
    if is_public_dev_uri(value) or _is_file(Path(value).expanduser()):
        return None  # a dev URI derives from a public phrase; a path names the secret, it is not the secret
    return (
        "a secret on the command line is visible to every local user (ps, /proc/PID/cmdline) and may land in "
        "shell history; use --key-file or the AMI_KEY environment variable"
    )


def _password(password_file: Path | None, origin: str) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            fail_with(f"cannot read --password-file {str(password_file)!r}: {type(exc).__name__}")
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    if sys.stdin.isatty():
        return str(typer.prompt(f"password for {origin}", hide_input=True))
    fail_with(f"{origin} is an encrypted keystore: give --password-file or set {PASSWORD_ENV}")
    raise AssertionError("unreachable")


def load_with_password(source: str | Path, password_file: Path | None, origin: str) -> Keypair:
    """Load `source`; ask for the keystore password only when the key turns out to be encrypted."""
    try:
        try:
            return load_keypair(source)
        except PasswordRequired:
            return load_keypair(source, password=_password(password_file, origin))
    except KeyLoadError as exc:
        fail_with(f"{exc} ({origin}: a dev URI like //Alice, a mnemonic, a 0x seed or a keystore JSON file)")
    raise AssertionError("unreachable")


def resolve_keypair(
    key: str | None,
    key_file: Path | None,
    url: str | None,
    password_file: Path | None = None,
) -> Keypair:
    """The signing key by the scheme in this module's docstring; exits 2 with a message when there is none."""
    if key_file is not None:
        if not key_file.is_file():
            fail_with(f"--key-file {str(key_file)!r} does not exist")
        warning = key_file_warning(key_file)
        if warning:
            _warn(warning)
        return load_with_password(key_file, password_file, "--key-file")
    if key is not None:
        warning = command_line_secret_warning(key)
        if warning:
            _warn(warning)
        return load_with_password(key, password_file, "--key")
    env = os.environ.get(KEY_ENV)
    if env:
        path = Path(env).expanduser()
        if not is_public_dev_uri(env) and _is_file(path):
            warning = key_file_warning(path)
            if warning:
                _warn(warning)
        return load_with_password(env, password_file, KEY_ENV)
    if url is not None and is_loopback_url(url):
        _warn(f"no key given: signing as the dev account {DEV_KEY} (only on a loopback node)")
        return load_keypair(DEV_KEY)
    if sys.stdin.isatty():
        secret = str(typer.prompt("signing key (dev URI, mnemonic or 0x seed)", hide_input=True))
        return load_with_password(secret, password_file, "the prompt")
    fail_with(
        f"no signing key: give --key-file PATH or set {KEY_ENV} (a dev URI, a mnemonic or a key file path)"
    )
    raise AssertionError("unreachable")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a mnemonic is not a valid file name
        return False


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
        password = _password(password_file, "the new keystore")
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
        if public or not (text.startswith(("0x", "//")) or " " in text or _is_file(Path(text).expanduser())):
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
