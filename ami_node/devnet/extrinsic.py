"""Parse and check the envelope of a V4 extrinsic for this runtime's signed extensions.

The envelope (length, version byte, MultiAddress, MultiSignature, era, nonce, tip, call) is a fixed handful of
SCALE fields; it is read by hand here because the signing payload has to be rebuilt byte for byte from the
exact call and extra bytes the client signed, which scalecodec's Extrinsic object does not hand back.
"""

from __future__ import annotations

from dataclasses import dataclass

import sr25519
from substrateinterface import Keypair, KeypairType

from ami_node.devnet.meta import blake2_256
from pallets_spec.scale import encode_compact
from pallets_spec.vocabulary import SS58_FORMAT


class MalformedExtrinsic(ValueError):
    """The bytes are not a V4 extrinsic this runtime understands."""


@dataclass(frozen=True)
class Era:
    """A mortality era; immortal when period == 0."""

    period: int = 0
    phase: int = 0

    @property
    def immortal(self) -> bool:
        return self.period == 0

    def birth(self, current: int) -> int:
        if self.immortal:
            return 0
        return (max(current, self.phase) - self.phase) // self.period * self.period + self.phase

    def death(self, current: int) -> int:
        if self.immortal:
            return 2**64 - 1
        return self.birth(current) + self.period


@dataclass(frozen=True)
class Extrinsic:
    raw: bytes  # the full encoding, length prefix included (what the hash covers)
    hash: bytes
    signed: bool
    signer: bytes | None
    signature_type: int | None  # 0 ed25519, 1 sr25519, 2 ecdsa
    signature: bytes | None
    era: Era
    era_bytes: bytes
    nonce: int
    tip: int
    call: bytes

    def signing_payload(self, spec_version: int, tx_version: int, genesis: bytes, birth_hash: bytes) -> bytes:
        payload = (
            self.call
            + self.era_bytes
            + encode_compact(self.nonce)
            + encode_compact(self.tip)
            + spec_version.to_bytes(4, "little")
            + tx_version.to_bytes(4, "little")
            + genesis
            + birth_hash
        )
        return blake2_256(payload) if len(payload) > 256 else payload

    def verify(self, payload: bytes) -> bool:
        if self.signer is None or self.signature is None:
            return False
        crypto = {0: KeypairType.ED25519, 1: KeypairType.SR25519, 2: KeypairType.ECDSA}[
            self.signature_type or 0
        ]
        if crypto == KeypairType.ECDSA:
            return False  # an ECDSA signer's AccountId is a hash of its key; not supported here
        try:
            if crypto == KeypairType.SR25519:
                return bool(sr25519.verify(self.signature, payload, self.signer))
            keypair = Keypair(public_key=self.signer, crypto_type=crypto, ss58_format=SS58_FORMAT)
            return bool(keypair.verify(payload, self.signature))
        except Exception:  # the bindings raise on malformed keys/signatures; that is simply "invalid"
            return False


def decode_compact(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise MalformedExtrinsic("truncated compact integer")
    mode = data[pos] & 3
    if mode == 0:
        return data[pos] >> 2, pos + 1
    if mode == 1:
        if pos + 2 > len(data):
            raise MalformedExtrinsic("truncated compact integer")
        return int.from_bytes(data[pos : pos + 2], "little") >> 2, pos + 2
    if mode == 2:
        if pos + 4 > len(data):
            raise MalformedExtrinsic("truncated compact integer")
        return int.from_bytes(data[pos : pos + 4], "little") >> 2, pos + 4
    n = (data[pos] >> 2) + 4
    if pos + 1 + n > len(data):
        raise MalformedExtrinsic("truncated compact integer")
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "little"), pos + 1 + n


def encode_era(era: Era) -> bytes:
    if era.immortal:
        return b"\x00"
    quantize = max(era.period >> 12, 1)
    trailing = max(1, min(15, (era.period & -era.period).bit_length() - 2))
    encoded = trailing | ((era.phase // quantize) << 4)
    return encoded.to_bytes(2, "little")


def decode_era(data: bytes, pos: int) -> tuple[Era, bytes, int]:
    if pos >= len(data):
        raise MalformedExtrinsic("truncated era")
    if data[pos] == 0:
        return Era(), b"\x00", pos + 1
    if pos + 2 > len(data):
        raise MalformedExtrinsic("truncated era")
    raw = data[pos : pos + 2]
    encoded = int.from_bytes(raw, "little")
    period = 2 << (encoded % (1 << 4))
    quantize = max(period >> 12, 1)
    phase = (encoded >> 4) * quantize
    if period < 4 or phase >= period:
        raise MalformedExtrinsic("invalid mortal era")
    return Era(period, phase), raw, pos + 2


def parse_extrinsic(raw: bytes) -> Extrinsic:
    """Split an encoded extrinsic (with its length prefix) into its parts; raises MalformedExtrinsic."""
    length, pos = decode_compact(raw, 0)
    if length != len(raw) - pos:
        raise MalformedExtrinsic(f"length prefix says {length} bytes, got {len(raw) - pos}")
    if pos >= len(raw):
        raise MalformedExtrinsic("empty extrinsic")
    version = raw[pos]
    pos += 1
    if version & 0x7F != 4:
        raise MalformedExtrinsic(f"unsupported extrinsic version {version & 0x7F}")
    if not version & 0x80:
        return Extrinsic(raw, blake2_256(raw), False, None, None, None, Era(), b"", 0, 0, raw[pos:])
    if pos + 33 > len(raw) or raw[pos] != 0:
        raise MalformedExtrinsic("only MultiAddress::Id signers are supported")
    signer = raw[pos + 1 : pos + 33]
    pos += 33
    if pos >= len(raw) or raw[pos] not in (0, 1, 2):
        raise MalformedExtrinsic("unknown MultiSignature variant")
    sig_type = raw[pos]
    sig_len = 65 if sig_type == 2 else 64
    signature = raw[pos + 1 : pos + 1 + sig_len]
    if len(signature) != sig_len:
        raise MalformedExtrinsic("truncated signature")
    pos += 1 + sig_len
    era, era_bytes, pos = decode_era(raw, pos)
    nonce, pos = decode_compact(raw, pos)
    tip, pos = decode_compact(raw, pos)
    call = raw[pos:]
    if len(call) < 2:
        raise MalformedExtrinsic("missing call")
    return Extrinsic(
        raw, blake2_256(raw), True, signer, sig_type, signature, era, era_bytes, nonce, tip, call
    )


def encode_unsigned(call: bytes) -> bytes:
    body = b"\x04" + call
    return encode_compact(len(body)) + body
