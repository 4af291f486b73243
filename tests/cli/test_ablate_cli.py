"""``senet ablate`` end to end with the real trainer on a tiny folder: two cells, resume, tables, cost columns."""

from __future__ import annotations

import json

import pytest
from _research_fixtures import tiny_folder

from senet.cli import main


def _tiny_grid_args(tmp_path, seeds: int) -> list[str]:
    """A two-cell YAML grid (none, SE) on a tiny folder, as ``senet ablate`` arguments."""
    data = tiny_folder(tmp_path / "data")
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: tiny\nswept: attention\ntrain: {batch_size: 4, eval_batch_size: 8, threads: 1, progress: none}\n"
        "cells:\n"
        "  - {label: none, model_kwargs: {attn_layer: none}}\n"
        "  - {label: SE, model_kwargs: {attn_layer: se}, paper: [23.29, 6.62]}\n"
    )
    args = ["ablate", "--grid", str(grid), "--model", "resnet20", "--data", str(data), "--seeds", str(seeds)]
    return [*args, "--epochs", "1", "--out", str(tmp_path / "out"), "--set", f"cache_dir={tmp_path / 'cache'}"]


@pytest.mark.slow  # four short real training runs (~30-60 s on a busy 2-core machine)
def test_ablate_cli_yaml_grid(tmp_path, capsys) -> None:
    args = _tiny_grid_args(tmp_path, seeds=2)
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = res["grids"]["tiny"]["rows"]
    assert [(r["cell"], r["seeds_ok"]) for r in rows] == [("none", 2), ("SE", 2)]
    assert rows[1]["params"] > rows[0]["params"] and rows[1]["throughput"] > 0
    assert rows[1]["paper_top1_err"] == 23.29 and 0 <= rows[0]["top1_err_mean"] <= 100
    md = (tmp_path / "out" / "tiny.md").read_text()
    assert "| SE | 2/2 |" in md and "23.29 / 6.62" in md
    # Started again: every run is finished, so nothing trains.
    assert main([*args, "--no-cost"]) == 0
    out = capsys.readouterr().out
    assert out.count("[skip]") == 4 and "[run]" not in out


def test_ablate_cli_errors(tmp_path, capsys) -> None:
    assert main(["ablate", "--grid", "nope", "--seeds", "1"]) == 2
    assert "unknown grid 'nope'" in capsys.readouterr().err
    assert main(["ablate", "--grid", "gate", "--model", "no_such_net"]) == 2
    assert main(["ablate", "--grid", "gate", "--set", "epochs"]) == 2
    assert main(["ablate", "--grid", "gate", "--set", "not_a_key=1"]) == 2
    assert main(["ablate", "--grid", "gate", "--cells", "warp"]) == 2
    assert main(["ablate", "--grid", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.slow  # two short real training runs
def test_ablate_appends_to_the_ledger_and_resumes_from_it(tmp_path, capsys) -> None:
    import shutil

    from senet.train.ledger import read_rows

    ledger = tmp_path / "results" / "ablate_tiny.jsonl"
    args = [*_tiny_grid_args(tmp_path, seeds=1), "--no-cost"]
    assert main([*args, "--ledger", str(ledger)]) == 0
    rows = read_rows(ledger)
    assert len(rows) == 2 and {r["experiment"] for r in rows} == {"ablate_tiny"}
    # The cells differ only in attn_layer: one recipe, two kinds (so the report pairs them by seed).
    assert len({r["recipe_hash"] for r in rows}) == 1 and {r["kind"] for r in rows} == {"none", "se"}
    assert {r["cell"] for r in rows} == {"none", "SE"} and len({r["sweep_recipe"] for r in rows}) == 1
    capsys.readouterr()
    shutil.rmtree(tmp_path / "out")  # the run folders are gone; the ledger still knows both runs
    assert main([*args, "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert out.count("in the ledger") == 2 and "[run]" not in out and len(read_rows(ledger)) == 2
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["seeds_ok"] for r in res["grids"]["tiny"]["rows"]] == [1, 1]
