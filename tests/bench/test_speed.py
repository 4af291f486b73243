"""Timing on a tiny model: infer/train, twin overhead, argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from senet.bench.speed import bench_models, time_model, twin_name
from senet.layers import SqueezeExcite


def _net(se: bool) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        SqueezeExcite(8, rd_ratio=0.5) if se else nn.Identity(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_time_model_modes_and_weights_untouched() -> None:
    model = _net(True)
    before = [p.clone() for p in model.parameters()]
    inf = time_model(model, (2, 3, 8, 8), warmup=1, iters=3)
    tr = time_model(model, (2, 3, 8, 8), mode="train", dtype="bf16", channels_last=True, warmup=1, iters=3)
    assert inf.latency_ms > 0 and inf.throughput == pytest.approx(2000 / inf.latency_ms)
    assert tr.mode == "train" and tr.channels_last and tr.dtype == "bf16"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_warmup_excluded_with_fake_clock() -> None:
    ticks = iter(range(100))
    r = time_model(_net(False), (1, 3, 8, 8), warmup=5, iters=4, clock=lambda: float(next(ticks)))
    # Only the 4 timed iterations read the clock (twice each): warm-up iterations are not timed.
    assert next(ticks) == 8 and r.latency_ms == pytest.approx(1000.0)


def test_bench_models_overhead_columns() -> None:
    models = {"net": _net(False), "se_net": _net(True)}
    assert twin_name("se_net", models) == "net" and twin_name("net", models) is None
    rows = bench_models(
        models, {k: (3, 8, 8) for k in models}, batch_sizes=(1, 2), modes=("infer", "train"), warmup=1, iters=2,
        twins={"se_net": "net"},
    )  # fmt: skip
    assert len(rows) == 8
    se = [r for r in rows if r["model"] == "se_net"]
    assert all(r["overhead_pct"] is not None for r in se)
    assert se[0]["params"] - rows[0]["params"] == sum(p.numel() for p in models["se_net"][1].parameters())
    assert se[0]["params_overhead_pct"] > 0
    assert all(r["overhead_pct"] is None for r in rows if r["model"] == "net")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dtype"):
        time_model(_net(False), (1, 3, 8, 8), dtype="fp8")
    with pytest.raises(ValueError, match="mode"):
        time_model(_net(False), (1, 3, 8, 8), mode="eval")
