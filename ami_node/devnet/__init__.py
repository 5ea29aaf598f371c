"""A local contracts node emulating substrate-contracts-node, executing the pallets_spec model."""
