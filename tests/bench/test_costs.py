"""senet.bench.costs and senet.bench.report: the cost tables and bench tables the CLI prints."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from senet.bench.costs import block_costs, model_cost
from senet.bench.report import BENCH_HEADERS, bench_optimized, bench_table, write_bench_report
from senet.layers import list_attn
from senet.models import create_model


def test_model_cost_on_meta_counts_attention() -> None:
    c = model_cost(functools.partial(create_model, "se_resnet20"))
    plain = model_cost(functools.partial(create_model, "resnet20"), (3, 32, 32))
    assert c["input"] == [3, 32, 32] and c["attn_blocks"] == 9 and c["attn_params"] > 0
    assert c["params"] - plain["params"] == c["attn_params"] and plain["attn_blocks"] == 0
    assert c["macs"] > plain["macs"] > 0


def test_block_costs_every_kind() -> None:
    rows = block_costs(32, 8)
    assert [r["kind"] for r in rows] == list_attn()
    se = next(r for r in rows if r["kind"] == "se")
    assert se["params"] > 0 and se["class"] and "rd_ratio" in se["knobs"]


def _row(model: str, latency: float, twin: str | None = None) -> dict:
    return {"model": model, "mode": "infer", "batch_size": 2, "dtype": "fp32", "channels_last": False,
            "compiled": False, "params": 1_000_000, "macs": 2_000_000_000, "latency_ms": latency,
            "throughput": 2e3 / latency, "overhead_pct": None if twin is None else 10.0, "twin": twin}  # fmt: skip


def test_bench_table_and_report_files(tmp_path: Path) -> None:
    rows = [_row("resnet20", 1.0), _row("se_resnet20", 1.1, "resnet20")]
    table = bench_table(rows)
    assert len(table[0]) == len(BENCH_HEADERS) and table[1][-1] == "+10.0% (resnet20)" and table[0][-1] == "–"
    js, md = write_bench_report(tmp_path / "sub" / "bench.md", "title", {"device": "cpu"}, rows)
    assert (js.name, md.name) == ("bench.json", "bench.md")
    assert json.loads(js.read_text())["rows"] == rows and md.read_text().startswith("title\n\n| model |")


class _Fast(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.report = type("R", (), dict(backend="eager", dtype="fp32", cache_hit=False, compile_s=0.0,
                                         max_abs_diff=0.0))()  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_bench_optimized_times_the_given_optimizer() -> None:
    models = {"a": torch.nn.Flatten(), "b": torch.nn.Flatten()}
    rows = [dict(_row("a", 1.0), twin=None), dict(_row("b", 1.0), twin="a")]
    out = bench_optimized(models, {"a": (3, 4, 4), "b": (3, 4, 4)}, rows, [2], "cpu", lambda m, x: _Fast(m),
                          warmup=0, iters=2)  # fmt: skip
    assert [r["compiled"] for r in out] == ["opt:eager", "opt:eager"]
    assert out[1]["overhead_pct"] is not None and out[0]["overhead_pct"] is None
