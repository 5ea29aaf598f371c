"""The off-chain worker daemon: pipeline, store, IPFS, economics, operations, CLI."""
