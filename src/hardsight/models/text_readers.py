"""Text-CAPTCHA readers: CRNN (conv -> BiLSTM -> CTC) and the classic per-position CNN, and the classic notebook's
two networks as written, to compare with them (`crnn_notebook`, `cnn_notebook`).

All return logits (B, T, K+1) where index 0 is the CTC blank (crnn*) or "no character" (cnn*).
"""

from __future__ import annotations

import torch
from torch import nn

from hardsight.config import InputSpec
from hardsight.models.layers import Normalize, make_activation
from hardsight.models.registry import register


def conv_block(c_in: int, c_out: int, activation: str = "relu") -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         make_activation(activation))


class CRNN(nn.Module):
    """Conv features (one time step per `stride` px of width) -> bidirectional RNN -> per-step logits, for CTC.

    rnn="gru" is the default: on captcha_v2 it leaves CTC's all-blank plateau in about a third of the
    steps a BiLSTM needs (measured: loss 2.0 vs 2.9 after 400 steps), at the same accuracy afterwards.
    """

    def __init__(self, num_classes: int, spec: InputSpec, channels: tuple[int, ...] = (16, 32, 64, 96),
                 rnn_hidden: int = 128, rnn_layers: int = 1, dropout: float = 0.1, stride: int = 4,
                 rnn: str = "gru", activation: str = "relu", layer_norm: bool = False):
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"stride must be 4 or 8, got {stride}")
        c1, c2, c3, c4 = channels
        self.norm = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(
            conv_block(spec.channels, c1, activation), nn.MaxPool2d(2),           # H/2, W/2
            conv_block(c1, c2, activation), nn.MaxPool2d(2),                      # H/4, W/4
            conv_block(c2, c3, activation), conv_block(c3, c3, activation),
            nn.MaxPool2d((2, stride // 4)),                           # H/8, W/stride
            conv_block(c3, c4, activation), nn.MaxPool2d((2, 1)),                 # H/16, W/stride
        )
        feat_height = spec.height // 16
        self.proj = nn.Sequential(nn.Linear(c4 * feat_height, rnn_hidden),
                                  *([nn.LayerNorm(rnn_hidden)] if layer_norm else []), nn.Dropout(dropout))
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[rnn]
        self.rnn = rnn_cls(rnn_hidden, rnn_hidden, num_layers=rnn_layers, bidirectional=True, batch_first=True,
                           dropout=dropout if rnn_layers > 1 else 0.0)
        self.head = nn.Linear(2 * rnn_hidden, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.norm(x))                      # (B, C, H', T)
        b, c, h, t = f.shape
        f = f.permute(0, 3, 1, 2).reshape(b, t, c * h)       # (B, T, C*H')
        f, _ = self.rnn(self.proj(f))                        # (B, T, 2*hidden)
        return self.head(f)                                  # (B, T, K+1)


class PositionCNN(nn.Module):
    """The classic fixed-length reader: conv 32 -> pool -> conv 64 -> pool -> L steps -> dense layers of `hidden`
    units (one width, or several in turn) -> per-position logits."""

    def __init__(self, num_classes: int, spec: InputSpec, max_length: int, hidden: int | tuple[int, ...] = 256,
                 dropout: float = 0.3, activation: str = "relu"):
        super().__init__()
        self.norm = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(
            conv_block(spec.channels, 32, activation), nn.MaxPool2d(2),
            conv_block(32, 64, activation), nn.MaxPool2d(2),
        )
        self.steps = nn.AdaptiveAvgPool2d((spec.height // 4, max_length))  # reshape into L steps
        dense: list[nn.Module] = []
        width = 64 * (spec.height // 4)
        for units in (hidden,) if isinstance(hidden, int) else tuple(hidden):
            dense += [nn.Linear(width, units), make_activation(activation), nn.Dropout(dropout)]
            width = units
        self.dense = nn.Sequential(*dense, nn.Linear(width, num_classes + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.steps(self.features(self.norm(x)))          # (B, 64, H/4, L)
        b, c, h, t = f.shape
        return self.dense(f.permute(0, 3, 1, 2).reshape(b, t, c * h))  # (B, L, K+1)


class NotebookCRNN(nn.Module):
    """The Keras captcha-OCR notebook's CTC reader as written: conv 32 -> pool -> conv 64 -> pool (He-normal kernels,
    no BatchNorm), one step per 4 px of width -> dense 64 + dropout 0.2 -> BiLSTM 128 -> BiLSTM 64 (dropout 0.25 on
    each LSTM's input, as Keras' `dropout=`) -> per-step logits."""

    def __init__(self, num_classes: int, spec: InputSpec):
        super().__init__()
        self.norm = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(nn.Conv2d(spec.channels, 32, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        for conv in (m for m in self.features if isinstance(m, nn.Conv2d)):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.dense = nn.Sequential(nn.Linear(64 * (spec.height // 4), 64), nn.ReLU(inplace=True), nn.Dropout(0.2))
        self.lstm_dropout = nn.Dropout(0.25)
        self.lstm1 = nn.LSTM(64, 128, bidirectional=True, batch_first=True)
        self.lstm2 = nn.LSTM(2 * 128, 64, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * 64, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.norm(x))                      # (B, 64, H/4, W/4)
        b, c, h, t = f.shape
        f = self.dense(f.permute(0, 3, 1, 2).reshape(b, t, c * h))
        f, _ = self.lstm1(self.lstm_dropout(f))
        f, _ = self.lstm2(self.lstm_dropout(f))
        return self.head(f)                                  # (B, W/4, K+1)


def crnn_new_run_args(spec: InputSpec, max_length: int) -> dict:
    """LayerNorm on the RNN's input: on captcha_v2 CTC's all-blank plateau ends at epochs 5, 5 and 6 (seeds 0-2),
    at 11, 10 and past 16 without it (`python benchmarks/ctc_plateau.py`; seeds 3-5 alike in probes)."""
    return {"layer_norm": True}


# what a new run of a model is built with where its model_args leave it out: what it chooses from the training data,
# and settings newer than the constructor's defaults, which stay what older runs were built with (so their checkpoints
# load as they were). All of it is written into the run's model_args.
NEW_RUN_ARGS = {"crnn": crnn_new_run_args, "crnn_lstm": crnn_new_run_args, "crnn_large": crnn_new_run_args}


def args_from_data(name: str, spec: InputSpec, max_length: int, model_args: dict) -> dict:
    """`model_args` with what a new run of `name` takes (NEW_RUN_ARGS) added where they leave it out."""
    chosen = NEW_RUN_ARGS.get(name)
    return {**(chosen(spec, max_length) if chosen else {}), **model_args}


def transplant(model: nn.Module, state: dict[str, torch.Tensor], old_charset: str, new_charset: str) -> str:
    """Load a trained reader's weights (`state`, read over `old_charset`) into `model`, built for `new_charset`: each
    output row follows its character (the blank too), a character the old reader never read keeps its fresh row,
    and a first convolution of another channel count is adapted (timm's `adapt_input_conv`: grey kernels shared by
    R, G and B). Returns the characters that start fresh. A layer of another shape is a ValueError naming it."""
    from timm.models import adapt_input_conv

    own = model.state_dict()
    head = next(k for k in reversed(own) if k.endswith("weight"))  # the output layer is the last one built
    head_bias = head.removesuffix("weight") + "bias"
    rows = [0] + [old_charset.index(c) + 1 if c in old_charset else -1 for c in new_charset]
    loaded = {}
    for key, mine in own.items():
        theirs = state.get(key)
        if theirs is None:
            raise ValueError(f"{key}: not in the trained reader (another architecture)")
        if key in (head, head_bias):
            theirs = torch.stack([theirs[r] if r >= 0 else mine[i] for i, r in enumerate(rows)])
        elif theirs.ndim == 4 and theirs.shape[1] != mine.shape[1] and theirs.shape[0] == mine.shape[0]:
            theirs = adapt_input_conv(mine.shape[1], theirs, base_chans=theirs.shape[1])
        if theirs.shape != mine.shape:
            raise ValueError(f"{key}: {tuple(theirs.shape)} in the trained reader, {tuple(mine.shape)} here")
        loaded[key] = theirs
    model.load_state_dict(loaded)
    return "".join(c for c in new_charset if c not in old_charset)


@register("text")
def crnn(num_classes: int, spec: InputSpec, max_length: int = 0, **kw) -> CRNN:
    """Conv -> BiGRU -> CTC, sized for a laptop CPU: under 1 ms an image at batch 64 on two cores."""
    return CRNN(num_classes, spec, **kw)


@register("text")
def crnn_lstm(num_classes: int, spec: InputSpec, max_length: int = 0, **kw) -> CRNN:
    """The classic CRNN: conv -> BiLSTM -> CTC (slower to converge on small sets than `crnn`)."""
    return CRNN(num_classes, spec, **{"rnn": "lstm", **kw})


@register("text")
def crnn_large(num_classes: int, spec: InputSpec, max_length: int = 0, **kw) -> CRNN:
    """Twice the conv width, for noisier schemes when a GPU or more time is at hand."""
    large = {"channels": (32, 64, 128, 128), "rnn_hidden": 192, "rnn_layers": 2, "rnn": "lstm"}
    return CRNN(num_classes, spec, **{**large, **kw})


@register("text")
def cnn(num_classes: int, spec: InputSpec, max_length: int = 8, **kw) -> PositionCNN:
    return PositionCNN(num_classes, spec, max_length=max_length, **kw)


@register("text")
def crnn_notebook(num_classes: int, spec: InputSpec, max_length: int = 0) -> NotebookCRNN:
    """The notebook's CRNN (BiLSTM 128 and 64 over dense 64), as a baseline for `crnn`."""
    return NotebookCRNN(num_classes, spec)


@register("text")
def cnn_notebook(num_classes: int, spec: InputSpec, max_length: int = 8, **kw) -> PositionCNN:
    """The notebook's per-position reader: the `cnn` trunk, then dense 256 and dense 64 at each position."""
    return PositionCNN(num_classes, spec, max_length=max_length, **{"hidden": (256, 64), **kw})
