"""Model-level inference transforms: conv-BN folding and fused attention + residual tails.

Both work on any model whose data flow :mod:`torch.fx` can trace with the attention blocks kept as opaque leaves;
FX is used to *find* the patterns (a conv whose only consumer is a BN; an attention block whose output only feeds
``+ shortcut`` whose output only feeds a ReLU), so nothing is assumed from module names: a pre-activation block's
``bn1`` (applied before ``conv1``) is never folded into it. A model (or sub-module) that FX cannot trace is split
into its children, which are tried in turn.

* :func:`fold_bn` rewrites each matched conv's weight and bias in place and puts an ``nn.Identity`` where the BN was,
  so the model keeps its class, its methods and (minus the BN buffers) its state_dict keys. Also folds the conv-BN
  pairs attention blocks declare (``conv_bn_pairs()``: CBAM's spatial attention).
* :func:`fuse_attn_tails` replaces each residual block that ends in ``relu(attn(x) + shortcut)`` by an
  ``fx.GraphModule`` of that block in which the tail is one :func:`senet.layers.fused.scale_add_relu` call
  (``relu(x * gate + shortcut)`` in one pass). The block's sub-modules keep their names. Gradients stay exact, so
  the fused model can also be trained. Which attention blocks qualify is the block's own declaration
  (``fused_tail``, ``split_gate``, ``linear_squeeze``: the contract in :mod:`senet.layers.base`); the others are
  left as they are.
* :func:`optimize_for_inference` = eval mode + both + optional channels_last.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from senet.layers.base import AttentionBlock, is_attention
from senet.layers.fused import add_relu, scale_add_relu, spatial_mean, use_fast_path
from senet.models._mbconv import Conv2dSame

__all__ = [
    "fold_bn",
    "fold_conv_bn",
    "fuse_attn_tails",
    "fuse_plain_tails",
    "optimize_for_inference",
    "attn_tail",
    "attn_tail_squeeze_first",
]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _fusable(m: nn.Module) -> bool:
    """An attention block that declares ``forward(x) == y * gate`` (``split_gate``), so its tail may be fused."""
    return isinstance(m, AttentionBlock) and m.fused_tail


class _LeafTracer(fx.Tracer):
    """Keeps attention blocks (:func:`senet.layers.is_attention`) opaque, like torch.nn layers."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # Conv2dSame pads then convolves: a conv as far as BatchNorm folding goes (its padding is data-dependent
        # Python, which FX cannot trace into).
        return is_attention(m) or isinstance(m, Conv2dSame) or super().is_leaf_module(m, qualname)


def _trace(module: nn.Module) -> fx.Graph | None:
    try:
        return _LeafTracer().trace(module)
    except Exception:  # noqa: BLE001 - FX raises many kinds of errors for untraceable Python; the caller recurses
        return None


def _traced_regions(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module, fx.Graph]]:
    """``(qualname, module, graph)`` for the largest traceable sub-trees covering ``module``."""
    graph = _trace(module)
    if graph is not None:
        return [(prefix, module, graph)]
    out = []
    for name, child in module.named_children():
        if not is_attention(child):
            out += _traced_regions(child, f"{prefix}{name}.")
    return out


def fold_conv_bn(conv: nn.Module, bn: nn.Module) -> None:
    """Fold an eval-mode BatchNorm into the conv before it, in place: ``bn(conv(x)) == conv'(x)``."""
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError(f"cannot fold {bn}: it has no running statistics")
    w = conv.weight
    scale = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_var)
    shift = bn.bias.detach() if bn.affine else torch.zeros_like(bn.running_mean)
    inv = scale.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(inv)
    shape = (-1,) + (1,) * (w.dim() - 1)
    with torch.no_grad():
        new_w = (w.double() * inv.view(shape)).to(w.dtype)
        new_b = ((bias - bn.running_mean.double()) * inv + shift.double()).to(w.dtype)
    conv.weight = nn.Parameter(new_w, requires_grad=w.requires_grad)
    conv.bias = nn.Parameter(new_b, requires_grad=w.requires_grad)


