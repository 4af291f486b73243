"""Lookahead, the whitening-bias freeze and equal per-step decay of biases (senet.train.hooks, senet.train.optim)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet.errors import SenetError
from senet.train import load_config
from senet.train.hooks import Lookahead, RecipeHooks
from senet.train.optim import create_optimizer


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def _sgd_steps(net: nn.Module, opt: torch.optim.Optimizer, n: int, gen: torch.Generator) -> None:
    for _ in range(n):
        x = torch.randn(8, 3, 8, 8, generator=gen)
        loss = net(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_lookahead_follows_the_airbench_rule_over_all_float_state() -> None:
    every, total = 3, 10
    net = _bn_net()
    la = Lookahead(net, every, total, decay=0.9)
    # The rule, written independently: a plain dict average, pulled back into the net.
    ref = {k: v.clone() for k, v in net.state_dict().items() if v.is_floating_point()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.5)
    gen = torch.Generator().manual_seed(1)
    for t in range(1, total + 1):
        _sgd_steps(net, opt, 1, gen)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        la.step(net, t)
        after = net.state_dict()
        if t % every == 0:
            d = 0.9**every * (t / total) ** 3
            for k in ref:
                ref[k] = d * ref[k] + (1 - d) * before[k]
                torch.testing.assert_close(after[k], ref[k], rtol=1e-6, atol=1e-7)
            assert not torch.equal(after["1.running_mean"], before["1.running_mean"])  # BN statistics averaged too
        elif t < total:
            assert all(torch.equal(after[k], before[k]) for k in after)  # between pulls the net is left alone
    # The last step (10, not a multiple of 3) gives the net the average, as it stood after step 9.
    for k in ref:
        torch.testing.assert_close(net.state_dict()[k], ref[k], rtol=1e-6, atol=1e-7)
    assert net.state_dict()["1.num_batches_tracked"] == total  # integer state is not averaged
    assert la.weight(0) == 0.0 and la.weight(total) == pytest.approx(0.9**3)


def test_lookahead_state_round_trips_and_rejects_another_model() -> None:
    net = _bn_net()
    la = Lookahead(net, 5, 100)
    other = Lookahead(net, 5, 100)
    with torch.no_grad():
        for v in la.ema.values():
            v.add_(1.0)
    other.load_state_dict(la.state_dict())
    assert all(torch.equal(other.ema[k], la.ema[k]) for k in la.ema)
    with pytest.raises(SenetError, match="does not fit"):
        Lookahead(nn.Linear(2, 2), 5, 100).load_state_dict(la.state_dict())
    with pytest.raises(ValueError, match="every > 0"):
        Lookahead(net, 0, 100)


def test_recipe_hooks_are_inert_by_default_and_check_their_model() -> None:
    from senet.models import create_model

    net = _bn_net()
    hooks = RecipeHooks(net, load_config(None, {}), 10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hooks.start_epoch(0)
    for t in range(1, 11):
        hooks.after_step(t)
    assert hooks.state_dict() is None and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(SenetError, match="whitening conv"):
        RecipeHooks(net, load_config(None, {"whiten_bias_epochs": 3}), 10)
    sn = create_model("speednet", widths=(8, 16, 16))
    with pytest.raises(SenetError, match="single-process"):
        RecipeHooks(sn, load_config(None, {"whiten_bias_epochs": 3}), 10, distributed=True)
    hooks = RecipeHooks(sn, load_config(None, {"whiten_bias_epochs": 2}), 10)
    for epoch, trains in ((0, True), (1, True), (2, False), (5, False)):
        hooks.start_epoch(epoch)
        assert sn.whiten.bias.requires_grad is trains
    la = RecipeHooks(sn, load_config(None, {"lookahead_every": 5}), 10)
    with pytest.raises(SenetError, match="no lookahead state"):
        la.load_state_dict(None)


def test_norm_bias_decay_gives_every_parameter_the_same_per_step_decay() -> None:
    from senet.models import create_model

    m = create_model("se_speednet", widths=(8, 16, 16))
    base = {"lr": 1.5, "weight_decay": 1.33e-3, "bias_lr_scale": 64.0, "momentum": 0.85}
    opt = create_optimizer(m, load_config(None, {**base, "norm_bias_decay": True}))
    # lr x weight_decay, the amount each step takes off a parameter, is the same in every group.
    assert {round(g["lr"] * g["weight_decay"], 12) for g in opt.param_groups} == {round(1.5 * 1.33e-3, 12)}
    assert {g["lr"] for g in opt.param_groups} == {1.5, 96.0}
    # Measured, not only read off the groups: a step with zero gradients shrinks every parameter by the same factor.
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(1.0)
    for p in m.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    opt.step()
    shrink = torch.cat([p.detach().flatten() for p in m.parameters() if p.requires_grad])
    # Nesterov: the decay enters the step twice. Without norm_bias_decay the biases would stay at 1.0, and the
    # BN shifts' decay would be 64x too strong without the division.
    torch.testing.assert_close(shrink, torch.full_like(shrink, 1 - 1.5 * 1.33e-3 * (1 + 0.85)))
    # Default: shifts and biases are not decayed at all.
    plain = create_optimizer(m, load_config(None, base))
    assert sorted(g["weight_decay"] for g in plain.param_groups) == [0.0, 0.0, 1.33e-3]
    with pytest.raises(SenetError, match="norm_bias_decay needs wd_skip_norm_bias"):
        load_config(None, {"norm_bias_decay": True, "wd_skip_norm_bias": False})


def test_recipe_options_are_typed_and_checked() -> None:
    cfg = load_config(None, {})
    assert (cfg.lookahead_every, cfg.whiten_bias_epochs, cfg.flip_mode, cfg.norm_bias_decay) == (0, 0, "random", False)
    with pytest.raises(SenetError, match="flip_mode must be one of"):
        load_config(None, {"flip_mode": "sometimes"})
    with pytest.raises(SenetError, match="lookahead_decay in"):
        load_config(None, {"lookahead_every": 5, "lookahead_decay": 1.5})
    with pytest.raises(SenetError, match="must be an integer"):
        load_config(None, {"lookahead_every": "5x"})
