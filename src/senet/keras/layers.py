"""The attention blocks as Keras 3 layers: SE, ECA, CBAM, Effective SE, scSE.

Each layer mirrors its :mod:`senet.layers` counterpart (same equations, knob names and defaults; the papers are cited
there) with the Keras conventions on top:

* the channel count comes from the input at build time, so there is no ``channels`` argument;
* ``data_format`` is ``"channels_last"`` (``(N, *S, C)``, Keras' default) or ``"channels_first"`` (``(N, C, *S)``);
  ``None`` means ``keras.config.image_data_format()``, as in every Keras layer;
* one layer serves 1-D, 2-D and 3-D maps (rank 3, 4 or 5 inputs);
* the sub-layers are Keras ``Dense``/``ConvND``/``BatchNormalization``, so ``model.summary()`` counts the same
  parameters as a hand-written Keras block.

Reduction: ``rd_ratio`` is 1/r, as everywhere in senet. Keras tutorials write the reduction ratio as an integer
``ratio=r``; pass ``reduction=r`` for that (``reduction=4`` is ``rd_ratio=1/4``). ``rd_ratio`` above 1 is refused with
a message saying so, so ``rd_ratio=4`` cannot silently mean the wrong thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from senet.errors import SenetError
from senet.layers.eca import eca_kernel_size
from senet.layers.helpers import SQUEEZES, resolve_rd_channels

__all__ = ["SqueezeExcite", "ECA", "CBAM", "EffectiveSE", "SCSE", "ACTS", "GATES"]

_DEFAULT_RD_RATIO = 1.0 / 16


def _gelu(x):
    return ops.gelu(x, approximate=False)  # torch's nn.GELU default is the exact (erf) form


def _leaky_relu(x):
    return ops.leaky_relu(x, negative_slope=0.1)  # senet.layers' leaky_relu slope


def _identity(x):
    return x


#: ``act_layer`` names, the same as senet.layers' (minus ``prelu``, which has weights) with the same definitions.
ACTS: dict[str, Callable] = {
    "relu": ops.relu,
    "relu6": ops.relu6,
    "silu": ops.silu,
    "swish": ops.silu,
    "gelu": _gelu,
    "hard_swish": ops.hard_silu,
    "leaky_relu": _leaky_relu,
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,  # relu6(x + 3) / 6, as torch's Hardsigmoid
    "tanh": ops.tanh,
    "identity": _identity,
}

#: ``gate_layer`` names (the SENet paper's Table 12 plus hard-sigmoid), as in senet.layers.
GATES: dict[str, Callable] = {k: ACTS[k] for k in ("sigmoid", "hard_sigmoid", "tanh", "relu", "identity")}


def _act_name(name: str | None, table: dict[str, Callable], what: str, owner: str) -> str:
    if name is None:
        return "identity"
    if not isinstance(name, str):
        raise SenetError(
            f"{owner}: {what} must be a name so the layer can be saved, got {type(name).__name__}; "
            f"choose one of: {', '.join(sorted(table))}"
        )
    key = name.lower().replace("-", "_")
    if key not in table:
        raise SenetError(f"{owner}: unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}")
    return key


def _rd_ratio(rd_ratio: float, reduction: int | None, owner: str) -> float:
    """Resolve ``rd_ratio`` (1/r) and the tutorials' integer ``reduction`` (r) into one 1/r."""
    if reduction is not None:
        if isinstance(reduction, bool) or not isinstance(reduction, (int, float)) or reduction < 1:
            raise SenetError(f"{owner}: reduction is r (e.g. 4 or 16) and must be >= 1, got {reduction!r}")
        if rd_ratio != _DEFAULT_RD_RATIO:
            raise SenetError(
                f"{owner}: got both rd_ratio={rd_ratio!r} and reduction={reduction!r}; pass one "
                f"(rd_ratio is 1/r, reduction is r)"
            )
        return 1.0 / reduction
    if isinstance(rd_ratio, bool) or not isinstance(rd_ratio, (int, float)) or not 0 < rd_ratio <= 1:
        hint = (
            f" (for r={rd_ratio:g} pass rd_ratio=1/{rd_ratio:g} or reduction={rd_ratio:g})"
            if (isinstance(rd_ratio, (int, float)) and not isinstance(rd_ratio, bool) and rd_ratio > 1)
            else ""
        )
        raise SenetError(f"{owner}: rd_ratio is 1/r and must be in (0, 1], got {rd_ratio!r}{hint}")
    return float(rd_ratio)


