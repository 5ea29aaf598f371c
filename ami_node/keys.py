"""Signing keys: sr25519 keypairs from dev URIs, mnemonics or polkadot-js keystores; secrets never leak.

`load_keypair("//Alice")`, `load_keypair("<12..24 words>//hard/soft")`, `load_keypair("0x<seed>")`,
`load_keypair("path/to/export.json", password="...")`, or the path of a text file holding any of those. The
returned `Keypair` shows only its address; errors never contain the secret input. `key_info` and
`address_info` give subkey's public view of a key (SS58 address, public key, account id).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from substrateinterface import Keypair as _SubstrateKeypair
from substrateinterface import KeypairType
from substrateinterface.utils.ss58 import ss58_decode, ss58_encode

from pallets_spec.vocabulary import SS58_FORMAT

__all__ = [
    "KeyInfo",
    "KeyLoadError",
    "Keypair",
    "PasswordRequired",
    "address_info",
    "generate_mnemonic",
    "is_public_dev_uri",
    "key_file_warning",
    "key_info",
    "load_keypair",
]

MNEMONIC_WORD_COUNTS = (12, 15, 18, 21, 24)
_MNEMONIC_WORD_COUNTS = MNEMONIC_WORD_COUNTS
# A key file larger than this is not a key (a keystore export is about 1 KiB); refuse before reading it all.
_MAX_KEY_FILE_BYTES = 64 * 1024


class KeyLoadError(ValueError):
    """A key could not be loaded; the message says which kind of input failed and why, never the secret."""


class PasswordRequired(KeyLoadError):
    """The key is an encrypted keystore and no password was given: callers may ask for one and retry."""


class Keypair:
    """An sr25519 signing keypair. repr/str show only the SS58 address.

    Adapters that need the substrate-interface object use `substrate_keypair`; nothing else should.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: _SubstrateKeypair) -> None:
        if inner.private_key is None:
            raise KeyLoadError("keypair has no private key; a signing key is required")
        self._inner = inner

    @property
    def address(self) -> str:
        """The SS58 address (prefix 42)."""
        return str(self._inner.ss58_address)

    @property
    def public_key(self) -> bytes:
        return bytes(self._inner.public_key)

    @property
    def substrate_keypair(self) -> _SubstrateKeypair:
        return self._inner

    def sign(self, data: bytes) -> bytes:
        """An sr25519 signature (64 bytes) of `data`."""
        return bytes(self._inner.sign(data))

    def verify(self, data: bytes, signature: bytes) -> bool:
        return bool(self._inner.verify(data, signature))

    def export_keystore(self, password: str, name: str | None = None) -> dict[str, Any]:
        """A polkadot-js compatible encrypted JSON export of this key."""
        return dict(self._inner.export_to_encrypted_json(password, name=name))

    def __repr__(self) -> str:
        return f"Keypair(address={self.address!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keypair) and other.public_key == self.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __reduce__(self) -> Any:
        # Pickling would copy the secret into whatever receives the pickle (logs, queues, caches).
        raise TypeError("Keypair cannot be pickled; load it again from its source")

    # Immutable: copies (e.g. of a settings object holding a key) may share it instead of pickling it.
    def __copy__(self) -> Keypair:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Keypair:
        return self


def _from_keystore(raw: str, password: str | None, origin: str) -> Keypair:
    try:
        data = json.loads(raw)
    except ValueError:
        raise KeyLoadError(f"{origin} is not valid JSON; expected a polkadot-js keystore export") from None
    if not isinstance(data, dict) or "encoded" not in data or "encoding" not in data:
        raise KeyLoadError(f"{origin} is not a polkadot-js keystore export (missing 'encoded'/'encoding')")
    content = data["encoding"].get("content", []) if isinstance(data["encoding"], dict) else []
    if "sr25519" not in content:
        raise KeyLoadError(f"{origin} holds a {content!r} key; only sr25519 keys are supported")
    if password is None:
        raise PasswordRequired(f"{origin} is encrypted; a password is required")
    try:
        inner = _SubstrateKeypair.create_from_encrypted_json(data, password, ss58_format=SS58_FORMAT)
    except Exception:
        # The library's messages are not specific; the common cause is the password.
        raise KeyLoadError(f"cannot decrypt {origin}: wrong password or corrupted file") from None
    return Keypair(inner)


