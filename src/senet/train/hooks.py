"""Hooks: what acts between the loop's steps without an ``if`` in the loop. Every hook has ``start_epoch(epoch)``
(before an epoch's first step, after the model is put in train mode) and ``after_step(step)`` (after each optimizer
step); the trainer calls them in order.

* :class:`RecipeHooks`: the speedrun extras of the public CIFAR-10 recipe (Keller Jordan's airbench94), Lookahead
  weight averaging and freezing the whitening bias; with ``state_dict``/``load_state_dict`` saved in the checkpoint,
  so a resumed run continues exactly.
* :class:`FreezePhases`: ``freeze_epochs`` (the classifier, or with ``--retrofit`` also the new attention, trains
  alone for the first epochs) and ``freeze: backbone`` (a linear probe whose backbone BN statistics stay fixed).
* :class:`EmaHook`: updates the weights' exponential moving average after each step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.retrofit.training import freeze_all_but_classifier, freeze_backbone, unfreeze

from .optim import ModelEma


class TrainHook:
    """A no-op hook: subclasses override what they act on."""

    def start_epoch(self, epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based), after the model was put in train mode."""

    def after_step(self, step: int) -> None:
        """After optimizer step ``step`` (1-based, over the whole run)."""


__all__ = ["TrainHook", "Lookahead", "RecipeHooks", "FreezePhases", "EmaHook", "build_hooks"]


class Lookahead:
    """Lookahead as airbench94 uses it: every ``every`` steps, ``ema <- lerp(ema, net, 1 - d)`` and then
    ``net <- ema``, with ``d = decay**every * (t / total)**3`` at step ``t`` (1-based), over every floating-point
    entry of the state dict (BatchNorm running statistics included). At ``t == total`` the net takes the average
    (``net <- ema``, whatever ``t`` is modulo ``every``).

    ``d`` grows from 0 to ``decay**every``: early on the pull-back does nothing, late in training (where the
    learning rate is still 7 % of its peak in the speedrun schedule) the net is pulled towards a slow average of
    itself, which is what it is evaluated as.
    """

    def __init__(self, model: nn.Module, every: int, total_steps: int, decay: float = 0.95) -> None:
        if every <= 0 or total_steps <= 0:
            raise ValueError(f"Lookahead needs every > 0 and total_steps > 0, got {every}, {total_steps}")
        self.every, self.total, self.decay = every, total_steps, decay
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def weight(self, t: int) -> float:
        """``d`` at step ``t``: the share the average keeps."""
        return self.decay**self.every * (t / self.total) ** 3

    @torch.no_grad()
    def step(self, model: nn.Module, t: int) -> None:
        """Call after optimizer step ``t`` (1-based, counted over the whole run)."""
        pull = t % self.every == 0
        if not pull and t < self.total:
            return
        d = self.weight(t) if pull else 1.0
        for k, v in model.state_dict().items():
            e = self.ema.get(k)
            if e is None:
                continue
            if pull:
                e.lerp_(v, 1.0 - d)
            v.copy_(e)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.ema)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.ema.keys():
            raise SenetError("the checkpoint's lookahead state does not fit this model; start a new run")
        for k, v in state.items():
            self.ema[k].copy_(v)


