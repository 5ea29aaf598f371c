"""IPFS: content addressing, the Kubo RPC client, track metadata, the local development node."""
