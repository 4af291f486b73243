"""Channel-attention blocks: SE, ECA, CBAM, scSE, Effective SE and the paper's NoSqueeze ablation, and the residual
block with attention of restoration networks (:class:`SEResidualBlock`).

Every block takes ``channels`` first, shares the knob names ``rd_ratio`` / ``rd_channels`` / ``rd_divisor`` /
``act_layer`` / ``gate_layer``, works on 1-D, 2-D and 3-D maps, and exposes its gate as a named submodule
(``gate``) and an ``excitation(x)`` method so hooks and analysis can read it.

Every block derives from :class:`AttentionBlock` (the contract the fused path, quantization, converters, hooks and the
ledger read) and every kind is registered once in the factory (:func:`register_attn`); :func:`iter_attention` is the
one way to find the attention blocks of a model.
"""

from .base import AttentionBlock, AttnSite, attn_gate, is_attention, iter_attention
from .cbam import CBAM, SCSE, ChannelAttn, SpatialAttn
from .create_attn import (
    AttnType,
    attn_kind,
    attn_knobs,
    create_attn,
    get_attn,
    list_attn,
    merge_attn_kwargs,
    register_attn,
    unregister_attn,
)
from .eca import EfficientChannelAttn, eca_kernel_size
from .helpers import create_act, global_pool, list_acts, make_divisible, resolve_rd_channels
from .residual import SEResidualBlock
from .squeeze_excite import EffectiveSE, NoSqueeze, SqueezeExcite

# Short aliases used in papers and other libraries.
SEModule = SqueezeExcite
ECA = EfficientChannelAttn

__all__ = [
    "CBAM",
    "ECA",
    "SCSE",
    "AttentionBlock",
    "AttnSite",
    "AttnType",
    "ChannelAttn",
    "EffectiveSE",
    "EfficientChannelAttn",
    "NoSqueeze",
    "SEModule",
    "SEResidualBlock",
    "SpatialAttn",
    "SqueezeExcite",
    "attn_gate",
    "attn_knobs",
    "create_act",
    "attn_kind",
    "create_attn",
    "eca_kernel_size",
    "get_attn",
    "global_pool",
    "is_attention",
    "iter_attention",
    "list_acts",
    "list_attn",
    "make_divisible",
    "merge_attn_kwargs",
    "register_attn",
    "resolve_rd_channels",
    "unregister_attn",
]
