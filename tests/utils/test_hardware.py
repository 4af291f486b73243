"""senet.utils.hardware: the CPU capability classes and the precision each one trains in."""

from __future__ import annotations

import pytest
import torch

from senet.utils import hardware as hw


@pytest.fixture(autouse=True)
def _fresh_cache():
    hw.cpu_capability.cache_clear()
    yield
    hw.cpu_capability.cache_clear()


@pytest.mark.parametrize(
    "cap,amp,cl",
    [
        ("amx", "bf16", True),
        ("avx512_bf16", "bf16", True),
        ("avx512", "fp32", True),
        ("avx2", "fp32", True),
        ("baseline", "fp32", False),
    ],
)
def test_auto_precision_follows_the_cpu(cap: str, amp: str, cl: bool) -> None:
    p = hw.auto_precision("cpu", capability=cap)
    assert (p.amp, p.channels_last, p.capability) == (amp, cl, cap)
    assert p.reason


def test_explicit_values_are_kept_and_said() -> None:
    p = hw.auto_precision("cpu", "fp32", "auto", capability="amx")
    assert p.amp == "fp32" and p.channels_last is True and "asked for amp fp32" in p.reason
    p = hw.auto_precision("cpu", "bf16", "false", capability="avx2")
    assert p.amp == "bf16" and p.channels_last is False
    # bf16 asked for on an AVX2 CPU still gets channels_last under auto (what the bf16 kernels want).
    assert hw.auto_precision("cpu", "bf16", capability="avx2").channels_last is True


@pytest.mark.parametrize("speedup,amp", [(3.0, "bf16"), (0.25, "fp32")])
def test_unknown_cpu_is_decided_by_a_measurement(monkeypatch: pytest.MonkeyPatch, speedup: float, amp: str) -> None:
    monkeypatch.setattr(hw, "_bf16_speedup", lambda: speedup)
    p = hw.auto_precision("cpu", capability="unknown")
    assert p.amp == amp and f"{speedup:.2f}x" in p.reason


def test_bf16_speedup_measures_something() -> None:
    assert hw._bf16_speedup(n=64, repeats=2) > 0


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, flags: str, probes: dict[str, bool] | None) -> None:
    monkeypatch.setattr(hw, "_cpuinfo_field", lambda name: flags if name == "flags" else "Test CPU")
    for name in ("amx_tile", "avx512_bf16", "avx512", "avx2"):
        fn = None if probes is None else (lambda v=probes.get(name, False): v)
        if fn is None:
            monkeypatch.delattr(torch.cpu, f"_is_{name}_supported", raising=False)
        else:
            monkeypatch.setattr(torch.cpu, f"_is_{name}_supported", fn, raising=False)


@pytest.mark.parametrize(
    "flags,expected",
    [
        ("fpu sse avx avx2 avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile", "amx"),
        ("fpu avx2 avx512f avx512bw avx512vl avx512_bf16", "avx512_bf16"),
        ("fpu avx2 avx512f avx512bw avx512vl", "avx512"),
        ("fpu sse4_2 avx avx2 fma", "avx2"),
        ("fpu sse4_2", "baseline"),
    ],
)
def test_capability_from_cpuinfo_flags_when_torch_has_no_probes(
    monkeypatch: pytest.MonkeyPatch, flags: str, expected: str
) -> None:
    _fake_cpu(monkeypatch, flags, probes=None)
    assert hw.cpu_capability() == expected


def test_torch_probes_win_over_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    # A kernel that hides AMX from the process (no XFEATURE permission) makes torch's probe say no.
    _fake_cpu(monkeypatch, "avx2 avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile", probes={"avx2": True})
    assert hw.cpu_capability() == "avx2"


def test_no_flags_and_no_probes_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cpu(monkeypatch, "", probes=None)
    assert hw.cpu_capability() == "unknown"


def test_machine_info_names_the_cpu() -> None:
    info = hw.machine_info("cpu")
    assert info["cpu_model"] and info["cpu_capability"] in hw.CAPABILITIES and info["threads"] >= 1
