"""The paper's ablation grids: named settings (cells) of a model, each trained once per seed by a sweep.

A *grid* is a list of :class:`Cell` s; each cell is a set of model keyword overrides (``attn_layer``,
``attn_kwargs``, ``attn_position``, ``attn_stages``) and optional training overrides.
:func:`senet.train.sweep.run_grid` trains them; :mod:`senet.analysis.ablate` turns the records into tables.

Paper numbers are the SE-ResNet-50 **ImageNet** ablations (Hu et al., TPAMI 2019, Tables 10-16) and the ECA paper's
ResNet-50 comparison, copied from ``reference-numbers.md``; they are shown beside CIFAR results for direction only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from senet.errors import SenetError

__all__ = ["Cell", "Grid", "GRIDS", "named_grid", "load_grid"]


@dataclass
class Cell:
    """One setting of a grid.

    Args:
        label: short name shown in tables (also the run directory name, sanitised).
        model_kwargs: keyword overrides for ``create_model`` (e.g. ``{"attn_layer": "se"}``).
        train: overrides of the training config for this cell only.
        paper: the paper's (top-1, top-5) error for this setting, if it has one.
    """

    label: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    paper: tuple[float, float] | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.label).strip("_") or "cell"


@dataclass
class Grid:
    """A named list of cells; ``swept`` names the varied setting (x-axis label of the plot)."""

    name: str
    swept: str
    cells: list[Cell]
    paper_source: str = ""


_SE = "SE-ResNet-50 on ImageNet (Hu et al. TPAMI 2019"
_ECA = "ResNet-50 on ImageNet (ECA-Net, Wang et al. CVPR 2020, Table 2; error = 100 - accuracy)"


def _se(**kw: Any) -> dict[str, Any]:
    return {"attn_layer": "se", **kw}


def _excitation_grids() -> dict[str, Grid]:
    """The squeeze/excitation design grids (Tables 10-12)."""
    return {
        "reduction": Grid(
            "reduction",
            "reduction ratio r",
            [
                Cell(f"r={r}", _se(attn_kwargs={"rd_ratio": 1.0 / r, "rd_min": 1}), paper=p)
                for r, p in zip(
                    (2, 4, 8, 16, 32),
                    ((22.29, 6.00), (22.25, 6.09), (22.26, 5.99), (22.28, 6.03), (22.72, 6.20)),
                )
            ],
            _SE + ", Table 10)",
        ),
        "squeeze": Grid(
            "squeeze",
            "squeeze operator",
            [
                Cell("max", _se(attn_kwargs={"squeeze": "max"}), paper=(22.57, 6.09)),
                Cell("avg", _se(), paper=(22.28, 6.03)),
            ],
            _SE + ", Table 11)",
        ),
        "gate": Grid(
            "gate",
            "excitation gate",
            [
                Cell("relu", _se(attn_kwargs={"gate_layer": "relu"}), paper=(23.47, 6.98)),
                Cell("tanh", _se(attn_kwargs={"gate_layer": "tanh"}), paper=(23.00, 6.38)),
                Cell("sigmoid", _se(), paper=(22.28, 6.03)),
            ],
            _SE + ", Table 12)",
        ),
    }


def _stages_grid(stages: Sequence[int]) -> Grid:
    """SE in one stage at a time, then in all (Table 13); ``stages`` are the model's stage numbers."""
    return Grid(
        "stages",
        "stages with SE",
        # Stage numbers follow the paper (ResNet-50: 2..5; CIFAR ResNets: 2..4). The paper reports 2, 3 and 4.
        [
            Cell(
                f"stage {s}",
                _se(attn_stages=[s]),
                paper={2: (23.03, 6.48), 3: (23.04, 6.32), 4: (22.68, 6.22)}.get(s),
            )
            for s in stages
        ]
        + [Cell("all", _se(), paper=(22.28, 6.03))],
        _SE + ", Table 13)",
    )


