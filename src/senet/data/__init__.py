"""Datasets and loaders: ImageFolder trees, tar archives of them, CIFAR pickles; a tensor fast path for small images
and a DataLoader path for ImageNet-sized ones.

>>> from senet.data import create_loaders
>>> data = create_loaders("../shared/data/cifar10-jpeg.tar.gz", batch_size=256)   # doctest: +SKIP
>>> x, y = next(iter(data.train))                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch

from senet.errors import SenetError

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
)

__all__ = [
    "DataBundle",
    "DataSource",
    "DeviceLoader",
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


def create_loaders(
    data: str | os.PathLike[str] | DataSource,
    *,
    batch_size: int,
    eval_batch_size: int | None = None,
    device: torch.device | str = "cpu",
    loader: str = "auto",
    img_size: int | None = None,
    crop_pct: float = 0.875,
    pad: int = 4,
    pad_mode: str = "zeros",
    flip: bool = True,
    flip_mode: str = "random",
    cutout: int = 0,
    workers: int | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    channels_last: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    train_subset: int = 0,
    eval_subset: int = 0,
    with_train: bool = True,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    skip_bad_images: bool = False,
) -> DataBundle:
    """Training and evaluation loaders for the dataset at ``data`` (see :mod:`senet.data.sources` for the forms).

    ``loader="auto"`` takes the tensor fast path for pickles and images up to 64 px, else the DataLoader path.
    ``mean``/``std`` override the normalisation (evaluation uses the training run's values; by default the tensor
    path measures them on the training images and the DataLoader path uses ImageNet's).
    ``skip_bad_images`` leaves out files that cannot be decoded (listed in ``DataBundle.skipped``) instead of
    stopping with an error naming the first one.
    ``train_subset > 0`` keeps a fixed, class-balanced-in-expectation random subset of that many training images.
    ``eval_subset > 0`` evaluates on a fixed random subset of that many held-out images (the same for every seed).
    ``flip_mode="alternate"`` (tensor path only) flips each image on every other epoch (see :class:`TensorLoader`).
    """
    src = data if isinstance(data, DataSource) else detect_source(data)
    ev = eval_split(src)
    if with_train and "train" not in src.splits:
        raise SenetError(f"{str(src.path)!r} has no train/ split")
    if loader not in ("auto", "tensor", "dataloader"):
        raise SenetError(f"loader must be auto, tensor or dataloader, not {loader!r}")
    eval_batch_size = eval_batch_size or batch_size
    if loader == "auto":
        loader = "tensor" if src.kind == "pickle" or _first_image_side(src, ev) <= SMALL_IMAGE_MAX else "dataloader"
    if loader == "tensor":
        tr = load_tensor_split(src, "train", cache_dir, skip_bad=skip_bad_images) if with_train else None
        te = load_tensor_split(src, ev, cache_dir, skip_bad=skip_bad_images)
        if tr is not None and train_subset:
            keep = torch.randperm(len(tr), generator=torch.Generator().manual_seed(12345))[:train_subset].sort().values
            tr = TensorSplit(tr.images[keep], tr.labels[keep], tr.classes, tr.class_names)
        if eval_subset and eval_subset < len(te):
            keep = _subset(len(te), eval_subset)
            te = TensorSplit(te.images[keep], te.labels[keep], te.classes, te.class_names, te.skipped)
        if mean is None or std is None:
            mean, std = channel_stats((tr or te).images)
        kw = dict(
            device=device, mean=mean, std=std, seed=seed, rank=rank, world_size=world_size, channels_last=channels_last
        )
        train_loader = (
            TensorLoader(
                tr,
                batch_size,
                train=True,
                pad=pad,
                pad_mode=pad_mode,
                flip=flip,
                flip_mode=flip_mode,
                cutout=cutout,
                **kw,
            )
            if tr is not None
            else None
        )
        eval_loader = TensorLoader(te, eval_batch_size, train=False, **kw)
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
    if flip_mode != "random":
        raise SenetError(
            f"flip_mode {flip_mode!r} needs the tensor loader (loader=tensor); this data takes the "
            "file loader: use flip_mode=random"
        )
    size = img_size or 224
    mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
    if workers is None:
        from senet.utils.system import default_workers

        workers = default_workers()
    kw = dict(device=device, workers=workers, seed=seed, rank=rank, world_size=world_size, channels_last=channels_last)
    train_ds = (
        file_dataset(src, "train", train_transform(size, mean, std), cache_dir, skip_bad_images)
        if with_train
        else None
    )
    if train_ds is not None and train_subset:
        keep = (
            torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(12345))[:train_subset].sort().values
        )
        train_ds.files = [train_ds.files[i] for i in keep.tolist()]
        train_ds.labels = [train_ds.labels[i] for i in keep.tolist()]
    eval_ds = file_dataset(src, ev, eval_transform(size, crop_pct, mean, std), cache_dir, skip_bad_images)
    if eval_subset and eval_subset < len(eval_ds):
        keep = _subset(len(eval_ds), eval_subset).tolist()
        eval_ds.files = [eval_ds.files[i] for i in keep]
        eval_ds.labels = [eval_ds.labels[i] for i in keep]
    if train_ds is not None and train_ds.classes != eval_ds.classes:
        raise SenetError(_class_mismatch(src, ev, train_ds.classes, eval_ds.classes))
    return DataBundle(
        DeviceLoader(train_ds, batch_size, train=True, **kw) if train_ds is not None else None,
        DeviceLoader(eval_ds, eval_batch_size, train=False, **kw),
        eval_ds.classes,
        eval_ds.class_names,
        mean,
        std,
        size,
        "dataloader",
        src,
        {"kind": "resize_crop", "img_size": size, "crop_pct": crop_pct, "mean": list(mean), "std": list(std)},
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
    from pathlib import Path, PurePosixPath

    from torchvision.io import decode_image

    if src.kind == "folder":
        from .sources import split_listing

        files, _, _ = split_listing(src, split)
        data = files[0].read_bytes()
    else:
        import tarfile

        data = b""
        with tarfile.open(src.path, "r:*") as tf:
            for m in tf:
                parts = PurePosixPath(m.name).parts
                if m.isfile() and len(parts) >= 3 and parts[-3] == split:
                    data = tf.extractfile(m).read()  # type: ignore[union-attr]
                    break
    img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    return int(max(img.shape[-2:]))
