"""The on-chain side: ink! contract sources, their ABI metadata, and an executable model of their rules."""
