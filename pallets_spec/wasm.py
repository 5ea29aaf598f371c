"""The stand-in contract code: a minimal valid Wasm module whose custom section `ami-model` names the model.

No Wasm can be compiled on these machines, so the `.contract` bundles carry this module. It is shaped like an
ink! contract (imports `env.memory`, exports `deploy` and `call`) so that nodes and tools accept it, and the
devnet reads `ami-model` (e.g. `ami_nft@1`) to choose which Python model executes it.
The Wasm binary format is written by hand: it is a handful of fixed bytes and no library is needed for it.
"""

from __future__ import annotations

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"
MODEL_SECTION = "ami-model"


class WasmError(ValueError):
    """The bytes are not a Wasm module, or it names no AMI model."""


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(s: str) -> bytes:
    raw = s.encode()
    return _uleb(len(raw)) + raw


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


def build_model_wasm(model_id: str) -> bytes:
    """A valid Wasm module: type () -> (), import env.memory (2..16 pages), two empty functions exported as
    `deploy` and `call`, and the custom section `ami-model` holding `model_id`."""
    types = _section(1, _uleb(1) + b"\x60\x00\x00")
    imports = _section(2, _uleb(1) + _name("env") + _name("memory") + b"\x02\x01" + _uleb(2) + _uleb(16))
    functions = _section(3, _uleb(2) + _uleb(0) + _uleb(0))
    exports = _section(
        7, _uleb(2) + _name("deploy") + b"\x00" + _uleb(0) + _name("call") + b"\x00" + _uleb(1)
    )
    body = b"\x00\x0b"  # no locals, `end`
    code = _section(10, _uleb(2) + (_uleb(len(body)) + body) * 2)
    custom = _section(0, _name(MODEL_SECTION) + model_id.encode())
    return MAGIC + VERSION + types + imports + functions + exports + code + custom


def _read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WasmError("truncated LEB128 integer")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise WasmError("LEB128 integer too long")


def custom_sections(code: bytes) -> dict[str, bytes]:
    """All custom sections of a Wasm module by name (walks the section headers only)."""
    if code[:4] != MAGIC or code[4:8] != VERSION:
        raise WasmError("not a Wasm module (bad magic or version)")
    pos, out = 8, {}
    while pos < len(code):
        section_id = code[pos]
        size, start = _read_uleb(code, pos + 1)
        end = start + size
        if end > len(code):
            raise WasmError(f"section {section_id} runs past the end of the module")
        if section_id == 0:
            name_len, name_start = _read_uleb(code, start)
            if name_start + name_len > end:
                raise WasmError("custom section name runs past its section")
            name = code[name_start : name_start + name_len].decode("utf-8", errors="replace")
            out[name] = code[name_start + name_len : end]
        pos = end
    return out


def read_model_id(code: bytes) -> str:
    """The `ami-model` section's text (`ami_nft@1`); WasmError when the module has none."""
    sections = custom_sections(code)
    if MODEL_SECTION not in sections:
        raise WasmError(f"the Wasm module has no {MODEL_SECTION!r} custom section: not an AMI model contract")
    return sections[MODEL_SECTION].decode("utf-8", errors="replace")
