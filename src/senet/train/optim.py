"""Optimizers with weight decay that skips norms and biases, per-step LR schedules with warmup, and a weight EMA."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.retrofit import classifier_name

__all__ = ["param_groups", "layer_lr_scales", "create_optimizer", "LRSchedule", "ModelEma"]


def param_groups(
    model: nn.Module,
    weight_decay: float,
    skip_norm_bias: bool = True,
    bias_lr_scale: float = 1.0,
    norm_bias_decay: bool = False,
) -> list[dict[str, Any]]:
    """Decayed weights, and 1-D tensors (norm scales/shifts, biases) without decay when asked.

    Decaying BN's scale only shrinks a factor the next layer undoes, and biases carry no capacity to regularise.
    With ``bias_lr_scale != 1`` the parameters of normalisation layers get a third group whose ``lr_scale`` key
    multiplies the learning rate (the speedrun recipes train BN shifts 64x faster than the weights).
    ``norm_bias_decay`` (with ``skip_norm_bias``) decays the 1-D groups after all, by the same amount per step as
    the weights: SGD's and AdamW's per-step decay is lr x weight_decay, so a group at ``lr_scale`` x the lr gets
    ``weight_decay / lr_scale`` (airbench94 scales the lr of BN shifts but not their decay).
    """
    norm_ids: set[int] = set()
    if bias_lr_scale != 1.0:
        norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
        norm_ids = {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}
    decay, no_decay, norm = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if skip_norm_bias and p.ndim <= 1:
            (norm if id(p) in norm_ids else no_decay).append(p)
        else:
            decay.append(p)
    bias_wd = weight_decay if norm_bias_decay else 0.0
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": bias_wd})
    if norm:
        groups.append({"params": norm, "weight_decay": bias_wd / bias_lr_scale, "lr_scale": bias_lr_scale})
    return groups


def _layer_of(name: str) -> str:
    # "layer3.4.conv1.weight" -> "layer3.4", "stages.0.1.se.fc1.weight" -> "stages.0.1", "conv1.weight" -> "conv1":
    # the path up to the first run of indices is one block of a stage (or a stem module).
    parts = name.split(".")[:-1] or name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            j = i
            while j + 1 < len(parts) and parts[j + 1].isdigit():
                j += 1
            return ".".join(parts[: j + 1])
    return parts[0]


def layer_lr_scales(model: nn.Module, layer_decay: float) -> dict[str, float]:
    """Layer-wise lr decay (BEiT/MAE fine-tuning): parameter name -> lr multiplier ``layer_decay ** d``, where ``d``
    counts the layers between the parameter's and the classifier (0 for the classifier).

    A layer is a block of a stage (``layer3.4``, ``stages.0.1``, ``_blocks.7``) or a stem module, in registration
    order: a generic rule that needs no per-family table and gives earlier layers smaller steps.
    """
    head = classifier_name(model)
    names = [n for n, _ in model.named_parameters()]
    layers: dict[str, int] = {}
    for n in names:
        if head is None or not n.startswith(head + "."):
            layers.setdefault(_layer_of(n), len(layers))
    top = len(layers)  # the classifier sits one above the last layer
    out = {}
    for n in names:
        depth = top if head is not None and n.startswith(head + ".") else layers[_layer_of(n)]
        out[n] = layer_decay ** (top - depth)
    return out


def _split_by_lr_scale(model: nn.Module, groups: list[dict[str, Any]], layer_decay: float) -> list[dict[str, Any]]:
    # Each group (decay / no decay / norms) splits into one group per layer multiplier, in layer order.
    scales = layer_lr_scales(model, layer_decay)
    scale_of = {id(p): scales[n] for n, p in model.named_parameters()}
    out = []
    for g in groups:
        by_scale: dict[float, list[nn.Parameter]] = {}
        for p in g["params"]:
            by_scale.setdefault(scale_of[id(p)], []).append(p)
        for scale, params in sorted(by_scale.items()):
            out.append(dict(g, params=params, lr_scale=g.get("lr_scale", 1.0) * scale))
    return out


def create_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov by default) or AdamW from ``cfg`` (a :class:`~senet.train.config.TrainConfig`)."""
    groups = param_groups(
        model,
        cfg.weight_decay,
        cfg.wd_skip_norm_bias,
        getattr(cfg, "bias_lr_scale", 1.0),
        getattr(cfg, "norm_bias_decay", False),
    )
    layer_decay = getattr(cfg, "layer_decay", 1.0)
    if layer_decay != 1.0:
        groups = _split_by_lr_scale(model, groups, layer_decay)
    for g in groups:
        g["lr"] = cfg.lr * g.pop("lr_scale", 1.0)
    if cfg.optimizer == "sgd":
        nesterov = cfg.nesterov and cfg.momentum > 0
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    raise SenetError(f"optimizer must be sgd or adamw, not {cfg.optimizer!r}")


class LRSchedule:
    """Per-step learning-rate multiplier: linear warmup, then ``step`` / ``cosine`` / ``linear`` / ``onecycle`` /
    ``constant``. ``linear`` falls in a straight line from ``lr`` after the warmup to ``min_lr`` at the last step
    (the speedrun records' triangle when warmup_start > 0).

    The state is just the step count, so resuming is exact. ``milestones`` and ``warmup_epochs`` are in epochs.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int) -> None:
        self.optimizer = optimizer
        self.kind = cfg.schedule
        self.spe = steps_per_epoch
        self.total = max(1, cfg.epochs * steps_per_epoch)
        self.warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        self.warmup_start = cfg.warmup_start
        self.milestones = [int(round(m * steps_per_epoch)) for m in cfg.milestones]
        self.gamma = cfg.gamma
        self.min_ratio = cfg.min_lr / cfg.lr
        self.pct = cfg.onecycle_pct
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = lr
        self.step_count = 0
        self._apply()

    def factor(self, s: int) -> float:
        """The LR multiplier at optimizer step ``s`` (0-based)."""
        if self.kind == "onecycle":
            # Leslie Smith's one-cycle: ramp from lr/25 over pct of training, then cosine to min_lr (or lr/1e4).
            up = max(1, int(self.pct * self.total))
            lo = 1 / 25
            if s < up:
                return lo + (1 - lo) * s / up
            end = self.min_ratio or 1e-4
            t = min(1.0, (s - up) / max(1, self.total - up))
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))
        if s < self.warmup:
            w = self.warmup_start + (1 - self.warmup_start) * s / self.warmup
        else:
            w = 1.0
        if self.kind == "step":
            f = self.gamma ** sum(s >= m for m in self.milestones)
        elif self.kind in ("cosine", "linear"):
            t = min(1.0, max(0, s - self.warmup) / max(1, self.total - self.warmup))
            shape = 0.5 * (1 + math.cos(math.pi * t)) if self.kind == "cosine" else 1 - t
            f = self.min_ratio + (1 - self.min_ratio) * shape
        else:
            f = 1.0
        return w * f

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * f

    def step(self) -> None:
        """Advance one optimizer step."""
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.base_lrs = list(state["base_lrs"])
        self._apply()


class ModelEma(nn.Module):
    """An exponential moving average of a model's weights (buffers are copied): ``ema = d * ema + (1 - d) * w``.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates so early, random weights fade fast.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.updates)
        d = min(self.decay, (1 + n) / (10 + n))
        self.updates += 1
        src = model.state_dict()
        for k, v in self.module.state_dict().items():
            s = src[k]
            if v.dtype.is_floating_point:
                v.mul_(d).add_(s.detach(), alpha=1 - d)
            else:
                v.copy_(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)