def _placement_grids() -> dict[str, Grid]:
    """Where the block sits and what it is (Tables 14-16, and ECA-Net's comparison of kinds)."""
    return {
        "position": Grid(
            "position",
            "integration",
            [
                Cell("standard", _se(), paper=(22.28, 6.03)),
                Cell("pre", _se(attn_position="pre"), paper=(22.23, 6.00)),
                Cell("post", _se(attn_position="post"), paper=(22.78, 6.35)),
                Cell("identity", _se(attn_position="identity"), paper=(22.20, 6.15)),
            ],
            _SE + ", Table 14)",
        ),
        "inner": Grid(
            "inner",
            "SE position in the block",
            [
                Cell("standard", _se(), paper=(22.28, 6.03)),
                Cell("SE-3x3", _se(attn_position="inner"), paper=(22.48, 6.02)),
            ],
            _SE + ", Table 15)",
        ),
        "nosqueeze": Grid(
            "nosqueeze",
            "squeeze",
            [
                Cell("SE", _se(), paper=(22.28, 6.03)),
                Cell("NoSqueeze", {"attn_layer": "nosqueeze"}, paper=(22.93, 6.39)),
            ],
            _SE + ", Table 16)",
        ),
        "attention": Grid(
            "attention",
            "attention block",
            [
                Cell("none", {"attn_layer": "none"}, paper=(24.80, 7.48)),
                Cell("SE", _se(), paper=(23.29, 6.62)),
                Cell("ECA", {"attn_layer": "eca"}, paper=(22.52, 6.32)),
                Cell("CBAM", {"attn_layer": "cbam"}, paper=(22.66, 6.31)),
            ],
            "ResNet-50 on ImageNet, ECA-Net (Wang et al. CVPR 2020) Table 2, error = 100 - accuracy; its plain and "
            "SE rows equal Hu et al.'s Table 2",
        ),
    }


def _grids(stages: Sequence[int]) -> dict[str, Grid]:
    return {**_excitation_grids(), "stages": _stages_grid(stages), **_placement_grids()}


#: The named grids.
GRIDS = tuple(_grids((2, 3, 4)))


def named_grid(name: str, stages: Sequence[int] = (2, 3, 4)) -> Grid:
    """A grid from the paper by name (see :data:`GRIDS`); ``stages`` are the model's stage numbers (``stages`` grid).

    The ``reduction`` grid sets ``rd_min=1`` so the SE width is the paper's ``C // r`` (CIFAR nets otherwise keep a
    minimum width, which would make several ratios identical at 16-64 channels).
    """
    grids = _grids(stages)
    if name not in grids:
        raise SenetError(f"unknown grid {name!r}; choose one of {', '.join(grids)} or give a YAML file")
    return grids[name]


def load_grid(path: str | os.PathLike[str]) -> tuple[Grid, dict[str, Any]]:
    """A custom grid from YAML; returns it with the file's ``train`` defaults (may be empty).

    Format::

        name: width            # optional, default: the file name
        swept: SE width        # x-axis label, optional
        model: resnet20        # optional default for --model
        train: {epochs: 5}     # training overrides for every cell, optional
        cells:
          - label: r=4
            model_kwargs: {attn_layer: se, attn_kwargs: {rd_ratio: 0.25}}
            train: {lr: 0.05}  # optional, this cell only
            paper: [22.25, 6.09]  # optional
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SenetError(f"cannot read grid file {str(path)!r}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list) or not doc["cells"]:
        raise SenetError(f"grid file {str(path)!r} needs a non-empty 'cells' list (see senet ablate --help)")
    cells = []
    for i, c in enumerate(doc["cells"]):
        if not isinstance(c, dict) or "label" not in c:
            raise SenetError(f"{path}: cell {i} must be a mapping with a 'label'")
        extra = set(c) - {"label", "model_kwargs", "train", "paper"}
        if extra:
            raise SenetError(f"{path}: cell {c['label']!r} has unknown key(s) {sorted(extra)}")
        paper = tuple(c["paper"]) if c.get("paper") is not None else None
        cells.append(Cell(str(c["label"]), dict(c.get("model_kwargs") or {}), dict(c.get("train") or {}), paper))  # type: ignore[arg-type]
    labels = [c.slug for c in cells]
    if len(set(labels)) != len(labels):
        raise SenetError(f"{path}: cell labels must be unique")
    grid = Grid(
        str(doc.get("name") or path.stem), str(doc.get("swept") or "setting"), cells, str(doc.get("source", ""))
    )
    defaults = dict(doc.get("train") or {})
    if doc.get("model"):
        defaults.setdefault("model", doc["model"])
    return grid, defaults
