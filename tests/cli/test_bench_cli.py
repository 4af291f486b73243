"""``senet bench`` on the smallest zoo model: table, JSON line, files, twin overhead, bad input."""

from __future__ import annotations

import json

import pytest

from senet.cli import main


def test_bench_cli_tiny(tmp_path, capsys) -> None:
    rc = main(
        ["bench", "--models", "se_resnet20", "--batch-sizes", "2", "--iters", "1", "--warmup", "0", "--threads", "1",
         "--out", str(tmp_path / "b")]
    )  # fmt: skip
    assert rc == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    models = [r["model"] for r in last["rows"]]
    assert models == ["resnet20", "se_resnet20"]  # the baseline twin is added and timed first
    se = last["rows"][1]
    assert se["twin"] == "resnet20" and se["overhead_pct"] is not None and se["params"] > last["rows"][0]["params"]
    assert json.loads((tmp_path / "b.json").read_text())["rows"] == last["rows"]
    assert "se_resnet20" in (tmp_path / "b.md").read_text()


def test_bench_cli_optimized_rows(capsys) -> None:
    rc = main(
        ["bench", "--models", "se_resnet20", "--batch-sizes", "2", "--iters", "2", "--warmup", "0", "--threads", "1",
         "--optimized", "--optimize-backends", "eager,eager_cl"]
    )  # fmt: skip
    assert rc == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out.strip().splitlines()[-1])["rows"]
    opt = [r for r in rows if str(r["compiled"]).startswith("opt:")]
    assert [r["model"] for r in opt] == ["resnet20", "se_resnet20"]
    assert all(r["latency_ms"] > 0 and r["optimize"]["max_abs_diff"] < 1e-3 for r in opt)
    assert opt[1]["overhead_pct"] is not None and opt[1]["params"] == rows[1]["params"]
    assert captured.err.count("compile") == 2


def test_bench_cli_errors(capsys) -> None:
    assert main(["bench", "--models", "nope_net"]) == 2
    assert "unknown model(s) nope_net" in capsys.readouterr().err
    assert main(["bench", "--models", "resnet20", "--batch-sizes", "0"]) == 2
    assert main(["bench", "--models", "resnet20", "--dtypes", "fp8"]) == 2
    with pytest.raises(SystemExit):
        main(["bench"])
