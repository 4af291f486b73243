"""The ResNet backbone's knobs: integration positions, attention stages, stride placement, stems, shortcuts."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from senet.errors import SenetError
from senet.models import ATTN_POSITIONS, create_model
from senet.models.cifar_resnet import CIFAR_RD_MIN


def _meta(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- paper names -------------------------------------------------------------------------------------------------


def test_se_resnet50_attention_names_follow_the_paper() -> None:
    names = [n for n, _ in _meta("se_resnet50").attention_modules()]
    expected = [f"SE_{s}_{b}" for s, n in zip((2, 3, 4, 5), (3, 4, 6, 3)) for b in range(1, n + 1)]
    assert names == expected
    m = _meta("se_resnet50")
    assert dict(m.attention_modules())["SE_4_6"] is m.layer3[5].attn
    assert dict(m.attention_modules())["SE_5_1"] is m.layer4[0].attn


def test_cifar_stages_are_numbered_2_to_4() -> None:
    names = [n for n, _ in _meta("se_resnet20").attention_modules()]
    assert names == [f"SE_{s}_{b}" for s in (2, 3, 4) for b in (1, 2, 3)]


def test_attention_is_named_attn_in_every_block() -> None:
    keys = _meta("se_resnet50").state_dict()
    assert "layer1.0.attn.fc1.weight" in keys and "layer4.2.attn.fc2.bias" in keys
    assert "layer1.0.attn.conv.weight" in _meta("eca_resnet50").state_dict()
    assert "layer1.0.attn.spatial.conv.weight" in _meta("cbam_resnet50").state_dict()


# --- attn_stages: paper Table 13 -----------------------------------------------------------------------------------

SE50_STAGES = {2: (3, 256), 3: (4, 512), 4: (6, 1024), 5: (3, 2048)}  # stage: (blocks N_s, channels C_s)


def _se_cost(stages: set[int], r: int = 16) -> int:
    # (2 / r) * N_s * C_s^2 weights (C // r exactly divides here) plus the two FC biases (C / r + C) per block.
    return sum(n * (2 * c * c // r + c // r + c) for s, (n, c) in SE50_STAGES.items() if s in stages)


@pytest.mark.parametrize("stages", [(2,), (3,), (4,), (5,), (2, 3, 4), (2, 3, 4, 5), ()])
def test_attn_stages_param_deltas_match_the_closed_form(stages: tuple[int, ...]) -> None:
    base = _params(_meta("resnet50"))
    model = _meta("se_resnet50", attn_stages=stages)
    assert _params(model) - base == _se_cost(set(stages))
    got = {int(n.split("_")[1]) for n, _ in model.attention_modules()}
    assert got == set(stages)
    for s, stage in enumerate(model.stages(), 2):
        assert all((blk.attn is not None) == (s in stages) for blk in stage)


def test_attn_stages_validation() -> None:
    with pytest.raises(SenetError, match="subset"):
        create_model("se_resnet20", attn_stages=(5,))  # CIFAR nets have stages 2-4


# --- integration positions: paper Fig. 5 and Table 15 ----------------------------------------------------------------


def _attn_input(model: nn.Module, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = {}
    h = block.attn.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0].clone()))
    model(x)
    h.remove()
    return seen["x"]


def _capture(module: nn.Module, model: nn.Module, x: torch.Tensor, pre: bool = False) -> torch.Tensor:
    seen = {}
    if pre:
        h = module.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0].clone()))
    else:
        h = module.register_forward_hook(lambda m, a, out: seen.setdefault("x", out.clone()))
    model(x)
    h.remove()
    return seen["x"]


@pytest.mark.parametrize("position", ATTN_POSITIONS)
def test_bottleneck_attention_sits_where_the_paper_puts_it(position: str) -> None:
    torch.manual_seed(0)
    model = create_model("se_resnet50", num_classes=4, attn_position=position).eval()
    blk = model.layer2[0]  # a block with a projection shortcut
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got = _attn_input(model, blk, x)
        expected = {
            "standard": lambda: _capture(blk.bn3, model, x),
            "pre": lambda: _capture(blk, model, x, pre=True),
            "inner": lambda: _capture(blk.act2, model, x),
            "identity": lambda: _capture(blk.downsample, model, x),
            "post": lambda: _capture(blk.act3, model, x),
        }[position]()
    torch.testing.assert_close(got, expected)
    channels = {"pre": 256, "inner": 128}.get(position, 512)
    assert blk.attn.channels == channels


@pytest.mark.parametrize("name", ["se_resnet20", "se_preact_resnet20", "se_resnet164"])
def test_each_position_is_a_different_computation(name: str) -> None:
    torch.manual_seed(0)
    models = {p: create_model(name, attn_position=p).eval() for p in ATTN_POSITIONS}
    models["none"] = create_model(name, attn_layer="none").eval()  # None would be pruned as "unset"
    ref = models["standard"].state_dict()
    for m in models.values():  # same weights wherever the shapes agree
        own = m.state_dict()
        m.load_state_dict({k: v for k, v in ref.items() if k in own and own[k].shape == v.shape}, strict=False)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = {p: m(x) for p, m in models.items()}
    for a, b in itertools.combinations(out, 2):
        assert not torch.allclose(out[a], out[b], atol=1e-5), f"{a} and {b} compute the same function"


def test_inner_position_costs() -> None:
    # SE_3x3 gates the 3x3 output (C/4 channels): 1/16 of the standard SE's weights. The paper's Table 15 says
    # 25.8M in total; the closed form gives 25.718M (the table rounds differently or counts something else).
    base = _params(_meta("resnet50"))
    inner = {s: (n, c // 4) for s, (n, c) in SE50_STAGES.items()}
    cost = sum(n * (2 * c * c // 16 + c // 16 + c) for n, c in inner.values())
    assert _params(_meta("se_resnet50", attn_position="inner")) - base == cost
    # SE-PRE gates the block input: the first block of each stage sees the previous stage's width.
    pre = _params(_meta("se_resnet50", attn_position="pre")) - base
    widths_in = [64, 256, 256] + [256, 512, 512, 512] + [512] + [1024] * 5 + [1024, 2048, 2048]
    assert pre == sum(2 * c * c // 16 + c // 16 + c for c in widths_in)


def test_bad_position_is_a_user_error() -> None:
    with pytest.raises(SenetError, match="attn_position"):
        create_model("se_resnet20", attn_position="after")


# --- layout knobs ----------------------------------------------------------------------------------------------------


def test_stride_in_1x1_and_caffe_stem_pool() -> None:
    caffe, v15 = _meta("se_resnet50_caffe"), _meta("se_resnet50")
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert caffe.maxpool.ceil_mode and caffe.maxpool.padding == 0
    assert not v15.maxpool.ceil_mode and v15.maxpool.padding == 1
    # ResNeXt keeps the stride on the 3x3 even in the release layout.
    sx = _meta("se_resnext50_32x4d")
    assert sx.layer2[0].conv2.stride == (2, 2) and sx.layer2[0].conv2.groups == 32 and sx.maxpool.ceil_mode


def test_senet154_layout() -> None:
    m = _meta("senet154")
    keys = m.state_dict()
    assert [k for k in keys if k.startswith("stem.conv")] == [
        "stem.conv1.weight",
        "stem.conv2.weight",
        "stem.conv3.weight",
    ]
    assert "conv1.weight" not in keys
    assert m.stem.conv3.out_channels == 128
    assert m.layer1[0].downsample[0].kernel_size == (1, 1)
    assert all(getattr(m, f"layer{i}")[0].downsample[0].kernel_size == (3, 3) for i in (2, 3, 4))
    blk = m.layer1[0]
    assert (blk.conv1.out_channels, blk.conv2.out_channels, blk.conv2.groups) == (128, 256, 64)
    assert m.head_drop.p == 0.2


@pytest.mark.parametrize("size", [(32, 32), (97, 131), (224, 160)])
def test_any_input_size(size: tuple[int, int]) -> None:
    m = create_model("se_resnet18", num_classes=3).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, *size)).shape == (1, 3)


def test_eca_kernels_per_stage() -> None:
    m = _meta("eca_resnet50", eca_kernels=(3, 5, 5, 7))
    assert [s[0].attn.kernel_size for s in m.stages()] == [3, 5, 5, 7]
    # Default: the paper's adaptive rule from each stage's channels (256..2048 -> 5, 5, 5, 7).
    assert [s[0].attn.kernel_size for s in _meta("eca_resnet50").stages()] == [5, 5, 5, 7]
    with pytest.raises(SenetError, match="one kernel per stage"):
        create_model("eca_resnet20", eca_kernels=(3, 5))


def test_attn_kwargs_reach_the_blocks_and_other_kinds_drop_them() -> None:
    m = _meta("se_resnet50", attn_kwargs={"rd_ratio": 1 / 8, "gate_layer": "hard_sigmoid"})
    assert m.layer1[0].attn.rd_channels == 32 and isinstance(m.layer1[0].attn.gate, nn.Hardsigmoid)
    # Switching an SE entrypoint to ECA must not pass SE-only defaults along.
    assert _meta("se_resnet50", attn_layer="eca").layer1[0].attn.kernel_size == 5
    assert list(_meta("se_resnet50", attn_layer="none").attention_modules()) == []


def test_cifar_se_width_has_a_floor() -> None:
    m = _meta("se_resnet20")
    assert [s[0].attn.rd_channels for s in m.stages()] == [max(c // 16, CIFAR_RD_MIN) for c in (16, 32, 64)]
    assert [s[0].attn.rd_channels for s in _meta("se_wrn16_8").stages()] == [8, 16, 32]
    assert _meta("se_resnet20", attn_kwargs={"rd_min": 1}).layer1[0].attn.rd_channels == 1
    assert _meta("resnet20", attn_layer="cbam").layer1[0].attn.channel.rd_channels == CIFAR_RD_MIN
    assert _meta("resnet20", attn_layer="eca").layer1[0].attn.kernel_size == 3


def test_cifar_shapes_and_counts() -> None:
    # Projection (1x1 conv + BN) shortcuts: 0.272M for ResNet-20 (0.270M with the paper's option A).
    assert _params(_meta("resnet20")) == 272_474
    assert round(_params(_meta("resnet110")) / 1e6, 2) == 1.73
    assert round(_params(_meta("preact_resnet164")) / 1e6, 2) == 1.70
    assert round(_params(_meta("wrn16_8")) / 1e6, 2) == 10.96  # WRN paper: 11.0M
    m = _meta("resnet164")
    assert m.num_features == 256 and len(m.layer1) == 18


def test_dropout_and_zero_init() -> None:
    assert create_model("resnet18", drop_rate=0.3).head_drop.p == 0.3
    m = create_model("resnet50", zero_init_last=True)
    assert all(not b.bn3.weight.detach().any() for s in m.stages() for b in s)
    with pytest.raises(SenetError, match="drop_rate"):
        create_model("resnet18", drop_rate=1.5)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"stem": "huge"}, "stem"),
        ({"stem_pool": "avg"}, "stem_pool"),
        ({"downsample_kernel": 5}, "downsample_kernel"),
        ({"block": "dense"}, "block"),
        ({"num_classes": -1}, "num_classes"),
    ],
)
def test_bad_values_are_user_errors(kw: dict, match: str) -> None:
    with pytest.raises(SenetError, match=match):
        create_model("resnet18", **kw)


def test_unknown_attention_kind() -> None:
    with pytest.raises(ValueError, match="unknown attention kind"):
        create_model("resnet18", attn_layer="transformer")
