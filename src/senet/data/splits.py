"""Training and evaluation splits that are not ``train/`` + ``val/`` folders: file lists chosen once, then reused.

Three cases, all read through explicit :class:`FileLists` (relative paths ``[<split>/]<class>/<file>`` under one root):

* ``val_fraction=F``: hold out a stratified fraction ``F`` of every class (seeded by ``split_seed``) of a split-less
  class folder ``root/<class>/<image>`` (or of the ``train/`` or ``train_split`` folder);
* ``train_split=A, val_split=B``: two sub-folders of class folders, e.g. PACS's ``photo/`` and ``sketch/`` for
  training on one domain and evaluating on another. Their class sets may differ: labels index the union of the class
  names, so a class is the same output whichever split has it (a class without training images is never learnt);
* evaluation of a split-less class folder: every image, labelled by folder name against a checkpoint's classes.

A training run writes its lists to ``<run>/split.json`` (:data:`SPLIT_FILE`); ``--resume`` and ``senet eval`` read
them back, so they see exactly the images the run held out even if files were added to the folder since.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from senet.errors import SenetError
from senet.utils.io import atomic_write_text

from .sources import DataSource, class_images, detect_source, is_class_folder, resolve_data

__all__ = ["SPLIT_FILE", "FileLists", "eval_source", "fraction_lists", "named_lists", "run_source", "split_options"]

SPLIT_FILE = "split.json"
_OPTION_KEYS = ("val_fraction", "train_split", "val_split", "split_seed")


@dataclass
class FileLists:
    """Image files of each split as paths relative to ``root``; ``classes[i]`` is label ``i`` in every split, and a
    file's class is its parent folder's name. ``how`` records the options that chose the lists."""

    root: str
    classes: list[str]
    files: dict[str, list[str]]
    how: dict[str, Any] = field(default_factory=dict)

    def listing(
        self, split: str, root: str | os.PathLike[str] | None = None
    ) -> tuple[list[Path], list[int], list[str]]:
        """``(files, labels, classes)`` of ``split``, like :func:`senet.data.sources.list_folder`."""
        if split not in self.files:
            raise SenetError(f"no {split!r} file list (have: {', '.join(self.files)})")
        base = Path(root if root is not None else self.root)
        index = {c: i for i, c in enumerate(self.classes)}
        rel = self.files[split]
        if not rel:
            raise SenetError(f"the {split} split of {self.root!r} holds no images")
        return [base / r for r in rel], [index[PurePosixPath(r).parts[-2]] for r in rel], list(self.classes)

    def digest(self) -> str:
        """A short hash of the classes and every list (part of the decoded-tensor cache key)."""
        return hashlib.sha1(json.dumps([self.classes, self.files], sort_keys=True).encode()).hexdigest()[:16]

    def source(self, splits: tuple[str, ...] | None = None) -> DataSource:
        """A folder :class:`DataSource` reading these lists (only ``splits`` of them when given)."""
        lists = self if splits is None else FileLists(self.root, self.classes, {s: self.files[s] for s in splits})
        lists.how = dict(self.how)
        return DataSource(Path(self.root), "folder", self.root, tuple(lists.files), lists=lists)

    def save(self, path: str | os.PathLike[str]) -> Path:
        data = {"root": self.root, "how": self.how, "classes": self.classes, "files": self.files}
        atomic_write_text(Path(path), json.dumps(data, indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> FileLists:
        """Read a :data:`SPLIT_FILE`; ``root`` replaces the recorded root (the dataset moved)."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            lists = cls(str(root or d["root"]), list(d["classes"]), {k: list(v) for k, v in d["files"].items()})
            lists.how = dict(d.get("how") or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SenetError(
                f"{str(path)!r} is not a senet split file ({exc}); delete it to choose the split again"
            ) from None
        missing = next((r for rs in lists.files.values() for r in rs if not (Path(lists.root) / r).is_file()), None)
        if missing is not None:
            raise SenetError(
                f"{str(path)!r} lists {missing!r}, which is not under {lists.root!r} any more: restore it, or train "
                "a new run (a new --output) to choose a new split"
            )
        return lists


def split_options(cfg: Any) -> dict[str, Any]:
    """The split settings of a :class:`~senet.train.TrainConfig` or of a checkpoint's config dict."""
    get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
    return {
        "val_fraction": float(get("val_fraction", 0.0) or 0.0),
        "train_split": get("train_split", None),
        "val_split": get("val_split", None),
        "split_seed": int(get("split_seed", 0) or 0),
    }


def _uses_lists(opts: dict[str, Any]) -> bool:
    return bool(opts["val_fraction"] or opts["train_split"] or opts["val_split"])


def fraction_lists(root: str | os.PathLike[str], fraction: float, seed: int = 0, sub: str = "") -> FileLists:
    """Hold out ``fraction`` of each class of ``root/[sub/]<class>/<image>`` as ``val``, the rest as ``train``.

    Stratified: every class gives ``round(fraction * n)`` images (at least 1, and at least 1 stays for training), drawn
    with a generator seeded by ``seed``, so the same folder and seed always give the same lists.
    """
    if not 0.0 < fraction < 1.0:
        raise SenetError(f"val_fraction must be between 0 and 1 (e.g. 0.2), got {fraction}")
    root = Path(root)
    per_class = class_images(root / sub if sub else root)
    rng = np.random.default_rng(seed)
    prefix = f"{sub}/" if sub else ""
    train: list[str] = []
    val: list[str] = []
    for c, names in per_class.items():
        n = len(names)
        if n < 2:
            raise SenetError(
                f"class {c!r} of {str(root / sub)!r} has {n} image(s): --val-fraction needs at least 2 per class "
                "(one to train on, one to evaluate); add images or remove the class folder"
            )
        n_val = min(n - 1, max(1, round(fraction * n)))
        held = set(rng.permutation(n)[:n_val].tolist())
        for i, name in enumerate(names):
            (val if i in held else train).append(f"{prefix}{c}/{name}")
    how = {"val_fraction": fraction, "split_seed": seed, "from": sub or "."}
    return FileLists(str(root), list(per_class), {"train": train, "val": val}, how)


def named_lists(root: str | os.PathLike[str], train_split: str, val_split: str) -> tuple[FileLists, str]:
    """``train`` from ``root/<train_split>/<class>/`` and ``val`` from ``root/<val_split>/<class>/``, labelled over the
    union of their class names; also a note naming the classes only one split has (empty when they agree)."""
    root = Path(root)
    for s in (train_split, val_split):
        if not (root / s).is_dir():
            subs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise SenetError(f"{str(root)!r} has no sub-folder {s!r} (it has: {', '.join(subs) or 'none'})")
    tr, va = class_images(root / train_split), class_images(root / val_split)
    classes = sorted(set(tr) | set(va))
    files = {
        "train": [f"{train_split}/{c}/{n}" for c in classes for n in tr.get(c, [])],
        "val": [f"{val_split}/{c}/{n}" for c in classes for n in va.get(c, [])],
    }
    note = ""
    only_t, only_v = sorted(set(tr) - set(va)), sorted(set(va) - set(tr))
    if only_t or only_v:
        note = (
            f"the class folders of {train_split}/ and {val_split}/ differ (only in {train_split}: {only_t or 'none'}; "
            f"only in {val_split}: {only_v or 'none'}): the model gets all {len(classes)} classes as outputs, a class "
            f"without {train_split} images is never learnt and one without {val_split} images is not evaluated"
        )
    return FileLists(str(root), classes, files, {"train_split": train_split, "val_split": val_split}), note


def _plan(path: Path, opts: dict[str, Any]) -> tuple[FileLists, str]:
    """Choose the lists for ``opts`` (see :func:`run_source`); also a note for the user (may be empty)."""
    frac, tr, va = opts["val_fraction"], opts["train_split"], opts["val_split"]
    if not path.is_dir():
        raise SenetError(
            f"--val-fraction and --train-split/--val-split read a folder, and {str(path)!r} is not one: extract it "
            "and pass the folder"
        )
    if frac and va:
        raise SenetError(
            "give either --val-split (a folder to evaluate on) or --val-fraction (a held-out share), not both"
        )
    if va:
        return named_lists(path, tr or "train", va)
    if not frac:
        raise SenetError(f"--train-split {tr} needs --val-split NAME or --val-fraction F to say what to evaluate on")
    if tr:
        if not (path / tr).is_dir():
            named_lists(path, tr, tr)  # the one-line "no sub-folder" error listing what there is
        return fraction_lists(path, frac, opts["split_seed"], tr), ""
    if is_class_folder(path):
        return fraction_lists(path, frac, opts["split_seed"]), ""
    src = detect_source(path)
    if src.kind != "folder" or "train" not in src.splits:
        raise SenetError(f"--val-fraction needs class folders or a train/ folder under {str(path)!r}")
    note = ""
    if len(src.splits) > 1:
        note = f"--val-fraction {frac}: evaluating on a share of train/, not on {str(path)!r}'s own evaluation split"
    return fraction_lists(src.root, frac, opts["split_seed"], "train"), note


def run_source(
    path: str | os.PathLike[str],
    opts: dict[str, Any],
    run_dir: str | os.PathLike[str] | None = None,
    *,
    save: bool = True,
    say: Callable[[str], None] | None = None,
) -> Path | DataSource:
    """The data of a training run: ``path`` itself when ``opts`` (:func:`split_options`) choose no file lists, else a
    :class:`DataSource` over the lists -- read from ``run_dir/split.json`` when the run already has one (resume), else
    chosen now and written there (``save``)."""
    path = Path(path)
    if not _uses_lists(opts):
        return path
    record = Path(run_dir) / SPLIT_FILE if run_dir is not None else None
    if record is not None and record.is_file():
        lists = FileLists.load(record, root=_root_for(path, opts))
        wanted = _plan_how(opts)
        if {k: lists.how.get(k) for k in wanted} != wanted:
            raise SenetError(
                f"{str(record)!r} was chosen with {lists.how}, not {wanted}: resume with the run's own split settings "
                "or start a new --output"
            )
        return lists.source()
    lists, note = _plan(path, opts)
    if note and say is not None:
        say(f"senet train: note: {note}")
    if record is not None and save:
        lists.save(record)
    return lists.source()


def _plan_how(opts: dict[str, Any]) -> dict[str, Any]:
    if opts["val_split"]:
        return {"train_split": opts["train_split"] or "train", "val_split": opts["val_split"]}
    return {"val_fraction": opts["val_fraction"], "split_seed": opts["split_seed"]}


def _root_for(path: Path, opts: dict[str, Any]) -> Path:
    # Fraction lists of a train/ tree are relative to the folder holding train/ (a nested top folder included).
    if opts["val_fraction"] and not opts["train_split"] and path.is_dir() and not is_class_folder(path):
        try:
            return Path(detect_source(path).root)
        except SenetError:
            pass
    return path


def eval_source(
    data: str | os.PathLike[str] | None,
    cfg: dict[str, Any],
    classes: list[str],
    run_dir: str | os.PathLike[str] | None,
) -> Path | DataSource:
    """What ``senet eval`` (and ``analyze``/``prune-attention``) evaluates for a checkpoint with config ``cfg`` and
    class list ``classes``, from run folder ``run_dir``:

    * the run's own held-out list (``split.json``, else chosen again from the recorded settings) when ``data`` is
      ``None`` or the run's own dataset and the run used file lists;
    * every image of ``data`` when it is a split-less class folder, labelled by folder name against ``classes`` (a
      folder whose name is not one of them is an error);
    * else the resolved dataset path, evaluated on its ``val/`` or ``test/`` split as before.
    """
    opts = split_options(cfg)
    split_names = tuple(s for s in (opts["train_split"], opts["val_split"]) if s)
    dataset = cfg.get("dataset", "cifar10")
    own = resolve_data(cfg.get("data"), dataset, False, split_names) if _uses_lists(opts) else None
    path = (
        own if data is None and own is not None else resolve_data(data or cfg.get("data"), dataset, False, split_names)
    )
    if own is not None and path.resolve() == own.resolve():
        record = Path(run_dir) / SPLIT_FILE if run_dir is not None else None
        if record is not None and record.is_file():
            lists = FileLists.load(record, root=_root_for(path, opts))
        else:
            lists, _ = _plan(path, opts)
        return lists.source(("val",))
    if is_class_folder(path):
        return whole_folder(path, classes).source(("val",))
    return path


def whole_folder(folder: str | os.PathLike[str], classes: list[str]) -> FileLists:
    """Every image of ``folder/<class>/<image>`` as the ``val`` list, labelled by ``classes`` (a checkpoint's)."""
    folder = Path(folder)
    per_class = class_images(folder)
    unknown = [c for c in per_class if c not in classes]
    if unknown:
        shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
        raise SenetError(
            f"class folder {unknown[0]!r} of {str(folder)!r} is not one of the checkpoint's {len(classes)} classes "
            f"({shown}): rename or remove it"
        )
    files = [f"{c}/{n}" for c in classes if c in per_class for n in per_class[c]]
    if not files:
        raise SenetError(f"no images under {str(folder)!r}")
    return FileLists(str(folder), list(classes), {"val": files}, {"whole_folder": True})
