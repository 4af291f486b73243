"""Where the images come from: locating a dataset, and reading an ImageFolder tree, a tar archive of one, or
torchvision's CIFAR-10/100 python-pickle folders.

Three on-disk forms are understood, all giving the same ``(items, labels, classes)`` for a split:

* an ImageFolder directory: ``[<top>/]train/<class>/<image>`` and ``val/`` or ``test/`` beside it;
* the same tree packed as ``.tar`` / ``.tar.gz`` / ``.tgz`` (read member by member, or extracted *safely*: absolute
  names, ``..`` components, links and devices are refused, so nothing is ever written outside the target folder);
* ``cifar-10-batches-py/`` or ``cifar-100-python/`` as written by ``torchvision.datasets.CIFAR10/100``.

A folder of class folders without split folders (``root/<class>/<image>``), or one whose splits have other names
(PACS's ``photo/``, ``sketch/``), is read through explicit file lists (:mod:`senet.data.splits`).

Files are ordered by (class folder, file name) in every form, so a folder and its archive give the same order.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torchvision

from senet.errors import SenetError

__all__ = [
    "IMG_EXTENSIONS",
    "DataSource",
    "RawSplit",
    "default_cache_dir",
    "default_data_dir",
    "dataset_name",
    "detect_source",
    "is_class_folder",
    "read_split",
    "resolve_data",
    "safe_extract",
    "source_key",
]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")
EVAL_SPLITS = ("val", "test")
# Names looked up inside a data folder (SENET_DATA_DIR, ../shared/data, or --data DIR) for a dataset name.
KNOWN_NAMES = {
    "cifar10": ("cifar10-jpeg.tar.gz", "cifar10", "cifar-10-batches-py"),
    "cifar100": ("cifar100-jpeg.tar.gz", "cifar100", "cifar-100-python"),
    "imagenette": ("imagenette-224.tar.gz", "imagenette2", "imagenette"),
    "imagenet": ("imagenet", "ILSVRC2012"),
}
# Files mapping WordNet ids (folder names) to readable names: "n01440764 tench, Tinca tinca" per line.
_CLASSNAME_FILES = ("synset_words.txt", "LOC_synset_mapping.txt", "class_names.txt")


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_data_dir() -> Path | None:
    """``$SENET_DATA_DIR``, else ``../shared/data`` beside the repository when it exists, else ``None``."""
    env = os.environ.get("SENET_DATA_DIR")
    if env:
        return Path(env).expanduser()
    shared = _repo_root().parent / "shared" / "data"
    return shared if shared.is_dir() else None


def default_cache_dir() -> Path:
    """``$SENET_CACHE_DIR``, else ``$XDG_CACHE_HOME/senet`` (``~/.cache/senet``)."""
    env = os.environ.get("SENET_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "senet"


def resolve_data(
    data: str | os.PathLike[str] | None,
    dataset: str = "cifar10",
    download: bool = False,
    split_folders: tuple[str, ...] = (),
) -> Path:
    """Turn ``--data`` (a dataset path, a folder of datasets, or ``None``) into the path of one dataset.

    With ``data=None`` the folder is :func:`default_data_dir`. A folder that is not itself a dataset is searched for
    the names of ``dataset`` (e.g. ``cifar10-jpeg.tar.gz``). ``download=True`` fetches CIFAR-10/100 with torchvision
    into ``data`` (or the cache folder) when nothing is found. A folder holding every one of ``split_folders``
    (``--train-split``/``--val-split`` names) is the dataset itself.
    """
    base = Path(data).expanduser() if data is not None else default_data_dir()
    if base is not None and base.exists():
        if _looks_like_dataset(base) or (split_folders and all((base / s).is_dir() for s in split_folders)):
            return base
        for name in KNOWN_NAMES.get(dataset, (dataset,)):
            if (base / name).exists() and _looks_like_dataset(base / name):
                return base / name
    if download:
        return _download(dataset, base if base is not None else default_cache_dir() / "downloads")
    if base is None:
        raise SenetError(
            "no data location: pass --data PATH (ImageFolder dir, .tar/.tar.gz, or CIFAR pickle folder), "
            "set SENET_DATA_DIR, or add --download"
        )
    if not base.exists():
        raise SenetError(f"data path {str(base)!r} does not exist: pass an existing --data PATH or add --download")
    hint = _split_less_hint(base)
    if hint:
        raise SenetError(hint)
    names = ", ".join(KNOWN_NAMES.get(dataset, (dataset,)))
    raise SenetError(
        f"{str(base)!r} is not a dataset and holds none of {names}: point --data at an ImageFolder dir "
        "(train/ + val/ or test/), a .tar/.tar.gz of one, or a CIFAR pickle folder"
    )


def _download(dataset: str, root: Path) -> Path:
    classes = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
    if dataset not in classes:
        raise SenetError(f"--download supports {sorted(classes)}, not {dataset!r}: download {dataset} yourself")
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        classes[dataset](str(root), train=train, download=True)
    return root / KNOWN_NAMES[dataset][-1]


def _looks_like_dataset(path: Path) -> bool:
    if path.is_file():
        return path.name.endswith((".tar", ".tar.gz", ".tgz"))
    try:
        detect_source(path)
    except SenetError:
        return is_class_folder(path)
    return True


def is_class_folder(path: Path) -> bool:
    """Whether ``path`` is ``<class>/<image>`` folders without split folders (a split-less dataset): some
    non-hidden sub-folder holds an image file directly."""
    if not path.is_dir():
        return False
    for sub in path.iterdir():
        if sub.is_dir() and not sub.name.startswith("."):
            if any(_is_image(f) for f in sub.iterdir()):
                return True
    return False


def _is_image(f: Path) -> bool:
    # Hidden files (".DS_Store", macOS "._x.jpg" resource forks) are never images of the class.
    return f.suffix.lower() in IMG_EXTENSIONS and not f.name.startswith(".") and f.is_file()


def dataset_name(path: Path, default: str = "cifar10") -> str:
    """The name to record for the dataset at ``path``: the :data:`KNOWN_NAMES` key it is stored under
    (``cifar10-jpeg.tar.gz`` -> ``cifar10``), CIFAR pickles' format, else the file or folder name without its
    archive suffix (``tiny-imagenet-200``)."""
    path = Path(path)
    for key, names in KNOWN_NAMES.items():
        if path.name in names:
            return key
    if path.is_dir():
        try:
            src = detect_source(path)
        except SenetError:
            src = None
        if src is not None and src.kind == "pickle":
            return src.pickle_format
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        name = name.removesuffix(suffix)
    return name or default


@dataclass
class DataSource:
    """One dataset on disk: ``kind`` is ``"folder"``, ``"tar"`` or ``"pickle"``; ``root`` is the folder holding the
    split folders (for a tar, the member prefix such as ``"cifar10/"``)."""

    path: Path
    kind: str
    root: str = ""
    splits: tuple[str, ...] = ()
    pickle_format: str = ""  # "cifar10" | "cifar100"
    # Explicit file lists (a split-less class folder, or splits with other names): senet.data.splits.FileLists.
    lists: Any = None


def detect_source(path: str | os.PathLike[str]) -> DataSource:
    """Recognise the dataset at ``path`` (folder, archive or CIFAR pickle folder), or raise :class:`SenetError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SenetError(f"data path {str(path)!r} does not exist")
    if path.is_file():
        if not path.name.endswith((".tar", ".tar.gz", ".tgz")):
            raise SenetError(f"{str(path)!r} is not a .tar/.tar.gz/.tgz archive or a folder")
        prefix, splits = _tar_layout(path)
        return DataSource(path, "tar", prefix, splits)
    for sub in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (sub / "data_batch_1").is_file() and (sub / "batches.meta").is_file():
            return DataSource(sub, "pickle", str(sub), ("train", "test"), "cifar10")
        if (sub / "train").is_file() and (sub / "meta").is_file():
            return DataSource(sub, "pickle", str(sub), ("train", "test"), "cifar100")
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir())
    for root in candidates:
        splits = tuple(s for s in ("train", *EVAL_SPLITS) if (root / s).is_dir())
        if "train" in splits or any(s in splits for s in EVAL_SPLITS):
            return DataSource(path, "folder", str(root), splits)
    hint = _split_less_hint(path)
    if hint:
        raise SenetError(hint)
    raise SenetError(
        f"{str(path)!r} holds no train/, val/ or test/ folder and no CIFAR pickle batches: "
        "expected an ImageFolder tree (train/<class>/<image>)"
    )


def _split_less_hint(path: Path) -> str | None:
    """What to add for a folder of class folders, or of such folders (PACS domains); None for anything else."""
    if is_class_folder(path):
        return (
            f"{str(path)!r} is a folder of class folders without train/ and val/: add --val-fraction 0.2 to hold "
            "out a stratified 20% for evaluation (or --train-split/--val-split NAME to pick sub-folders)"
        )
    domains = [p.name for p in sorted(path.iterdir()) if is_class_folder(p)] if path.is_dir() else []
    if domains:
        return (
            f"{str(path)!r} holds folders of class folders ({', '.join(domains[:6])}) but no train/ or val/: choose "
            f"them with --train-split {domains[0]} --val-split {domains[-1]} (or --val-fraction F within one)"
        )
    return None


def _unsafe_member(m: tarfile.TarInfo) -> str | None:
    """Why ``m`` must not be read or extracted, or ``None`` when it is a plain file or folder with a safe name."""
    name = PurePosixPath(m.name)
    if name.is_absolute() or m.name.startswith(("/", "\\")) or (name.parts and ":" in name.parts[0]):
        return "absolute path"
    if ".." in name.parts:
        return "'..' in its path"
    if m.issym() or m.islnk():
        return "a link"
    if not (m.isfile() or m.isdir()):
        return "not a regular file or folder"
    return None


def _check_member(archive: Path, m: tarfile.TarInfo) -> None:
    why = _unsafe_member(m)
    if why:
        raise SenetError(
            f"refusing archive {str(archive)!r}: member {m.name!r} is {why}; unpack it yourself if trusted"
        )


def _tar_layout(path: Path) -> tuple[str, tuple[str, ...]]:
    """The member prefix holding the split folders (``"cifar10/"`` or ``""``) and the splits found."""
    found: dict[str, set[str]] = {}
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                _check_member(path, m)
                parts = PurePosixPath(m.name).parts
                # <prefix...>/<split>/<class>/<file>: the split is the third component from the end.
                if m.isfile() and len(parts) >= 3 and parts[-3] in ("train", *EVAL_SPLITS):
                    prefix = "/".join(parts[:-3])
                    found.setdefault(prefix + "/" if prefix else "", set()).add(parts[-3])
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SenetError(f"cannot read archive {str(path)!r}: {exc}") from exc
    if not found:
        raise SenetError(
            f"archive {str(path)!r} holds no <split>/<class>/<image> members (split = train, val, test); for a "
            "split-less <class>/<image> archive, extract it and pass the folder with --val-fraction F"
        )
    prefix = min(found, key=len)
    return prefix, tuple(s for s in ("train", *EVAL_SPLITS) if s in found[prefix])


def eval_split(src: DataSource) -> str:
    """The evaluation split of ``src``: ``val`` when present, else ``test``."""
    for s in EVAL_SPLITS:
        if s in src.splits:
            return s
    raise SenetError(f"{str(src.path)!r} has no val/ or test/ split to evaluate on")


def _check_split(src: DataSource, split: str) -> None:
    if split not in src.splits:
        raise SenetError(f"{str(src.path)!r} has no {split!r} split (found: {', '.join(src.splits) or 'none'})")


@dataclass
class RawSplit:
    """A split before decoding: ``encoded`` image files (bytes) or ``pixels`` (N x 3 x H x W uint8), plus labels."""

    labels: list[int]
    classes: list[str]
    encoded: list[bytes] = field(default_factory=list)
    pixels: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)


def read_split(src: DataSource, split: str) -> RawSplit:
    """Read every image of ``split`` (encoded bytes, or pixels for pickles) with its label."""
    _check_split(src, split)
    if src.kind == "pickle":
        return _read_pickle(src, split)
    if src.kind == "tar":
        return _read_tar(src, split)
    files, labels, classes = split_listing(src, split)
    encoded = [f.read_bytes() for f in files]
    return RawSplit(labels, classes, encoded, names=[str(f) for f in files], class_names=_class_names(src, classes))


def split_listing(src: DataSource, split: str, root: Path | None = None) -> tuple[list[Path], list[int], list[str]]:
    """:func:`list_folder` of ``split`` of a folder source, or its explicit file list when ``src.lists`` has one.
    ``root`` replaces ``src.root`` (an archive's extracted copy)."""
    base = Path(root) if root is not None else Path(src.root)
    if src.lists is not None:
        return src.lists.listing(split, base)
    return list_folder(base / split)


def class_images(folder: Path) -> dict[str, list[str]]:
    """``{class: [image file names]}`` of ``folder/<class>/<image>``, classes and names sorted; hidden entries,
    non-images and deeper folders are left out."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise SenetError(f"{str(folder)!r} has no class folders: expected {folder}/<class>/<image>")
    return {c: sorted(f.name for f in (folder / c).iterdir() if _is_image(f)) for c in classes}


def list_folder(split_dir: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files under ``split_dir/<class>/`` sorted by (class, name), their labels, and the sorted classes."""
    per_class = class_images(split_dir)
    files: list[Path] = []
    labels: list[int] = []
    for i, (c, names) in enumerate(per_class.items()):
        files += [split_dir / c / n for n in names]
        labels += [i] * len(names)
    if not files:
        raise SenetError(f"no images ({', '.join(IMG_EXTENSIONS)}) under {str(split_dir)!r}")
    return files, labels, list(per_class)


def _read_tar(src: DataSource, split: str) -> RawSplit:
    base = f"{src.root}{split}/"
    items: list[tuple[str, str, bytes]] = []
    mapping_text = None
    with tarfile.open(src.path, "r:*") as tf:
        for m in tf:
            _check_member(src.path, m)
            if not m.isfile():
                continue
            if m.name in (src.root + n for n in _CLASSNAME_FILES):
                mapping_text = tf.extractfile(m).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                continue
            if not m.name.startswith(base):
                continue
            rest = PurePosixPath(m.name[len(base) :]).parts
            if (
                len(rest) != 2
                or not rest[1].lower().endswith(IMG_EXTENSIONS)
                or rest[1].startswith(".")
                or rest[0].startswith(".")
            ):
                continue
            items.append((rest[0], rest[1], tf.extractfile(m).read()))  # type: ignore[union-attr]
    items.sort(key=lambda t: (t[0], t[1]))
    classes = sorted({c for c, _, _ in items})
    index = {c: i for i, c in enumerate(classes)}
    mapping = _parse_mapping(mapping_text) if mapping_text else {}
    return RawSplit(
        [index[c] for c, _, _ in items],
        classes,
        [b for _, _, b in items],
        names=[f"{base}{c}/{n}" for c, n, _ in items],
        class_names=[mapping.get(c, c) for c in classes],
    )


def _parse_mapping(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].split(",")[0].strip()
    return out


def _class_names(src: DataSource, classes: list[str]) -> list[str]:
    for name in _CLASSNAME_FILES:
        f = Path(src.root) / name
        if f.is_file():
            mapping = _parse_mapping(f.read_text(encoding="utf-8", errors="replace"))
            return [mapping.get(c, c) for c in classes]
    return list(classes)


def _unpickle(path: Path) -> dict:
    # These files are torchvision's CIFAR batches: plain dicts of numpy arrays and lists. Refuse anything else
    # (a pickle can run code) by allowing only numpy's array reconstruction and builtins.
    class _Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str):  # noqa: ANN202
            allowed = {
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"),
                ("numpy", "dtype"),
                ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"),
            }
            if (module, name) in allowed:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")

    try:
        with open(path, "rb") as f:
            return _Restricted(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise SenetError(f"{str(path)!r} is not a CIFAR python batch ({exc})") from exc


def _read_pickle(src: DataSource, split: str) -> RawSplit:
    root = src.path
    if src.pickle_format == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        classes = list(_unpickle(root / "batches.meta")["label_names"])
        key = "labels"
    else:
        names = ["train"] if split == "train" else ["test"]
        classes = list(_unpickle(root / "meta")["fine_label_names"])
        key = "fine_labels"
    datas, labels = [], []
    for n in names:
        if not (root / n).is_file():
            raise SenetError(f"CIFAR batch {str(root / n)!r} is missing")
        d = _unpickle(root / n)
        datas.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(int(v) for v in d[key])
    return RawSplit(labels, classes, pixels=np.concatenate(datas), class_names=list(classes))


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract ``archive`` into ``dest`` refusing absolute, ``..``, link and device members (checked before any
    write), and verifying every output path stays inside ``dest``. Returns ``dest``."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    real_dest = dest.resolve()
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for m in members:
            _check_member(archive, m)
            target = (real_dest / m.name).resolve()
            if target != real_dest and real_dest not in target.parents:
                raise SenetError(f"refusing archive {str(archive)!r}: member {m.name!r} escapes the target folder")
        for m in members:
            target = real_dest / m.name
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None
            with open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    return dest


def source_key(src: DataSource, *extra: object) -> str:
    """A short hash of where ``src`` lives and its size and modification time (for cache file names); for a folder,
    of every file's path below the root (class folder included), size and modification time."""
    p = src.path.resolve()
    if p.is_file():
        st = p.stat()
        parts = [str(p), st.st_size, st.st_mtime_ns]
    else:
        # A folder's own mtime misses edits deep inside; hash every file's size and mtime (stat only, cheap), and its
        # path below the root: `mv train/cat/a.jpg train/dog/` keeps the mtime but changes the label.
        parts = [str(p)]
        for dirpath, _dirs, files in sorted(os.walk(src.root)):
            for f in sorted(files):
                full = os.path.join(dirpath, f)
                st = os.stat(full)
                parts += [Path(os.path.relpath(full, src.root)).as_posix(), st.st_size, st.st_mtime_ns]
    if src.lists is not None:
        parts.append(src.lists.digest())  # the same folder read through other file lists is other data
    parts += list(extra)
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]
