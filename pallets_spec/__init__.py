"""The on-chain side: ink! contract sources, their ABI metadata, and an executable model of their rules.

- `description`: the single description of both contracts' interface (messages, events, errors, types);
- `generate`: `python -m pallets_spec.generate` writes `metadata/*.json` and `bundles/*.contract` from it;
- `model`: the contracts' rules in plain Python; `runtime`: bytes-in/bytes-out dispatch as a node runs it;
- `abi`, `scale`, `typeexpr`, `wasm`: ink! ABI rules, SCALE codec, Rust type expressions, the stand-in Wasm;
- `inkparse`: reads the ABI back out of `contracts/*/lib.rs` so tests can compare the three forms.
"""
