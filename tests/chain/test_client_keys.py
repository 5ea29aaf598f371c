"""ami_node.keys: dev URIs, mnemonics, polkadot-js keystores; secrets never in repr or error text."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from ami_node.keys import KeyLoadError, Keypair, load_keypair

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
# The well-known Substrate dev phrase; //Alice is derived from it.
DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
OTHER_PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def test_dev_uris_give_the_known_addresses() -> None:
    assert load_keypair("//Alice").address == ALICE
    assert load_keypair("  //Bob ").address == BOB
    assert load_keypair("//Alice//stash").address != ALICE


def test_mnemonic_with_and_without_derivation() -> None:
    assert load_keypair(DEV_PHRASE + "//Alice").address == ALICE
    plain = load_keypair(OTHER_PHRASE)
    assert plain.address.startswith("5") and plain.address != ALICE
    assert load_keypair(OTHER_PHRASE + "//0").address not in (plain.address, ALICE)
    # substrate-interface cannot apply a BIP39 password to sr25519: refused, not silently ignored.
    with pytest.raises(KeyLoadError, match="not supported") as info:
        load_keypair(OTHER_PHRASE + "///pw-secret")
    assert "pw-secret" not in str(info.value)
    with pytest.raises(KeyLoadError, match="not supported"):
        load_keypair(OTHER_PHRASE, password="pw")


def test_hex_seed() -> None:
    seed = "0x" + "11" * 32
    assert load_keypair(seed).address == load_keypair(seed).address
    with pytest.raises(KeyLoadError, match="expected 32 bytes"):
        load_keypair("0x1234")


def test_keystore_round_trip_file_and_text(tmp_path: Path) -> None:
    alice = load_keypair("//Alice")
    exported = alice.export_keystore("s3cret-pass", name="alice")
    assert exported["encoding"]["content"][1] == "sr25519"
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(exported))
    loaded = load_keypair(str(path), password="s3cret-pass")
    assert loaded == alice
    assert load_keypair(path, password="s3cret-pass").address == ALICE
    assert load_keypair(json.dumps(exported), password="s3cret-pass").address == ALICE
    message = b"payload"
    assert alice.verify(message, loaded.sign(message))


def test_keystore_errors_are_clear_and_hide_the_password(tmp_path: Path) -> None:
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(load_keypair("//Alice").export_keystore("right-password")))
    with pytest.raises(KeyLoadError, match="password is required"):
        load_keypair(str(path))
    with pytest.raises(KeyLoadError, match="wrong password") as info:
        load_keypair(str(path), password="wrong-password-xyz")
    assert "wrong-password-xyz" not in str(info.value) and "right-password" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    with pytest.raises(KeyLoadError, match="not a polkadot-js keystore"):
        load_keypair(str(tmp_path / "junk.json"), password="x")
    with pytest.raises(KeyLoadError, match="does not exist"):
        load_keypair(tmp_path / "missing.json")


def test_secret_never_in_repr_str_or_errors() -> None:
    kp = load_keypair(DEV_PHRASE + "//Alice")
    secret_hex = kp.substrate_keypair.private_key.hex()
    for text in (repr(kp), str(kp), f"{kp}", repr([kp])):
        assert ALICE in text
        assert "bottom" not in text and secret_hex not in text
    with pytest.raises(TypeError):
        pickle.dumps(kp)
    assert copy.deepcopy({"key": kp})["key"] is kp
    # A mistyped mnemonic (bad checksum) and an unrecognised secret are not echoed back.
    typo = DEV_PHRASE.replace("walk", "wall")
    with pytest.raises(KeyLoadError) as bad_mnemonic:
        load_keypair(typo)
    assert "bottom" not in str(bad_mnemonic.value) and "checksum" in str(bad_mnemonic.value)
    with pytest.raises(KeyLoadError) as unknown:
        load_keypair("hunter2-is-my-secret")
    assert "hunter2" not in str(unknown.value)
    with pytest.raises(KeyLoadError) as short:
        load_keypair("bottom drive obey")
    assert "bottom" not in str(short.value) and "3 words" in str(short.value)


def test_public_only_keys_are_refused() -> None:
    from substrateinterface import Keypair as SubstrateKeypair

    with pytest.raises(KeyLoadError, match="no private key"):
        Keypair(SubstrateKeypair(ss58_address=ALICE))