def load_keypair(source: str | os.PathLike[str], password: str | None = None) -> Keypair:
    """Load an sr25519 signing key.

    `source` is one of: a dev URI such as "//Alice" (also "//Alice//stash"); a BIP39 mnemonic of 12..24 words,
    optionally followed by a derivation path ("... words//hard/soft"); a 32-byte hex seed
    ("0x..."); or the path of a polkadot-js JSON keystore export (then `password` decrypts it).
    Raises KeyLoadError.
    """
    if isinstance(source, os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise KeyLoadError(f"key file {str(path)!r} does not exist")
        return _from_file(path, password)
    return _from_text(source, password, allow_path=True)


def _from_file(path: Path, password: str | None) -> Keypair:
    """A key file holds a polkadot-js keystore JSON, or one line: a dev URI, a mnemonic or a 0x seed."""
    origin = f"key file {str(path)!r}"
    try:
        if path.stat().st_size > _MAX_KEY_FILE_BYTES:
            raise KeyLoadError(f"{origin} is larger than {_MAX_KEY_FILE_BYTES} bytes; it is not a key file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyLoadError(f"cannot read {origin}: {type(exc).__name__}") from None
    if text.lstrip().startswith("{"):
        return _from_keystore(text, password, origin)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 1:
        raise KeyLoadError(
            f"{origin} must hold one line (a dev URI, a mnemonic or a 0x seed) or keystore JSON"
        )
    try:
        return _from_text(lines[0], password, allow_path=False)
    except PasswordRequired:
        raise
    except KeyLoadError as exc:
        raise KeyLoadError(f"{origin}: {exc}") from None


def _from_uri(suri: str, error: str) -> Keypair:
    """An sr25519 keypair from a secret URI; KeyLoadError(`error`) when it does not parse."""
    try:
        inner = _SubstrateKeypair.create_from_uri(
            suri, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519
        )
    except Exception:
        raise KeyLoadError(error) from None
    return Keypair(inner)


def _from_text(source: str, password: str | None, *, allow_path: bool) -> Keypair:
    text = source.strip()
    if not text:
        raise KeyLoadError("empty key: give a dev URI (//Alice), a mnemonic, a 0x seed or a keystore path")
    if text.startswith("{"):
        return _from_keystore(text, password, "keystore JSON")
    if text.startswith("//"):
        return _from_uri(text, "invalid dev URI: expected //Name, optionally //hard or /soft parts")
    if text.startswith("0x"):
        try:
            seed = bytes.fromhex(text[2:])
        except ValueError:
            raise KeyLoadError("invalid hex seed: not hexadecimal") from None
        if len(seed) != 32:
            raise KeyLoadError(f"invalid hex seed: expected 32 bytes, got {len(seed)}")
        return Keypair(
            _SubstrateKeypair.create_from_seed(text, ss58_format=SS58_FORMAT, crypto_type=KeypairType.SR25519)
        )
    path = Path(text).expanduser()
    try:
        is_file = allow_path and path.is_file()
    except OSError:  # e.g. a long mnemonic is not a valid file name
        is_file = False
    if is_file:
        return _from_file(path, password)
    phrase, _, _ = text.partition("/")
    words = phrase.split()
    if len(words) > 1:
        if len(words) not in _MNEMONIC_WORD_COUNTS:
            raise KeyLoadError(f"invalid mnemonic: {len(words)} words, expected 12, 15, 18, 21 or 24")
        if not _SubstrateKeypair.validate_mnemonic(" ".join(words)):
            raise KeyLoadError("invalid mnemonic: unknown word or bad checksum")
        suri = " ".join(words) + text[len(phrase) :]
        if password or "///" in suri:  # an empty password (an unset AMI_KEY_PASSWORD in compose) is none
            # substrate-interface derives sr25519 keys without the BIP39 password (NotImplementedError).
            raise KeyLoadError(
                "mnemonic passwords (///password) are not supported for sr25519 keys; "
                "use a polkadot-js keystore file for password protection"
            )
        return _from_uri(suri, "invalid derivation path after the mnemonic")
    # Do not echo `text`: it may be a mistyped secret.
    raise KeyLoadError(
        "unrecognised key: give a dev URI (//Alice), a mnemonic of 12..24 words, a 0x 32-byte seed, "
        "or the path of an existing polkadot-js keystore JSON file"
    )


def is_public_dev_uri(text: str) -> bool:
    """True for "//Name..." URIs: they derive from the public development phrase, so they are no secret."""
    return text.strip().startswith("//")


def key_file_warning(path: Path) -> str | None:
    """A warning when a key file can be read by other users (its mode allows group or others), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"key file {str(path)!r} is readable by other users (mode {stat.filemode(mode)}); chmod 600 it"
    return None


def generate_mnemonic(words: int = 12) -> str:
    """A new random BIP39 English mnemonic of `words` words (12, 15, 18, 21 or 24)."""
    if words not in MNEMONIC_WORD_COUNTS:
        raise KeyLoadError(f"a mnemonic has 12, 15, 18, 21 or 24 words, not {words}")
    return str(_SubstrateKeypair.generate_mnemonic(words))


@dataclass(frozen=True)
class KeyInfo:
    """The public view of an sr25519 key, as subkey inspect prints it."""

    ss58_address: str
    public_key: str  # 0x-hex, 32 bytes
    account_id: str  # 0x-hex; for sr25519 the account id is the public key itself
    ss58_format: int
    crypto: str = "sr25519"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(public: bytes, ss58_format: int) -> KeyInfo:
    hex_key = "0x" + public.hex()
    return KeyInfo(ss58_encode(public, ss58_format=ss58_format), hex_key, hex_key, ss58_format)


def key_info(keypair: Keypair, ss58_format: int = SS58_FORMAT) -> KeyInfo:
    """SS58 address (in `ss58_format`), public key and account id of `keypair`."""
    return _info(keypair.public_key, ss58_format)


def address_info(address: str, ss58_format: int = SS58_FORMAT) -> KeyInfo:
    """The same view of a public address: an SS58 address (any network prefix) or a 0x 32-byte public key.

    Raises KeyLoadError when it is neither.
    """
    text = address.strip()
    if text.startswith("0x"):
        try:
            public = bytes.fromhex(text[2:])
        except ValueError:
            raise KeyLoadError("invalid public key: not hexadecimal") from None
    else:
        try:
            public = bytes.fromhex(ss58_decode(text))
        except Exception:
            # Not echoed: a mistyped secret could land here.
            raise KeyLoadError("not an SS58 address (bad characters, length or checksum)") from None
    if len(public) != 32:
        raise KeyLoadError(f"a public key has 32 bytes, not {len(public)}")
    return _info(public, ss58_format)
