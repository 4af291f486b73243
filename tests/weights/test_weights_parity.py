"""Output parity: reference implementation with random weights -> convert -> senet model, same logits.

Each case builds the reference (timm, Cadene pretrainedmodels, torchvision) with random weights and random BatchNorm
statistics, converts its state_dict through the full pipeline (detect -> canonical -> infer model -> strict load)
and compares logits in eval mode: max abs diff <= 1e-5 in fp32 at 224 and at a second size the reference accepts
(Cadene's fixed 7x7 average pool only takes inputs that end at 7x7: 200 does, and its odd intermediate sizes
exercise the ceil-mode stem pool).
"""

from __future__ import annotations

import pytest
import torch
from _weights_refs import cadene, randomize_

from senet.weights import convert_checkpoint

ATOL = 1e-5
SLOW = pytest.mark.slow


def _timm(name: str, **kw):
    def build():
        timm = pytest.importorskip("timm")
        return timm.create_model(name, **kw)

    return build


def _tv(name: str):
    def build():
        torchvision = pytest.importorskip("torchvision")
        return getattr(torchvision.models, name)()

    return build


def _cadene(name: str):
    return lambda: getattr(cadene(), name)(pretrained=None)


def _check(build, expect_model: str, expect_layout: str, sizes: tuple[int, ...], batch: int = 1) -> None:
    # Built on the meta device and materialised uninitialised: randomize_ overwrites every tensor anyway, and the
    # references' own init costs seconds per model (SENet-154: 115M parameters).
    with torch.device("meta"):
        ref = build()
    ref = randomize_(ref.to_empty(device="cpu")).eval()
    conv = convert_checkpoint(ref.state_dict())
    assert conv.detection.layout == expect_layout, conv.detection
    assert conv.model_name == expect_model, (conv.model_name, conv.arch.describe())
    model = conv.model.eval()
    g = torch.Generator().manual_seed(1)
    for size in sizes:
        x = torch.randn(batch, 3, size, size, generator=g)
        with torch.no_grad():
            want, got = ref(x), model(x)
        assert want.shape == got.shape
        assert want.abs().max() > 0.1, "degenerate logits make the comparison meaningless"
        diff = (want - got).abs().max().item()
        # Recorded for docs/weights.md (run with -s): PARITY <model> <size> <max abs diff> <max |logit|>
        print(f"PARITY {expect_model} {expect_layout} {size} {diff:.3g} {want.abs().max().item():.3g}")
        assert diff <= ATOL, f"{expect_model} @ {size}: max abs diff {diff:.3g} (logit scale {want.abs().max():.3g})"


CASES = [
    # (reference builder, senet model, layout, sizes, marks)
    pytest.param(_timm("seresnet50"), "se_resnet50", "timm", (224, 160), id="timm-seresnet50"),
    pytest.param(_timm("seresnet18"), "se_resnet18", "timm", (224, 160), id="timm-seresnet18"),
    pytest.param(_timm("seresnext50_32x4d"), "se_resnext50_32x4d", "timm", (224, 160), id="timm-seresnext50"),
    pytest.param(
        _timm("resnet50", block_args=dict(attn_layer="eca")), "eca_resnet50", "timm", (224, 160), id="timm-eca50"
    ),
    pytest.param(
        _timm("resnet50", block_args=dict(attn_layer="cbam")), "cbam_resnet50", "timm", (224, 160), id="timm-cbam50"
    ),
    pytest.param(_timm("resnet50"), "resnet50", "torchvision", (224, 160), id="timm-resnet50"),
    pytest.param(_timm("legacy_seresnet50"), "se_resnet50_caffe", "caffe_senet", (224, 200), id="timm-legacy50"),
    pytest.param(
        _timm("legacy_seresnext50_32x4d"),
        "se_resnext50_32x4d",
        "caffe_senet",
        (224, 200),
        id="timm-legacy-seresnext50",
    ),
    pytest.param(_cadene("se_resnet50"), "se_resnet50_caffe", "caffe_senet", (224, 200), id="cadene-se_resnet50"),
    pytest.param(
        _cadene("se_resnext50_32x4d"), "se_resnext50_32x4d", "caffe_senet", (224, 200), id="cadene-se_resnext50"
    ),
    pytest.param(_tv("resnet18"), "resnet18", "torchvision", (224, 160), id="tv-resnet18"),
    pytest.param(_tv("resnet50"), "resnet50", "torchvision", (224, 160), id="tv-resnet50"),
    pytest.param(_tv("resnext50_32x4d"), "resnext50_32x4d", "torchvision", (224, 160), id="tv-resnext50"),
    # Depths without a registered name: the family member with explicit blocks per stage.
    pytest.param(
        _timm("legacy_seresnext26_32x4d"), "se_resnext50_32x4d", "caffe_senet", (224, 200), id="timm-legacy-sx26"
    ),
    pytest.param(_timm("resnet26"), "resnet50", "torchvision", (224, 160), id="timm-resnet26"),
    pytest.param(_tv("wide_resnet50_2"), "wide_resnet50_2", "torchvision", (224, 160), id="tv-wide50", marks=SLOW),
    # No registered name for 32x8d: resnext101_32x4d with groups/base_width overrides.
    pytest.param(_tv("resnext101_32x8d"), "resnext101_32x4d", "torchvision", (224, 160), id="tv-rx101-8d", marks=SLOW),
    # Big ones: same code paths as above, more blocks. Slow on 2 cores (SENet-154: 20.7 GMACs at 224).
    pytest.param(
        _cadene("se_resnet101"),
        "se_resnet101_caffe",
        "caffe_senet",
        (224, 200),
        id="cadene-se_resnet101",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        _cadene("se_resnet152"),
        "se_resnet152_caffe",
        "caffe_senet",
        (224, 200),
        id="cadene-se_resnet152",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        _cadene("se_resnext101_32x4d"),
        "se_resnext101_32x4d",
        "caffe_senet",
        (224, 200),
        id="cadene-se_resnext101",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        _cadene("senet154"), "senet154", "caffe_senet", (224, 200), id="cadene-senet154", marks=pytest.mark.slow
    ),
    pytest.param(
        _timm("legacy_senet154"),
        "senet154",
        "caffe_senet",
        (224, 200),
        id="timm-legacy-senet154",
        marks=pytest.mark.slow,
    ),
    pytest.param(_tv("resnet152"), "resnet152", "torchvision", (224, 160), id="tv-resnet152", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("build, model, layout, sizes", CASES)
def test_logits_match_reference(build, model: str, layout: str, sizes: tuple[int, ...]) -> None:
    _check(build, model, layout, sizes)


def test_timm_legacy_basic_blocks_are_refused() -> None:
    """timm's legacy_seresnet18 has a ReLU before SE that senet's BasicBlock lacks: refuse rather than mis-load."""
    from senet.errors import SenetError

    ref = randomize_(_timm("legacy_seresnet18")())
    with pytest.raises(SenetError, match="layout caffe_senet.*ReLU before SE"):
        convert_checkpoint(ref.state_dict())
