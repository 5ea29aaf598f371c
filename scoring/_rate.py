"""The canonical sample rate, in a module of its own so that feature code need not import the decoders."""

SAMPLE_RATE: int = 22050
"""Canonical sample rate in Hz of every decoded track (re-exported by scoring.decode)."""
