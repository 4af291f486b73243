"""Fused kernels for the attention blocks and the residual tail, with exact hand-written gradients.

The cost of SE on a CPU is memory traffic, not FLOPs: the squeeze reads the map once, the scale reads and writes it,
and the residual tail (``+ shortcut``, ReLU) reads and writes it again. This module cuts those passes down:

* :func:`scale_add_relu` — the SE tail ``relu(x * s + shortcut)`` (the original Caffe release's fused "Axpy" layer
  plus the ReLU). Eager: one ``addcmul`` plus an in-place ReLU on the fresh output, i.e. exactly the traffic of a plain
  ResNet's ``x += shortcut; relu_(x)`` — the scale comes for free. Under ``torch.compile`` Inductor turns it into one
  loop. Training goes through :class:`ScaleAddReLU`, whose backward needs one mask pass and one multiply, and takes
  the gate's gradient as a batched dot product instead of a full temporary plus a reduction.
* :func:`gate_mul` — ``x * s`` for a channel gate ``(N, C, 1, ...)`` or a spatial gate ``(N, 1, *S)`` with the same
  cheap backward.
* :func:`squeeze_excite` — a whole channel-gate block (squeeze, excitation MLP, scale) as one autograd node: the
  backward returns ``g * s + dL/dz / HW`` with one ``addcmul`` instead of three passes (the scale's grad, the
  broadcast mean grad, and their accumulation), and the squeeze itself goes through a GEMV on the CPU for bf16/fp16
  (PyTorch's reduced-precision mean there is ~10x slower than a matmul with a ones vector).
* :func:`spatial_mean` — that squeeze.

Every function falls back to the plain PyTorch expression when it is being compiled, traced, exported or run under a
tensor subclass / dispatch mode (:func:`use_fast_path` decides), so ``torch.compile``, ``torch.export`` and ONNX see
ordinary ops (ReduceMean, Mul, Add, Relu) and generate their own fused code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

__all__ = [
    "use_fast_path",
    "spatial_mean",
    "scale_add_relu",
    "add_relu",
    "gate_mul",
    "squeeze_excite",
    "ScaleAddReLU",
    "GateMul",
]

_HALF = (torch.bfloat16, torch.float16)


def use_fast_path(x: torch.Tensor) -> bool:
    """True when the hand-written eager kernels may run: plain tensors, not compiling, tracing or exporting.

    The compilers and exporters get the reference expression instead (they fuse it themselves and the graph keeps
    standard ops).
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if torch.onnx.is_in_onnx_export():
        return False
    if type(x) is not torch.Tensor or _get_current_dispatch_mode() is not None:
        return False
    return True


def spatial_mean(x: torch.Tensor, fast: bool | None = None) -> torch.Tensor:
    """Global average over all spatial dims: ``(N, C, *S) -> (N, C)``.

    On the CPU in bf16/fp16 it is a matmul with a ones vector (accumulated in fp32 by oneDNN, rounded once), which
    is an order of magnitude faster than ``Tensor.mean`` there and works for contiguous and channels_last maps alike
    (``flatten(2)`` is a view for both). Everywhere else, and under tracing/compiling, it is ``x.mean(dims)``.
    """
    if fast is None:
        fast = use_fast_path(x)
    dims = tuple(range(2, x.dim()))
    if fast and x.device.type == "cpu" and x.dtype in _HALF and not x.requires_grad:
        flat = x.flatten(2)
        if flat.dim() == 3:  # flatten(2) of a strided non-view-able layout copies; only the view case pays off
            ones = torch.ones(flat.shape[-1], 1, dtype=x.dtype, device=x.device)
            return torch.matmul(flat, ones).squeeze(-1).div_(flat.shape[-1])
    return x.mean(dims)


