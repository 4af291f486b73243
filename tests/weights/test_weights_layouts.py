"""Layout detection and key/tensor mapping to canonical senet names (no senet model needed)."""

from __future__ import annotations

import pytest
import torch
from _weights_refs import cadene, cbam_release_sd, eca_release_sd, mmpretrain_sd, moskomule_sd

from senet.errors import SenetError
from senet.weights import detect_layout, infer_arch, list_layouts, to_canonical


def _meta_sd(build) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return dict(build().state_dict())


def _timm(name: str, **kw):
    timm = pytest.importorskip("timm")
    return lambda: timm.create_model(name, **kw)


def _tv(name: str):
    torchvision = pytest.importorskip("torchvision")
    return lambda: getattr(torchvision.models, name)()


@pytest.mark.parametrize(
    "build, layout, describe",
    [
        (_timm("seresnet50"), "timm", "bottleneck blocks [3, 4, 6, 3] (depth 50), se rd=[16, 32, 64, 128]"),
        (_timm("seresnet18"), "timm", "basic blocks [2, 2, 2, 2] (depth 18), se rd=[8, 8, 16, 32]"),
        (_timm("seresnext50_32x4d"), "timm", "(depth 50), 32x4d groups, se"),
        (_timm("resnet50", block_args=dict(attn_layer="eca")), "timm", "eca k=[5, 5, 5, 7]"),
        (_timm("resnet50", block_args=dict(attn_layer="cbam")), "timm", "cbam rd=[16, 32, 64, 128]"),
        (_timm("legacy_seresnet50"), "caffe_senet", "(depth 50), se rd="),
        (_timm("legacy_senet154"), "caffe_senet", "[3, 8, 36, 3] (depth 152), deep 3x3 stem, 64x4d groups"),
        (_timm("resnet50"), "torchvision", "bottleneck blocks [3, 4, 6, 3] (depth 50), 1000 classes"),
        (_tv("resnet18"), "torchvision", "basic blocks [2, 2, 2, 2] (depth 18), 1000 classes"),
        (_tv("resnext50_32x4d"), "torchvision", "32x4d groups"),
        (_tv("wide_resnet50_2"), "torchvision", "width per group 128"),
        (lambda: cadene().se_resnet50(pretrained=None), "caffe_senet", "(depth 50), se rd=[16, 32, 64, 128]"),
        (lambda: cadene().se_resnext101_32x4d(pretrained=None), "caffe_senet", "(depth 101), 32x4d groups"),
    ],
)
def test_detect_reference_layouts(build, layout: str, describe: str) -> None:
    sd = _meta_sd(build)
    canonical, det = to_canonical(sd)
    assert det.layout == layout, det
    assert describe in infer_arch(canonical).describe()


def test_detect_strips_wrappers_and_reports_evidence() -> None:
    sd = {"module._orig_mod." + k: v for k, v in eca_release_sd().items()}
    det = detect_layout(sd)
    assert det.layout == "eca_release"
    assert det.prefixes == ["module.", "_orig_mod."]
    assert det.evidence == ["layer1.0.eca.conv.weight"]
    assert "eca_release" in str(det) and "module." in str(det)


def test_unknown_layout_names_keys() -> None:
    with pytest.raises(SenetError, match=r"unrecognised checkpoint layout \(2 tensors: foo.weight, bar.bias\)"):
        detect_layout({"foo.weight": torch.zeros(1), "bar.bias": torch.zeros(1)})
    with pytest.raises(SenetError, match="unknown layout 'nope'"):
        to_canonical({"fc.weight": torch.zeros(1)}, layout="nope")
    assert {"timm", "caffe_senet", "torchvision", "eca_release", "cbam_release", "mmpretrain", "moskomule"} <= set(
        list_layouts()
    )


def test_eca_release_mapping_tensor_by_tensor() -> None:
    src = eca_release_sd(ks=(3, 5, 5, 7))
    canonical, det = to_canonical({"module." + k: v for k, v in src.items()})
    assert det.layout == "eca_release"
    assert len(canonical) == len(src)
    for k, v in src.items():
        dst = k.replace(".eca.conv.", ".attn.conv.")
        assert canonical[dst] is v  # renamed, not copied or reshaped
    arch = infer_arch(canonical)
    assert arch.attn == "eca" and arch.eca_kernels == (3, 5, 5, 7)  # k read from the tensor shapes


