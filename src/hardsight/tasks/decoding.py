"""Between strings and model outputs: charset codec, CTC greedy / beam decoding, per-position decoding.

Index 0 is the CTC blank (crnn) or "no character" (cnn); characters are 1..K in charset order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TextCodec:
    charset: str

    def __post_init__(self) -> None:
        if len(set(self.charset)) != len(self.charset):
            raise ValueError(f"charset has repeated characters: {self.charset!r}")

    @property
    def num_classes(self) -> int:
        return len(self.charset)

    def encode(self, text: str) -> list[int]:
        index = {c: i + 1 for i, c in enumerate(self.charset)}
        return [index[c] for c in text]

    def decode(self, indices) -> str:
        return "".join(self.charset[i - 1] for i in indices if 0 < i <= len(self.charset))


def ctc_greedy(log_probs: torch.Tensor) -> list[tuple[list[int], float]]:
    """Best path per image: argmax per step, collapse repeats, drop blanks.

    Args:
        log_probs: (B, T, K+1) log-softmax outputs.
    Returns: (indices, confidence) per image, confidence = probability of the best path.
    """
    best, idx = log_probs.max(dim=-1)                 # (B, T)
    conf = best.sum(dim=-1).exp().tolist()
    out = []
    for row, c in zip(idx.tolist(), conf):
        seq, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                seq.append(k)
            prev = k
        out.append((seq, c))
    return out


def ctc_beam(log_probs: torch.Tensor, beam_width: int = 8) -> list[tuple[list[int], float]]:
    """CTC prefix beam search; confidence = total probability of the chosen labelling."""
    return [_prefix_beam(lp, beam_width) for lp in log_probs.double().cpu().numpy()]


def _logsumexp(*xs: float) -> float:
    m = max(xs)
    return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in xs))


def _prefix_beam(lp: np.ndarray, width: int) -> tuple[list[int], float]:
    neg = -math.inf
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg)}  # prefix -> (p_blank, p_nonblank)
    for t in range(lp.shape[0]):
        row = lp[t]
        candidates = np.argsort(row)[::-1][: max(width, 4)]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [neg, neg])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for k in candidates:
                p = float(row[k])
                if k == 0:
                    e = nxt[prefix]
                    e[0] = _logsumexp(e[0], total + p)
                    continue
                ext = prefix + (int(k),)
                e = nxt[ext]
                if prefix and prefix[-1] == k:
                    e[1] = _logsumexp(e[1], pb + p)        # a repeat needs a blank in between
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + p)  # or it collapses into the same prefix
                else:
                    e[1] = _logsumexp(e[1], total + p)
        beams = dict(sorted(((k, (v[0], v[1])) for k, v in nxt.items()),
                            key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:width])
    prefix, (pb, pnb) = next(iter(beams.items()))
    return list(prefix), math.exp(_logsumexp(pb, pnb))


def positional(log_probs: torch.Tensor) -> list[tuple[list[int], float]]:
    """Per-position argmax; class 0 ("no character") is dropped; confidence = product of maxima."""
    best, idx = log_probs.max(dim=-1)
    conf = best.sum(dim=-1).exp().tolist()
    return [([k for k in row if k != 0], c) for row, c in zip(idx.tolist(), conf)]


@dataclass(frozen=True)
class TextDecoder:
    """Log-probabilities -> (text, confidence) per image: CTC (greedy or beam) or one class per position."""

    charset: str
    ctc: bool
    beam_width: int = 1

    def __call__(self, log_probs: torch.Tensor) -> list[tuple[str, float]]:
        if self.ctc:
            raw = ctc_beam(log_probs, self.beam_width) if self.beam_width > 1 else ctc_greedy(log_probs)
        else:
            raw = positional(log_probs)
        codec = TextCodec(self.charset)
        return [(codec.decode(indices), conf) for indices, conf in raw]
