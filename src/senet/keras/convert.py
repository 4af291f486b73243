"""Convert attention blocks, weights included, between senet.layers (PyTorch) and senet.keras (Keras 3).

Layouts: a Keras ``Dense`` kernel is ``(in, out)``, a torch ``Linear`` weight ``(out, in)``; a Keras ``ConvND`` kernel
is ``(*k, in, out)``, a torch one ``(out, in, *k)``; BatchNorm's running statistics map to ``moving_mean`` /
``moving_variance``. The converted block computes the same function (to float32 rounding) on the same data in the
other framework's layout: ``(N, C, *S)`` in torch, ``(N, *S, C)`` for a channels_last Keras layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import torch
from torch import nn

from senet import layers as tl
from senet.errors import SenetError

from . import layers as kl

__all__ = ["from_torch", "to_torch"]

# torch activation module -> senet name (exact equivalents in senet.keras.layers.ACTS).
_TORCH_ACTS: list[tuple[type[nn.Module], str]] = [
    (nn.ReLU, "relu"),
    (nn.ReLU6, "relu6"),
    (nn.SiLU, "silu"),
    (nn.Hardswish, "hard_swish"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Hardsigmoid, "hard_sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.Identity, "identity"),
]


def _act_name(module: nn.Module, what: str) -> str:
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise SenetError(f"cannot convert {what} GELU(approximate={module.approximate!r}); only the exact GELU")
        return "gelu"
    if isinstance(module, nn.LeakyReLU):
        if module.negative_slope != 0.1:
            raise SenetError(f"cannot convert {what} LeakyReLU({module.negative_slope}); senet.keras uses slope 0.1")
        return "leaky_relu"
    for cls, name in _TORCH_ACTS:
        if type(module) is cls:
            return name
    raise SenetError(
        f"cannot convert {what} {type(module).__name__} to Keras; supported: GELU, LeakyReLU(0.1), "
        + ", ".join(cls.__name__ for cls, _ in _TORCH_ACTS)
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _assign(var, value: np.ndarray) -> None:
    if tuple(var.shape) != value.shape:
        raise SenetError(f"shape mismatch converting weight {var.path}: {tuple(var.shape)} vs {value.shape}")
    var.assign(value.astype(var.dtype))


def _set_dense(dense: keras.layers.Dense, linear: nn.Linear) -> None:
    _assign(dense.kernel, _np(linear.weight).T)
    if linear.bias is not None:
        _assign(dense.bias, _np(linear.bias))


def _conv_kernel_to_keras(w: torch.Tensor) -> np.ndarray:
    # (out, in, *k) -> (*k, in, out)
    return np.transpose(_np(w), (*range(2, w.dim()), 1, 0))


def _input_shape(channels: int, dims: int, data_format: str) -> tuple:
    spatial = (None,) * dims
    return (None, *spatial, channels) if data_format == "channels_last" else (None, channels, *spatial)


def _se_to_keras(block: tl.SqueezeExcite, dims: int, channels: int | None, kw: dict[str, Any]) -> kl.SqueezeExcite:
    layer = kl.SqueezeExcite(
        rd_channels=block.rd_channels,
        bias=block.fc1.bias is not None,
        act_layer=_act_name(block.act, "act_layer"),
        gate_layer=_act_name(block.gate, "gate_layer"),
        squeeze=block.squeeze,
        **kw,
    )
    layer.build(_input_shape(block.channels, dims, layer.data_format))
    _set_dense(layer.fc1, block.fc1)
    _set_dense(layer.fc2, block.fc2)
    return layer


def _eca_to_keras(block: tl.EfficientChannelAttn, dims: int, channels: int | None, kw: dict[str, Any]) -> kl.ECA:
    c = block.channels or channels
    if c is None:
        raise SenetError("from_torch: this ECA block was built without channels; pass channels=C")
    layer = kl.ECA(kernel_size=block.kernel_size, gate_layer=_act_name(block.gate, "gate_layer"), **kw)
    layer.build(_input_shape(c, dims, layer.data_format))
    _assign(layer.conv.kernel, _conv_kernel_to_keras(block.conv.weight))
    return layer


def _cbam_to_keras(block: tl.CBAM, dims: int, channels: int | None, kw: dict[str, Any]) -> kl.CBAM:
    ch, sp = block.channel, block.spatial
    gate = _act_name(ch.gate, "gate_layer")
    if _act_name(sp.gate, "gate_layer") != gate:
        raise SenetError("from_torch: CBAM's channel and spatial gates differ; senet.keras.CBAM uses one gate_layer")
    norm = isinstance(sp.bn, nn.modules.batchnorm._BatchNorm)
    if norm and sp.bn.eps != 1e-5:
        raise SenetError(f"from_torch: CBAM spatial BatchNorm eps={sp.bn.eps:g}; senet.keras uses 1e-5")
    layer = kl.CBAM(
        rd_channels=ch.rd_channels,
        mlp_bias=ch.fc1.bias is not None,
        act_layer=_act_name(ch.act, "act_layer"),
        gate_layer=gate,
        spatial_kernel_size=sp.conv.kernel_size[0],
        spatial_norm=norm,
        **kw,
    )
    layer.build(_input_shape(ch.channels, dims, layer.data_format))
    _set_dense(layer.fc1, ch.fc1)
    _set_dense(layer.fc2, ch.fc2)
    _assign(layer.spatial_conv.kernel, _conv_kernel_to_keras(sp.conv.weight))
    if sp.conv.bias is not None:
        _assign(layer.spatial_conv.bias, _np(sp.conv.bias))
    if norm:
        bn = layer.spatial_bn
        _assign(bn.gamma, _np(sp.bn.weight))
        _assign(bn.beta, _np(sp.bn.bias))
        _assign(bn.moving_mean, _np(sp.bn.running_mean))
        _assign(bn.moving_variance, _np(sp.bn.running_var))
    return layer


def _ese_to_keras(block: tl.EffectiveSE, dims: int, channels: int | None, kw: dict[str, Any]) -> kl.EffectiveSE:
    layer = kl.EffectiveSE(add_maxpool=block.add_maxpool, gate_layer=_act_name(block.gate, "gate_layer"), **kw)
    layer.build(_input_shape(block.channels, dims, layer.data_format))
    _set_dense(layer.fc, block.fc)
    return layer


def _scse_to_keras(block: tl.SCSE, dims: int, channels: int | None, kw: dict[str, Any]) -> kl.SCSE:
    cse = block.cse
    layer = kl.SCSE(
        rd_channels=cse.rd_channels,
        act_layer=_act_name(cse.act, "act_layer"),
        gate_layer=_act_name(cse.gate, "gate_layer"),
        combine=block.combine,
        **kw,
    )
    if _act_name(block.sse_gate, "gate_layer") != layer.gate_layer:
        raise SenetError("from_torch: scSE's two gates differ; senet.keras.SCSE uses one gate_layer")
    if cse.fc1.bias is None or cse.squeeze != "avg":
        raise SenetError("from_torch: scSE's cSE branch must have biases and squeeze='avg' (senet.layers' form)")
    layer.build(_input_shape(cse.channels, dims, layer.data_format))
    _set_dense(layer.cse.fc1, cse.fc1)
    _set_dense(layer.cse.fc2, cse.fc2)
    _set_dense(layer.sse, block.sse)
    return layer


# Attention kind (senet.layers' factory name) -> its Keras converter. A kind missing here has no Keras layer yet;
# from_torch says so and names the kinds that do.
_TO_KERAS: dict[str, Callable[..., kl._ChannelAttnLayer]] = {
    "se": _se_to_keras,
    "eca": _eca_to_keras,
    "cbam": _cbam_to_keras,
    "ese": _ese_to_keras,
    "scse": _scse_to_keras,
}


def _keras_converter(block: nn.Module) -> Callable[..., kl._ChannelAttnLayer]:
    """The converter for ``block``'s kind; a wrapper reporting a kind it does not implement (retrofit) has none."""
    kind = tl.attn_kind(block)
    convert = _TO_KERAS.get(kind) if kind is not None else None
    ctor = tl.get_attn(kind) if convert is not None else None
    if convert is None or not isinstance(block, getattr(ctor, "func", ctor)):
        raise SenetError(
            f"from_torch: cannot convert {type(block).__name__}; supported attention kinds: {', '.join(_TO_KERAS)} "
            f"(senet.layers blocks)"
        )
    return convert


