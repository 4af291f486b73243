"""Strict loading at its edges: another classifier size, pre-0.4 BatchNorm files, senet's own SAME-padded MBConv
files, mis-shaped retrofit weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _weights_refs import randomize_

import senet.weights.convert as convert_mod
from senet import create_model
from senet.errors import SenetError
from senet.retrofit import build_retrofit_model
from senet.weights import convert_checkpoint, load_pretrained


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cifar100_se20(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    ref = randomize_(create_model("se_resnet20", num_classes=100)).eval()
    path = tmp_path_factory.mktemp("ckpt") / "se_resnet20_c100.pth"
    torch.save(ref.state_dict(), path)
    return path, ref


def _backbone_equal(model: torch.nn.Module, ref: torch.nn.Module) -> None:
    own = model.state_dict()
    for k, v in ref.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(own[k], v), k


def test_default_head_never_replaced_silently(cifar100_se20) -> None:
    path, ref = cifar100_se20
    with pytest.raises(SenetError, match=r"100-class classifier .*num_classes=10: pass num_classes=100") as info:
        create_model("se_resnet20", pretrained=str(path))
    assert "\n" not in str(info.value)
    exact = create_model("se_resnet20", num_classes=100, pretrained=str(path)).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(exact(x), ref(x))


def test_explicit_num_classes_gives_a_zero_head(cifar100_se20) -> None:
    path, ref = cifar100_se20
    model = create_model("se_resnet20", num_classes=10, pretrained=str(path))
    assert model.fc.out_features == 10
    assert torch.count_nonzero(model.fc.weight) == 0 and torch.count_nonzero(model.fc.bias) == 0
    _backbone_equal(model, ref)


def test_convert_initialises_a_replaced_head(cifar100_se20, monkeypatch: pytest.MonkeyPatch) -> None:
    path, ref = cifar100_se20
    build = convert_mod._create_uninitialised

    def garbage(name: str, **kwargs):
        # What to_empty storage may hold: anything; NaN makes an unset tensor visible.
        model = build(name, **kwargs)
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.fill_(float("nan"))
        return model

    monkeypatch.setattr(convert_mod, "_create_uninitialised", garbage)
    conv = convert_checkpoint(path, model_name="se_resnet20", model_kwargs={"num_classes": 5})
    assert conv.model.fc.out_features == 5
    assert torch.count_nonzero(conv.model.fc.weight) == 0 and torch.count_nonzero(conv.model.fc.bias) == 0
    _backbone_equal(conv.model, ref)
    with torch.no_grad():
        assert torch.isfinite(conv.model(torch.randn(2, 3, 16, 16))).all()


def test_checkpoint_without_num_batches_tracked_loads(tmp_path: Path) -> None:
    """PyTorch 0.3-era files (the Caffe/Cadene SENet release) have no BatchNorm step counters."""
    ref = randomize_(create_model("se_resnet20", num_classes=10)).eval()
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(sd, path)
    model = create_model("se_resnet20")
    res = load_pretrained(model, path)
    assert any("num_batches_tracked" in n for n in res.adapted)
    counters = [v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(c) == 0 for c in counters)
    conv = convert_checkpoint(path)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(conv.model(x), ref(x)) and torch.equal(model.eval()(x), ref(x))


def test_senet_mbconv_file_with_same_padding_loads(tmp_path: Path) -> None:
    kwargs = {"pad_type": "same", "bn_eps": 1e-3}
    ref = randomize_(create_model("efficientnet_lite0", **kwargs)).eval()
    path = tmp_path / "lite0_same.pth"
    torch.save(ref.state_dict(), path)
    model = create_model("efficientnet_lite0", pretrained=str(path), **kwargs).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_mis_shaped_retrofit_weights_are_one_line(tmp_path: Path) -> None:
    sd = create_model("resnet20").state_dict()
    sd["layer2.0.conv1.weight"] = torch.zeros(8, 16, 3, 3)
    path = tmp_path / "resnet20_wrong.pth"
    torch.save(sd, path)
    with pytest.raises(SenetError, match=r"resnet20_wrong\.pth.*layer2\.0\.conv1\.weight is \(8, 16, 3, 3\)") as info:
        build_retrofit_model("senet:resnet20", weights=path, num_classes=10)
    assert "\n" not in str(info.value)
