"""Streaming per-class statistics equal a direct computation; summaries follow their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from senet.analysis import SAT_HIGH, SAT_LOW, ClassStats, ExcitationStats, load_stats, save_stats


def _data(n: int = 200, k: int = 4, c: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.random((n, c)) ** 2 + 0.05 * y[:, None]
    return x, y


def test_streaming_equals_direct() -> None:
    x, y = _data()
    s = ClassStats.zeros(4, 6)
    for i in range(0, len(y), 37):  # uneven chunks: exercises the merge
        s.update(x[i : i + 37], y[i : i + 37])
    for k in range(4):
        xk = x[y == k]
        assert s.count[k] == len(xk)
        np.testing.assert_allclose(s.mean[k], xk.mean(0), rtol=1e-12)
        np.testing.assert_allclose(s.std()[k], xk.std(0), rtol=1e-10)
        np.testing.assert_array_equal(s.low[k], (xk < SAT_LOW).sum(0))
        np.testing.assert_array_equal(s.high[k], (xk > SAT_HIGH).sum(0))
    np.testing.assert_allclose(s.overall_mean(), x.mean(0), rtol=1e-12)


def test_specificity_and_saturation_definitions() -> None:
    x, y = _data()
    s = ClassStats.zeros(4, 6)
    s.update(x, y)
    mu = x.mean(0)
    between = sum(((x[y == k].mean(0) - mu) ** 2).sum() * (y == k).sum() for k in range(4))
    assert s.specificity() == pytest.approx(between / ((x - mu) ** 2).sum(), rel=1e-10)
    low, high = s.saturation()
    assert low == pytest.approx((x < 0.1).mean()) and high == pytest.approx((x > 0.9).mean())


def test_specificity_extremes() -> None:
    y = np.repeat(np.arange(3), 10)
    same = ClassStats.zeros(3, 2)
    same.update(np.tile([[0.2, 0.7]], (30, 1)) + np.random.default_rng(0).normal(0, 0.01, (30, 2)), y)
    assert same.specificity() < 0.2
    by_class = ClassStats.zeros(3, 2)
    by_class.update(np.stack([y / 3, 1 - y / 3], 1), y)  # the gate is a function of the class alone
    assert by_class.specificity() == pytest.approx(1.0)


def test_merge_shards_equals_one_pass() -> None:
    x, y = _data(seed=3)
    one, a, b = ClassStats.zeros(4, 6), ClassStats.zeros(4, 6), ClassStats.zeros(4, 6)
    one.update(x, y)
    a.update(x[:90], y[:90])
    b.update(x[90:], y[90:])
    a.merge(b)
    np.testing.assert_allclose(a.mean, one.mean)
    np.testing.assert_allclose(a.m2, one.m2)
    np.testing.assert_array_equal(a.low, one.low)


def test_bad_labels_rejected() -> None:
    s = ClassStats.zeros(2, 3)
    with pytest.raises(ValueError, match="labels must lie"):
        s.update(np.zeros((2, 3)), np.array([0, 2]))
    with pytest.raises(ValueError, match="expected values"):
        s.update(np.zeros((2, 4)), np.array([0, 1]))


def test_save_load_roundtrip(tmp_path) -> None:
    x, y = _data()
    stats = ExcitationStats(class_names=["a", "b", "c", "d"])
    stats.blocks["SE_2_1"] = ClassStats.zeros(4, 6)
    stats.blocks["SE_2_1"].update(x, y)
    path = save_stats(stats, tmp_path / "sub" / "exc.npz")
    back = load_stats(path)
    assert back.class_names == ["a", "b", "c", "d"] and list(back.blocks) == ["SE_2_1"]
    np.testing.assert_allclose(back.blocks["SE_2_1"].std(), stats.blocks["SE_2_1"].std())
    with np.load(path) as raw:
        np.testing.assert_allclose(raw["SE_2_1/std"], stats.blocks["SE_2_1"].std())
        assert raw["specificity"].shape == (1,) and float(raw["sat_low"]) == SAT_LOW
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write leaves no temp file


def test_load_bad_file(tmp_path) -> None:
    from senet.errors import SenetError

    bad = tmp_path / "x.npz"
    bad.write_text("not a zip")
    with pytest.raises(SenetError, match="x.npz"):
        load_stats(bad)
