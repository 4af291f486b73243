"""senet.utils.io: a writer that fails or is killed midway never leaves a half-written file or a temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from senet.utils.io import atomic_open, atomic_path, atomic_write_text


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "model.onnx"
    with atomic_path(dest, suffix=".onnx") as tmp:
        assert tmp.parent == dest.parent and tmp.name.endswith(".onnx") and tmp != dest
        tmp.write_bytes(b"v1")
    assert dest.read_bytes() == b"v1"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("exporter crashed")
    assert dest.read_bytes() == b"v1" and sorted(p.name for p in dest.parent.iterdir()) == ["model.onnx"]


def test_atomic_open_and_text(tmp_path: Path) -> None:
    dest = tmp_path / "a.txt"
    atomic_write_text(dest, "one")
    with pytest.raises(ValueError), atomic_open(dest, "w") as f:
        f.write("two")
        raise ValueError("stop")
    assert dest.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