def _odd_kernel(k: Any, what: str, owner: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise SenetError(f"{owner}: {what} must be a positive odd integer (1, 3, 5, 7, ...), got {k!r}")
    return k


class _ChannelAttnLayer(keras.layers.Layer):
    """Shared plumbing: data format, input checks, gate broadcasting."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        fmt = keras.config.image_data_format() if data_format is None else data_format
        if fmt not in ("channels_last", "channels_first"):
            raise SenetError(
                f"{type(self).__name__}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        self.data_format = fmt
        self.channels: int | None = None  # set by build()

    @property
    def channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _ensure_built(self, x) -> None:
        """Build on first use when a public method other than ``__call__`` (``excitation``) sees the input first."""
        if not self.built:
            self.build(tuple(x.shape))
            self.built = True

    def _spatial_axes(self, ndim: int) -> tuple[int, ...]:
        return tuple(range(1, ndim - 1)) if self.data_format == "channels_last" else tuple(range(2, ndim))

    def _check_shape(self, input_shape) -> int:
        shape = tuple(input_shape)
        name = type(self).__name__
        if len(shape) not in (3, 4, 5):
            raise SenetError(
                f"{name} takes rank-3, 4 or 5 inputs (1-D, 2-D or 3-D maps with batch and channel axes), "
                f"got shape {shape}"
            )
        channels = shape[self.channel_axis]
        if channels is None:
            raise SenetError(f"{name}: the channel axis of input shape {shape} ({self.data_format}) must be known")
        self.channels = int(channels)
        # Keras then rejects a later input with another channel count (or rank) with a clear message.
        self.input_spec = keras.layers.InputSpec(min_ndim=3, max_ndim=5, axes={self.channel_axis: self.channels})
        return self.channels

    def _expand(self, gate, ndim: int):
        """``(N, C)`` -> ``(N, 1, ..., C)`` or ``(N, C, 1, ...)``, to broadcast over an ``ndim``-rank input."""
        axis = 1 if self.data_format == "channels_last" else -1
        for _ in range(ndim - 2):
            gate = ops.expand_dims(gate, axis)
        return gate

    def _pool(self, x, mode: str):
        axes = self._spatial_axes(len(x.shape))
        if mode == "avg":
            return ops.mean(x, axis=axes)
        if mode == "max":
            return ops.max(x, axis=axes)
        return 0.5 * (ops.mean(x, axis=axes) + ops.max(x, axis=axes))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="senet")
class SqueezeExcite(_ChannelAttnLayer):
    """Squeeze-and-Excitation: ``x * σ(W2 δ(W1 pool(x)))`` (Hu et al., arXiv:1709.01507).

    Args:
        rd_ratio: 1/r (default 1/16, the paper's r = 16).
        rd_channels: explicit reduced width (overrides ``rd_ratio``).
        rd_divisor: round the width to a multiple of this (1 = ``C // r`` as the paper; 8 = timm).
        rd_min: minimum reduced width.
        rd_base_channels: take the width from this channel count instead of C (MobileNetV3/EfficientNet form).
        bias: biases on the two ``Dense`` layers.
        act_layer: δ between the two ``Dense`` (``"relu"``; names as in senet.layers).
        gate_layer: σ (``"sigmoid"``, ``"hard_sigmoid"``, ``"tanh"``, ``"relu"``, ``"identity"``).
        squeeze: ``"avg"`` (paper), ``"max"`` or ``"avgmax"``.
        reduction: r as an integer, the Keras tutorials' ``ratio``; exclusive with ``rd_ratio``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Sub-layers ``fc1`` (``Dense(C // r)``) and ``fc2`` (``Dense(C)``).
    """

    def __init__(
        self,
        rd_ratio: float = _DEFAULT_RD_RATIO,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        rd_base_channels: int | None = None,
        bias: bool = True,
        act_layer: str = "relu",
        gate_layer: str = "sigmoid",
        squeeze: str = "avg",
        reduction: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        name = type(self).__name__
        self.rd_ratio = _rd_ratio(rd_ratio, reduction, name)
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.rd_min = rd_min
        self.rd_base_channels = rd_base_channels
        self.bias = bool(bias)
        self.act_layer = _act_name(act_layer, ACTS, "act_layer", name)
        self.gate_layer = _act_name(gate_layer, GATES, "gate_layer", name)
        if squeeze not in SQUEEZES:
            raise SenetError(f"{name}: unknown squeeze {squeeze!r}; choose one of: {', '.join(SQUEEZES)}")
        self.squeeze = squeeze

    def build(self, input_shape) -> None:
        channels = self._check_shape(input_shape)
        try:
            width = resolve_rd_channels(
                channels, self.rd_ratio, self.rd_channels, self.rd_divisor, self.rd_min, self.rd_base_channels
            )
        except ValueError as e:
            raise SenetError(f"{type(self).__name__}: {e}") from None
        self.fc1 = keras.layers.Dense(width, use_bias=self.bias, dtype=self.dtype_policy, name="fc1")
        self.fc2 = keras.layers.Dense(channels, use_bias=self.bias, dtype=self.dtype_policy, name="fc2")
        self.fc1.build((None, channels))
        self.fc2.build((None, width))

    def excitation(self, x):
        """The per-channel gate ``s`` of shape ``(N, C)``."""
        self._ensure_built(x)
        z = self._pool(x, self.squeeze)
        return GATES[self.gate_layer](self.fc2(ACTS[self.act_layer](self.fc1(z))))

    def call(self, x):
        return x * self._expand(self.excitation(x), len(x.shape))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rd_ratio": self.rd_ratio,
            "rd_channels": self.rd_channels,
            "rd_divisor": self.rd_divisor,
            "rd_min": self.rd_min,
            "rd_base_channels": self.rd_base_channels,
            "bias": self.bias,
            "act_layer": self.act_layer,
            "gate_layer": self.gate_layer,
            "squeeze": self.squeeze,
        }


@keras.saving.register_keras_serializable(package="senet")
class ECA(_ChannelAttnLayer):
    """Efficient Channel Attention: ``x * σ(conv1d_k(avg(x)))`` (Wang et al., arXiv:1910.03151).

    Args:
        kernel_size: odd k of the 1-D convolution across channels; default from the paper's rule
            (:func:`senet.layers.eca_kernel_size` with ``gamma`` and ``beta``: C=64 -> 3, 128..1024 -> 5, 2048 -> 7).
        gamma, beta: the paper's γ and b.
        gate_layer: the gate (``"sigmoid"`` as the paper).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Sub-layer ``conv``: ``Conv1D(1, k, padding="same", use_bias=False)`` over the pooled channel vector — k weights.
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        gamma: float = 2,
        beta: float = 1,
        gate_layer: str = "sigmoid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        name = type(self).__name__
        self.kernel_size = None if kernel_size is None else _odd_kernel(kernel_size, "kernel_size", name)
        self.gamma = gamma
        self.beta = beta
        self.gate_layer = _act_name(gate_layer, GATES, "gate_layer", name)

    def build(self, input_shape) -> None:
        channels = self._check_shape(input_shape)
        k = self.kernel_size or eca_kernel_size(channels, self.gamma, self.beta)
        # The pooled (N, C) vector is read as a length-C sequence with one feature: always channels_last here.
        self.conv = keras.layers.Conv1D(
            1, k, padding="same", use_bias=False, data_format="channels_last", dtype=self.dtype_policy, name="conv"
        )
        self.conv.build((None, channels, 1))

    def excitation(self, x):
        """The per-channel gate of shape ``(N, C)``."""
        self._ensure_built(x)
        z = ops.expand_dims(self._pool(x, "avg"), -1)
        return GATES[self.gate_layer](ops.squeeze(self.conv(z), -1))

    def call(self, x):
        return x * self._expand(self.excitation(x), len(x.shape))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "gamma": self.gamma,
            "beta": self.beta,
            "gate_layer": self.gate_layer,
        }


@keras.saving.register_keras_serializable(package="senet")
class CBAM(_ChannelAttnLayer):
    """CBAM: channel attention, then spatial attention (Woo et al., arXiv:1807.06521).

    Channel: ``σ(MLP(avg(x)) + MLP(max(x)))`` with a shared two-``Dense`` MLP. Spatial: ``σ(BN(conv_k([mean_c,
    max_c])))`` on the channel-gated map, the ``[mean, max]`` input order of senet.layers.CBAM.

    Args:
        rd_ratio, rd_channels, rd_divisor, rd_min, reduction: the channel MLP's reduction (paper: r = 16).
        mlp_bias: biases in the channel MLP (timm: no; the official release: yes).
        act_layer, gate_layer: as in :class:`SqueezeExcite`.
        spatial_kernel_size: k of the spatial convolution (paper: 7).
        spatial_norm: ``BatchNormalization`` after the spatial convolution (the paper's choice).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    The spatial convolution's rank follows the input (``Conv1D``/``Conv2D``/``Conv3D``), fixed at build time.
    Sub-layers ``fc1``, ``fc2``, ``spatial_conv`` and ``spatial_bn`` (momentum 0.9 and epsilon 1e-5, i.e. PyTorch's
    BatchNorm defaults, so converted blocks behave the same).
    """

    def __init__(
        self,
        rd_ratio: float = _DEFAULT_RD_RATIO,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        mlp_bias: bool = False,
        act_layer: str = "relu",
        gate_layer: str = "sigmoid",
        spatial_kernel_size: int = 7,
        spatial_norm: bool = True,
        reduction: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        name = type(self).__name__
        self.rd_ratio = _rd_ratio(rd_ratio, reduction, name)
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.rd_min = rd_min
        self.mlp_bias = bool(mlp_bias)
        self.act_layer = _act_name(act_layer, ACTS, "act_layer", name)
        self.gate_layer = _act_name(gate_layer, GATES, "gate_layer", name)
        self.spatial_kernel_size = _odd_kernel(spatial_kernel_size, "spatial_kernel_size", name)
        self.spatial_norm = bool(spatial_norm)
        self.dims: int | None = None  # spatial rank, set by build()

    def build(self, input_shape) -> None:
        channels = self._check_shape(input_shape)
        try:
            width = resolve_rd_channels(channels, self.rd_ratio, self.rd_channels, self.rd_divisor, self.rd_min)
        except ValueError as e:
            raise SenetError(f"{type(self).__name__}: {e}") from None
        self.dims = len(input_shape) - 2
        dd = {"dtype": self.dtype_policy}
        self.fc1 = keras.layers.Dense(width, use_bias=self.mlp_bias, name="fc1", **dd)
        self.fc2 = keras.layers.Dense(channels, use_bias=self.mlp_bias, name="fc2", **dd)
        self.fc1.build((None, channels))
        self.fc2.build((None, width))
        conv = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)[self.dims - 1]
        self.spatial_conv = conv(
            1,
            self.spatial_kernel_size,
            padding="same",
            use_bias=not self.spatial_norm,
            data_format=self.data_format,
            name="spatial_conv",
            **dd,
        )
        spatial = list(input_shape)
        spatial[0] = None
        spatial[self.channel_axis] = 2
        self.spatial_conv.build(tuple(spatial))
        self.spatial_bn = None
        if self.spatial_norm:
            self.spatial_bn = keras.layers.BatchNormalization(
                axis=self.channel_axis, momentum=0.9, epsilon=1e-5, name="spatial_bn", **dd
            )
            spatial[self.channel_axis] = 1
            self.spatial_bn.build(tuple(spatial))

    def _mlp(self, z):
        return self.fc2(ACTS[self.act_layer](self.fc1(z)))

    def excitation(self, x):
        """The channel gate of shape ``(N, C)``."""
        self._ensure_built(x)
        return GATES[self.gate_layer](self._mlp(self._pool(x, "avg")) + self._mlp(self._pool(x, "max")))

    def spatial_excitation(self, x, training=None):
        """The spatial gate of shape ``(N, *S, 1)`` (channels_last) or ``(N, 1, *S)`` (channels_first)."""
        self._ensure_built(x)
        nd = len(x.shape) - 2
        if nd != self.dims:
            raise SenetError(
                f"CBAM was built for {self.dims}-D maps but got a {nd}-D input of shape {tuple(x.shape)}; "
                f"use one CBAM layer per input rank"
            )
        ax = self.channel_axis
        pooled = ops.concatenate([ops.mean(x, axis=ax, keepdims=True), ops.max(x, axis=ax, keepdims=True)], axis=ax)
        s = self.spatial_conv(pooled)
        if self.spatial_bn is not None:
            s = self.spatial_bn(s, training=training)
        return GATES[self.gate_layer](s)

    def call(self, x, training=None):
        x = x * self._expand(self.excitation(x), len(x.shape))
        return x * self.spatial_excitation(x, training=training)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rd_ratio": self.rd_ratio,
            "rd_channels": self.rd_channels,
            "rd_divisor": self.rd_divisor,
            "rd_min": self.rd_min,
            "mlp_bias": self.mlp_bias,
            "act_layer": self.act_layer,
            "gate_layer": self.gate_layer,
            "spatial_kernel_size": self.spatial_kernel_size,
            "spatial_norm": self.spatial_norm,
        }


@keras.saving.register_keras_serializable(package="senet")
class EffectiveSE(_ChannelAttnLayer):
    """Effective SE (VoVNetV2, arXiv:1911.06667): one ``Dense(C)``, hard-sigmoid gate.

    Args:
        add_maxpool: squeeze with ``0.5 * (avg + max)`` instead of ``avg`` (timm's EffectiveSEModule).
        gate_layer: the gate (default ``"hard_sigmoid"`` as the paper).
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(
        self,
        add_maxpool: bool = False,
        gate_layer: str = "hard_sigmoid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.add_maxpool = bool(add_maxpool)
        self.gate_layer = _act_name(gate_layer, GATES, "gate_layer", type(self).__name__)

    def build(self, input_shape) -> None:
        channels = self._check_shape(input_shape)
        self.fc = keras.layers.Dense(channels, dtype=self.dtype_policy, name="fc")
        self.fc.build((None, channels))

    def excitation(self, x):
        """The per-channel gate of shape ``(N, C)``."""
        self._ensure_built(x)
        z = self._pool(x, "avg")
        if self.add_maxpool:
            z = 0.5 * (z + self._pool(x, "max"))
        return GATES[self.gate_layer](self.fc(z))

    def call(self, x):
        return x * self._expand(self.excitation(x), len(x.shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "add_maxpool": self.add_maxpool, "gate_layer": self.gate_layer}


@keras.saving.register_keras_serializable(package="senet")
class SCSE(_ChannelAttnLayer):
    """Concurrent spatial and channel SE (Roy et al., arXiv:1803.02579): ``x·cSE(x) + x·sSE(x)``.

    Args:
        rd_ratio, rd_channels, rd_divisor, rd_min, reduction: the cSE branch's reduction (default 1/16 as the rest of
            senet; Roy et al. use r = 2).
        act_layer, gate_layer: as in :class:`SqueezeExcite`.
        combine: ``"add"`` or ``"max"`` (element-wise max of the two branches).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Sub-layers ``cse`` (a :class:`SqueezeExcite`) and ``sse`` (``Dense(1)`` applied at every position).
    """

    def __init__(
        self,
        rd_ratio: float = _DEFAULT_RD_RATIO,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        rd_min: int = 1,
        act_layer: str = "relu",
        gate_layer: str = "sigmoid",
        combine: str = "add",
        reduction: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, **kwargs)
        name = type(self).__name__
        self.rd_ratio = _rd_ratio(rd_ratio, reduction, name)
        self.rd_channels = rd_channels
        self.rd_divisor = rd_divisor
        self.rd_min = rd_min
        self.act_layer = _act_name(act_layer, ACTS, "act_layer", name)
        self.gate_layer = _act_name(gate_layer, GATES, "gate_layer", name)
        if combine not in ("add", "max"):
            raise SenetError(f"{name}: unknown combine {combine!r}; choose one of: add, max")
        self.combine = combine

    def build(self, input_shape) -> None:
        channels = self._check_shape(input_shape)
        self.cse = SqueezeExcite(
            self.rd_ratio,
            self.rd_channels,
            self.rd_divisor,
            self.rd_min,
            act_layer=self.act_layer,
            gate_layer=self.gate_layer,
            data_format=self.data_format,
            dtype=self.dtype_policy,
            name="cse",
        )
        self.cse.build(input_shape)
        self.sse = keras.layers.Dense(1, dtype=self.dtype_policy, name="sse")
        self.sse.build((None, channels))

    def spatial_excitation(self, x):
        """The per-position gate: ``(N, *S, 1)`` (channels_last) or ``(N, 1, *S)`` (channels_first)."""
        self._ensure_built(x)
        if self.data_format == "channels_last":
            return GATES[self.gate_layer](self.sse(x))
        return GATES[self.gate_layer](ops.moveaxis(self.sse(ops.moveaxis(x, 1, -1)), -1, 1))

    def excitation(self, x):
        """The channel gate of shape ``(N, C)``."""
        self._ensure_built(x)
        return self.cse.excitation(x)

    def call(self, x):
        c = x * self._expand(self.cse.excitation(x), len(x.shape))
        s = x * self.spatial_excitation(x)
        return c + s if self.combine == "add" else ops.maximum(c, s)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rd_ratio": self.rd_ratio,
            "rd_channels": self.rd_channels,
            "rd_divisor": self.rd_divisor,
            "rd_min": self.rd_min,
            "act_layer": self.act_layer,
            "gate_layer": self.gate_layer,
            "combine": self.combine,
        }
