"""`ami key generate/inspect` against subkey's documented vectors, and the one key scheme every command uses:
--key-file, AMI_KEY, keystore passwords, the warning for a secret on the command line, no silent dev key."""

from __future__ import annotations

import json
import os
import stat
from importlib.metadata import version
from pathlib import Path
from typing import Any


def write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


# subkey's documented output (Substrate docs, "subkey inspect"): the development phrase and //Alice.
DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
DEV_PHRASE_PUBLIC = "0x46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a"
DEV_PHRASE_SS58 = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV"
ALICE_PUBLIC = "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
ALICE_POLKADOT = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"  # Alice with network prefix 0
SECRET_WARNING = "visible to every local user"


def test_inspect_matches_subkey_vectors(ami: Any) -> None:
    r = ami("key", "inspect", "//Alice", "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["ss58_address"] == ALICE_SS58
    assert info["public_key"] == info["account_id"] == ALICE_PUBLIC
    assert SECRET_WARNING not in r.err  # a dev URI is no secret
    r = ami("key", "inspect", "--json", env={"AMI_KEY": DEV_PHRASE})
    assert json.loads(r.out)["ss58_address"] == DEV_PHRASE_SS58 and DEV_PHRASE_PUBLIC in r.out
    r = ami("key", "inspect", ALICE_SS58, "--ss58-format", "0", "--json")
    assert r.code == 0 and json.loads(r.out)["ss58_address"] == ALICE_POLKADOT
    r = ami("key", "inspect", ALICE_PUBLIC, "--public")
    assert r.code == 0 and f"SS58 Address:      {ALICE_SS58}" in r.out
    assert DEV_PHRASE not in r.out


def test_a_secret_on_the_command_line_is_warned_about(ami: Any, tmp_path: Path) -> None:
    r = ami("key", "inspect", DEV_PHRASE)
    assert r.code == 0 and SECRET_WARNING in r.err and "--key-file" in r.err
    assert DEV_PHRASE not in r.out + r.err
    r = ami("key", "inspect", "--key-file", str(write_private(tmp_path / "k", DEV_PHRASE + "\n")))
    assert r.code == 0 and SECRET_WARNING not in r.err and DEV_PHRASE_SS58 in r.out
    # every signing command goes through the same scheme: the warning comes before anything is sent
    r = ami("tx", "System", "remark", '{"remark": "0x00"}', "--key", DEV_PHRASE, "--url", "ws://127.0.0.1:9")
    assert SECRET_WARNING in r.err and r.code == 3


def test_key_file_readable_by_others_is_warned_about(ami: Any, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("//Bob\n")
    key.chmod(0o644)
    r = ami("key", "inspect", "--key-file", str(key))
    assert r.code == 0 and "readable by other users" in r.err and "chmod 600" in r.err


def test_generate_writes_a_private_file_that_inspects_to_the_same_address(ami: Any, tmp_path: Path) -> None:
    out = tmp_path / "oracle.key"
    r = ami("key", "generate", "--out", str(out), "--json")
    assert r.code == 0, r.err
    generated = json.loads(r.out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    words = out.read_text().split()
    assert len(words) == 12 and " ".join(words) not in r.out  # the phrase goes to the file only
    again = json.loads(ami("key", "inspect", "--key-file", str(out), "--json").out)
    assert again["ss58_address"] == generated["ss58_address"]
    r = ami("key", "generate", "--out", str(out))
    assert r.code == 2 and "refusing to overwrite" in r.err
    r = ami("key", "generate", "--words", "13")
    assert r.code == 2 and "--words" in r.err
    printed = json.loads(ami("key", "generate", "--words", "24", "--json").out)
    assert len(printed["mnemonic"].split()) == 24


def test_encrypted_keystore_needs_its_password(ami: Any, tmp_path: Path) -> None:
    store = tmp_path / "oracle.json"
    r = ami("key", "generate", "--out", str(store), "--encrypt", "--json", env={"AMI_KEY_PASSWORD": "s3cret"})
    assert r.code == 0, r.err
    address = json.loads(r.out)["ss58_address"]
    assert json.loads(store.read_text())["encoding"]["content"][-1] == "sr25519"
    r = ami("key", "inspect", "--key-file", str(store))
    assert r.code == 2 and "AMI_KEY_PASSWORD" in r.err and "Traceback" not in r.err
    r = ami("key", "inspect", "--key-file", str(store), env={"AMI_KEY_PASSWORD": "wrong"})
    assert r.code == 2 and "wrong password" in r.err
    pw = write_private(tmp_path / "pw", "s3cret\n")
    r = ami("key", "inspect", "--key-file", str(store), "--password-file", str(pw), "--json")
    assert r.code == 0 and json.loads(r.out)["ss58_address"] == address
    # AMI_KEY may name the keystore file too: the one environment variable for every command
    r = ami("key", "inspect", "--json", env={"AMI_KEY": str(store), "AMI_KEY_PASSWORD": "s3cret"})
    assert r.code == 0 and json.loads(r.out)["ss58_address"] == address


def test_no_silent_dev_key_on_a_remote_node(ami: Any) -> None:
    # Nothing given and no terminal: a remote node gets no //Alice, the command says what to set.
    r = ami("tx", "System", "remark", '{"remark": "0x00"}', "--url", "ws://node.invalid:9944")
    assert r.code == 2 and "no signing key" in r.err and "AMI_KEY" in r.err
    r = ami("deploy", "--url", "ws://node.invalid:9944")
    assert r.code == 2 and "no signing key" in r.err
    # On a loopback node the dev account is used, and said so.
    r = ami("tx", "System", "remark", '{"remark": "0x00"}', "--url", "ws://127.0.0.1:9")
    assert "signing as the dev account //Alice" in r.err and r.code == 3


def test_bad_keys_exit_2_without_echoing_them(ami: Any, tmp_path: Path) -> None:
    typo = "bottom drive obey lake curtain smoke basket hold race lonely fit walx"
    r = ami("key", "inspect", typo)
    assert r.code == 2 and "bad checksum" in r.err and typo not in r.out + r.err
    r = ami("key", "inspect", "--key-file", str(tmp_path / "missing"))
    assert r.code == 2 and "does not exist" in r.err
    big = tmp_path / "big"
    big.write_bytes(os.urandom(100_000))
    big.chmod(0o600)
    r = ami("key", "inspect", "--key-file", str(big))
    assert r.code == 2 and "not a key file" in r.err
    r = ami("key", "inspect", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ")
    assert r.code == 2 and "SS58" in r.err


def test_version(ami: Any) -> None:
    r = ami("--version")
    assert r.code == 0 and r.out.strip() == f"ami {version('ami-node')}"


def test_daemons_take_the_same_key_convention(ami: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from ami_node.keys import load_keypair
    from offchain.config import load_settings

    remote = {"AMI_NODE_URL": "ws://node:9944"}
    r = ami("config", env=remote)
    assert r.code == 2 and "no signing key" in r.err and "AMI_KEY" in r.err
    store = tmp_path / "worker.json"
    made = ami("key", "generate", "--out", str(store), "--encrypt", "--json", env={"AMI_KEY_PASSWORD": "pw"})
    address = json.loads(made.out)["ss58_address"]
    env = {**remote, "AMI_KEY": str(store), "AMI_KEY_PASSWORD": "pw", "AMI_HTTP_HOST": "0.0.0.0"}
    r = ami("config", env=env)
    assert r.code == 0, r.err
    shown = json.loads(r.out)
    assert shown["signing_key"] == shown["signing_key_password"] == "**********" and "pw" not in r.out
    assert shown["http_host"] == "0.0.0.0"  # a container's endpoints are reachable on its network
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    # what `ami run` does with them (offchain/daemon.py): the keystore file, decrypted with the password
    assert s.signing_key_password is not None
    pair = load_keypair(s.signing_key.get_secret_value(), s.signing_key_password.get_secret_value())
    assert pair.address == address
    r = ami("config", env={**env, "AMI_HTTP_HOST": "not-an-ip"})
    assert r.code == 2 and "AMI_HTTP_HOST" in r.err
    # compose passes AMI_KEY_PASSWORD="" when none is set: a plain key file must still load
    plain = write_private(tmp_path / "plain.key", DEV_PHRASE + "\n")
    monkeypatch.setenv("AMI_KEY", str(plain))
    monkeypatch.setenv("AMI_KEY_PASSWORD", "")
    s = load_settings()
    assert s.signing_key_password is not None
    pair = load_keypair(s.signing_key.get_secret_value(), s.signing_key_password.get_secret_value())
    assert pair.address == DEV_PHRASE_SS58


def _run_on_terminal(args: list[str], answers: list[str], env: dict[str, str]) -> str:
    """Run `ami ARGS` with a pseudo-terminal as its controlling terminal, answering each prompt in turn
    once it appears (no fixed waits); returns everything it wrote to the terminal."""
    import pty
    import select
    import sys

    ami_bin = str(Path(sys.executable).parent / "ami")
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec ami on the terminal; never return into pytest
        try:
            os.execve(ami_bin, [ami_bin, *args], env)
        finally:
            os._exit(127)
    out = b""
    pending = list(answers)
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                raise AssertionError(f"ami stopped answering: {out.decode(errors='replace')}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
            # click prints the prompt, then getpass turns echo off (flushing typed input) and prints " ":
            # answer only after that space, or the answer would be flushed and echoed.
            if pending and out.endswith(b": "):
                os.write(fd, (pending.pop(0) + "\n").encode())
    except BaseException:
        os.kill(pid, 9)  # never leave the child waiting for input
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(fd)
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_prompts_for_the_key_and_the_password_on_a_terminal(ami: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
    text = _run_on_terminal(["key", "inspect"], [DEV_PHRASE], env)
    assert "signing key" in text and DEV_PHRASE_SS58 in text
    assert DEV_PHRASE not in text  # typed hidden: never echoed
    store = tmp_path / "k.json"
    r = ami(
        "key", "generate", "--out", str(store), "--encrypt", "--json", env={"AMI_KEY_PASSWORD": "hunter2"}
    )
    address = json.loads(r.out)["ss58_address"]
    text = _run_on_terminal(["key", "inspect", "--key-file", str(store)], ["hunter2"], env)
    assert "password for --key-file" in text and address in text and "hunter2" not in text
