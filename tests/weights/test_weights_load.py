"""Loading API: releases without an installable reference, round trips, adaptations and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _weights_refs import cbam_release_sd, eca_release_sd, mmpretrain_sd, moskomule_sd, randomize_

from senet.errors import SenetError
from senet.layers import EfficientChannelAttn, SqueezeExcite
from senet.weights import (
    convert_checkpoint,
    get_pretrained_cfg,
    load_pretrained,
    read_checkpoint,
    resolve_pretrained_cfg,
    save_pretrained,
    to_canonical,
)


def _create(name: str, **kw):
    from senet import create_model

    return create_model(name, **kw)


def _empty(name: str, **kw):
    """A model with uninitialised storage, for loads that overwrite every tensor (skips a slow weight init)."""
    with torch.device("meta"):
        model = _create(name, **kw)
    return model.to_empty(device="cpu")


def _assert_loaded(model: torch.nn.Module, canonical: dict[str, torch.Tensor], rename=lambda k: k) -> None:
    """Every canonical tensor sits, bit-exact, in the model under its senet name."""
    own = model.state_dict()
    for k, v in canonical.items():
        got = own[rename(k)]
        assert torch.equal(got, v.to(got.dtype)), k


def _save_release(tmp_path: Path, sd: dict[str, torch.Tensor], name: str, **extra) -> Path:
    """Save like the releases did: DataParallel prefix, optimizer state and epoch alongside."""
    path = tmp_path / name
    obj = {
        "epoch": 100,
        "arch": extra.pop("arch", "resnet"),
        "state_dict": {"module." + k: v for k, v in sd.items()},
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.1}]},
        **extra,
    }
    torch.save(obj, path)
    return path


def test_eca_release_loads_with_kernels_from_shapes(tmp_path: Path) -> None:
    src = eca_release_sd(ks=(3, 5, 5, 7))
    path = _save_release(
        tmp_path, src, "eca_resnet50_k3557.pth.tar", arch="eca_resnet50", best_prec1=torch.tensor(77.4)
    )
    conv = convert_checkpoint(path)
    assert conv.detection.layout == "eca_release" and conv.model_name == "eca_resnet50"
    assert conv.arch.eca_kernels == (3, 5, 5, 7)
    canonical, _ = to_canonical(src)
    _assert_loaded(conv.model, canonical)
    kernels = [m.kernel_size for m in conv.model.modules() if isinstance(m, EfficientChannelAttn)]
    assert kernels[:3] == [3, 3, 3] and kernels[-1] == 7
    # The stock model (paper rule: k=5 at 256 channels) is adapted in place to the file's kernels.
    stock = _empty("eca_resnet50")
    res = load_pretrained(stock, path)
    assert any("ECA" in note for note in res.adapted)
    _assert_loaded(stock, canonical)


def test_cbam_release_loads_with_mlp_bias(tmp_path: Path) -> None:
    src = cbam_release_sd()
    path = _save_release(tmp_path, src, "RESNET50_CBAM_new_name_wrap.pth", arch="resnet")
    conv = convert_checkpoint(path)
    assert conv.detection.layout == "cbam_release" and conv.model_name == "cbam_resnet50"
    canonical, _ = to_canonical(src)
    _assert_loaded(conv.model, canonical)
    stock = _empty("cbam_resnet50")
    res = load_pretrained(stock, path)
    _assert_loaded(stock, canonical)
    assert res.adapted == [] or any("bias" in n for n in res.adapted)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(stock.eval()(x), conv.model.eval()(x), rtol=0, atol=0)


def test_mmpretrain_and_moskomule_load_into_se_resnet50(tmp_path: Path) -> None:
    for sd, layout in ((mmpretrain_sd(), "mmpretrain"), (moskomule_sd(), "moskomule")):
        path = tmp_path / f"{layout}.pth"
        torch.save({"meta": {"epoch": 1}, "state_dict": sd} if layout == "mmpretrain" else sd, path)
        model = _empty("se_resnet50")
        res = load_pretrained(model, path)
        assert res.layout == layout
        canonical, _ = to_canonical(sd)
        _assert_loaded(model, canonical)
        if layout == "moskomule":  # bias-free SE: zero biases, same function
            assert any("set to zero" in n for n in res.adapted)
            se = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
            assert len(se) == 16 and all(m.fc1.bias.abs().sum() == 0 for m in se)


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model = randomize_(_empty("se_resnet50"))
    path = tmp_path / "se_resnet50.safetensors"
    meta = save_pretrained(model, path, class_names=[f"c{i}" for i in range(1000)])
    ckpt = read_checkpoint(path)
    assert ckpt.metadata["model"] == "se_resnet50" and ckpt.metadata["layout"] == "senet"
    assert ckpt.metadata["class_names"][:2] == ["c0", "c1"] and ckpt.metadata["crop_pct"] == meta["crop_pct"]
    cfg = resolve_pretrained_cfg(metadata={**ckpt.metadata, "crop_pct": 0.95})
    assert cfg.model == "se_resnet50" and cfg.crop_pct == 0.95 and cfg.mean == (0.485, 0.456, 0.406)
    again = _create("se_resnet50", pretrained=str(path))
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype, k


def test_plain_resnet_weights_start_an_se_model(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    ref = randomize_(torchvision.models.resnet50())
    path = tmp_path / "resnet50.pth"
    torch.save(ref.state_dict(), path)
    model = _create("se_resnet50")
    with pytest.raises(SenetError, match=r"missing \d+: .*attn.*init_missing_attn=True"):
        load_pretrained(model, path)
    res = load_pretrained(model, path, init_missing_attn=True)
    assert res.missing and all(".attn." in k or ".se." in k for k in res.missing)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_mismatch_names_keys_and_layout(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        sd = timm.create_model("seresnet50").state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in sd.items()}
    path = tmp_path / "seresnet50.pth"
    torch.save(sd, path)
    with pytest.raises(SenetError) as info:
        load_pretrained(_empty("se_resnet101"), path)
    msg = str(info.value)
    assert "layout timm" in msg and "se_resnet101" in msg and "missing" in msg and "layer3.6" in msg
    # A different head is what fine-tuning asks for: everything else loads strictly, the classifier starts at zero.
    res = load_pretrained(_empty("se_resnet50", num_classes=10), path, replace_head=True)
    assert any("classifier not loaded: the checkpoint has 1000 classes" in n for n in res.adapted)
    res = load_pretrained(_empty("se_resnet50", num_classes=0), path, replace_head=True)
    assert any("num_classes=0" in n for n in res.adapted)
    # ... but only the head: a wrong backbone still fails, naming the mis-shaped keys.
    with pytest.raises(SenetError, match=r"mis-shaped .*layer1\.0\.conv1\.weight: checkpoint \(64, 64, 1, 1\)"):
        load_pretrained(_empty("se_resnext50_32x4d", num_classes=10, stem_pool="pad"), path)


def test_caffe_release_refuses_the_v15_model(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        sd = timm.create_model("legacy_seresnet50").state_dict()
    path = tmp_path / "se_resnet50-ce0d4300.pth"
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in sd.items()}, path)
    with pytest.raises(
        SenetError, match=r"layout caffe_senet.*does not fit se_resnet50: .*Renaming keys is not enough"
    ):
        load_pretrained(_empty("se_resnet50"), path)
    load_pretrained(_empty("se_resnet50_caffe"), path)


def test_pretrained_cfg_published_numbers() -> None:
    cfg = get_pretrained_cfg("se_resnet50_caffe")
    assert (cfg.top1, cfg.top5) == (77.63, 93.64)  # official release: 22.37 / 6.36 error
    assert cfg.layout == "caffe_senet" and cfg.crop_pct == 0.875 and cfg.interpolation == "bilinear"
    assert get_pretrained_cfg("senet154").top1 == 81.32
    assert get_pretrained_cfg("eca_resnet50").top1 == 77.48
    assert get_pretrained_cfg("cbam_resnet50").top5 == 93.95
    assert get_pretrained_cfg("resnet20").input_size == (3, 32, 32)
    assert get_pretrained_cfg("se_resnet50").top1 is None
    with pytest.raises(SenetError, match="no published checkpoint"):
        get_pretrained_cfg("se_resnet50", strict=True)


def test_torchvision_cfgs_match_torchvision_metadata() -> None:
    torchvision = pytest.importorskip("torchvision")
    for name in ("resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"):
        w = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        cfg = get_pretrained_cfg(name)
        m = w.meta["_metrics"]["ImageNet-1K"]
        assert (cfg.top1, cfg.top5) == (m["acc@1"], m["acc@5"]) and cfg.url == w.url


def test_moskomule_cifar_se_resnet20() -> None:
    """senet.pytorch's CifarSEResNet: torchvision names, 1x1+BN projections, bias-free Linear SE, r=16 (width 1)."""
    from senet import create_model

    with torch.device("meta"):
        plain = create_model("resnet20")
    g = torch.Generator().manual_seed(0)
    sd = {
        k: torch.randn(v.shape, generator=g) if v.is_floating_point() else torch.zeros((), dtype=v.dtype)
        for k, v in plain.state_dict().items()
    }
    for k in [k for k in sd if k.endswith(".bn2.weight")]:
        block, c = k[: -len(".bn2.weight")], sd[k].shape[0]
        sd[f"{block}.se.fc.0.weight"] = torch.randn(c // 16, c, generator=g)
        sd[f"{block}.se.fc.2.weight"] = torch.randn(c, c // 16, generator=g)
    conv = convert_checkpoint(sd)
    assert conv.detection.layout == "moskomule" and conv.model_name == "se_resnet20"
    assert conv.arch.rd_channels == (1, 2, 4) and conv.model_kwargs["num_classes"] == 10
    canonical, _ = to_canonical(sd)
    _assert_loaded(conv.model, canonical)


def test_converted_file_remembers_its_structure(tmp_path: Path) -> None:
    """Caffe weights converted for se_resnet50 + Caffe overrides must not load into the stock (v1.5) se_resnet50."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        sd = timm.create_model("legacy_seresnet50").state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in sd.items()}
    conv = convert_checkpoint(sd, model_name="se_resnet50")
    assert conv.model_kwargs["stride_in_1x1"] is True and conv.model_kwargs["stem_pool"] == "caffe"
    path = tmp_path / "se50_caffe_weights.safetensors"
    save_pretrained(conv.model, path, model_name=conv.model_name, model_kwargs=conv.model_kwargs)
    with pytest.raises(SenetError, match=r"converted for create_model\('se_resnet50'.*stride_in_1x1=True"):
        load_pretrained(_empty("se_resnet50"), path)
    load_pretrained(_empty("se_resnet50", stem_pool="caffe", stride_in_1x1=True), path)
    load_pretrained(_empty("se_resnet50_caffe"), path)


def test_create_model_from_url_checks_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``create_model(..., pretrained=URL)`` fetches (here: copies a local file) and verifies the SHA-256."""
    import shutil

    from senet.weights import sha256_file

    model = randomize_(_empty("resnet18"))
    src = tmp_path / "resnet18.safetensors"
    save_pretrained(model, src)
    digest = sha256_file(src)
    monkeypatch.setenv("SENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst, *a, **k: shutil.copyfile(src, dst))
    url = "https://example.invalid/resnet18.safetensors"
    with pytest.raises(SenetError, match="without a SHA-256"):
        _create("resnet18", pretrained=url)
    with pytest.raises(SenetError, match="SHA-256 mismatch"):
        _create("resnet18", pretrained=f"{url}#sha256={'f' * 64}")
    again = _create("resnet18", pretrained=f"{url}#sha256={digest}")
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
