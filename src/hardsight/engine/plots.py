"""Figures saved as PNG into a run's plots/ (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(metrics_csv: Path, out: Path) -> Path | None:
    """Loss, and validation scores beside the training accuracy, per epoch, from metrics.csv: the gap between the
    train and validation lines is the over-fitting."""
    if not metrics_csv.is_file():
        return None
    rows = list(csv.DictReader(metrics_csv.open()))
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]

    def col(name: str) -> list[float]:
        return [float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows]

    losses = [k for k in rows[0] if k.endswith("loss")]
    scores = [k for k in rows[0] if k.startswith(("val/", "train/")) and not k.endswith("loss") and k != "val/objective"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k in losses:
        axes[0].plot(epochs, col(k), label=k)
    axes[0].set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    for k in scores:
        axes[1].plot(epochs, col(k), label=k)
    axes[1].set(xlabel="epoch", title="scores", ylim=(0, 1.02))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, out)


def scores_per_epoch(rows: list[dict[str, float]], out: Path, title: str) -> Path:
    """One line per score (every key of a row but `epoch`) against the epoch it was scored at."""
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name in (k for k in rows[0] if k != "epoch"):
        ax.plot(epochs, [r[name] for r in rows], marker="o", label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def image_grid(images: list[np.ndarray], titles: list[str], out: Path, colors: list[str] | None = None,
               cols: int = 4, title: str | None = None) -> Path:
    """Images (H, W) or (H, W, 3) uint8 with a caption each."""
    n = max(1, len(images))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 1.3 * rows + 0.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (im, t) in enumerate(zip(images, titles)):
        ax = axes.flat[i]
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(t, fontsize=9, color=(colors[i] if colors else "black"), family="monospace")
    if title:
        fig.suptitle(title)
    return save_figure(fig, out)


def bar_chart(counts: Counter | dict, out: Path, title: str, xlabel: str, sort_by_key: bool = False) -> Path:
    items = sorted(counts.items()) if sort_by_key else sorted(counts.items(), key=lambda kv: -kv[1])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(items) + 2), 3.2))
    ax.bar([str(k) for k, _ in items], [v for _, v in items], color="#4472c4")
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out)


def confusion_matrix(matrix: list[list[int]], classes: list[str], out: Path, title: str = "confusion (row-normalised)") -> Path:
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if norm[i, j] >= 0.01:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, out)
