"""The ablation runner: cells train once per seed, resume skips finished runs, failures land in their rows."""

from __future__ import annotations

import json

import pytest
from _analysis_fake_train import fake_train

from senet.analysis.ablate import (
    GRIDS,
    Cell,
    Grid,
    config_key,
    load_grid,
    named_grid,
    run_sweep,
    summarize,
    write_tables,
)
from senet.errors import SenetError


def _grid() -> Grid:
    return Grid(
        "toy",
        "r",
        [
            Cell("r=2", {"attn_layer": "se", "attn_kwargs": {"rd_ratio": 0.5}}, paper=(22.29, 6.00)),
            Cell("boom", {"attn_layer": "boom"}),
            Cell("r=4", {"attn_layer": "se", "attn_kwargs": {"rd_ratio": 0.25}}, train={"epochs": 2}),
        ],
    )


def _calls(out, recs, cell: str, seed: int) -> int:
    (rec,) = [r for r in recs if r["cell"] == cell and r["seed"] == seed]
    return int((out / "runs" / config_key(rec["config"]) / f"seed{seed}" / "calls.txt").read_text())


def test_sweep_resumes_and_records_failures(tmp_path, monkeypatch) -> None:
    grid = _grid()
    base = {"model": "resnet20", "epochs": 1, "model_kwargs": {"num_classes": 10}}
    recs = run_sweep(grid, fake_train, tmp_path, base, seeds=2, log=None)
    assert len(recs) == 6
    ok = {(r["cell"], r["seed"]): r for r in recs}
    assert ok[("boom", 0)]["status"] == "failed" and ok[("boom", 0)]["error"] == "RuntimeError: cell exploded"
    assert ok[("r=4", 1)]["status"] == "ok"
    cfg = ok[("r=4", 1)]["config"]
    assert cfg["epochs"] == 2 and cfg["seed"] == 1 and cfg["model_kwargs"]["num_classes"] == 10
    boom_dir = tmp_path / "runs" / config_key(ok[("boom", 1)]["config"]) / "seed1"
    assert json.loads((boom_dir / "cell.json").read_text())["status"] == "failed"

    rows = summarize(grid, recs)
    r2, boom, _ = rows
    assert r2["seeds_ok"] == 2 and r2["top1_err_mean"] == pytest.approx(100 - (0.9 - 0.05 - 0.005) * 100)
    assert r2["top1_err_std"] == pytest.approx(0.7071, abs=1e-3)  # sample std of {15.0, 16.0} error points
    assert r2["paper_top1_err"] == 22.29
    assert boom["seeds_ok"] == 0 and boom["top1_err_mean"] is None and "cell exploded" in boom["error"]

    # A report-only pass trains nothing and sees only the finished runs.
    assert len(run_sweep(grid, fake_train, tmp_path, base, seeds=2, log=None, train=False)) == 4

    # Second start: finished runs are skipped, the failed cell is retried (and now succeeds).
    monkeypatch.setenv("FAKE_TRAIN_FIXED", "1")
    recs2 = run_sweep(grid, fake_train, tmp_path, base, seeds=2, log=None)
    assert all(r["status"] == "ok" for r in recs2)
    assert _calls(tmp_path, recs2, "r=2", 0) == 1 and _calls(tmp_path, recs2, "r=4", 1) == 1
    assert _calls(tmp_path, recs2, "boom", 0) == 2

    paths = write_tables(
        grid, summarize(grid, recs2, cost={"r=2": {"params": 1234, "macs": 99, "throughput": 5.0}}), tmp_path
    )
    md = paths["md"].read_text()
    assert "| r=2 | 2/2 | 15.50 ± 0.71 |" in md and "1,234" in md and "22.29 / 6.00" in md
    assert paths["csv"].read_text().splitlines()[0].startswith("cell,seeds_ok,seeds,top1_err_mean")
    assert paths["png"].stat().st_size > 1000


@pytest.mark.slow  # spawning workers imports torch in each (~30 s on a busy 2-core machine)
def test_parallel_workers(tmp_path) -> None:
    grid = Grid("par", "r", [Cell("a", {"attn_kwargs": {"rd_ratio": 0.5}}), Cell("b", {})])
    recs = run_sweep(grid, fake_train, tmp_path, {}, seeds=[3, 4], jobs=2, devices=["cpu"], log=None)
    assert [(r["cell"], r["seed"], r["status"]) for r in recs] == [
        ("a", 3, "ok"),
        ("a", 4, "ok"),
        ("b", 3, "ok"),
        ("b", 4, "ok"),
    ]
    assert recs[0]["config"]["device"] == "cpu"


