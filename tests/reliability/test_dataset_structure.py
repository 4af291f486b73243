"""Dataset layouts that go wrong in practice: empty class folders, no images, train/val class sets that differ,
nested folders, hidden files, symlinks. Each has a clear error or a documented behaviour (docs/reliability.md)."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rel import assert_main_error, encode, rgb_image, write_tree  # noqa: E402

from senet.data import create_loaders, detect_source  # noqa: E402
from senet.data.sources import list_folder  # noqa: E402
from senet.errors import SenetError  # noqa: E402


def _loaders(root: Path, tmp_path: Path, loader: str = "tensor", **kw):  # noqa: ANN003, ANN202
    return create_loaders(root, batch_size=4, loader=loader, img_size=16, workers=0, cache_dir=tmp_path / "c", **kw)


def test_empty_class_folder_keeps_its_label_index(tmp_path: Path) -> None:
    # "bird" sorts first: it keeps label 0 in both splits, so cat/dog labels mean the same everywhere.
    root = write_tree(tmp_path / "ds", n=4)
    for split in ("train", "val"):
        (root / split / "bird").mkdir()
    data = _loaders(root, tmp_path)
    assert data.classes == ["bird", "cat", "dog"]
    assert sorted(set(torch.cat([y for _, y in data.eval]).tolist())) == [1, 2]


def test_no_images_at_all(tmp_path: Path) -> None:
    (tmp_path / "ds" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "ds" / "val" / "cat").mkdir(parents=True)
    (tmp_path / "ds" / "train" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(SenetError, match="no images"):
        list_folder(tmp_path / "ds" / "train")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(SenetError, match="no class folders"):
        list_folder(tmp_path / "empty" / "train")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SenetError, match="holds no train/, val/ or test/"):
        detect_source(tmp_path / "nothing")


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_train_and_val_class_sets_that_differ_are_refused(tmp_path: Path, loader: str) -> None:
    root = write_tree(tmp_path / "ds", n=4)
    (root / "val" / "dog").rename(root / "val" / "wolf")
    with pytest.raises(SenetError) as e:
        _loaders(root, tmp_path, loader)
    msg = str(e.value)
    assert "class folders differ" in msg and "'dog'" in msg and "'wolf'" in msg and "\n" not in msg


def test_cli_class_mismatch_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = write_tree(tmp_path / "ds", n=4)
    (root / "val" / "dog").rename(root / "val" / "wolf")
    argv = ["train", "--model", "_rel:tiny_net", "--data", str(root), "--epochs", "1", "--batch-size", "4",
            "--device", "cpu", "--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert_main_error(capsys, argv, "class folders differ", "wolf")


def test_nested_folders_are_not_images_of_the_class(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ds", n=4)
    sub = root / "train" / "cat" / "more"
    sub.mkdir()
    (sub / "deep.png").write_bytes(encode(rgb_image(), "PNG"))
    files, labels, classes = list_folder(root / "train")
    assert classes == ["cat", "dog"] and len(files) == 8 and all(f.parent.name in classes for f in files)


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ds", n=4)
    (root / "train" / "cat" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"Bud1")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / ".ipynb_checkpoints" / "x.png").write_bytes(encode(rgb_image(), "PNG"))
    files, _, classes = list_folder(root / "train")
    assert classes == ["cat", "dog"] and not any(f.name.startswith(".") for f in files) and len(files) == 8
    # The same tree as a tar archive gives the same images.
    arc = tmp_path / "ds.tar"
    with tarfile.open(arc, "w") as tf:
        tf.add(root, arcname="ds")
    data = _loaders(arc, tmp_path)
    assert data.classes == ["cat", "dog"] and data.train.num_samples == 8


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_in_a_folder_dataset_are_followed_and_dangling_ones_ignored(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ds", n=4)
    elsewhere = write_tree(tmp_path / "other", n=3, classes=["bird"])
    (root / "train" / "bird").symlink_to(elsewhere / "train" / "bird", target_is_directory=True)
    (root / "val" / "bird").symlink_to(elsewhere / "val" / "bird", target_is_directory=True)
    (root / "train" / "cat" / "linked.png").symlink_to(elsewhere / "train" / "bird" / "000.png")
    (root / "train" / "cat" / "dangling.png").symlink_to(tmp_path / "missing.png")
    files, labels, classes = list_folder(root / "train")
    assert classes == ["bird", "cat", "dog"]
    names = [f.name for f in files]
    assert "linked.png" in names and "dangling.png" not in names
    assert len(files) == 3 + 5 + 4 and labels.count(0) == 3
