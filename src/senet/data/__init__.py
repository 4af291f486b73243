"""Datasets and loaders: ImageFolder trees, tar archives of them, CIFAR pickles; a tensor fast path for small images
and a DataLoader path for ImageNet-sized ones.

>>> from senet.data import create_loaders
>>> data = create_loaders("../shared/data/cifar10-jpeg.tar.gz", batch_size=256)   # doctest: +SKIP
>>> x, y = next(iter(data.train))                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import torch
from torchvision.io import decode_image

from senet.errors import SenetError
from senet.utils.system import default_workers

from .fast import TensorLoader, TensorSplit, channel_stats, decode_split, load_tensor_split, shard_indices
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, eval_transform, file_dataset, train_transform
from .sources import (
    DataSource,
    default_cache_dir,
    default_data_dir,
    detect_source,
    eval_split,
    read_split,
    resolve_data,
    safe_extract,
    split_listing,
)

__all__ = [
    "DataBundle",
    "DataSource",
    "DeviceLoader",
    "LoaderConfig",
    "TensorLoader",
    "TensorSplit",
    "create_loaders",
    "decode_split",
    "default_cache_dir",
    "default_data_dir",
    "detect_source",
    "eval_split",
    "load_tensor_split",
    "read_split",
    "resolve_data",
    "safe_extract",
    "shard_indices",
]

# Above this side length the tensor fast path stops paying off (and would hold the dataset decoded in memory).
SMALL_IMAGE_MAX = 64


@dataclass
class DataBundle:
    """What :func:`create_loaders` returns: the loaders plus what a checkpoint needs to preprocess like training."""

    train: Any
    eval: Any
    classes: list[str]
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    img_size: int
    loader: str  # "tensor" | "dataloader"
    source: DataSource
    preprocess: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # undecodable files left out with ``skip_bad_images``


@dataclass
class LoaderConfig:
    """How :func:`create_loaders` reads and batches a dataset. Build it from a training config with
    :meth:`from_train_config`, or directly (evaluation passes the run's recorded preprocessing as ``mean``/``std``)."""

    batch_size: int
    eval_batch_size: int | None = None  # None: batch_size
    device: torch.device | str = "cpu"
    loader: str = "auto"  # auto | tensor | dataloader
    img_size: int | None = None  # dataloader path only (default 224); the tensor path keeps the stored size
    crop_pct: float = 0.875
    # Training augmentation.
    pad: int = 4
    pad_mode: str = "zeros"
    flip: bool = True
    flip_mode: str = "random"
    cutout: int = 0
    workers: int | None = None  # None: this machine's default (senet.utils.system.default_workers)
    # Sharding and seeding (DDP: one slice per rank).
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    channels_last: bool = False
    cache_dir: str | os.PathLike[str] | None = None
    train_subset: int = 0
    eval_subset: int = 0
    with_train: bool = True
    mean: tuple[float, ...] | None = None  # None: measured (tensor path) or ImageNet's (dataloader path)
    std: tuple[float, ...] | None = None
    skip_bad_images: bool = False

    #: The settings a training config (:class:`senet.train.TrainConfig`) carries under the same names.
    FROM_TRAIN_CONFIG: ClassVar[tuple[str, ...]] = (
        "batch_size",
        "eval_batch_size",
        "loader",
        "img_size",
        "crop_pct",
        "pad",
        "pad_mode",
        "flip",
        "flip_mode",
        "cutout",
        "workers",
        "seed",
        "cache_dir",
        "train_subset",
        "eval_subset",
        "skip_bad_images",
    )

    @classmethod
    def from_train_config(cls, cfg: Any, **overrides: Any) -> LoaderConfig:
        """The loader settings of training config ``cfg``; ``overrides`` set the rest (``device``, ``rank``,
        ``world_size``, ``channels_last``) or replace what a task forces (``mean``, ``std``, ``pad``, ...)."""
        values = {k: getattr(cfg, k) for k in cls.FROM_TRAIN_CONFIG}
        return cls(**{**values, **overrides})

    @classmethod
    def from_run(cls, run: Any, batch_size: int, **overrides: Any) -> LoaderConfig:
        """Evaluation-only loaders that preprocess as trained run ``run`` (a :class:`senet.runs.Run`) evaluated:
        its recorded size, crop and normalisation. ``overrides`` set the rest (``device``, ``workers``, ...)."""
        pre = run.preprocess
        values = dict(
            batch_size=batch_size,
            loader="tensor" if pre.get("kind") == "tensor" else "dataloader",
            img_size=pre.get("img_size"),
            crop_pct=float(pre.get("crop_pct", run.config.get("crop_pct", 0.875))),
            with_train=False,
            mean=tuple(pre["mean"]) if pre.get("mean") else None,
            std=tuple(pre["std"]) if pre.get("std") else None,
        )
        return cls(**{**values, **overrides})


def create_loaders(
    data: str | os.PathLike[str] | DataSource, config: LoaderConfig | None = None, /, **settings: Any
) -> DataBundle:
    """Training and evaluation loaders for the dataset at ``data`` (see :mod:`senet.data.sources` for the forms).

    ``config`` is a :class:`LoaderConfig`; keyword ``settings`` are its fields, given instead of it or replacing
    some of its values (``create_loaders(path, batch_size=256)``).

    ``loader="auto"`` takes the tensor fast path for pickles and images up to 64 px, else the DataLoader path.
    ``mean``/``std`` override the normalisation (evaluation uses the training run's values; by default the tensor
    path measures them on the training images and the DataLoader path uses ImageNet's).
    ``skip_bad_images`` leaves out files that cannot be decoded (listed in ``DataBundle.skipped``) instead of
    stopping with an error naming the first one.
    ``train_subset > 0`` keeps a fixed, class-balanced-in-expectation random subset of that many training images.
    ``eval_subset > 0`` evaluates on a fixed random subset of that many held-out images (the same for every seed).
    ``flip_mode="alternate"`` (tensor path only) flips each image on every other epoch (see :class:`TensorLoader`).
    """
    cfg = LoaderConfig(**settings) if config is None else dataclasses.replace(config, **settings)
    src = data if isinstance(data, DataSource) else detect_source(data)
    ev = eval_split(src)
    if cfg.with_train and "train" not in src.splits:
        raise SenetError(f"{str(src.path)!r} has no train/ split")
    if cfg.loader not in ("auto", "tensor", "dataloader"):
        raise SenetError(f"loader must be auto, tensor or dataloader, not {cfg.loader!r}")
    loader = cfg.loader
    if loader == "auto":
        loader = "tensor" if src.kind == "pickle" or _first_image_side(src, ev) <= SMALL_IMAGE_MAX else "dataloader"
    if loader == "tensor":
        return _tensor_loaders(src, ev, cfg)
    # The file loader augments with RandomResizedCrop (+ flip): settings of the tensor path's crop are refused rather
    # than ignored (`pad` keeps its default there: it only means something to the tensor path).
    for key, value, default in (
        ("flip_mode", cfg.flip_mode, "random"),
        ("pad_mode", cfg.pad_mode, "zeros"),
        ("cutout", cfg.cutout, 0),
    ):
        if value != default:
            raise SenetError(
                f"{key} {value!r} needs the tensor loader (loader=tensor, images up to {SMALL_IMAGE_MAX} px); this "
                f"data takes the file loader (RandomResizedCrop + flip): drop {key}"
            )
    return _file_loaders(src, ev, cfg)


def _tensor_loaders(src: DataSource, ev: str, cfg: LoaderConfig) -> DataBundle:
    """The tensor fast path: whole splits decoded once (cached), augmented in batches on the device."""
    tr = load_tensor_split(src, "train", cfg.cache_dir, skip_bad=cfg.skip_bad_images) if cfg.with_train else None
    te = load_tensor_split(src, ev, cfg.cache_dir, skip_bad=cfg.skip_bad_images)
    if tr is not None and cfg.train_subset:
        keep = (
            torch.randperm(len(tr), generator=torch.Generator().manual_seed(12345))[: cfg.train_subset].sort().values
        )
        tr = TensorSplit(tr.images[keep], tr.labels[keep], tr.classes, tr.class_names)
    if cfg.eval_subset and cfg.eval_subset < len(te):
        keep = _subset(len(te), cfg.eval_subset)
        te = TensorSplit(te.images[keep], te.labels[keep], te.classes, te.class_names, te.skipped)
    mean, std = cfg.mean, cfg.std
    if mean is None or std is None:
        mean, std = channel_stats((tr or te).images)
    kw = dict(
        device=cfg.device,
        mean=mean,
        std=std,
        seed=cfg.seed,
        rank=cfg.rank,
        world_size=cfg.world_size,
        channels_last=cfg.channels_last,
    )
    augment = dict(pad=cfg.pad, pad_mode=cfg.pad_mode, flip=cfg.flip, flip_mode=cfg.flip_mode, cutout=cfg.cutout)
    train_loader = TensorLoader(tr, cfg.batch_size, train=True, **augment, **kw) if tr is not None else None
    eval_loader = TensorLoader(te, cfg.eval_batch_size or cfg.batch_size, train=False, **kw)
    size = int(te.images.shape[-1])
    if tr is not None and tr.classes != te.classes:
        raise SenetError(_class_mismatch(src, ev, tr.classes, te.classes))
    return DataBundle(
        train_loader,
        eval_loader,
        te.classes,
        te.class_names,
        mean,
        std,
        size,
        "tensor",
        src,
        {"kind": "tensor", "img_size": size, "mean": list(mean), "std": list(std)},
        (tr.skipped if tr is not None else []) + te.skipped,
    )


def _file_loaders(src: DataSource, ev: str, cfg: LoaderConfig) -> DataBundle:
    """The DataLoader path: image files decoded by workers, resized and cropped as ImageNet training does."""
    size = cfg.img_size or 224
    mean, std = cfg.mean or IMAGENET_MEAN, cfg.std or IMAGENET_STD
    workers = cfg.workers if cfg.workers is not None else default_workers()
    kw = dict(
        device=cfg.device,
        workers=workers,
        seed=cfg.seed,
        rank=cfg.rank,
        world_size=cfg.world_size,
        channels_last=cfg.channels_last,
    )
    skip = cfg.skip_bad_images
    train_ds = (
        file_dataset(src, "train", train_transform(size, mean, std, flip=cfg.flip), cfg.cache_dir, skip)
        if cfg.with_train
        else None
    )
    if train_ds is not None and cfg.train_subset:
        gen = torch.Generator().manual_seed(12345)
        keep = torch.randperm(len(train_ds), generator=gen)[: cfg.train_subset].sort().values
        train_ds.files = [train_ds.files[i] for i in keep.tolist()]
        train_ds.labels = [train_ds.labels[i] for i in keep.tolist()]
    eval_ds = file_dataset(src, ev, eval_transform(size, cfg.crop_pct, mean, std), cfg.cache_dir, skip)
    if cfg.eval_subset and cfg.eval_subset < len(eval_ds):
        keep = _subset(len(eval_ds), cfg.eval_subset).tolist()
        eval_ds.files = [eval_ds.files[i] for i in keep]
        eval_ds.labels = [eval_ds.labels[i] for i in keep]
    if train_ds is not None and train_ds.classes != eval_ds.classes:
        raise SenetError(_class_mismatch(src, ev, train_ds.classes, eval_ds.classes))
    return DataBundle(
        DeviceLoader(train_ds, cfg.batch_size, train=True, **kw) if train_ds is not None else None,
        DeviceLoader(eval_ds, cfg.eval_batch_size or cfg.batch_size, train=False, **kw),
        eval_ds.classes,
        eval_ds.class_names,
        mean,
        std,
        size,
        "dataloader",
        src,
        {"kind": "resize_crop", "img_size": size, "crop_pct": cfg.crop_pct, "mean": list(mean), "std": list(std)},
        (train_ds.skipped if train_ds is not None else []) + eval_ds.skipped,  # type: ignore[attr-defined]
    )


def _subset(n: int, k: int) -> torch.Tensor:
    # Files are sorted by class, so a prefix would be a few classes only; a fixed draw keeps every seed on one set.
    return torch.randperm(n, generator=torch.Generator().manual_seed(54321))[:k].sort().values


def _class_mismatch(src: DataSource, ev: str, train: list[str], other: list[str]) -> str:
    # Labels are indices into the sorted class list, so differing sets would silently mislabel every image.
    only_t = sorted(set(train) - set(other))[:5]
    only_e = sorted(set(other) - set(train))[:5]
    return (
        f"train and {ev} class folders differ in {str(src.path)!r} (only in train: {only_t or 'none'}, only in {ev}: "
        f"{only_e or 'none'}): give both splits the same class folders (an empty folder is fine)"
    )


def _first_image_side(src: DataSource, split: str) -> int:
    if src.kind == "folder":
        files, _, _ = split_listing(src, split)
        data = files[0].read_bytes()
    else:
        data = b""
        with tarfile.open(src.path, "r:*") as tf:
            for m in tf:
                parts = PurePosixPath(m.name).parts
                if m.isfile() and len(parts) >= 3 and parts[-3] == split:
                    data = tf.extractfile(m).read()  # type: ignore[union-attr]
                    break
    img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    return int(max(img.shape[-2:]))