def fold_bn(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every ``conv -> BatchNorm`` pair (conv output used by nothing else) into the conv. Eval mode only.

    Returns the model (a deep copy unless ``inplace``) in eval mode; its outputs equal the original's in eval mode
    up to float rounding (the fold is computed in float64).
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    folded = 0
    for prefix, region, graph in _traced_regions(model):
        uses: dict[str, int] = {}
        for node in graph.nodes:
            if node.op == "call_module":
                uses[node.target] = uses.get(node.target, 0) + 1
        for node in graph.nodes:
            if node.op != "call_module" or len(node.users) != 1:
                continue
            (user,) = node.users
            if user.op != "call_module" or uses[node.target] != 1 or uses.get(user.target) != 1:
                continue
            conv, bn = region.get_submodule(node.target), region.get_submodule(user.target)
            if isinstance(conv, _CONVS) and isinstance(bn, _BNS) and bn.track_running_stats:
                fold_conv_bn(conv, bn)
                model.set_submodule(prefix + user.target, nn.Identity())
                folded += 1
    for m in list(model.modules()):
        # Attention blocks are FX leaves; the conv -> BN pairs inside them are the ones they declare.
        for conv_name, bn_name in m.conv_bn_pairs() if isinstance(m, AttentionBlock) else ():
            fold_conv_bn(getattr(m, conv_name), getattr(m, bn_name))
            setattr(m, bn_name, nn.Identity())
            folded += 1
    model._senet_folded_bn = folded  # for reports; plain attribute, not in the state_dict
    return model


def attn_tail(attn: nn.Module, x: torch.Tensor, shortcut: torch.Tensor, overwrite_x: bool = False) -> torch.Tensor:
    """``relu(attn(x) + shortcut)`` through the fused kernel (the call that :func:`fuse_attn_tails` inserts).

    ``overwrite_x``: ``x`` is a temporary nobody else reads (a conv output), so in inference the result may reuse it.
    """
    y, gate = attn.split_gate(x)
    # A ``y`` other than ``x`` is the block's own fresh temporary (CBAM's channel-gated map): free to overwrite.
    return scale_add_relu(y, gate, shortcut, overwrite_x=overwrite_x or y is not x)


def attn_tail_squeeze_first(attn: nn.Module, conv: nn.Module, h: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
    """:func:`attn_tail` when the attention input is a 1x1 conv of ``h``: squeeze ``h`` instead of ``conv(h)``.

    ``mean(W h + b) = W mean(h) + b`` for a 1x1, stride-1 conv (BN already folded into it), so the squeeze reads the
    bottleneck's narrow input (C/4 channels in a ResNet bottleneck) instead of its 4x wider output, and the
    extra cost is one ``(C, C/4)`` matrix-vector product. Exact up to float reassociation.
    """
    x = conv(h)
    n_pixels = h.shape[0] * h[0, 0].numel()
    # Worth it while the activations outweigh the (C, C/4) weights: early stages and big batches.
    if use_fast_path(h) and n_pixels >= 2 * h.shape[1]:
        z = F.linear(spatial_mean(h), conv.weight.flatten(1), conv.bias)
    else:
        z = spatial_mean(x)
    return scale_add_relu(x, attn.excite(z), shortcut, overwrite_x=True)


def _squeezable(attn: nn.Module) -> bool:
    """Attention whose gate is ``excite(mean(x))``: a linear squeeze that commutes with a 1x1 conv."""
    return isinstance(attn, AttentionBlock) and attn.linear_squeeze


def _pointwise_conv_input(node: fx.Node, module: nn.Module) -> tuple[list[fx.Node], fx.Node] | None:
    """``(chain, conv node)`` if ``node`` is ``[Identity(] conv1x1(h) [)]`` used only by the attention."""
    chain = [node]
    if node.op == "call_module" and type(module.get_submodule(node.target)) is nn.Identity:
        if len(node.users) != 1 or not node.args or not isinstance(node.args[0], fx.Node):
            return None
        node = node.args[0]
        chain.append(node)
    if node.op != "call_module" or len(node.users) != 1 or len(node.args) != 1 or node.kwargs:
        return None
    conv = module.get_submodule(node.target)
    ok = (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )
    return (chain, node) if ok else None


def _owned_temp(node: fx.Node, module: nn.Module) -> bool:
    """``node`` is a conv output (through single-user Identity / BN / conv nodes) that only its one user reads."""
    while True:
        if node.op != "call_module" or len(node.users) != 1:
            return False
        m = module.get_submodule(node.target)
        if isinstance(m, _CONVS + _BNS):
            return True
        if type(m) is not nn.Identity or not node.args or not isinstance(node.args[0], fx.Node):
            return False
        node = node.args[0]


def _is_relu(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return type(root.get_submodule(node.target)) is nn.ReLU
    if node.op == "call_function":
        return node.target in (torch.relu, F.relu, torch.relu_) and len(node.args) == 1 and not node.kwargs
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _fuse_graph(module: nn.Module, graph: fx.Graph, squeeze_first: bool = True) -> int:
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or not _fusable(module.get_submodule(node.target)):
            continue
        if len(node.users) != 1 or len(node.args) != 1 or node.kwargs:
            continue
        (add,) = node.users
        if add.op != "call_function" or add.target not in (operator.add, operator.iadd, torch.add):
            continue
        if add.kwargs or len(add.args) != 2 or len(add.users) != 1:
            continue
        shortcut = add.args[1] if add.args[0] is node else add.args[0]
        if not isinstance(shortcut, fx.Node) or shortcut is node:
            continue
        (relu,) = add.users
        if not _is_relu(relu, module):
            continue
        pw = _pointwise_conv_input(node.args[0], module) if isinstance(node.args[0], fx.Node) else None
        dead = [relu, add, node]
        with graph.inserting_before(relu):
            attn = graph.get_attr(node.target)
            if squeeze_first and pw is not None and _squeezable(module.get_submodule(node.target)):
                chain, conv_node = pw
                conv = graph.get_attr(conv_node.target)
                fused = graph.call_function(attn_tail_squeeze_first, (attn, conv, conv_node.args[0], shortcut))
                dead += chain
            else:
                owned = isinstance(node.args[0], fx.Node) and _owned_temp(node.args[0], module)
                fused = graph.call_function(attn_tail, (attn, node.args[0], shortcut, owned))
        relu.replace_all_uses_with(fused)
        for n in dead:
            graph.erase_node(n)
        count += 1
    return count


def _fuse_plain_tails(module: nn.Module, graph: fx.Graph) -> int:
    """``relu(conv_out + shortcut)`` -> :func:`add_relu` writing into the conv output (no fresh allocation)."""
    count = 0
    for add in list(graph.nodes):
        if add.op != "call_function" or add.target not in (operator.add, operator.iadd, torch.add) or add.kwargs:
            continue
        if len(add.args) != 2 or len(add.users) != 1 or not all(isinstance(a, fx.Node) for a in add.args):
            continue
        (relu,) = add.users
        if not _is_relu(relu, module):
            continue
        x, shortcut = add.args
        if not _owned_temp(x, module):
            x, shortcut = shortcut, x
            if not _owned_temp(x, module):
                continue
        with graph.inserting_before(relu):
            fused = graph.call_function(add_relu, (x, shortcut, True))
        relu.replace_all_uses_with(fused)
        graph.erase_node(relu)
        graph.erase_node(add)
        count += 1
    return count


def fuse_plain_tails(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Rewrite ``relu(conv_out + shortcut)`` residual tails to add and ReLU in place in the conv output.

    The same allocation saving that :func:`fuse_attn_tails` gives attention blocks, for blocks without attention
    (so a plain ResNet's optimized baseline gets it too). Inference only: with autograd recording it is the plain
    expression.
    """
    if not inplace:
        model = copy.deepcopy(model)

    def candidate(m: nn.Module) -> bool:
        return not isinstance(m, (nn.Sequential, nn.ModuleList)) and any(
            isinstance(c, _BNS + _CONVS) for c in m.children()
        )

    # Innermost blocks only (a ResNet's root also has a conv child, but its blocks are the units to rewrite).
    todo = [
        (name, m)
        for name, m in model.named_modules()
        if name and candidate(m) and not any(candidate(d) for d in list(m.modules())[1:])
    ]
    fused = 0
    for name, m in todo:
        if isinstance(m, fx.GraphModule) and "add_relu" in m.code:
            continue
        graph = _trace(m)
        if graph is None:
            continue
        n = _fuse_plain_tails(m, graph)
        if not n:
            continue
        graph.lint()
        gm = fx.GraphModule(m, graph, class_name=f"Fused{type(m).__name__}")
        gm.train(m.training)
        fused += n
        model.set_submodule(name, gm)
    model._senet_fused_plain_tails = fused
    return model


def fuse_attn_tails(model: nn.Module, inplace: bool = False, squeeze_first: bool = True) -> nn.Module:
    """Replace each ``relu(attn(x) + shortcut)`` block tail by one :func:`~senet.layers.fused.scale_add_relu`.

    Applies to blocks whose attention declares ``fused_tail`` (SE, ECA, eSE, CBAM and CBAM's channel attention
    among senet's; other kinds and other positions are left alone). The rewritten blocks become
    ``fx.GraphModule`` s with the same sub-module names.
    Works in training too (exact gradients through :class:`~senet.layers.fused.ScaleAddReLU`).

    With ``squeeze_first`` (default), when the attention's input is a 1x1 stride-1 conv (a bottleneck's conv3 with
    its BN folded, i.e. after :func:`fold_bn`) and the squeeze is a plain mean, the squeeze is taken on the conv's
    input and pushed through the conv's weights (:func:`attn_tail_squeeze_first`).
    """
    if not inplace:
        model = copy.deepcopy(model)
    fused = 0
    todo = [
        (name, m) for name, m in model.named_modules() if any(_fusable(c) for c in m.children()) and not _fusable(m)
    ]
    for name, m in todo:
        graph = _trace(m)
        if graph is None:
            continue
        n = _fuse_graph(m, graph, squeeze_first)
        if not n:
            continue
        graph.lint()
        gm = fx.GraphModule(m, graph, class_name=f"Fused{type(m).__name__}")
        gm.train(m.training)
        fused += n
        if name:
            model.set_submodule(name, gm)
        else:
            model = gm
    model._senet_fused_tails = fused
    return model


def optimize_for_inference(
    model: nn.Module, fold: bool = True, fuse: bool = True, channels_last: bool = False, inplace: bool = False
) -> nn.Module:
    """Eval mode, conv-BN folding (:func:`fold_bn`) and fused attention tails (:func:`fuse_attn_tails`).

    Args:
        model: any module (senet, timm and torchvision ResNets all work).
        fold: fold BatchNorm into the convs.
        fuse: fuse ``relu(attn(x) + shortcut)`` into one pass.
        channels_last: also convert the weights to channels_last (feed channels_last inputs too).
        inplace: modify ``model`` instead of a deep copy.

    The result computes the same function in eval mode (tested to 1e-5 on every model family) and exports to ONNX /
    ``torch.export`` / ``torch.compile`` as the plain ops.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if fold:
        model = fold_bn(model, inplace=True)
    if fuse:
        model = fuse_attn_tails(model, inplace=True)
        model = fuse_plain_tails(model, inplace=True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
