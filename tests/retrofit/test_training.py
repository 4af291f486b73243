"""Training hooks of senet.retrofit: build from a spec + weights file, freeze the backbone, unfreeze."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from senet import SenetError
from senet.retrofit import (
    build_retrofit_model,
    classifier_name,
    freeze_backbone,
    load_state_dict_file,
    retrofit,
    trainable_parameter_names,
    unfreeze,
)


def test_freeze_backbone_trains_only_attention_and_classifier():
    model, report = retrofit(tvm.resnet18(num_classes=4), "se", init="identity")
    names = freeze_backbone(model)
    assert names == trainable_parameter_names(model)
    assert set(names) == {n for n, _ in model.named_parameters() if ".attn." in n or n.startswith("fc.")}
    assert sum(1 for n in names if n.endswith("gamma")) == len(report.sites)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(names)
    assert "fc.weight" in changed and "conv1.weight" not in changed
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    # Without the classifier only the new blocks stay trainable.
    assert all(".attn." in n for n in freeze_backbone(model, train_classifier=False))


def test_freeze_needs_a_retrofit():
    with pytest.raises(SenetError, match="no retrofitted attention"):
        freeze_backbone(tvm.resnet18())


@pytest.mark.parametrize(
    ("factory", "head"),
    [(tvm.resnet18, "fc"), (tvm.mobilenet_v2, "classifier"), (tvm.efficientnet_b0, "classifier")],
)
def test_classifier_name(factory, head):
    assert classifier_name(factory(num_classes=3)) == head


def test_build_from_torchvision_weights_keeps_function(tmp_path):
    src = tvm.resnet18(num_classes=10).eval()
    path = tmp_path / "r18.pt"
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}, "epoch": 3}, path)
    model, report = build_retrofit_model("torchvision:resnet18", weights=path, num_classes=10, attn_layer="se")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), src(x), rtol=0, atol=1e-5)
    assert report.family == "torchvision-resnet" and len(report.sites) == 8
    # A new task: the checkpoint's 10-way classifier is loaded, then replaced by a fresh 3-way one.
    model3, _ = build_retrofit_model("torchvision:resnet18", weights=path, num_classes=3, attn_layer="eca")
    assert model3.fc.out_features == 3
    torch.testing.assert_close(model3.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


def test_build_safetensors_and_senet_model(tmp_path):
    from safetensors.torch import save_file

    from senet.models import create_model

    src = create_model("resnet20", num_classes=10).eval()
    path = tmp_path / "r20.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model, report = build_retrofit_model("senet:resnet20", weights=path, attn_layer="se", rd_ratio=1 / 4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), src(x), rtol=0, atol=1e-5)
    assert [n for n, _ in model.attention_modules()][:2] == ["SE_2_1", "SE_2_2"]


def test_build_errors(tmp_path):
    with pytest.raises(SenetError, match="does not exist"):
        build_retrofit_model("torchvision:resnet18", weights=tmp_path / "missing.pt")
    with pytest.raises(SenetError, match="unknown model source"):
        build_retrofit_model("keras:resnet18")
    with pytest.raises(SenetError, match="unknown torchvision model"):
        build_retrofit_model("torchvision:resnet19")
    path = tmp_path / "r34.pt"
    torch.save(tvm.resnet34(num_classes=10).state_dict(), path)
    with pytest.raises(SenetError, match="do not fit torchvision:resnet18"):
        build_retrofit_model("torchvision:resnet18", weights=path)
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SenetError, match="cannot read weights"):
        load_state_dict_file(bad)
