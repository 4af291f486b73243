"""Dataset forms (folder, tar, CIFAR pickles) decode identically; unsafe archives are refused; paths resolve."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import pytest
import torch
from _tiny_data import CLASSES, write_cifar_pickles, write_tar, write_tree

from senet.data import detect_source, load_tensor_split, resolve_data, safe_extract
from senet.data.fast import decode_split
from senet.data.sources import read_split
from senet.errors import SenetError


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("forms")
    splits = write_tree(root / "tree")
    archive = write_tar(root / "tree", root / "tiny.tar.gz")
    pickles = write_cifar_pickles(root / "cifar-10-batches-py", splits)
    return {"splits": splits, "folder": root / "tree", "tar": archive, "pickle": pickles, "root": root}


@pytest.mark.parametrize("split", ["train", "test"])
def test_folder_tar_and_pickle_give_identical_tensors(forms: dict, split: str) -> None:
    pixels, labels = forms["splits"][split]
    decoded = {k: decode_split(read_split(detect_source(forms[k]), split)) for k in ("folder", "tar", "pickle")}
    for kind, ts in decoded.items():
        assert ts.images.dtype == torch.uint8 and ts.images.shape == pixels.shape, kind
        assert torch.equal(ts.images, pixels), kind
        assert ts.labels.tolist() == labels, kind
        assert ts.classes == CLASSES, kind


def test_detect_source_kinds(forms: dict) -> None:
    assert detect_source(forms["folder"]).kind == "folder"
    tar = detect_source(forms["tar"])
    assert (tar.kind, tar.root, tar.splits) == ("tar", "tiny/", ("train", "test"))
    assert detect_source(forms["root"] / "cifar-10-batches-py").kind == "pickle"
    # A folder whose single subfolder holds the splits (like an extracted cifar10-jpeg.tar.gz) is found too.
    assert detect_source(forms["root"]).kind in ("pickle", "folder")


def test_tensor_cache_is_reused_and_keyed_by_mtime(forms: dict, tmp_path: Path) -> None:
    src = detect_source(forms["tar"])
    a = load_tensor_split(src, "test", cache_dir=tmp_path)
    files = list((tmp_path / "tensors").glob("*.pt"))
    assert len(files) == 1
    b = load_tensor_split(src, "test", cache_dir=tmp_path)
    assert torch.equal(a.images, b.images)
    st = forms["tar"].stat()
    os.utime(forms["tar"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_tensor_split(detect_source(forms["tar"]), "test", cache_dir=tmp_path)
    assert len(list((tmp_path / "tensors").glob("*.pt"))) == 2


def test_tensor_cache_sees_a_file_moved_to_another_class(tmp_path: Path) -> None:
    write_tree(tmp_path / "tree", n_train=2, n_test=2, size=8)
    test = tmp_path / "tree" / "test"
    first = load_tensor_split(detect_source(tmp_path / "tree"), "test", cache_dir=tmp_path / "c")
    assert first.labels.tolist().count(0) == 2
    # What `mv` does: same file name, size and mtime, other class folder (and the same order of files overall).
    os.rename(test / "cat" / "0001.png", test / "dog" / "0001.png")
    again = load_tensor_split(detect_source(tmp_path / "tree"), "test", cache_dir=tmp_path / "c")
    assert again.labels.tolist().count(0) == 1 and again.labels.tolist().count(1) == 3


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as tf:
        ok = tarfile.TarInfo("d/train/cat/0.png")
        ok.size = 1
        tf.addfile(ok, io.BytesIO(b"x"))
        if member.isfile():
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        else:
            tf.addfile(member)
    return path


@pytest.mark.parametrize(
    "name,kind",
    [
        ("../evil.png", tarfile.REGTYPE),
        ("/tmp/evil.png", tarfile.REGTYPE),
        ("d/train/cat/link.png", tarfile.SYMTYPE),
        ("d/train/cat/hard.png", tarfile.LNKTYPE),
        ("d/train/a/../../../x.png", tarfile.REGTYPE),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path: Path, name: str, kind: bytes) -> None:
    m = tarfile.TarInfo(name)
    m.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        m.linkname = "/etc/passwd"
    archive = _tar_with(tmp_path / "bad.tar", m)
    dest = tmp_path / "out"
    with pytest.raises(SenetError, match="refusing archive"):
        safe_extract(archive, dest)
    assert not dest.exists() or not any(dest.rglob("*")), "nothing may be written before the check"
    assert not (tmp_path / "evil.png").exists()
    with pytest.raises(SenetError, match="refusing archive"):
        detect_source(archive)


def test_safe_extract_writes_inside_target(forms: dict, tmp_path: Path) -> None:
    out = safe_extract(forms["tar"], tmp_path / "x")
    assert (out / "tiny" / "train" / "cat" / "0000.png").is_file()


def test_resolve_data(forms: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = tmp_path / "datasets"
    holder.mkdir()
    (holder / "cifar10-jpeg.tar.gz").symlink_to(forms["tar"])
    monkeypatch.setenv("SENET_DATA_DIR", str(holder))
    assert resolve_data(None, "cifar10") == holder / "cifar10-jpeg.tar.gz"
    assert resolve_data(str(forms["folder"])) == forms["folder"]
    with pytest.raises(SenetError, match="does not exist"):
        resolve_data(str(tmp_path / "nope"))
    with pytest.raises(SenetError, match="is not a dataset"):
        resolve_data(str(tmp_path), "cifar10")


def test_malicious_cifar_pickle_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, ("echo pwned",))

    for n in ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / n).write_bytes(pickle.dumps({"label_names": CLASSES, "x": Evil()}))
    with pytest.raises(SenetError, match="not a CIFAR python batch"):
        read_split(detect_source(folder), "test")
