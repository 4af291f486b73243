"""The ImageNet-sized path: files decoded per image by DataLoader workers with torchvision transforms v2.

Training: ``RandomResizedCrop(img_size)`` + horizontal flip; evaluation: resize to ``img_size / crop_pct`` and centre
crop ``img_size`` (crop_pct 0.875 is the classic 224/256). Archives are extracted once, safely, into the cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2

from senet.errors import SenetError

from .decode import decode_rgb
from .fast import shard_indices
from .sources import DataSource, _class_names, default_cache_dir, safe_extract, source_key, split_listing

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FileDataset",
    "ShardSampler",
    "DeviceLoader",
    "train_transform",
    "eval_transform",
    "folder_root",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(img_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, scale=(0.08, 1.0), flip: bool = True):  # noqa: ANN001, ANN201
    """RandomResizedCrop + (with ``flip``) a random horizontal flip on uint8 tensors, then float and normalise."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(img_size, scale=scale, antialias=True),
            *([v2.RandomHorizontalFlip()] if flip else []),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def eval_transform(img_size: int, crop_pct: float = 0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD):  # noqa: ANN001, ANN201
    """Resize the short side to ``img_size / crop_pct``, centre crop ``img_size``, float, normalise."""
    return v2.Compose(
        [
            v2.Resize(int(round(img_size / crop_pct)), antialias=True),
            v2.CenterCrop(img_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


class FileDataset(Dataset):
    """Image files with labels; decoded by ``torchvision.io`` (RGB) and passed through ``transform``."""

    def __init__(self, files: list[Path], labels: list[int], classes: list[str], transform=None) -> None:  # noqa: ANN001
        self.files, self.labels, self.classes, self.transform = files, labels, classes, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = decode_rgb(Path(self.files[i]).read_bytes(), str(self.files[i]))
        if self.transform is not None:
            img = self.transform(img)
        return img, self.labels[i]


def folder_root(src: DataSource, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the split folders; an archive is first extracted safely into ``<cache>/extracted/``."""
    if src.kind == "folder":
        return Path(src.root)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = root / "extracted" / f"{src.path.name.split('.')[0]}-{source_key(src)}"
    done = dest / ".senet-complete"
    if not done.is_file():
        safe_extract(src.path, dest)
        done.write_text("ok\n")
    return dest / src.root


def file_dataset(src: DataSource, split: str, transform, cache_dir=None, skip_bad: bool = False) -> FileDataset:  # noqa: ANN001
    """A :class:`FileDataset` over ``split`` of ``src`` (an ImageFolder tree or an archive of one).

    ``skip_bad`` decodes every file once up front (slow on big datasets) and leaves out the undecodable ones, listed
    in ``ds.skipped``; without it a bad file stops the run with a one-line error when a worker reaches it.
    """
    root = folder_root(src, cache_dir)
    files, labels, classes = split_listing(src, split, root)
    skipped: list[str] = []
    if skip_bad:
        keep = []
        for i, f in enumerate(files):
            try:
                decode_rgb(f.read_bytes(), str(f))
                keep.append(i)
            except SenetError:
                skipped.append(str(f))
        if not keep:
            raise SenetError(f"none of the {len(files)} {split} images under {str(root)!r} could be decoded")
        files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    ds = FileDataset(files, labels, classes, transform)
    ds.skipped = skipped  # type: ignore[attr-defined]
    ds.class_names = _class_names(DataSource(root, "folder", str(root)), classes)  # type: ignore[attr-defined]
    return ds


class ShardSampler(Sampler[int]):
    """This rank's indices in the order :func:`senet.data.fast.shard_indices` gives (same sharding as the tensor
    path), skipping ``start_batch`` batches when resuming mid-epoch."""

    def __init__(self, n: int, batch_size: int, *, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.train = n, batch_size, train
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def batches(self) -> list[torch.Tensor]:
        return shard_indices(
            self.n,
            self.batch_size,
            train=self.train,
            epoch=self.epoch,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
        )[self.start_batch :]

    def __iter__(self) -> Iterator[int]:
        for b in self.batches():
            yield from b.tolist()

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches())


class DeviceLoader:
    """A DataLoader (workers, pinned memory) whose batches arrive on ``device`` (channels_last if asked)."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        train: bool,
        device: torch.device | str,
        workers: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.sampler = ShardSampler(len(dataset), batch_size, train=train, seed=seed, rank=rank, world_size=world_size)
        local = batch_size // world_size if train else max(1, -(-batch_size // world_size))
        self.loader = DataLoader(
            dataset,
            batch_size=local,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            drop_last=False,
        )
        self.train, self.batch_size, self.channels_last = train, batch_size, channels_last
        self.num_samples = len(dataset)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch)

    def __len__(self) -> int:
        if self.train:
            return self.num_samples // self.batch_size
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        try:
            yield from self._iter()
        except SenetError as exc:
            # A worker re-raises as "Caught SenetError in DataLoader worker ...\n<traceback>\n<type>: <message>":
            # keep the one line that names the file.
            last = str(exc).strip().splitlines()[-1]
            raise SenetError(last.split("SenetError: ", 1)[-1]) from None

    def _iter(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)
