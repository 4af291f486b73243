"""Recipe extras that act between optimizer steps: Lookahead weight averaging and freezing the whitening bias.

Both come from the public CIFAR-10 speedrun recipe (Keller Jordan's airbench94). The trainer talks to one
:class:`RecipeHooks` object: ``start_epoch`` before an epoch's first step, ``after_step`` after each optimizer step,
and ``state_dict``/``load_state_dict`` with the checkpoint, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet.errors import SenetError

__all__ = ["Lookahead", "RecipeHooks"]


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


class RecipeHooks:
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