def _as_gate(gate: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Accept an ``(N, C)`` channel gate as shorthand for ``(N, C, 1, ...)``."""
    if gate.dim() == 2 and x.dim() > 2:
        return gate.view(gate.shape[0], gate.shape[1], *([1] * (x.dim() - 2)))
    return gate


def _gate_grad(g: torch.Tensor, x: torch.Tensor, gate_shape: torch.Size) -> torch.Tensor:
    """``sum(g * x)`` over the dims where the gate broadcasts, without a full-size temporary when the layout allows.

    A channel gate on a contiguous map is a batched dot product over a contiguous axis (one ``bmm`` with
    ``(B, 1, L) @ (B, L, 1)``); other cases fall back to multiply + sum, the same reduction autograd would do.
    """
    n, c = x.shape[0], x.shape[1]
    spatial = x.shape[2:]
    numel_s = 1
    for s in spatial:
        numel_s *= s
    if tuple(gate_shape) == (n, c, *([1] * len(spatial))) and x.is_contiguous() and g.is_contiguous():
        out = torch.bmm(g.reshape(n * c, 1, numel_s), x.reshape(n * c, numel_s, 1))
        return out.view(gate_shape)
    dims = [i for i, s in enumerate(gate_shape) if s == 1 and x.shape[i] != 1]
    return (g * x).sum(dims, keepdim=True)


class ScaleAddReLU(torch.autograd.Function):
    """``relu(x * gate + shortcut)`` (or without the ReLU) with a hand-written backward.

    Saves ``x``, ``gate`` and the output (the ReLU mask is ``out > 0``); no extra activation memory compared to the
    unfused chain, which keeps the same three tensors alive.
    """

    @staticmethod
    def forward(ctx, x, gate, shortcut, relu: bool):  # type: ignore[override]
        out = torch.addcmul(shortcut, x, gate)
        if relu:
            out.relu_()
        ctx.relu = relu
        ctx.save_for_backward(x, gate, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, gate, out = ctx.saved_tensors
        if ctx.relu:
            grad = torch.where(out > 0, grad, torch.zeros((), dtype=grad.dtype, device=grad.device))
        grad_x = grad * gate if ctx.needs_input_grad[0] else None
        grad_gate = _gate_grad(grad, x, gate.shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_gate, grad if ctx.needs_input_grad[2] else None, None


def scale_add_relu(
    x: torch.Tensor, gate: torch.Tensor, shortcut: torch.Tensor, relu: bool = True, overwrite_x: bool = False
) -> torch.Tensor:
    """The residual tail of an attention block: ``relu(x * gate + shortcut)``.

    Args:
        x: the residual branch ``(N, C, *S)``.
        gate: ``(N, C)``, ``(N, C, 1, ...)`` (channel gate) or ``(N, 1, *S)`` (spatial gate), broadcastable to ``x``.
        shortcut: the identity / projection branch, same shape as ``x``.
        relu: apply the final ReLU (``False`` gives the bare Axpy ``x * gate + shortcut``).
        overwrite_x: inference only (ignored when autograd records): write the result into ``x``'s storage, which
            saves allocating (and page-faulting) a fresh map — for callers that own ``x``, e.g. a conv output.

    The output keeps ``x``'s memory format. Gradients are exact (checked against the unfused chain in the tests).
    """
    gate = _as_gate(gate, x)
    if not torch.jit.is_tracing() and shortcut.shape != x.shape:
        raise ValueError(f"shortcut shape {tuple(shortcut.shape)} must equal the residual's {tuple(x.shape)}")
    if not use_fast_path(x):
        out = x * gate + shortcut
        return torch.relu(out) if relu else out
    if torch.is_grad_enabled() and (x.requires_grad or gate.requires_grad or shortcut.requires_grad):
        return ScaleAddReLU.apply(x, gate, shortcut, relu)
    if overwrite_x and x.shape == torch.broadcast_shapes(x.shape, gate.shape):
        out = torch.addcmul(shortcut, x, gate, out=x)
    else:
        out = torch.addcmul(shortcut, x, gate)
    return out.relu_() if relu else out


def add_relu(x: torch.Tensor, shortcut: torch.Tensor, overwrite_x: bool = False) -> torch.Tensor:
    """``relu(x + shortcut)``; ``overwrite_x`` (inference only) writes into ``x`` as in :func:`scale_add_relu`."""
    if (
        overwrite_x
        and use_fast_path(x)
        and not (torch.is_grad_enabled() and (x.requires_grad or shortcut.requires_grad))
    ):
        if x.shape == shortcut.shape:
            return x.add_(shortcut).relu_()
    return torch.relu(x + shortcut)


class GateMul(torch.autograd.Function):
    """``x * gate`` whose backward takes the gate's gradient as a batched dot product (see :func:`_gate_grad`)."""

    @staticmethod
    def forward(ctx, x, gate):  # type: ignore[override]
        ctx.save_for_backward(x, gate)
        return x * gate

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, gate = ctx.saved_tensors
        grad_x = grad * gate if ctx.needs_input_grad[0] else None
        grad_gate = _gate_grad(grad, x, gate.shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_gate


def gate_mul(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``x * gate`` for a channel gate ``(N, C[, 1...])`` or a spatial gate ``(N, 1, *S)``, with a cheap backward."""
    gate = _as_gate(gate, x)
    if use_fast_path(x) and torch.is_grad_enabled() and (x.requires_grad or gate.requires_grad):
        return GateMul.apply(x, gate)
    return x * gate


class _SqueezeExcite(torch.autograd.Function):
    """Squeeze -> excitation (any differentiable ``fn`` of the pooled ``(N, C)``) -> channel scale, one node.

    The excitation sub-graph is recorded inside ``forward`` (under ``enable_grad``, on a detached copy of the pooled
    vector) and differentiated in ``backward`` with :func:`torch.autograd.grad`, so its parameters get exact
    gradients and forward hooks on its modules (e.g. the gate) fire as usual. The parameters are passed as inputs so
    that autograd routes their gradients through this node.
    """

    @staticmethod
    def forward(ctx, x, fn, n_params, *params):  # type: ignore[override]
        z = x.mean(tuple(range(2, x.dim())))
        with torch.enable_grad():
            zd = z.detach().requires_grad_(True)
            s = fn(zd)
        if s.shape != z.shape:
            raise ValueError(f"the excitation must return the pooled shape {tuple(z.shape)}, got {tuple(s.shape)}")
        gate = _as_gate(s.detach(), x)
        ctx.zd, ctx.s, ctx.params = zd, s, params
        ctx.save_for_backward(x)
        return x * gate

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        zd, s, params = ctx.zd, ctx.s, ctx.params
        gate_shape = (*s.shape, *([1] * (x.dim() - 2)))
        grad_s = _gate_grad(grad, x, torch.Size(gate_shape)).view(s.shape).to(s.dtype)
        wanted = [p for p, need in zip(params, ctx.needs_input_grad[3:]) if need]
        grads = torch.autograd.grad(s, [zd, *wanted], grad_s, allow_unused=True)
        grad_z, grad_wanted = grads[0], iter(grads[1:])
        grad_params = [next(grad_wanted) if need else None for need in ctx.needs_input_grad[3:]]
        del ctx.zd, ctx.s, ctx.params  # free the excitation graph (it holds the pooled activations)
        grad_x = None
        if ctx.needs_input_grad[0]:
            hw = x[0, 0].numel()
            # dL/dx = g * s (the scale) + dL/dz / HW broadcast (the mean), in one addcmul pass.
            grad_x = torch.addcmul(_as_gate(grad_z / hw, x).to(grad.dtype), grad, _as_gate(s.detach(), x))
        return (grad_x, None, None, *grad_params)


def squeeze_excite(
    x: torch.Tensor, excitation: Callable[[torch.Tensor], torch.Tensor], params: Sequence[torch.Tensor] = ()
) -> torch.Tensor:
    """``x * excitation(mean(x))`` for a channel gate, as one fused autograd node.

    Args:
        x: the map ``(N, C, *S)``.
        excitation: maps the pooled ``(N, C)`` vector to the gate ``(N, C)`` (the block's MLP + gate).
        params: every tensor the excitation uses that needs a gradient (the block's parameters).

    Same value as the unfused ``x * s`` and the same gradients (tested). Used by the SE/ECA/eSE blocks in training;
    in inference, compiling, tracing and exporting it is the plain expression.
    """
    fast = use_fast_path(x)
    params = [p for p in params if p.requires_grad]
    if fast and torch.is_grad_enabled() and (x.requires_grad or params):
        return _SqueezeExcite.apply(x, excitation, len(params), *params)
    return x * _as_gate(excitation(spatial_mean(x, fast)), x)
