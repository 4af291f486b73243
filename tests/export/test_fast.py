"""senet.optimize: checked outputs, the decision cache, fallbacks and errors (tiny models; compile tests are slow)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import senet
from senet.errors import SenetError
from senet.export import fast

from .conftest import build

CHEAP = ("eager", "eager_cl", "onnxruntime")
FAST = {"rounds": 2, "budget_s": 0.2}  # keep the timing rounds short: tests check the logic, not the speed


def _tiny() -> tuple[nn.Module, torch.Tensor]:
    model, size = build("se_resnet20")
    return model, torch.randn(3, *size)  # not 2: the batch the ONNX export traces with


def test_optimize_matches_eager_and_reports_every_candidate(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    model, x = _tiny()
    out = senet.optimize(model, x, backend=CHEAP, cache_dir=tmp_path, **FAST)
    with torch.no_grad():
        ref = model(x)
    assert isinstance(out, fast.OptimizedModel)
    torch.testing.assert_close(out(x), ref, atol=1e-4, rtol=1e-4)
    rep = out.report
    assert [c.name for c in rep.candidates] == list(CHEAP)
    assert all(c.ok and c.latency_ms > 0 and c.max_abs_diff <= rep.tolerance for c in rep.candidates)
    assert rep.backend == min(rep.candidates, key=lambda c: c.latency_ms).name
    assert not rep.cache_hit
    assert rep.dtype == "fp32"  # AVX2 / no bf16 asked: never bf16
    assert rep.backend in str(rep)
    assert model.training is False and isinstance(model.layer1[0].bn1, nn.BatchNorm2d)  # caller's model untouched


def test_second_call_uses_the_cache_without_measuring(tmp_path, monkeypatch) -> None:
    model, x = _tiny()
    first = senet.optimize(model, x, backend="eager,eager_cl", cache_dir=tmp_path, **FAST)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_timing(*args, **kwargs):
        raise AssertionError("a cached decision must not be re-measured")

    monkeypatch.setattr(fast, "_time_candidates", no_timing)
    second = senet.optimize(model, x, backend="eager,eager_cl", cache_dir=tmp_path, **FAST)
    assert second.report.cache_hit and second.backend == first.backend
    assert [c.name for c in second.report.candidates] == [first.backend]
    torch.testing.assert_close(second(x), first(x))
    # another input shape is another decision
    with pytest.raises(AssertionError, match="re-measured"):
        senet.optimize(model, torch.randn(4, *x.shape[1:]), backend="eager,eager_cl", cache_dir=tmp_path, **FAST)


def test_fingerprint_tells_apart_options_the_repr_misses() -> None:
    from senet.models import create_model

    def fp(**kw):
        return fast._fingerprint(create_model("se_resnet20", num_classes=10, layers=(1, 1, 1), **kw))

    # "post" has the same modules, weights and repr as "standard" but another forward; fresh weights do not count.
    assert fp(attn_position="post") != fp(attn_position="standard") == fp()


def test_cached_choice_that_fails_the_check_is_measured_again(tmp_path, monkeypatch) -> None:
    model, x = _tiny()
    first = senet.optimize(model, x, backend="eager,eager_cl", cache_dir=tmp_path, **FAST)
    real_build = fast._build

    def broken(name, m, inputs):
        fn, mod = real_build(name, m, inputs)
        return ((lambda *a: fn(*a) + 1.0) if name == first.backend else fn), mod

    monkeypatch.setattr(fast, "_build", broken)
    again = senet.optimize(model, x, backend="eager,eager_cl", cache_dir=tmp_path, **FAST)
    assert not again.report.cache_hit and again.backend != first.backend
    bad = next(c for c in again.report.candidates if c.name == first.backend)
    assert not bad.ok and "tolerance" in bad.reason


def test_onnxruntime_blocked_is_skipped_or_falls_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what a missing package looks like to import
    model, x = _tiny()
    auto = senet.optimize(model, x, backend=CHEAP, cache=False, **FAST)
    ort = next(c for c in auto.report.candidates if c.name == "onnxruntime")
    assert not ort.ok and "pip install" in ort.reason and auto.backend != "onnxruntime"
    with pytest.warns(UserWarning, match="falling back to eager"):
        only = senet.optimize(model, x, backend="onnxruntime", cache=False, **FAST)
    assert only.backend == "eager"
    with torch.no_grad():
        torch.testing.assert_close(only(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "args, match",
    [
        (("not a model", torch.randn(1, 3, 8, 8)), "needs a torch.nn.Module"),
        ((nn.Linear(4, 2), "x"), "tensor"),
        ((nn.Linear(4, 2), torch.randn(1, 5)), r"cannot run on example_inputs of shape \(1, 5\)"),
        ((nn.Linear(4, 2), torch.ones(1, 4, dtype=torch.long)), "floating-point"),
    ],
)
def test_clear_errors(args, match) -> None:
    with pytest.raises(SenetError, match=match) as info:
        senet.optimize(*args, cache=False, **FAST)
    assert "\n" not in str(info.value)


def test_unsupported_outputs_and_options() -> None:
    class TwoHeads(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(SenetError, match="one float tensor"):
        senet.optimize(TwoHeads(), torch.randn(1, 3), cache=False, **FAST)
    with pytest.raises(SenetError, match="unknown backend 'tensorrt'"):
        senet.optimize(nn.Linear(3, 2), torch.randn(1, 3), backend="tensorrt", cache=False, **FAST)
    with pytest.raises(SenetError, match="unknown dtype"):
        senet.optimize(nn.Linear(3, 2), torch.randn(1, 3), dtype="int4", cache=False, **FAST)


def test_bf16_only_where_it_pays(monkeypatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(fast, "cpu_capability", lambda: "avx2")
    assert fast._candidates(["auto"], "auto", cpu, 1, 4) == ["eager", "eager_cl", "inductor", "onnxruntime"]
    monkeypatch.setattr(fast, "cpu_capability", lambda: "amx")
    assert "inductor_bf16" in fast._candidates(["auto"], "auto", cpu, 1, 4)
    assert fast._candidates(["eager"], "bf16", cpu, 1, 4) == ["eager_bf16"]


def test_bf16_candidate_checked_with_its_own_tolerance() -> None:
    model, x = _tiny()
    out = senet.optimize(model, x, backend="eager", dtype="bf16", cache=False, **FAST)
    rep = out.report
    assert rep.backend == "eager_bf16" and rep.dtype == "bf16"
    assert 0 < rep.max_abs_diff <= rep.tolerance
    assert out(x).dtype == torch.float32


@pytest.mark.slow
def test_inductor_with_freezing_matches_eager(tmp_path) -> None:
    model, x = _tiny()
    from torch._inductor.utils import run_and_get_code

    out = senet.optimize(model, x, backend="inductor", cache_dir=tmp_path, **FAST)
    assert out.backend == "inductor", out.report
    torch._dynamo.reset()  # compile again, to see the code: the weights must be frozen constants (oneDNN pre-packed)
    _, code = run_and_get_code(out, x)
    assert "_frozen_param" in "\n".join(code)
    cand = out.report.candidates[0]
    assert cand.ok and cand.compile_s > 0
    with torch.no_grad():
        torch.testing.assert_close(out(x), model(x), atol=1e-4, rtol=1e-4)
