"""Where a command's signing key comes from: the one scheme of every `ami` command that signs.

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

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import typer

from ami_node.keys import (
    KeyLoadError,
    Keypair,
    PasswordRequired,
    is_public_dev_uri,
    key_file_warning,
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
    if is_public_dev_uri(value) or is_file(Path(value).expanduser()):
        return None  # a dev URI derives from a public phrase; a path names the secret, it is not the secret
    return (
        "a secret on the command line is visible to every local user (ps, /proc/PID/cmdline) and may land in "
        "shell history; use --key-file or the AMI_KEY environment variable"
    )


def read_password(password_file: Path | None, origin: str) -> str:
    """A keystore password: from `password_file`, AMI_KEY_PASSWORD or a hidden prompt (else exit 2)."""
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


def load_with_password(source: str | Path, password_file: Path | None, origin: str) -> Keypair:
    """Load `source`; ask for the keystore password only when the key turns out to be encrypted."""
    try:
        try:
            return load_keypair(source)
        except PasswordRequired:
            return load_keypair(source, password=read_password(password_file, origin))
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
        if not is_public_dev_uri(env) and is_file(path):
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


def is_file(path: Path) -> bool:
    """True when `path` names an existing file (False for text that cannot be a file name)."""
    try:
        return path.is_file()
    except OSError:  # a mnemonic is not a valid file name
        return False
