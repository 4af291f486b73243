"""Checkpoint reading/writing: safe unpickling, unwrapping, safetensors metadata, URL hash checks (no network)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from senet.errors import SenetError
from senet.weights import fetch_url, read_checkpoint, save_safetensors, unwrap_state_dict
from senet.weights.io import sha256_file


class _Evil:
    """Unpickling this would run ``os.system`` / create a marker file: senet must refuse before that happens."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (shutil.copyfile, (__file__, self.marker))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Evil(str(marker))}, path)
    with pytest.raises(SenetError, match="refused to unpickle") as info:
        read_checkpoint(path)
    assert "copyfile" in str(info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_legacy_pickle_is_refused(tmp_path: Path) -> None:
    # Old (non-zip) torch format: raw pickle with the payload at top level.
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump(_Evil(str(marker)), f)
    with pytest.raises(SenetError, match=r"refused to unpickle|cannot read"):
        read_checkpoint(path)
    assert not marker.exists()


def test_numpy_scalar_extras_are_allowed(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    path = tmp_path / "old.pth.tar"
    sd = {"conv1.weight": torch.randn(2, 3, 1, 1)}
    torch.save({"state_dict": sd, "best_prec1": np.float64(77.4), "arch": "eca_resnet50"}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.wrapper == "state_dict"
    assert ckpt.metadata["arch_hint"] == "eca_resnet50"
    torch.testing.assert_close(ckpt.state_dict["conv1.weight"], sd["conv1.weight"], rtol=0, atol=0)


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "model_state_dict"])
def test_unwrap_training_checkpoint(wrapper: str | None) -> None:
    sd = {"module.fc.weight": torch.ones(2, 2), "module.fc.bias": torch.zeros(2)}
    obj = sd if wrapper is None else {wrapper: sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3}
    got, key, extras = unwrap_state_dict(obj)
    assert key == wrapper and set(got) == set(sd)
    assert ("optimizer" in extras) == (wrapper is not None)


def test_unwrap_without_weights_names_the_keys() -> None:
    with pytest.raises(SenetError, match="no state_dict found.*epoch"):
        unwrap_state_dict({"epoch": 1, "optimizer": {}})


def test_safetensors_metadata_round_trip(tmp_path: Path) -> None:
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2).half()}
    meta = {
        "model": "se_resnet50",
        "layout": "senet",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "input_size": [3, 224, 224],
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "class_names": ["cat", 'dog, "big"'],
    }
    path = tmp_path / "x.safetensors"
    save_safetensors(sd, path, meta)
    ckpt = read_checkpoint(path)
    for k, v in sd.items():
        assert torch.equal(ckpt.state_dict[k], v) and ckpt.state_dict[k].dtype == v.dtype
    for k, v in meta.items():
        assert ckpt.metadata[k] == v
    assert not [p for p in os.listdir(tmp_path) if p != "x.safetensors"], "temporary files left behind"


def test_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SenetError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(SenetError, match="is a directory"):
        read_checkpoint(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(SenetError, match="not a valid safetensors"):
        read_checkpoint(bad)


def test_fetch_url_checks_sha256_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src.safetensors"
    save_safetensors({"w": torch.ones(2)}, src, {"model": "m"})
    digest = sha256_file(src)
    calls: list[str] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append(url)
        shutil.copyfile(src, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    cache = tmp_path / "cache"
    url = "https://example.invalid/weights/w.safetensors"
    with pytest.raises(SenetError, match="without a SHA-256"):
        fetch_url(url, cache_dir=cache)
    with pytest.raises(SenetError, match="SHA-256 mismatch"):
        fetch_url(url, sha256="0" * 64, cache_dir=cache)
    assert not list(cache.iterdir()), "a file failing its hash must not be kept"
    got = fetch_url(url + f"#sha256={digest}", cache_dir=cache)
    assert sha256_file(got) == digest
    n = len(calls)
    assert fetch_url(url, sha256=digest[:10], cache_dir=cache) == got  # cached: no second download
    assert len(calls) == n


def test_legacy_non_zip_checkpoint_loads(tmp_path: Path) -> None:
    """The Caffe-era releases (Cadene, 2017) were saved before torch's zip format."""
    path = tmp_path / "se_resnet50-legacy.pth"
    sd = {"layer0.conv1.weight": torch.randn(4, 3, 7, 7)}
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    assert torch.equal(ckpt.state_dict["layer0.conv1.weight"], sd["layer0.conv1.weight"])
