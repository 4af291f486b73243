"""The attention blocks: closed-form sizes, the papers' equations, gates, dtypes, memory formats, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from senet.layers import (
    CBAM,
    SCSE,
    EffectiveSE,
    EfficientChannelAttn,
    NoSqueeze,
    SqueezeExcite,
    create_attn,
    eca_kernel_size,
    list_attn,
    make_divisible,
)

SHAPES = {1: (2, 32, 11), 2: (2, 32, 7, 5), 3: (2, 32, 3, 4, 5)}
KINDS = list_attn()


def build(kind: str, channels: int, dims: int = 2):
    kwargs = {"dims": dims} if kind == "cbam" else {}
    return create_attn(kind, channels, **kwargs)


def randomize_bn(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


# --- sizes --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [16, 64, 256, 1000, 2048])
@pytest.mark.parametrize("r", [2, 4, 8, 16, 32])
def test_se_params_closed_form(channels: int, r: int) -> None:
    se = SqueezeExcite(channels, rd_ratio=1 / r)
    cr = max(channels // r, 1)
    assert se.rd_channels == cr
    assert sum(p.numel() for p in se.parameters()) == 2 * channels * cr + cr + channels
    no_bias = SqueezeExcite(channels, rd_ratio=1 / r, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == 2 * channels * cr


@pytest.mark.parametrize(
    ("channels", "timm_width"), [(64, 8), (256, 16), (512, 32), (1024, 64), (2048, 128), (24, 8), (200, 16)]
)
def test_rd_divisor_8_matches_timm_rounding(channels: int, timm_width: int) -> None:
    from timm.layers import SEModule

    assert SqueezeExcite(channels, rd_divisor=8).rd_channels == timm_width
    assert SEModule(channels).fc1.out_channels == timm_width


def test_mobilenetv3_form_takes_width_from_other_channels() -> None:
    se = create_attn("se_hs", 240, rd_ratio=0.25, rd_base_channels=40, rd_divisor=8, act_layer="silu")
    assert se.rd_channels == 16 and se.fc2.out_features == 240
    assert isinstance(se.gate, torch.nn.Hardsigmoid) and isinstance(se.act, torch.nn.SiLU)


@pytest.mark.parametrize(("channels", "k"), [(64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_kernel_rule_and_params(channels: int, k: int) -> None:
    assert eca_kernel_size(channels) == k
    eca = EfficientChannelAttn(channels)
    assert sum(p.numel() for p in eca.parameters()) == k


@pytest.mark.parametrize("channels", [64, 256, 2048])
def test_cbam_ese_scse_nosqueeze_params(channels: int) -> None:
    cr = channels // 16
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(CBAM(channels)) == 2 * channels * cr + 2 * 7 * 7 + 2  # MLP without bias, conv without bias, BN(1)
    assert n(CBAM(channels, mlp_bias=True, spatial_norm=False)) == 2 * channels * cr + cr + channels + 2 * 49 + 1
    assert n(EffectiveSE(channels)) == channels * channels + channels
    assert n(SCSE(channels)) == 2 * channels * cr + cr + channels + channels + 1
    assert n(NoSqueeze(channels)) == 2 * channels * cr + cr + channels


def test_make_divisible() -> None:
    assert make_divisible(16.0, 8) == 16
    assert make_divisible(17.0, 8) == 16
    assert make_divisible(3.0, 8) == 8
    assert make_divisible(15.9, 1) == 15


# --- the equations ------------------------------------------------------------------------------------------------


def _spatial(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.dim()))


def _bcast(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return s.reshape(s.shape[0], s.shape[1], *([1] * (x.dim() - 2)))


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("squeeze", ["avg", "max", "avgmax"])
def test_se_matches_paper_equations(dims: int, squeeze: str) -> None:
    x = torch.randn(SHAPES[dims])
    se = SqueezeExcite(32, rd_ratio=1 / 4, squeeze=squeeze).eval()
    z = {
        "avg": x.mean(_spatial(x)),
        "max": x.amax(_spatial(x)),
        "avgmax": 0.5 * (x.mean(_spatial(x)) + x.amax(_spatial(x))),
    }[squeeze]
    s = torch.sigmoid(F.relu(z @ se.fc1.weight.T + se.fc1.bias) @ se.fc2.weight.T + se.fc2.bias)  # eq. 3
    torch.testing.assert_close(se(x), x * _bcast(s, x), rtol=1e-6, atol=1e-6)  # eq. 4


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_eca_matches_equations(dims: int) -> None:
    x = torch.randn(SHAPES[dims])
    eca = EfficientChannelAttn(32, kernel_size=5)
    w = eca.conv.weight.flatten()
    y = F.pad(x.mean(_spatial(x)), (2, 2))  # zero padding at both ends of the channel axis
    s = torch.sigmoid(torch.stack([(y[:, c : c + 5] * w).sum(1) for c in range(32)], 1))
    torch.testing.assert_close(eca(x), x * _bcast(s, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_cbam_matches_equations(dims: int) -> None:
    x = torch.randn(SHAPES[dims])
    cbam = CBAM(32, rd_ratio=1 / 4, spatial_kernel_size=3, dims=dims)
    randomize_bn(cbam)
    cbam.eval()
    ch = cbam.channel

    def mlp(z: torch.Tensor) -> torch.Tensor:
        return F.relu(z @ ch.fc1.weight.T) @ ch.fc2.weight.T

    mc = torch.sigmoid(mlp(x.mean(_spatial(x))) + mlp(x.amax(_spatial(x))))  # CBAM eq. 2
    f1 = x * _bcast(mc, x)
    desc = torch.cat([f1.mean(1, keepdim=True), f1.amax(1, keepdim=True)], 1)
    conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    bn = cbam.spatial.bn
    pre = conv(desc, cbam.spatial.conv.weight, padding=1)
    pre = (pre - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(cbam(x), f1 * torch.sigmoid(pre), rtol=1e-5, atol=1e-6)  # eq. 3


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_nosqueeze_ese_scse_equations(dims: int) -> None:
    x = torch.randn(SHAPES[dims])
    xc = x.movedim(1, -1)  # channels last: 1x1 convs are matmuls over the last axis

    ns = NoSqueeze(32, rd_ratio=1 / 4)
    s = torch.sigmoid(F.relu(xc @ ns.fc1.weight.T + ns.fc1.bias) @ ns.fc2.weight.T + ns.fc2.bias).movedim(-1, 1)
    torch.testing.assert_close(ns(x), x * s, rtol=1e-5, atol=1e-6)

    ese = EffectiveSE(32)
    s = F.hardsigmoid(x.mean(_spatial(x)) @ ese.fc.weight.T + ese.fc.bias)
    torch.testing.assert_close(ese(x), x * _bcast(s, x), rtol=1e-6, atol=1e-6)

    sc = SCSE(32, rd_ratio=1 / 4)
    se = sc.cse
    c = torch.sigmoid(F.relu(x.mean(_spatial(x)) @ se.fc1.weight.T + se.fc1.bias) @ se.fc2.weight.T + se.fc2.bias)
    q = torch.sigmoid(xc @ sc.sse.weight.T + sc.sse.bias).movedim(-1, 1)
    torch.testing.assert_close(sc(x), x * _bcast(c, x) + x * q, rtol=1e-5, atol=1e-6)


# --- gates, hooks, gradients --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("kind", ["se", "eca", "cbam", "ese", "scse", "nosqueeze"])
def test_every_gate_runs_and_is_hookable(kind: str, gate: str) -> None:
    block = create_attn(kind, 32, gate_layer=gate)
    seen: list[torch.Tensor] = []
    gates = [m for n, m in block.named_modules() if n.split(".")[-1] in ("gate", "sse_gate")]
    assert gates, f"{kind} has no named gate submodule"
    handles = [g.register_forward_hook(lambda m, i, o: seen.append(o.detach())) for g in gates]
    x = torch.randn(2, 32, 6, 6)
    out = block(x)
    for h in handles:
        h.remove()
    assert len(seen) == len(gates)
    expected = {"sigmoid": torch.sigmoid, "hard_sigmoid": F.hardsigmoid, "tanh": torch.tanh, "relu": F.relu}
    if gate in expected and kind in ("se", "eca", "ese"):
        # The hooked value is exactly the gate applied to the excitation logits, and it scales x.
        torch.testing.assert_close(out, x * seen[0].view(2, 32, 1, 1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gradients_reach_every_parameter(kind: str, dims: int) -> None:
    block = build(kind, 32, dims)
    x = torch.randn(SHAPES[dims], requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{kind}: no gradient reached {name}"


# --- dtypes and memory formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtypes(kind: str, dtype: torch.dtype) -> None:
    block = build(kind, 32).eval()
    x = torch.randn(2, 32, 8, 8)
    ref = block(x)
    out = block.to(dtype)(x.to(dtype))
    assert out.dtype == dtype and out.shape == x.shape
    tol = 1e-1 if dtype != torch.float32 else 1e-6
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)


def test_bf16_autocast_keeps_gradients() -> None:
    block = create_attn("se", 32)
    x = torch.randn(2, 32, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x.to(torch.bfloat16))
    y.float().sum().backward()
    assert all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("shape", "fmt", "dims"),
    [((2, 32, 8, 8), torch.channels_last, 2), ((2, 32, 4, 4, 4), torch.channels_last_3d, 3)],
)
def test_memory_format_is_kept(kind: str, shape: tuple[int, ...], fmt: torch.memory_format, dims: int) -> None:
    block = build(kind, 32, dims).eval()
    x = torch.randn(shape)
    xl = x.contiguous(memory_format=fmt)
    out = block(xl)
    assert out.is_contiguous(memory_format=fmt), f"{kind} dropped {fmt}"
    torch.testing.assert_close(out, block(x), rtol=1e-5, atol=1e-6)
    assert block(x).is_contiguous()


# --- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: create_attn("squeeze", 64), "choose one of"),
        (lambda: create_attn("se", 0), "channels must be a positive integer"),
        (lambda: create_attn("se", -3), "-3"),
        (lambda: create_attn("se", 8, rd_ratio=1 / 16, rd_min=0), "rounds to 0"),
        (lambda: create_attn("se", 64, rd_ratio=2.0), "rd_ratio must be in (0, 1]"),
        (lambda: create_attn("eca", 64, kernel_size=4), "odd"),
        (lambda: create_attn("se", 64, gate_layer="softmax"), "unknown gate_layer 'softmax'"),
        (lambda: create_attn("se", 64, act_layer="nope"), "unknown act_layer"),
        (lambda: create_attn("se", 64, squeeze="median"), "unknown squeeze 'median'"),
        (lambda: create_attn("se", 64, reduction=16), "no option reduction"),
        (lambda: create_attn("cbam", 64, spatial_kernel_size=6), "odd"),
        (lambda: create_attn("cbam", 64)(torch.randn(1, 64, 9)), "dims=1"),
        (lambda: create_attn(3, 64), "must be a name"),
    ],
)
def test_bad_settings_raise_value_error_naming_the_value(call, needle: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert needle in str(info.value)


def test_factory_accepts_names_classes_partials_and_none() -> None:
    import functools

    assert create_attn(None, 64) is None and create_attn("none", 64) is None and create_attn("", 64) is None
    assert isinstance(create_attn(SqueezeExcite, 64), SqueezeExcite)
    assert create_attn(functools.partial(SqueezeExcite, rd_ratio=0.5), 64).rd_channels == 32
    assert isinstance(create_attn("SE", 64), SqueezeExcite)
    assert set(KINDS) >= {"se", "eca", "cbam", "ese", "scse", "nosqueeze"}


def test_eca_kernel_rule_is_nearest_odd() -> None:
    for c in [8, 16, 32, 64, 100, 128, 300, 2048, 4096]:
        t = int(abs((math.log2(c) + 1) / 2))
        assert eca_kernel_size(c) == (t if t % 2 else t + 1)
        assert eca_kernel_size(c) % 2 == 1


def test_effective_se_maxpool_squeeze_is_the_mean_of_avg_and_max() -> None:
    from timm.layers import EffectiveSEModule

    torch.manual_seed(0)
    block = EffectiveSE(16, add_maxpool=True).eval()
    x = torch.randn(2, 16, 5, 7) + 1.0
    z = 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))
    expected = x * F.hardsigmoid(block.fc(z))[:, :, None, None]
    ref = EffectiveSEModule(16, add_maxpool=True).eval()
    with torch.no_grad():
        ref.fc.weight.copy_(block.fc.weight[:, :, None, None])
        ref.fc.bias.copy_(block.fc.bias)
        assert torch.allclose(block(x), expected, atol=1e-6)
        assert torch.allclose(block(x), ref(x), atol=1e-6)
