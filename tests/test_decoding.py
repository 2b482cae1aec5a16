"""CTC and per-position decoding: what a reader's outputs turn into."""

from __future__ import annotations

import math

import pytest
import torch

from hardsight.tasks.decoding import TextCodec, ctc_beam, ctc_greedy, positional


def _peaked(path: list[int], k: int = 4, p: float = 0.9) -> torch.Tensor:
    """Log-probs (1, T, k) that put probability p on path[t] at each step."""
    lp = torch.full((1, len(path), k), math.log((1 - p) / (k - 1)))
    for t, c in enumerate(path):
        lp[0, t, c] = math.log(p)
    return lp


def test_codec_round_trip_and_rejects_repeated_charset():
    codec = TextCodec("abc")
    assert codec.encode("cab") == [3, 1, 2]
    assert codec.decode([3, 1, 2]) == "cab"
    with pytest.raises(ValueError):
        TextCodec("abca")


def test_greedy_collapses_repeats_and_drops_blanks():
    (seq, conf), = ctc_greedy(_peaked([1, 1, 0, 1, 2, 2, 0, 0, 3]))
    assert seq == [1, 1, 2, 3]  # the blank between the two 1s keeps both
    assert conf == pytest.approx(0.9 ** 9, rel=1e-4)


def test_all_blank_is_empty_text():
    (seq, _), = ctc_greedy(_peaked([0, 0, 0]))
    assert seq == []


def test_beam_agrees_with_greedy_on_confident_outputs():
    lp = _peaked([0, 2, 2, 0, 3, 0, 3, 1], p=0.95)
    assert ctc_beam(lp, beam_width=8)[0][0] == ctc_greedy(lp)[0][0] == [2, 3, 3, 1]


def test_beam_finds_labelling_whose_paths_add_up():
    # step-wise best path is blank,blank (empty), but "a" has more total probability over its 3 paths
    lp = torch.log(torch.tensor([[[0.4, 0.6], [0.4, 0.6]]]))
    assert ctc_greedy(lp)[0][0] == [1]
    lp = torch.log(torch.tensor([[[0.55, 0.45], [0.55, 0.45]]]))
    greedy = ctc_greedy(lp)[0][0]
    (beam, conf), = ctc_beam(lp, beam_width=4)
    assert greedy == [] and beam == [1]  # P("a") = 1 - 0.55^2 = 0.6975 > P("") = 0.3025
    assert conf == pytest.approx(0.6975, abs=1e-6)


def test_positional_drops_no_character_class():
    (seq, conf), = positional(_peaked([2, 1, 3, 0, 0]))
    assert seq == [2, 1, 3]
    assert 0 < conf < 1
