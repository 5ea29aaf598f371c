"""Harmonic salience (`scoring.salience`) against a worked example: the profile the gate aligns."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import salience


def _four_bands() -> np.ndarray:
    """A semitone spectrum of one frame with unit power at C3, C4, G4 and C5 (MIDI 48, 60, 67, 72)."""
    p = np.zeros((salience.BANK_HIGH - salience.BANK_LOW + 1, 1))
    for midi in (48, 60, 67, 72):
        p[midi - salience.BANK_LOW, 0] = 1.0
    return p


def test_salience_chroma_of_four_bands_matches_the_hand_computed_sums() -> None:
    # Unit power at C3, C4, G4 and C5 (MIDI 48, 60, 67, 72). Every candidate f0 in 36..96 sums
    # P(f0) + P(f0 + 12)/2 + P(f0 + 19)/3 + P(f0 + 24)/4:
    #   C: f0 36 -> 1/2 + 1/4, f0 48 -> 1 + 1/2 + 1/3 + 1/4, f0 60 -> 1 + 1/2, f0 72 -> 1   = 16/3
    #   F: f0 41 -> 1/3 (60), f0 53 -> 1/3 (72)                                                = 2/3
    #   G: f0 43 -> 1/4 (67), f0 55 -> 1/2 (67), f0 67 -> 1                                    = 7/4
    p = _four_bands()
    expected = np.zeros(12)
    expected[0], expected[5], expected[7] = 16 / 3, 2 / 3, 7 / 4
    np.testing.assert_allclose(salience.salience_chroma(p)[:, 0], expected, rtol=1e-12, atol=1e-12)


def test_partials_above_the_bank_are_left_out() -> None:
    p = np.ones((salience.BANK_HIGH - salience.BANK_LOW + 1, 3))
    sal = salience.harmonic_salience(p, 90, 100, ((0, 1.0), (24, 0.5)))
    # f0 90..96 have their +24 partial inside the bank (<= 120); 97..100 do not
    assert sal[:7, 0] == pytest.approx([1.5] * 7) and sal[7:, 0] == pytest.approx([1.0] * 4)


def test_register_chroma_splits_the_same_sums_at_middle_c() -> None:
    # The four bands of the first test, with each f0's sum counted in its own register:
    #   bass (f0 36..59):   C: f0 36 -> 3/4, f0 48 -> 25/12 = 17/6;  F: f0 41, 53 -> 2/3;  G: f0 43, 55 -> 3/4
    #   treble (f0 60..96): C: f0 60 -> 3/2, f0 72 -> 1 = 5/2;        G: f0 67 -> 1
    p = _four_bands()
    expected = np.zeros(24)
    expected[0], expected[5], expected[7] = 17 / 6, 2 / 3, 3 / 4
    expected[12], expected[19] = 5 / 2, 1.0
    reg = salience.register_chroma(p)[:, 0]
    np.testing.assert_allclose(reg, expected, rtol=1e-12, atol=1e-12)
    # the registers partition the fundamentals, so together they are the one-fold profile
    np.testing.assert_allclose(reg[:12] + reg[12:], salience.salience_chroma(p)[:, 0], rtol=1e-12)
