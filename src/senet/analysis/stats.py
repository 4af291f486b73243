"""Streaming per-class statistics of excitation vectors, and the two summaries of the paper's Section 7.2.

Memory is bounded by ``classes x channels`` per block whatever the dataset size: each batch is reduced to
per-class ``(count, mean, M2)`` and merged with Chan et al.'s parallel form of Welford's update
("Updating formulae and a pairwise algorithm for computing sample variances", 1979), in float64.

Summaries (per block):

* **class-specificity** — between-class variance over total variance of the excitations, pooled over channels:
  ``sum_c sum_k n_k (mu_kc - mu_c)^2 / sum_c sum_i (s_ic - mu_c)^2``. 0 means every class gets the same mean gate
  (the paper's early blocks), 1 means the gate is a function of the class alone.
* **saturation** — share of excitation values below :data:`SAT_LOW` (0.1) or above :data:`SAT_HIGH` (0.9), i.e.
  gates acting as near-binary switches. The paper's SE_5_2 has most values near 1. The thresholds are constants of
  this module, stored with every saved file.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from senet.errors import SenetError
from senet.utils.io import atomic_write_bytes

__all__ = ["SAT_LOW", "SAT_HIGH", "ClassStats", "ExcitationStats", "save_stats", "load_stats"]

#: Excitation values below this count as "saturated at 0".
SAT_LOW = 0.1
#: Excitation values above this count as "saturated at 1".
SAT_HIGH = 0.9


@dataclass
class ClassStats:
    """Per-class running ``count``, ``mean`` and ``M2`` (sum of squared deviations) of one block's gate.

    Arrays have shape ``(num_classes,)`` for ``count`` and ``(num_classes, channels)`` for the rest; ``low`` and
    ``high`` count values below :data:`SAT_LOW` / above :data:`SAT_HIGH` per class and channel.
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def zeros(cls, num_classes: int, channels: int) -> ClassStats:
        shape = (num_classes, channels)
        return cls(
            np.zeros(num_classes, np.int64),
            np.zeros(shape, np.float64),
            np.zeros(shape, np.float64),
            np.zeros(shape, np.int64),
            np.zeros(shape, np.int64),
        )

    @property
    def num_classes(self) -> int:
        return self.mean.shape[0]

    @property
    def channels(self) -> int:
        return self.mean.shape[1]

    def update(self, values: np.ndarray, labels: np.ndarray) -> None:
        """Merge a batch: ``values`` ``(N, C)``, ``labels`` ``(N,)`` integer class ids in ``[0, num_classes)``."""
        values = np.asarray(values, np.float64)
        labels = np.asarray(labels, np.int64)
        if values.ndim != 2 or values.shape[1] != self.channels or labels.shape != (values.shape[0],):
            raise ValueError(
                f"expected values (N, {self.channels}) and labels (N,), got {values.shape} and {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        k = self.num_classes
        n_b = np.bincount(labels, minlength=k).astype(np.int64)
        sums = np.zeros((k, self.channels))
        np.add.at(sums, labels, values)
        seen = n_b > 0
        mean_b = np.zeros_like(sums)
        mean_b[seen] = sums[seen] / n_b[seen, None]
        m2_b = np.zeros_like(sums)
        np.add.at(m2_b, labels, (values - mean_b[labels]) ** 2)
        np.add.at(self.low, labels, (values < SAT_LOW).astype(np.int64))
        np.add.at(self.high, labels, (values > SAT_HIGH).astype(np.int64))
        self._merge(n_b, mean_b, m2_b)

    def _merge(self, n_b: np.ndarray, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        # Chan et al.: combine (n_a, mean_a, M2_a) with (n_b, mean_b, M2_b) without revisiting old samples.
        n_a = self.count
        n = n_a + n_b
        safe = np.maximum(n, 1)[:, None]
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b[:, None] / safe)
        self.m2 = self.m2 + m2_b + delta**2 * (n_a[:, None] * n_b[:, None] / safe)
        self.count = n

    def merge(self, other: ClassStats) -> None:
        """Merge statistics gathered elsewhere (another process or shard) into these."""
        np.add(self.low, other.low, out=self.low)
        np.add(self.high, other.high, out=self.high)
        self._merge(other.count, other.mean, other.m2)

    def std(self) -> np.ndarray:
        """Per-class population standard deviation, ``(num_classes, channels)`` (0 for unseen classes)."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1)[:, None])

    def overall_mean(self) -> np.ndarray:
        """The count-weighted all-class mean per channel, ``(channels,)``."""
        total = max(int(self.count.sum()), 1)
        return (self.count[:, None] * self.mean).sum(0) / total

    def specificity(self) -> float:
        """Between-class variance over total variance, pooled over channels (see the module docstring)."""
        mu = self.overall_mean()
        between = float((self.count[:, None] * (self.mean - mu) ** 2).sum())
        total = between + float(self.m2.sum())
        return between / total if total > 0 else 0.0

    def saturation(self) -> tuple[float, float]:
        """Shares of values below :data:`SAT_LOW` and above :data:`SAT_HIGH` over all classes and channels."""
        n = max(int(self.count.sum()) * self.channels, 1)
        return float(self.low.sum()) / n, float(self.high.sum()) / n


@dataclass
class ExcitationStats:
    """Statistics of several blocks over one dataset, in model order, plus the class names."""

    blocks: dict[str, ClassStats] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)

    def summary(self) -> list[dict[str, float | str | int]]:
        """One row per block: name, channels, specificity, saturation low / high / total, and the mean gate (over
        images and channels)."""
        rows: list[dict[str, float | str | int]] = []
        for name, s in self.blocks.items():
            low, high = s.saturation()
            rows.append(
                {
                    "block": name,
                    "channels": s.channels,
                    "specificity": s.specificity(),
                    "saturation": low + high,
                    "saturation_low": low,
                    "saturation_high": high,
                    "gate_mean": float(s.overall_mean().mean()),
                }
            )
        return rows


def save_stats(stats: ExcitationStats, path: str | os.PathLike[str]) -> Path:
    """Write ``stats`` as one ``.npz`` (atomically): per block ``<name>/{count,mean,std,m2,low,high}``, plus
    ``blocks``, ``class_names``, ``specificity``, ``saturation`` and the thresholds ``sat_low`` / ``sat_high``."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "blocks": np.array(list(stats.blocks), dtype=str),
        "class_names": np.array(stats.class_names, dtype=str),
        "sat_low": np.array(SAT_LOW),
        "sat_high": np.array(SAT_HIGH),
    }
    spec, sat = [], []
    for name, s in stats.blocks.items():
        arrays[f"{name}/count"] = s.count
        arrays[f"{name}/mean"] = s.mean
        arrays[f"{name}/std"] = s.std()
        arrays[f"{name}/m2"] = s.m2
        arrays[f"{name}/low"] = s.low
        arrays[f"{name}/high"] = s.high
        spec.append(s.specificity())
        sat.append(sum(s.saturation()))
    arrays["specificity"] = np.array(spec)
    arrays["saturation"] = np.array(sat)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_stats(path: str | os.PathLike[str]) -> ExcitationStats:
    """Read a file written by :func:`save_stats`."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SenetError(f"cannot read excitation statistics {str(path)!r}: {exc}") from exc
    with data:
        if "blocks" not in data:
            raise SenetError(f"{str(path)!r} is not an excitation-statistics file (no 'blocks' array)")
        out = ExcitationStats(class_names=[str(c) for c in data["class_names"]])
        for name in (str(b) for b in data["blocks"]):
            out.blocks[name] = ClassStats(
                data[f"{name}/count"], data[f"{name}/mean"], data[f"{name}/m2"], data[f"{name}/low"],
                data[f"{name}/high"],
            )  # fmt: skip
    return out
