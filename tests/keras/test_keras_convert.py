"""from_torch / to_torch: the same weights give the same outputs (<= 1e-5) in both frameworks, every kind and rank."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import senet.layers as tl
from senet.errors import SenetError
from senet.keras import CBAM, ECA, SCSE, EffectiveSE, SqueezeExcite, from_torch, to_torch
from senet.keras.layers import ACTS, GATES

# Keras converts torch tensors with np.array(x), which NumPy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ATOL = 1e-5
SPATIAL = {1: (9,), 2: (7, 5), 3: (3, 4, 5)}


def torch_blocks(dims: int) -> dict[str, torch.nn.Module]:
    """One block per kind, with non-default knobs where they change the weights' layout."""
    return {
        "se": tl.SqueezeExcite(24, rd_ratio=1 / 4),
        "se_nobias_avgmax": tl.SqueezeExcite(24, rd_channels=5, bias=False, squeeze="avgmax", act_layer="silu"),
        "eca": tl.EfficientChannelAttn(24, kernel_size=5),  # k > 1 so a flipped kernel would show
        "cbam": tl.CBAM(24, rd_ratio=1 / 4, dims=dims),
        "cbam_bias_nonorm": tl.CBAM(24, rd_ratio=1 / 4, mlp_bias=True, spatial_norm=False, dims=dims),
        "ese": tl.EffectiveSE(24, add_maxpool=True),
        "scse": tl.SCSE(24, rd_ratio=1 / 4),
        "scse_max": tl.SCSE(24, rd_ratio=1 / 4, combine="max", gate_layer="hard_sigmoid"),
    }


def randomize(block: torch.nn.Module) -> torch.nn.Module:
    """Random weights everywhere, BatchNorm statistics included, so no layout mistake can hide behind a default."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for m in block.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    return block.eval()


def keras_out(layer, x: torch.Tensor, data_format: str) -> np.ndarray:
    """Run a Keras layer on a torch-layout ``(N, C, *S)`` tensor; return the output in torch layout."""
    xk = x.numpy() if data_format == "channels_first" else np.moveaxis(x.numpy(), 1, -1)
    y = keras.ops.convert_to_numpy(layer(xk, training=False) if isinstance(layer, CBAM) else layer(xk))
    return y if data_format == "channels_first" else np.moveaxis(y, -1, 1)


CASES = [(name, dims) for dims in (1, 2, 3) for name in torch_blocks(dims)]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(("name", "dims"), CASES, ids=[f"{n}-{d}d" for n, d in CASES])
def test_from_torch_parity(name: str, dims: int, data_format: str) -> None:
    block = randomize(torch_blocks(dims)[name])
    layer = from_torch(block, dims=dims, data_format=data_format)
    x = torch.randn(2, 24, *SPATIAL[dims])
    with torch.no_grad():
        expected = block(x).numpy()
    got = keras_out(layer, x, data_format)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == sum(p.numel() for p in block.parameters())


def keras_layers(data_format: str = "channels_last") -> dict[str, keras.layers.Layer]:
    fmt = {"data_format": data_format}
    return {
        "se": SqueezeExcite(reduction=4, act_layer="gelu", **fmt),
        "eca": ECA(kernel_size=3, **fmt),
        "cbam": CBAM(reduction=4, mlp_bias=True, **fmt),
        "cbam_nonorm": CBAM(reduction=4, spatial_norm=False, spatial_kernel_size=3, **fmt),
        "ese": EffectiveSE(**fmt),
        "scse": SCSE(reduction=4, **fmt),
    }


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(keras_layers()))
def test_to_torch_parity(name: str, dims: int, data_format: str) -> None:
    layer = keras_layers(data_format)[name]
    shape = (24, *SPATIAL[dims]) if data_format == "channels_first" else (*SPATIAL[dims], 24)
    layer.build((None, *shape))
    rng = np.random.default_rng(2)
    for w in layer.weights:  # Keras initialises biases to 0 and BN to identity: randomise so they count
        values = rng.normal(0, 0.5, size=w.shape)
        w.assign((np.abs(values) + 0.5 if w.path.endswith("moving_variance") else values).astype("float32"))
    block = to_torch(layer).eval()
    x = torch.randn(2, 24, *SPATIAL[dims])
    with torch.no_grad():
        got = block(x).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, keras_out(layer, x, data_format), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(torch_blocks(2)))
def test_round_trip_keeps_every_tensor(name: str) -> None:
    block = randomize(torch_blocks(2)[name])
    back = to_torch(from_torch(block))
    assert type(back) is type(block)
    ref, got = block.state_dict(), back.state_dict()
    assert ref.keys() == got.keys()
    for key in ref:
        if key.endswith("num_batches_tracked"):
            continue
        torch.testing.assert_close(got[key], ref[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("act", sorted(ACTS))
def test_every_activation_matches_torch(act: str) -> None:
    block = randomize(tl.SqueezeExcite(16, rd_ratio=1 / 2, act_layer=act))
    layer = from_torch(block)
    assert layer.act_layer == act or (act == "swish" and layer.act_layer == "silu")
    x = torch.randn(2, 16, 3, 3) * 3
    with torch.no_grad():
        np.testing.assert_allclose(keras_out(layer, x, "channels_last"), block(x).numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("gate", sorted(GATES))
def test_every_gate_matches_torch(gate: str) -> None:
    block = randomize(tl.EfficientChannelAttn(16, kernel_size=3, gate_layer=gate))
    layer = from_torch(block, dims=1)
    x = torch.randn(2, 16, 7) * 3
    with torch.no_grad():
        np.testing.assert_allclose(keras_out(layer, x, "channels_last"), block(x).numpy(), atol=ATOL, rtol=0)


def test_eca_built_without_channels_needs_them() -> None:
    block = randomize(tl.EfficientChannelAttn(kernel_size=3))
    with pytest.raises(SenetError, match="pass channels=C"):
        from_torch(block)
    layer = from_torch(block, channels=32)
    x = torch.randn(1, 32, 4, 4)
    with torch.no_grad():
        np.testing.assert_allclose(keras_out(layer, x, "channels_last"), block(x).numpy(), atol=ATOL, rtol=0)


def test_conversion_errors() -> None:
    with pytest.raises(SenetError, match="cannot convert NoSqueeze"):
        from_torch(tl.NoSqueeze(16))
    with pytest.raises(SenetError, match="PReLU"):
        from_torch(tl.SqueezeExcite(16, act_layer="prelu"))
    with pytest.raises(SenetError, match="approximate"):
        from_torch(tl.SqueezeExcite(16, act_layer=lambda: torch.nn.GELU(approximate="tanh")))
    with pytest.raises(SenetError, match="built for dims=3"):
        from_torch(tl.CBAM(16, dims=3), dims=2)
    with pytest.raises(SenetError, match="not built"):
        to_torch(SqueezeExcite())
    with pytest.raises(SenetError, match="cannot convert Dense"):
        to_torch(keras.layers.Dense(3))
