"""Excitation figures in the style of the paper's Section 7.2 (Figs. 6-7), drawn from arrays, not models.

Every function takes plain NumPy arrays (as saved by :func:`~senet.analysis.stats.save_stats`), writes one PNG with
the Agg backend and returns its path, so they are testable without training anything. Channels are plotted in
index order, as in the paper. The commands' own figures live here too: the confusion matrix of ``senet eval``
(:func:`plot_confusion`) and the training curves of ``senet compare`` (:func:`plot_curves`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from senet.utils.io import atomic_open, atomic_path
from senet.utils.optional import pyplot

__all__ = [
    "plot_classwise",
    "plot_within_class",
    "plot_depth_summary",
    "plot_ablation",
    "plot_excitation_figures",
    "plot_confusion",
    "plot_curves",
]


def _pyplot():  # noqa: ANN202 - matplotlib is an optional dependency, imported by pyplot() on first use
    return pyplot("the excitation and ablation figures")


def _save(fig, path: str | os.PathLike[str]) -> Path:  # noqa: ANN001
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:  # savefig picks the format from the suffix
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return (n + cols - 1) // cols, cols


def plot_classwise(
    means: Mapping[str, np.ndarray],
    counts: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    classes: Sequence[int] = (0, 1, 2, 3),
    class_names: Sequence[str] | None = None,
) -> Path:
    """Class-wise mean excitation per channel for each block (paper Fig. 6).

    Args:
        means: block name -> ``(num_classes, channels)`` per-class mean excitation.
        counts: block name -> ``(num_classes,)`` images per class (weights of the all-class mean).
        path: PNG to write.
        classes: class indices to draw; the count-weighted all-class mean is always drawn (black).
        class_names: labels for the legend.
    """
    plt = _pyplot()
    rows, cols = _grid(len(means))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, m) in zip(axes.flat, means.items()):
        m = np.asarray(m)
        n = np.asarray(counts[name], np.float64)
        ch = np.arange(m.shape[1])
        for k in classes:
            label = class_names[k] if class_names is not None else f"class {k}"
            ax.plot(ch, m[k], lw=0.8, alpha=0.85, label=label)
        ax.plot(ch, (n[:, None] * m).sum(0) / max(n.sum(), 1.0), color="k", lw=1.2, label="all classes")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("channel index", fontsize=8)
        ax.set_ylabel("mean excitation", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(means) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_within_class(
    means: Mapping[str, np.ndarray],
    stds: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    class_index: int = 0,
    class_name: str | None = None,
) -> Path:
    """Within-class mean excitation ± one standard deviation per channel, one panel per block (paper Fig. 7)."""
    plt = _pyplot()
    rows, cols = _grid(len(means))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, m) in zip(axes.flat, means.items()):
        mu = np.asarray(m)[class_index]
        sd = np.asarray(stds[name])[class_index]
        ch = np.arange(mu.shape[0])
        ax.fill_between(ch, mu - sd, mu + sd, alpha=0.3, lw=0)
        ax.plot(ch, mu, lw=0.9)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("channel index", fontsize=8)
        ax.set_ylabel("excitation", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(means) :]:
        ax.axis("off")
    fig.suptitle(f"within-class mean ± std: {class_name or f'class {class_index}'}", fontsize=10)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_depth_summary(
    names: Sequence[str],
    specificity: Sequence[float],
    saturation: Sequence[float],
    path: str | os.PathLike[str],
    sat_thresholds: tuple[float, float] = (0.1, 0.9),
) -> Path:
    """Class-specificity and saturation of every block against depth (one line each)."""
    plt = _pyplot()
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(names) + 2), 3.2))
    ax.plot(x, specificity, "o-", label="class-specificity (between / total variance)")
    lo, hi = sat_thresholds
    ax.plot(x, saturation, "s--", label=f"saturation (share < {lo:g} or > {hi:g})")
    ax.set_xticks(x, list(names), rotation=60, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_xlabel("attention block (input -> output)", fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_ablation(
    labels: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    path: str | os.PathLike[str],
    title: str = "",
    ylabel: str = "top-1 error (%)",
    reference: Sequence[float | None] | None = None,
) -> Path:
    """Error against the swept value with ± std error bars; ``reference`` (e.g. the paper's) on a second axis."""
    plt = _pyplot()
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 3.2))
    mean_arr = np.array([np.nan if v is None else v for v in mean], dtype=float)
    std_arr = np.array([0.0 if v is None else v for v in std], dtype=float)
    ax.errorbar(x, mean_arr, yerr=std_arr, fmt="o-", capsize=4, label="ours (mean ± std over seeds)")
    ax.set_xticks(x, list(labels), fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if reference is not None and any(r is not None for r in reference):
        ax2 = ax.twinx()
        ref = np.array([np.nan if r is None else r for r in reference], dtype=float)
        ax2.plot(x, ref, "s--", color="tab:red", label="paper (ImageNet, right axis)")
        ax2.set_ylabel("paper top-1 error (%), ImageNet", fontsize=8, color="tab:red")
        ax2.tick_params(labelsize=7, colors="tab:red")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="best")
    else:
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_excitation_figures(
    stats: Any,
    blocks: Sequence[str],
    out_dir: str | os.PathLike[str],
    classes: Sequence[int],
    class_names: Sequence[str],
) -> list[Path]:
    """``senet analyze``'s three figures from recorded statistics: ``classwise.png`` and ``within_class.png`` (of
    ``blocks``; the within-class one for ``classes[0]``) and ``depth_summary.png`` (every block).

    ``stats`` is a :class:`senet.analysis.ExcitationStats` (``Recorder.stats``).
    """
    out = Path(out_dir)
    s = {b: stats.blocks[b] for b in blocks}
    summary = stats.summary()
    return [
        plot_classwise(
            {b: v.mean for b, v in s.items()},
            {b: v.count for b, v in s.items()},
            out / "classwise.png",
            classes=classes,
            class_names=class_names,
        ),
        plot_within_class(
            {b: v.mean for b, v in s.items()},
            {b: v.std() for b, v in s.items()},
            out / "within_class.png",
            class_index=classes[0],
            class_name=class_names[classes[0]],
        ),
        plot_depth_summary(
            [r["block"] for r in summary],
            [r["specificity"] for r in summary],
            [r["saturation"] for r in summary],
            out / "depth_summary.png",
        ),
    ]