class RecipeHooks(TrainHook):
    """The trainer's view of the recipe extras configured in ``cfg`` (a :class:`~senet.train.config.TrainConfig`):
    ``lookahead_every``/``lookahead_decay`` and ``whiten_bias_epochs``. Inactive (every call a no-op) by default.
    """

    def __init__(self, model: nn.Module, cfg: Any, total_steps: int, distributed: bool = False) -> None:
        self.model = model
        self.lookahead = (
            Lookahead(model, cfg.lookahead_every, total_steps, cfg.lookahead_decay) if cfg.lookahead_every else None
        )
        self.whiten_bias_epochs = cfg.whiten_bias_epochs
        self.whiten_bias: nn.Parameter | None = None
        if self.whiten_bias_epochs:
            whiten = getattr(model, "whiten", None)
            if not isinstance(whiten, nn.Conv2d) or whiten.bias is None:
                raise SenetError(
                    f"whiten_bias_epochs needs a model with a whitening conv with a bias (speednet), not {cfg.model!r}"
                )
            if distributed:
                # DDP fixes the set of parameters with gradients when it wraps the model.
                raise SenetError("whiten_bias_epochs is single-process only (DDP cannot change its trainable set)")
            self.whiten_bias = whiten.bias

    def start_epoch(self, epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based): the whitening bias trains while ``epoch`` is below the
        limit. A frozen parameter gets no gradient, so the optimizer applies neither its step nor its decay."""
        if self.whiten_bias is not None:
            self.whiten_bias.requires_grad_(epoch < self.whiten_bias_epochs)

    def after_step(self, step: int) -> None:
        """After optimizer step ``step`` (1-based, over the whole run)."""
        if self.lookahead is not None:
            self.lookahead.step(self.model, step)

    def state_dict(self) -> dict[str, Any] | None:
        return {"lookahead": self.lookahead.state_dict()} if self.lookahead is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.lookahead is None:
            return
        if not state or "lookahead" not in state:
            raise SenetError("the checkpoint holds no lookahead state: it was written without lookahead_every")
        self.lookahead.load_state_dict(state["lookahead"])


class FreezePhases(TrainHook):
    """Which parameters train when: ``cfg.freeze`` (``backbone``: only the classifier, all run) and
    ``cfg.freeze_epochs`` (epochs ``1..N`` train only the classifier, plus the attention ``--retrofit`` added).

    Construct it after SyncBatchNorm replaced the norm layers (the probe keeps the replaced ones in eval mode) and
    before DDP wraps the model; :meth:`begin` applies the warm-up freeze of a run starting at ``start_epoch``.
    The optimizer holds every parameter either way: a frozen one gets no gradient, so SGD/AdamW leave it alone.
    """

    def __init__(self, model: nn.Module, cfg: Any, distributed: bool = False) -> None:
        self.check(cfg, distributed)
        self.model, self.freeze_epochs, self.retrofit = model, int(cfg.freeze_epochs), bool(cfg.retrofit)
        self.probe_norms = _freeze_for_probe(model) if cfg.freeze == "backbone" else []
        self.warmup_norms: list[nn.Module] = []

    @staticmethod
    def check(cfg: Any, distributed: bool) -> None:
        """Refuse ``freeze_epochs`` under DDP, which fixes the set of parameters with gradients when it wraps."""
        if cfg.freeze_epochs and distributed:
            raise SenetError("freeze_epochs is single-process only (DDP cannot change its trainable set); drop it")

    def begin(self, start_epoch: int, say: Any) -> None:
        """Freeze for the warm-up when the run (or its resumed part) starts inside it."""
        if not self.freeze_epochs or start_epoch >= self.freeze_epochs:
            return
        if self.retrofit:
            freeze_backbone(self.model)
            what = "the new attention parameters and the classifier"
        else:
            freeze_all_but_classifier(self.model)
            what = "the classifier"
        # A frozen backbone is frozen in its BN statistics too: batch statistics (of a new dataset, resolution and
        # batch size) would change the features the head is fitted to, and the running ones would drift away from
        # the pretrained ones (EfficientNet-Lite0 on Imagenette: zero-shot 86 % in eval mode, 58 % with batch BN).
        self.warmup_norms = _frozen_norms(self.model)
        say(f"senet train: epochs 1-{self.freeze_epochs} train only {what} (frozen BN statistics)")

    def start_epoch(self, epoch: int) -> None:
        if self.freeze_epochs and epoch == self.freeze_epochs:
            unfreeze(self.model)
        # A linear probe keeps the pretrained backbone's BN statistics; so does the warm-up while it lasts.
        for m in self.probe_norms + (self.warmup_norms if epoch < self.freeze_epochs else []):
            m.eval()


def _frozen_norms(model: nn.Module) -> list[nn.Module]:
    """The norm layers of ``model`` none of whose parameters train (the frozen part's)."""
    norms = (nn.modules.batchnorm._NormBase,)
    return [m for m in model.modules() if isinstance(m, norms) and not any(p.requires_grad for p in m.parameters())]


def _freeze_for_probe(model: nn.Module) -> list[nn.Module]:
    """``--freeze backbone``: only the classifier trains; returns the backbone's norm layers, kept in eval mode."""
    freeze_all_but_classifier(model)
    return _frozen_norms(model)


class EmaHook(TrainHook):
    """Updates ``ema`` (a :class:`~senet.train.optim.ModelEma`) from ``model`` after every optimizer step."""

    def __init__(self, ema: ModelEma, model: nn.Module) -> None:
        self.ema, self.model = ema, model

    def after_step(self, step: int) -> None:
        self.ema.update(self.model)


def build_hooks(recipe: RecipeHooks, phases: FreezePhases, ema: ModelEma | None, model: nn.Module) -> list[TrainHook]:
    """The trainer's hooks, in calling order: freeze phases, the recipe extras, then the EMA (which averages the
    weights as Lookahead left them)."""
    return [phases, recipe] + ([EmaHook(ema, model)] if ema is not None else [])
