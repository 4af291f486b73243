"""The run folder: one typed view of what ``senet train`` leaves on disk, for everything that reads or writes a run.

A run folder holds ``config.yaml`` (the resolved config), ``meta.json`` (versions, machine, data), ``last.pt`` (the
checkpoint), ``metrics.{csv,jsonl}``, ``result.json`` and, for held-out splits, ``split.json``. The checkpoint repeats
what evaluation and prediction need without the folder: the config, class names and preprocessing.

>>> from senet.runs import load_run
>>> run = load_run("runs/se_resnet20-s0")          # doctest: +SKIP
>>> run.model_name, run.num_classes, run.preprocess["img_size"]   # doctest: +SKIP

This module reads and writes files only; building the model of a run is :func:`senet.resolve.model_from_run`.
It imports nothing of senet above ``errors``/``utils`` so that ``weights`` can read run checkpoints without a cycle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from senet.errors import SenetError
from senet.utils.io import atomic_write_text

__all__ = ["CHECKPOINT_FORMAT", "Run", "load_run", "read_run_checkpoint", "is_run_checkpoint"]

#: Format tag stored in every ``senet train`` checkpoint.
CHECKPOINT_FORMAT = "senet.train/1"
CONFIG_FILE, META_FILE, CHECKPOINT_FILE = "config.yaml", "meta.json", "last.pt"
METRICS_FILE, RESULT_FILE = "metrics.jsonl", "result.json"
#: The ``meta.json`` entries a checkpoint keeps as its ``version``.
_VERSION_KEYS = ("senet", "torch", "git_commit")


def is_run_checkpoint(obj: Any) -> bool:
    """Whether a loaded object is a ``senet train`` checkpoint (a mapping with the ``senet.train/`` format tag)."""
    return isinstance(obj, Mapping) and str(obj.get("format", "")).startswith("senet.train/")


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def read_run_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ``senet train`` checkpoint safely (``weights_only=True``); a run folder means its ``last.pt``."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / CHECKPOINT_FILE
    if not p.is_file():
        raise SenetError(
            f"checkpoint {str(p)!r} does not exist: pass a .pt written by `senet train` or its run folder"
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors come in many types; all mean "not our file"
        raise SenetError(f"cannot read checkpoint {str(p)!r}: {str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SenetError(f"{str(p)!r} is not a `senet train` checkpoint (no {CHECKPOINT_FORMAT!r} format tag)")
    return ckpt


@dataclass
class Run:
    """A training run: where it lives, how it was configured, what its model outputs and how inputs are prepared.

    Written by the trainer (:meth:`save` at the start, :meth:`checkpoint_fields` in every checkpoint) and by
    ``senet prune-attention``; read back with :func:`load_run` by eval, predict, analyze, export, convert and resume.
    """

    path: Path  # the run folder
    config: dict[str, Any]  # the resolved TrainConfig as a dict (config.yaml)
    classes: list[str] = field(default_factory=list)  # class folder names, in label order
    class_names: list[str] = field(default_factory=list)  # readable names (WordNet ids mapped), same order
    preprocess: dict[str, Any] = field(default_factory=dict)  # kind, img_size, crop_pct, mean, std
    meta: dict[str, Any] = field(default_factory=dict)  # meta.json: versions, machine, data path, ...
    version: dict[str, Any] = field(default_factory=dict)  # senet / torch / git commit that wrote the checkpoint
    checkpoint: dict[str, Any] | None = field(default=None, repr=False)  # the raw checkpoint (weights, optimizer)

    # -- what the config says ------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return str(self.config["model"])

    @property
    def task(self) -> str:
        return str(self.config.get("task") or "classify")

    @property
    def num_classes(self) -> int | None:
        """The classifier's outputs; ``None`` for a denoiser (its data folder's classes are not its outputs)."""
        return None if self.task == "denoise" else len(self.classes)

    @property
    def input_size(self) -> tuple[int, int, int]:
        size = int(self.preprocess.get("img_size") or 32)
        return (3, size, size)

    # -- weights -------------------------------------------------------------------------------------------------
    def state_dict(self, use_ema: bool = True) -> dict[str, torch.Tensor]:
        """The trained weights: the EMA copy when the run kept one and ``use_ema``, else the raw model's."""
        if self.checkpoint is None:
            raise SenetError(f"run {str(self.path)!r} was loaded without its checkpoint")
        ema = self.checkpoint.get("ema")
        return ema if use_ema and ema is not None else self.checkpoint["model"]

    # -- what training left beside it -------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """The per-epoch rows of ``metrics.jsonl`` (``[]`` before the first epoch ended)."""
        f = self.path / METRICS_FILE
        if not f.is_file():
            return []
        return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]

    def result(self) -> dict[str, Any]:
        """``result.json``: the final result of a finished or stopped run (``{}`` while it trains)."""
        f = self.path / RESULT_FILE
        return dict(json.loads(f.read_text(encoding="utf-8"))) if f.is_file() else {}

    # -- writing -------------------------------------------------------------------------------------------------
    def checkpoint_fields(self) -> dict[str, Any]:
        """What every checkpoint of this run repeats so it can be evaluated without the folder or the data."""
        out: dict[str, Any] = {
            "config": self.config,
            "classes": list(self.classes),
            "class_names": list(self.class_names),
            "preprocess": self.preprocess,
        }
        if self.version:
            out["version"] = dict(self.version)
        return out

    def save(self) -> None:
        """Write ``config.yaml`` and ``meta.json`` into the run folder (atomically; the folder must exist)."""
        atomic_write_text(self.path / CONFIG_FILE, yaml.safe_dump(self.config, sort_keys=False))
        atomic_write_text(self.path / META_FILE, json.dumps(self.meta, indent=2) + "\n")

    # -- reading -------------------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, ckpt: Mapping[str, Any], path: str | os.PathLike[str] = ".", meta: dict[str, Any] | None = None
    ) -> Run:
        """The run a loaded checkpoint describes (older checkpoints without ``class_names``/``preprocess`` too)."""
        classes = [str(c) for c in ckpt.get("classes") or []]
        return cls(
            path=Path(path),
            config=_mapping(ckpt.get("config")),
            classes=classes,
            class_names=[str(c) for c in ckpt.get("class_names") or classes],
            preprocess=_mapping(ckpt.get("preprocess")),
            meta=dict(meta or {}),
            version=_mapping(ckpt.get("version")),
            checkpoint=dict(ckpt),
        )

    @staticmethod
    def version_of(meta: dict[str, Any]) -> dict[str, Any]:
        """The part of ``meta.json`` a checkpoint keeps as its ``version``."""
        return {k: v for k, v in meta.items() if k in _VERSION_KEYS}