def plot_confusion(
    conf: Sequence[Sequence[int]], names: Sequence[str], path: str | os.PathLike[str], title: str
) -> None:
    """A row-normalised confusion matrix (true rows, predicted columns) as a PNG; counts in the cells up to 30 classes.

    ``senet eval --plot`` draws it.
    """
    plt = pyplot("the confusion-matrix plot (--plot none skips it)")
    c = np.asarray(conf, dtype=float)
    norm = c / np.maximum(c.sum(1, keepdims=True), 1)
    k = len(names)
    size = max(5.0, min(20.0, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), names, rotation=90)
        ax.set_yticks(range(k), names)
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(
                        j,
                        i,
                        int(c[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def plot_curves(runs: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Training loss and test top-1 per epoch of several runs, side by side, as a PNG (``senet compare --plot``).

    Each run is a mapping with ``config`` (``model``, ``seed``) and ``rows`` (per-epoch ``epoch``, ``train_loss`` and,
    on evaluated epochs, ``eval_top1``), as the run folder's metrics hold them.
    """
    plt = pyplot("the --plot of training curves")
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        ep = [x["epoch"] for x in r["rows"]]
        label = f"{r['config'].get('model', '?')} s{r['config'].get('seed', '?')}"
        a.plot(ep, [x["train_loss"] for x in r["rows"]], marker=".", label=label)
        ev = [(x["epoch"], x["eval_top1"]) for x in r["rows"] if "eval_top1" in x]
        if ev:
            b.plot(*zip(*ev), marker=".", label=label)
    a.set_xlabel("epoch")
    a.set_ylabel("train loss")
    b.set_xlabel("epoch")
    b.set_ylabel("test top-1 accuracy %")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