def test_cbam_release_mapping_tensor_by_tensor() -> None:
    src = cbam_release_sd()
    canonical, det = to_canonical({"module." + k: v for k, v in src.items()})
    assert det.layout == "cbam_release"
    assert len(canonical) == len(src)
    for k, v in src.items():
        if ".cbam." not in k:
            assert canonical[k] is v
            continue
        block = k.split(".cbam.")[0]
        if "mlp.1." in k or "mlp.3." in k:
            fc = "fc1" if "mlp.1." in k else "fc2"
            assert torch.equal(canonical[f"{block}.attn.channel.{fc}.{k.rsplit('.', 1)[1]}"], v)
        elif k.endswith("spatial.conv.weight"):
            got = canonical[f"{block}.attn.spatial.conv.weight"]
            # [max, mean] input channels -> [mean, max]
            assert torch.equal(got[:, 0], v[:, 1]) and torch.equal(got[:, 1], v[:, 0])
        else:
            assert torch.equal(canonical[f"{block}.attn.spatial.bn.{k.rsplit('.', 1)[1]}"], v)
    arch = infer_arch(canonical)
    assert arch.attn == "cbam" and arch.attn_bias is True and arch.rd_channels == (16, 32, 64, 128)


def test_cbam_release_swap_matches_its_forward() -> None:
    """The release's SpatialGate (ChannelPool [max, mean] -> conv -> BN -> sigmoid) equals senet's after the swap."""
    from senet.layers import SpatialAttn

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 1, 7, padding=3, bias=False)
    bn = torch.nn.BatchNorm2d(1, eps=1e-5, momentum=0.01).eval()
    bn.running_mean.fill_(0.1)
    bn.running_var.fill_(0.7)
    x = torch.randn(2, 16, 9, 9)
    pooled = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)
    ref = x * torch.sigmoid(bn(conv(pooled)))
    sd = {"layer1.0.cbam.SpatialGate.spatial.conv.weight": conv.weight.detach()}
    sd |= {f"layer1.0.cbam.SpatialGate.spatial.bn.{k}": v for k, v in bn.state_dict().items()}
    sd["layer1.0.cbam.ChannelGate.mlp.1.weight"] = torch.zeros(1, 16)
    canonical, _ = to_canonical(sd, layout="cbam_release")
    ours = SpatialAttn(7).eval()
    ours.load_state_dict({k.split("attn.spatial.", 1)[1]: v for k, v in canonical.items() if ".spatial." in k})
    torch.testing.assert_close(ours(x), ref, rtol=0, atol=1e-6)


def test_mmpretrain_mapping_tensor_by_tensor() -> None:
    src = mmpretrain_sd()
    canonical, det = to_canonical(src)
    assert det.layout == "mmpretrain"
    assert len(canonical) == len(src)
    for k, v in src.items():
        if k.startswith("head."):
            assert canonical[k[len("head.") :]] is v
        elif ".se_layer." in k:
            block, rest = k[len("backbone.") :].split(".se_layer.")
            n, kind = rest[len("conv")], rest.rsplit(".", 1)[1]
            got = canonical[f"{block}.attn.fc{n}.{kind}"]
            assert torch.equal(got, v.reshape(got.shape)) and got.ndim == (2 if kind == "weight" else 1)
        else:
            assert canonical[k[len("backbone.") :]] is v
    assert infer_arch(canonical).rd_channels == (16, 32, 64, 128)


def test_moskomule_mapping_tensor_by_tensor() -> None:
    src = moskomule_sd()
    canonical, det = to_canonical(src)
    assert det.layout == "moskomule"
    for k, v in src.items():
        dst = k.replace(".se.fc.0.", ".attn.fc1.").replace(".se.fc.2.", ".attn.fc2.")
        assert canonical[dst] is v
    arch = infer_arch(canonical)
    assert arch.attn == "se" and arch.attn_bias is False
