"""Everything that talks to a Substrate chain: port, adapter, keys, ABI, follower, submitter, devnet."""
