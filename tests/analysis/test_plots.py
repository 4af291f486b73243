"""Plots render PNG files from synthetic arrays (no model, no training)."""

from __future__ import annotations

import numpy as np

from senet.analysis.plots import plot_ablation, plot_classwise, plot_depth_summary, plot_within_class


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_excitation_plots(tmp_path) -> None:
    rng = np.random.default_rng(0)
    names = ["SE_1_3", "SE_2_3", "SE_3_1", "SE_3_3"]
    means = {n: rng.random((10, 16 * (i + 1))) for i, n in enumerate(names)}
    stds = {n: 0.1 * rng.random(m.shape) for n, m in means.items()}
    counts = {n: rng.integers(1, 50, 10) for n in names}
    classes = [f"c{i}" for i in range(10)]
    assert _is_png(
        plot_classwise(means, counts, tmp_path / "a" / "classwise.png", classes=(0, 3), class_names=classes)
    )
    assert _is_png(plot_within_class(means, stds, tmp_path / "within.png", class_index=2, class_name="c2"))
    assert _is_png(plot_depth_summary(names, [0.0, 0.1, 0.5, 0.2], [0.9, 0.5, 0.3, 0.1], tmp_path / "depth.png"))
    assert not list(tmp_path.rglob(".*tmp*"))


def test_ablation_plot(tmp_path) -> None:
    p = plot_ablation(
        ["r=2", "r=4", "r=8"], [8.1, 7.9, None], [0.2, 0.1, None], tmp_path / "abl.png", reference=[22.3, None, 22.26]
    )
    assert _is_png(p)
