"""The catalogue's root hash: a sequential SHA-256 over the entries' identities (track id, SHA-256 of the
canonical PCM) in insertion order, the same bit for bit on every device (ami-agreement/1)."""

from __future__ import annotations

import hashlib

from scoring.errors import CatalogError


def chain_root(prev_hex: str, track_id: str, pcm_sha256: str) -> str:
    """The root hash after appending entry (``track_id``, ``pcm_sha256``) to a catalogue whose root is
    ``prev_hex`` (the recipe of `Catalogue.root_hash`).

    Raises:
        CatalogError: ``prev_hex`` or ``pcm_sha256`` is not 32 bytes of hex, or the id is empty.
    """
    if not isinstance(track_id, str) or not track_id:
        raise CatalogError(f"entry id must be a non-empty string, got {track_id!r}")
    return root_step(bytes.fromhex(pcm_hash_hex(prev_hex)), track_id, pcm_hash_hex(pcm_sha256)).hex()


def pcm_hash_hex(value: object) -> str:
    """``value`` as lower-case hex of 32 bytes, or a CatalogError saying what it is instead."""
    if isinstance(value, str) and len(value) == 64:
        try:
            bytes.fromhex(value)
        except ValueError:
            pass
        else:
            return value.lower()
    raise CatalogError(f"expected a SHA-256 as 64 hex digits, got {value!r}")


def root_step(prev: bytes, track_id: str, pcm_sha256: str) -> bytes:
    h = hashlib.sha256(prev)
    raw_id = track_id.encode()
    h.update(len(raw_id).to_bytes(4, "little"))
    h.update(raw_id)
    h.update(bytes.fromhex(pcm_sha256))
    return h.digest()
