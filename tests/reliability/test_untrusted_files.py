"""Untrusted files: a checkpoint whose unpickling would run code is refused by every command that reads one (the
marker file its ``__reduce__`` would create never appears); hostile tar archives are rejected with nothing written
outside the target; paths from configs and flags are never shell-interpreted."""

from __future__ import annotations

import io
import pickle
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rel import assert_main_error, encode, rgb_image, senet, write_tree  # noqa: E402

from senet.data import create_loaders, detect_source, safe_extract  # noqa: E402
from senet.errors import SenetError  # noqa: E402

# The raw-pickle payload uses protocol 4; torch warns about it before refusing it.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


class Evil:
    """Unpickling this calls ``open(marker, "w")``: the marker file appearing means code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def _evil_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    payload = {"format": "senet.train/1", "model": {"w": torch.zeros(1)}, "config": Evil(marker), "x": Evil(marker)}
    files = {}
    f = tmp_path / "evil_zip.pt"
    torch.save(payload, f)
    files["zip"] = f
    f = tmp_path / "evil_legacy.pth"
    torch.save(payload, f, _use_new_zipfile_serialization=False)
    files["legacy"] = f
    f = tmp_path / "evil_raw.pkl"
    f.write_bytes(pickle.dumps(payload))
    files["raw_pickle"] = f
    return files


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("rel") / "ds", n=4)


COMMANDS = {
    "eval": lambda ck, ds, tmp: ["eval", "--checkpoint", str(ck), "--data", str(ds), "--device", "cpu"],
    "predict": lambda ck, ds, tmp: [
        "predict",
        "--checkpoint",
        str(ck),
        "--device",
        "cpu",
        str(ds / "val/cat/000.png"),
    ],
    "convert": lambda ck, ds, tmp: ["convert", str(ck), str(tmp / "out.safetensors")],
    "export": lambda ck, ds, tmp: ["export", str(ck), "--model", "resnet20", "-o", str(tmp / "m.onnx")],
    "analyze": lambda ck, ds, tmp: [
        "analyze",
        "--checkpoint",
        str(ck),
        "--data",
        str(ds),
        "--device",
        "cpu",
        "--out",
        str(tmp / "an"),
    ],  # fmt: skip
    "prune-attention": lambda ck, ds, tmp: [
        "prune-attention",
        "--checkpoint",
        str(ck),
        "--data",
        str(ds),
        "--device",
        "cpu",
        "--out",
        str(tmp / "p.pt"),
    ],  # fmt: skip
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_malicious_pickle_is_refused_by_every_reader(
    ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture, command: str
) -> None:
    marker = tmp_path / "PWNED"
    for form, ck in _evil_files(tmp_path, marker).items():
        err = assert_main_error(capsys, COMMANDS[command](ck, ds, tmp_path))
        assert str(ck) in err, (form, err)
        assert not marker.exists(), f"{command} ran code from a {form} pickle"


def test_malicious_pickle_refused_on_train_resume(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "PWNED"
    run = tmp_path / "run"
    run.mkdir()
    for form, ck in _evil_files(tmp_path, marker).items():
        (run / "last.pt").write_bytes(ck.read_bytes())
        argv = ["train", "--model", "_rel:tiny_net", "--data", str(ds), "--output", str(run), "--resume",
                "--device", "cpu", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
        assert_main_error(capsys, argv, "last.pt")
        assert not marker.exists(), form


def test_malicious_pickle_refused_by_the_python_api(tmp_path: Path) -> None:
    from senet.train import load_checkpoint
    from senet.weights import read_checkpoint

    marker = tmp_path / "PWNED"
    for ck in _evil_files(tmp_path, marker).values():
        for fn in (load_checkpoint, read_checkpoint):
            with pytest.raises(SenetError):
                fn(ck)
    assert not marker.exists()


def _hostile_tar(path: Path, kind: str, outside: Path) -> Path:
    good = encode(rgb_image(), "PNG")
    with tarfile.open(path, "w") as tf:

        def add(name: str, data: bytes = good, **kw) -> None:  # noqa: ANN003
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data) if info.isfile() else 0
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)

        for split in ("train", "val"):
            for c in ("cat", "dog"):
                add(f"ds/{split}/{c}/000.png")
        if kind == "absolute":
            add(str(outside / "abs.png"))
        elif kind == "dotdot":
            add("ds/train/cat/../../../../" + outside.name + "/dotdot.png")
        elif kind == "symlink":
            add("ds/train/cat/link.png", type=tarfile.SYMTYPE, linkname=str(outside / "sym_target"))
        elif kind == "hardlink":
            add("ds/train/cat/hard.png", type=tarfile.LNKTYPE, linkname="../../../../etc/passwd")
        elif kind == "symlink_dir_then_write":
            # A link to a folder outside, then a file "inside" that link: the classic two-step escape.
            add("ds/train/esc", type=tarfile.SYMTYPE, linkname=str(outside))
            add("ds/train/esc/written.png")
        elif kind == "device":
            add("ds/train/cat/dev.png", type=tarfile.CHRTYPE)
    return path


TAR_KINDS = ["absolute", "dotdot", "symlink", "hardlink", "symlink_dir_then_write", "device"]


@pytest.mark.parametrize("kind", TAR_KINDS)
def test_hostile_tar_is_rejected_and_nothing_escapes(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    arc = _hostile_tar(tmp_path / f"{kind}.tar", kind, outside)
    dest = tmp_path / "dest"
    for read in (
        lambda: detect_source(arc),
        lambda: safe_extract(arc, dest),
        lambda: create_loaders(arc, batch_size=2, loader="dataloader", workers=0, cache_dir=tmp_path / "c"),
    ):
        with pytest.raises(SenetError, match="refusing archive"):
            read()
    assert list(outside.iterdir()) == []
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".png"]
    assert written == [], written  # refused before anything was extracted


def test_hostile_tar_on_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    arc = _hostile_tar(tmp_path / "evil.tar.gz", "dotdot", outside)
    argv = ["train", "--model", "_rel:tiny_net", "--data", str(arc), "--output", str(tmp_path / "run"),
            "--device", "cpu", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert_main_error(capsys, argv, "refusing archive", "'..'")
    assert list(outside.iterdir()) == []


SHELLY = ["$(touch {m})", "`touch {m}`", "x; touch {m}", "x && touch {m} #", "$HOME{m}"]


@pytest.mark.parametrize("template", SHELLY)
def test_paths_are_never_shell_interpreted(tmp_path: Path, capsys: pytest.CaptureFixture, template: str) -> None:
    marker = tmp_path / "SHELL_RAN"
    data = template.format(m=marker)
    # From a flag and from a YAML config: the literal string is the (missing) path, named in the error.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {data!r}\noutput: {str(tmp_path / 'run')!r}\n")
    for argv in (
        ["train", "--data", data, "--output", str(tmp_path / "run"), "--device", "cpu"],
        ["train", "--config", str(cfg), "--device", "cpu"],
        ["eval", "--checkpoint", data],
    ):
        err = assert_main_error(capsys, argv, "does not exist")
        assert data in err
    assert not marker.exists()


def test_a_folder_literally_named_like_a_shell_command_is_a_dataset(tmp_path: Path) -> None:
    marker = tmp_path / "SHELL_RAN"
    root = write_tree(tmp_path / f"$(touch {marker})", n=2)
    src = detect_source(root)
    assert src.kind == "folder" and Path(src.root) == root
    # And through a real process (argv list, no shell anywhere in senet): exit 0 for --print-config.
    p = senet("train", "--data", str(root), "--print-config")
    # Parse rather than grep: YAML folds a long path over several lines.
    assert p.returncode == 0 and yaml.safe_load(p.stdout)["data"] == str(root)
    assert not marker.exists()