def test_shared_settings_share_runs(tmp_path) -> None:
    # The gate grid's sigmoid cell and the position grid's standard cell are the same model: trained once.
    run_sweep(named_grid("gate"), fake_train, tmp_path, {}, seeds=1, log=None)
    recs = run_sweep(named_grid("position"), fake_train, tmp_path, {}, seeds=1, log=None)
    assert _calls(tmp_path, recs, "standard", 0) == 1 and _calls(tmp_path, recs, "pre", 0) == 1
    assert len(list((tmp_path / "runs").iterdir())) == 3 + 3


def test_named_grids_cover_the_paper() -> None:
    assert set(GRIDS) >= {"reduction", "squeeze", "gate", "stages", "position", "inner", "nosqueeze", "attention"}
    red = named_grid("reduction")
    assert [c.label for c in red.cells] == ["r=2", "r=4", "r=8", "r=16", "r=32"]
    assert red.cells[2].model_kwargs == {"attn_layer": "se", "attn_kwargs": {"rd_ratio": 0.125, "rd_min": 1}}
    assert [c.label for c in named_grid("stages", stages=(2, 3, 4, 5)).cells] == [
        "stage 2",
        "stage 3",
        "stage 4",
        "stage 5",
        "all",
    ]
    assert named_grid("attention").cells[0].model_kwargs == {
        "attn_layer": "none"
    }  # a string: create_model prunes None overrides
    with pytest.raises(SenetError, match="unknown grid"):
        named_grid("nope")


def test_yaml_grid(tmp_path) -> None:
    f = tmp_path / "width.yaml"
    f.write_text(
        "swept: SE width\nmodel: resnet20\ntrain: {epochs: 3}\ncells:\n"
        "  - {label: r=4, model_kwargs: {attn_layer: se, attn_kwargs: {rd_ratio: 0.25}}, paper: [22.25, 6.09]}\n"
        "  - {label: none, model_kwargs: {attn_layer: null}}\n"
    )
    grid, defaults = load_grid(f)
    assert grid.name == "width" and grid.swept == "SE width" and grid.cells[0].paper == (22.25, 6.09)
    assert defaults == {"epochs": 3, "model": "resnet20"}
    f.write_text("cells: []\n")
    with pytest.raises(SenetError, match="non-empty 'cells'"):
        load_grid(f)
    with pytest.raises(SenetError, match="cannot read"):
        load_grid(tmp_path / "missing.yaml")


def test_shipped_grids_load() -> None:
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[2] / "configs" / "ablate").glob("*.yaml"))
    assert files
    for f in files:
        grid, defaults = load_grid(f)
        assert grid.cells and isinstance(defaults, dict)


def test_cells_keep_labels_that_contain_commas() -> None:
    from senet.analysis.ablate import filter_cells

    def grid() -> list[Grid]:
        labels = ["plain", "SE, identity init", "SE, paper init", "ECA"]
        return [Grid("g", "x", [Cell(label) for label in labels])]

    kept = filter_cells(grid(), "SE, identity init,plain")
    assert [c.label for c in kept[0].cells] == ["plain", "SE, identity init"]
    with pytest.raises(SenetError, match="unknown cell.*'other'.*known: 'ECA', 'SE, identity init'"):
        filter_cells(grid(), "SE, other")


def test_cell_cost_of_a_retrofitted_cell_counts_the_inserted_attention() -> None:
    from senet.analysis.ablate import cell_cost

    plain = cell_cost("resnet20", {}, throughput=False)
    se = cell_cost("resnet20", {"attn_layer": "se"}, throughput=False, retrofit="senet:resnet20")
    assert se["params"] > plain["params"] and se["macs"] >= plain["macs"]


def test_cell_cost_is_measured_at_the_runs_input_size() -> None:
    from senet.analysis.ablate import cell_cost

    at32 = cell_cost("resnet20", {}, throughput=False)
    at64 = cell_cost("resnet20", {}, throughput=False, img_size=64)
    assert at64["params"] == at32["params"] and at64["macs"] == pytest.approx(4 * at32["macs"], rel=0.01)
