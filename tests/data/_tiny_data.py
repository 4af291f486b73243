"""Tiny datasets written at test time: the same pixels as an ImageFolder tree of PNGs, a .tar.gz of it and a
CIFAR-10 python-pickle folder, so every input form must decode to identical tensors."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

CLASSES = ["cat", "dog", "frog"]


def make_pixels(n_per_class: int, seed: int, size: int = 32) -> tuple[torch.Tensor, list[int]]:
    """Random uint8 images whose class shows in a channel's brightness (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    imgs, labels = [], []
    for c in range(len(CLASSES)):
        for _ in range(n_per_class):
            img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
            img[c] = img[c] // 4
            imgs.append(img)
            labels.append(c)
    return torch.stack(imgs), labels


def write_tree(root: Path, n_train: int = 16, n_test: int = 8, size: int = 32, ext: str = ".png") -> dict:
    """``root/train/<class>/NNNN.png`` and ``root/test/...``; returns the pixels and labels per split."""
    from torchvision.io import write_jpeg, write_png

    out = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        pixels, labels = make_pixels(n, seed, size)
        for i, (img, lab) in enumerate(zip(pixels, labels)):
            d = root / split / CLASSES[lab]
            d.mkdir(parents=True, exist_ok=True)
            if ext == ".png":
                write_png(img, str(d / f"{i:04d}.png"))
            else:
                write_jpeg(img, str(d / f"{i:04d}.jpg"), quality=95)
        out[split] = (pixels, labels)
    return out


def write_tar(tree: Path, archive: Path, top: str = "tiny") -> Path:
    """Pack ``tree`` as ``archive`` with members under ``top/`` (like cifar10-jpeg.tar.gz's ``cifar10/``)."""
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tree, arcname=top)
    return archive


def write_cifar_pickles(folder: Path, splits: dict) -> Path:
    """torchvision's ``cifar-10-batches-py`` layout holding ``splits`` (train spread over 5 batches)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CLASSES, "num_vis": 3072}, f)
    px, labels = splits["train"]
    chunks = np.array_split(np.arange(len(labels)), 5)
    for i, idx in enumerate(chunks, 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": px[idx].reshape(len(idx), -1).numpy(), "labels": [labels[j] for j in idx]}, f)
    px, labels = splits["test"]
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": px.reshape(len(labels), -1).numpy(), "labels": list(labels)}, f)
    return folder


def write_class_folder(root: Path, counts: dict[str, int], size: int = 16, seed: int = 0) -> Path:
    """A split-less ``root/<class>/NNNN.png`` tree (a Kaggle download, a PACS domain): ``counts[class]`` images per
    class, whose class shows in a channel's brightness like :func:`make_pixels`."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(seed)
    for c_i, (c, n) in enumerate(sorted(counts.items())):
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
            img[c_i % 3] = img[c_i % 3] // 4
            write_png(img, str(d / f"{i:04d}.png"))
    return root
