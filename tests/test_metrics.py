"""Text metrics: the numbers evaluate reports."""

from __future__ import annotations

import pytest

from hardsight.engine.metrics import text_metrics


def test_perfect_predictions():
    m = text_metrics(["abc", "de"], ["abc", "de"])
    assert (m.n, m.exact_match, m.char_accuracy, m.cer) == (2, 1.0, 1.0, 0.0)


def test_one_substitution():
    m = text_metrics(["abx", "de"], ["abc", "de"])
    assert m.exact_match == 0.5
    assert m.char_accuracy == pytest.approx(4 / 5)
    assert m.cer == pytest.approx(1 / 5)
    assert m.confusions == [("c", "x", 1)]


def test_deletion_shifts_positions_but_costs_one_edit():
    m = text_metrics(["bcde"], ["abcde"])
    assert m.char_accuracy == 0.0  # per position, every character is now misplaced
    assert m.cer == pytest.approx(1 / 5)


def test_empty_input():
    assert text_metrics([], []).n == 0