def from_torch(
    block: nn.Module,
    *,
    channels: int | None = None,
    dims: int | None = None,
    data_format: str | None = None,
    dtype: Any = None,
) -> kl._ChannelAttnLayer:
    """The Keras layer equivalent to a senet.layers block, built and holding a copy of its weights.

    Args:
        block: a :class:`senet.layers.SqueezeExcite`, ``EfficientChannelAttn``, ``CBAM``, ``EffectiveSE`` or
            ``SCSE`` (BatchNorm statistics are copied; use the Keras layer with ``training=False`` to match the
            torch block in ``eval()`` mode).
        channels: C, needed only for an ECA block built without ``channels``.
        dims: spatial rank to build for (default 2; a CBAM block's own ``dims`` is used and must agree). SE, ECA,
            eSE and scSE layers then accept any rank; CBAM's spatial convolution fixes it.
        data_format: the Keras layer's layout (default ``keras.config.image_data_format()``).
        dtype: the Keras layer's dtype (default Keras' floatx).

    Raises:
        SenetError: an unsupported block type or activation, or inconsistent ``dims``/``channels``.
    """
    convert = _keras_converter(block)
    if isinstance(block, tl.CBAM):
        if dims is not None and dims != block.spatial.dims:
            raise SenetError(f"from_torch: the CBAM block is built for dims={block.spatial.dims}, got dims={dims}")
        dims = block.spatial.dims
    dims = 2 if dims is None else dims
    if dims not in (1, 2, 3):
        raise SenetError(f"from_torch: dims must be 1, 2 or 3, got {dims!r}")
    return convert(block, dims, channels, {"data_format": data_format, "dtype": dtype})