def _read_meta(folder: Path) -> dict[str, Any]:
    f = folder / META_FILE
    if not f.is_file():
        return {}
    try:
        return dict(json.loads(f.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        # meta.json only describes the run (versions, machine); a damaged one must not stop eval or predict.
        return {}


def _read_config(folder: Path) -> dict[str, Any] | None:
    f = folder / CONFIG_FILE
    if not f.is_file():
        return None
    try:
        cfg = yaml.safe_load(f.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SenetError(f"{str(f)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return dict(cfg or {})


def load_run(
    path: str | os.PathLike[str], *, checkpoint: bool = True, map_location: str | torch.device = "cpu"
) -> Run:
    """The run at ``path``: a run folder, or a checkpoint file (a run's ``last.pt`` or one saved elsewhere).

    With ``checkpoint`` (the default) the checkpoint is read (``weights_only=True``) and supplies the config, classes
    and preprocessing; ``meta.json`` is read beside a run's ``last.pt``. Without it only ``config.yaml`` and
    ``meta.json`` of the folder are read (what ``--resume`` needs before training starts).

    Raises:
        SenetError: no checkpoint (or, without ``checkpoint``, no ``config.yaml``) where one was expected, or a file
            that is not a ``senet train`` checkpoint.
    """
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    # meta.json belongs to the folder's own last.pt; a checkpoint saved elsewhere (pruned) has no meta of its own.
    own_folder = p.is_dir() or p.name == CHECKPOINT_FILE
    meta = _read_meta(folder) if own_folder or not checkpoint else {}
    if not checkpoint:
        cfg = _read_config(folder)
        if cfg is None:
            raise SenetError(f"{str(folder)!r} holds no {CONFIG_FILE}: not a `senet train` run folder")
        return Run(path=folder, config=cfg, meta=meta, version=Run.version_of(meta))
    return Run.from_checkpoint(read_run_checkpoint(p, map_location), folder, meta)
