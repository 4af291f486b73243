"""Split-less class folders and named splits (senet.data.splits): stratified seeded hold-out, file lists written once
and reused, cross-domain splits whose classes differ, evaluation of a whole folder by class name."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny_data import write_class_folder, write_tree  # noqa: E402

from senet.data import create_loaders, detect_source, resolve_data  # noqa: E402
from senet.data.sources import dataset_name  # noqa: E402
from senet.data.splits import (  # noqa: E402
    SPLIT_FILE,
    FileLists,
    eval_source,
    fraction_lists,
    named_lists,
    run_source,
    split_options,
    whole_folder,
)
from senet.errors import SenetError  # noqa: E402


def _classes_of(rel: list[str]) -> Counter:
    return Counter(PurePosixPath(r).parts[-2] for r in rel)


def test_val_fraction_is_stratified_disjoint_and_seeded(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 10, "dog": 20, "frog": 5})
    lists = fraction_lists(root, 0.2, seed=0)
    assert lists.classes == ["cat", "dog", "frog"]
    assert _classes_of(lists.files["val"]) == {"cat": 2, "dog": 4, "frog": 1}
    assert _classes_of(lists.files["train"]) == {"cat": 8, "dog": 16, "frog": 4}
    assert not set(lists.files["val"]) & set(lists.files["train"])
    every = {f"{c}/{f.name}" for c in lists.classes for f in (root / c).iterdir()}
    assert set(lists.files["val"]) | set(lists.files["train"]) == every
    assert fraction_lists(root, 0.2, seed=0).files == lists.files
    assert fraction_lists(root, 0.2, seed=1).files["val"] != lists.files["val"]


def test_val_fraction_needs_two_images_per_class(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 4, "lonely": 1})
    with pytest.raises(SenetError, match="class 'lonely' .* has 1 image") as e:
        fraction_lists(root, 0.25)
    assert "\n" not in str(e.value)
    with pytest.raises(SenetError, match="between 0 and 1"):
        fraction_lists(root, 1.5)


def test_split_less_folder_without_an_option_says_what_to_do(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 2, "dog": 2})
    with pytest.raises(SenetError, match="--val-fraction"):
        detect_source(root)
    domains = tmp_path / "PACS"
    write_class_folder(domains / "photo", {"cat": 2})
    write_class_folder(domains / "sketch", {"cat": 2})
    with pytest.raises(SenetError, match="--train-split photo --val-split sketch"):
        detect_source(domains)
    # resolve_data accepts both as the dataset (the loaders then ask for a split option).
    assert resolve_data(root) == root
    assert resolve_data(domains, split_folders=("photo", "sketch")) == domains


def test_run_source_writes_the_lists_and_a_resume_reuses_them(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 6, "dog": 6})
    run = tmp_path / "run"
    run.mkdir()
    opts = split_options({"val_fraction": 0.5, "split_seed": 3})
    src = run_source(root, opts, run)
    saved = json.loads((run / SPLIT_FILE).read_text())
    assert saved["files"] == src.lists.files and saved["how"] == {"val_fraction": 0.5, "split_seed": 3, "from": "."}
    # Images added later do not move the held-out set of the existing run.
    write_class_folder(root, {"cat": 9, "dog": 9}, seed=5)
    again = run_source(root, opts, run)
    assert again.lists.files == src.lists.files
    with pytest.raises(SenetError, match="resume with the run's own split settings"):
        run_source(root, split_options({"val_fraction": 0.25}), run)
    # A listed file that vanished is named.
    (root / src.lists.files["val"][0]).unlink()
    with pytest.raises(SenetError, match="not under"):
        FileLists.load(run / SPLIT_FILE)


@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_loaders_read_the_lists(tmp_path: Path, loader: str) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 8, "dog": 8, "frog": 8})
    src = run_source(root, split_options({"val_fraction": 0.25}), None)
    data = create_loaders(src, batch_size=4, loader=loader, img_size=16, workers=0, cache_dir=tmp_path / "c")
    assert data.classes == ["cat", "dog", "frog"]
    assert data.train.num_samples == 18 and data.eval.num_samples == 6
    labels = torch.cat([y for _, y in data.eval])
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    # Another seed is another tensor cache entry, not the first split's cached pixels.
    other = run_source(root, split_options({"val_fraction": 0.5}), None)
    again = create_loaders(other, batch_size=4, loader=loader, img_size=16, workers=0, cache_dir=tmp_path / "c")
    assert again.eval.num_samples == 12 and again.train.num_samples == 12


def test_val_fraction_of_a_train_folder(tmp_path: Path) -> None:
    write_tree(tmp_path / "ds", n_train=8, n_test=2)
    src = run_source(tmp_path / "ds", split_options({"val_fraction": 0.25}), tmp_path)
    assert all(r.startswith("train/") for rs in src.lists.files.values() for r in rs)
    assert len(src.lists.files["val"]) == 6 and len(src.lists.files["train"]) == 18


def test_named_splits_with_classes_that_differ(tmp_path: Path) -> None:
    root = tmp_path / "PACS"
    write_class_folder(root / "photo", {"dog": 4, "horse": 4, "house": 3})
    write_class_folder(root / "sketch", {"dog": 2, "horse": 2, "person": 2}, seed=1)
    lists, note = named_lists(root, "photo", "sketch")
    assert lists.classes == ["dog", "horse", "house", "person"]
    assert "only in photo: ['house']" in note and "only in sketch: ['person']" in note
    data = create_loaders(lists.source(), batch_size=4, loader="tensor", workers=0, cache_dir=tmp_path / "c")
    assert data.classes == lists.classes and data.train.num_samples == 11 and data.eval.num_samples == 6
    # The same "person" label index in both splits' label space: 3.
    assert sorted(set(torch.cat([y for _, y in data.eval]).tolist())) == [0, 1, 3]
    with pytest.raises(SenetError, match="no sub-folder 'cartoon' .*photo, sketch"):
        named_lists(root, "photo", "cartoon")
    with pytest.raises(SenetError, match="needs --val-split NAME or --val-fraction"):
        run_source(root, split_options({"train_split": "photo"}), None)
    with pytest.raises(SenetError, match="not both"):
        run_source(root, split_options({"val_split": "sketch", "val_fraction": 0.2}), None)


def test_eval_of_a_whole_folder_matches_classes_by_name(tmp_path: Path) -> None:
    classes = ["cat", "dog", "frog"]
    sub = write_class_folder(tmp_path / "new", {"dog": 3, "frog": 2})
    lists = whole_folder(sub, classes)
    assert lists.classes == classes and len(lists.files["val"]) == 5
    _, labels, _ = lists.listing("val")
    assert labels == [1, 1, 1, 2, 2]
    write_class_folder(sub, {"wolf": 1})
    with pytest.raises(SenetError, match="class folder 'wolf' .* not one of the checkpoint's 3 classes") as e:
        whole_folder(sub, classes)
    assert "\n" not in str(e.value)


def test_eval_source_picks_the_runs_own_held_out_images(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos", {"cat": 6, "dog": 6})
    run = tmp_path / "run"
    run.mkdir()
    cfg = {"data": str(root), "dataset": "cifar10", "val_fraction": 0.5, "split_seed": 0}
    trained = run_source(root, split_options(cfg), run)
    classes = trained.lists.classes
    for data in (None, str(root)):
        src = eval_source(data, cfg, classes, run)
        assert src.splits == ("val",) and src.lists.files["val"] == trained.lists.files["val"]
    other = write_class_folder(tmp_path / "other", {"cat": 2})
    assert len(eval_source(str(other), cfg, classes, run).lists.files["val"]) == 2
    # A run without file lists evaluates an ImageFolder tree as before.
    write_tree(tmp_path / "ds", n_train=2, n_test=2)
    assert eval_source(None, {"data": str(tmp_path / "ds")}, ["cat", "dog", "frog"], run) == tmp_path / "ds"


def test_dataset_name_records_what_was_read(tmp_path: Path) -> None:
    assert dataset_name(Path("/x/cifar10-jpeg.tar.gz")) == "cifar10"
    assert dataset_name(Path("/x/imagenette-224.tar.gz")) == "imagenette"
    assert dataset_name(Path("/x/tiny-imagenet-200")) == "tiny-imagenet-200"
    assert dataset_name(Path("/x/caltech101.tar.gz")) == "caltech101"
