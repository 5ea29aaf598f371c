"""Scoring: audio to canonical PCM, features, novelty, quality and adoption scores (pure computation)."""