def _t(var) -> torch.Tensor:
    return torch.from_numpy(np.array(keras.ops.convert_to_numpy(var.value), dtype=np.float32))


def _copy(param: torch.Tensor, value: torch.Tensor) -> None:
    if param.shape != value.shape:
        raise SenetError(f"shape mismatch converting to torch: {tuple(param.shape)} vs {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


def _copy_dense(linear: nn.Linear, dense: keras.layers.Dense) -> None:
    _copy(linear.weight, _t(dense.kernel).T)
    if dense.use_bias:
        _copy(linear.bias, _t(dense.bias))


def _conv_kernel_to_torch(var) -> torch.Tensor:
    k = _t(var)  # (*k, in, out) -> (out, in, *k)
    return k.permute(k.dim() - 1, k.dim() - 2, *range(k.dim() - 2)).contiguous()


def to_torch(layer: keras.layers.Layer) -> nn.Module:
    """The senet.layers block equivalent to a built senet.keras layer, holding a copy of its weights (float32).

    The block is returned in training mode, as any new ``nn.Module``; call ``.eval()`` to match the Keras layer's
    inference behaviour (only CBAM's BatchNorm differs between the two).

    Raises:
        SenetError: the layer is not a senet.keras layer or is not built yet.
    """
    if not isinstance(layer, kl._ChannelAttnLayer):
        raise SenetError(
            f"to_torch: cannot convert {type(layer).__name__}; pass a senet.keras SqueezeExcite, ECA, CBAM, "
            f"EffectiveSE or SCSE layer"
        )
    if not layer.built or layer.channels is None:
        raise SenetError(f"to_torch: the {type(layer).__name__} layer is not built; call it on an input first")
    c = layer.channels
    if isinstance(layer, kl.SqueezeExcite):
        block = tl.SqueezeExcite(
            c,
            rd_channels=layer.fc1.units,
            bias=layer.bias,
            act_layer=layer.act_layer,
            gate_layer=layer.gate_layer,
            squeeze=layer.squeeze,
        )
        _copy_dense(block.fc1, layer.fc1)
        _copy_dense(block.fc2, layer.fc2)
    elif isinstance(layer, kl.ECA):
        k = layer.conv.kernel_size[0]
        block = tl.EfficientChannelAttn(c, kernel_size=k, gate_layer=layer.gate_layer)
        _copy(block.conv.weight, _conv_kernel_to_torch(layer.conv.kernel))
    elif isinstance(layer, kl.CBAM):
        block = tl.CBAM(
            c,
            rd_channels=layer.fc1.units,
            mlp_bias=layer.mlp_bias,
            act_layer=layer.act_layer,
            gate_layer=layer.gate_layer,
            spatial_kernel_size=layer.spatial_kernel_size,
            spatial_norm=layer.spatial_norm,
            dims=layer.dims,
        )
        _copy_dense(block.channel.fc1, layer.fc1)
        _copy_dense(block.channel.fc2, layer.fc2)
        _copy(block.spatial.conv.weight, _conv_kernel_to_torch(layer.spatial_conv.kernel))
        if not layer.spatial_norm:
            _copy(block.spatial.conv.bias, _t(layer.spatial_conv.bias))
        else:
            bn, kbn = block.spatial.bn, layer.spatial_bn
            _copy(bn.weight, _t(kbn.gamma))
            _copy(bn.bias, _t(kbn.beta))
            _copy(bn.running_mean, _t(kbn.moving_mean))
            _copy(bn.running_var, _t(kbn.moving_variance))
    elif isinstance(layer, kl.EffectiveSE):
        block = tl.EffectiveSE(c, add_maxpool=layer.add_maxpool, gate_layer=layer.gate_layer)
        _copy_dense(block.fc, layer.fc)
    elif isinstance(layer, kl.SCSE):
        block = tl.SCSE(
            c,
            rd_channels=layer.cse.fc1.units,
            act_layer=layer.act_layer,
            gate_layer=layer.gate_layer,
            combine=layer.combine,
        )
        _copy_dense(block.cse.fc1, layer.cse.fc1)
        _copy_dense(block.cse.fc2, layer.cse.fc2)
        _copy_dense(block.sse, layer.sse)
    else:  # a subclass of the private base that is not one of ours
        raise SenetError(f"to_torch: cannot convert {type(layer).__name__}")
    return block
