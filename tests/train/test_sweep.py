"""senet.train.sweep: missing cells only, every finished run in the ledger, an interrupted sweep resumes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny_data import write_tree  # noqa: E402

import senet.train.trainer as trainer_mod  # noqa: E402
from senet.train.ledger import read_rows  # noqa: E402
from senet.train.sweep import parse_seeds, run_sweep  # noqa: E402


def test_parse_seeds() -> None:
    assert parse_seeds("0-2") == [0, 1, 2] and parse_seeds("0,2,5") == [0, 2, 5] and parse_seeds("0-1, 7") == [0, 1, 7]


def test_sweep_fills_the_ledger_skips_done_cells_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "ds", n_train=8, n_test=4)
    ov = dict(data=str(tmp_path / "ds"), epochs=2, batch_size=8, cache_dir=str(tmp_path / "cache"))
    ledger = tmp_path / "results" / "exp.jsonl"
    models = ["_tiny_models:tiny_bn_cnn", "_tiny_models:tiny_cnn"]
    kw = dict(overrides=ov, runs_dir=tmp_path / "runs", print_fn=lambda m: None)

    # Interrupt the very first run after one step, as a killed sweep would leave it.
    real_train = trainer_mod.train
    monkeypatch.setattr(trainer_mod, "train", lambda cfg: real_train(cfg, stop_after_steps=1, print_fn=lambda *a: 0))
    first = run_sweep(None, models, [0, 1], ledger, **kw)
    assert [r["status"] for r in first] == ["interrupted"] and read_rows(ledger) == []
    monkeypatch.setattr(trainer_mod, "train", lambda cfg: real_train(cfg, print_fn=lambda *a: 0))

    again = run_sweep(None, models, [0, 1], ledger, **kw)
    assert [r["status"] for r in again] == ["done"] * 4
    rows = read_rows(ledger)
    assert sorted((r["model"].split(":")[1], r["seed"]) for r in rows) == [
        ("tiny_bn_cnn", 0),
        ("tiny_bn_cnn", 1),
        ("tiny_cnn", 0),
        ("tiny_cnn", 1),
    ]
    assert len({r["recipe_hash"] for r in rows}) == 1 and {r["experiment"] for r in rows} == {"exp"}
    assert run_sweep(None, models, [0, 1], ledger, **kw) == []  # nothing left to do
    # Another recipe is another set of cells.
    kw["overrides"] = dict(ov, lr=0.05)
    assert len(run_sweep(None, models[:1], [0], ledger, **kw)) == 1 and len(read_rows(ledger)) == 5
    # The finished run of the old recipe was moved aside, not deleted.
    kept = [p.name for p in (tmp_path / "runs" / "exp").iterdir() if p.name.startswith("_tiny_models_tiny_bn_cnn-s0.")]
    assert len(kept) == 1 and (tmp_path / "runs" / "exp" / kept[0] / "last.pt").is_file()


def test_sweep_puts_a_finished_run_back_in_a_reset_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "ds", n_train=8, n_test=4)
    ov = dict(data=str(tmp_path / "ds"), epochs=1, batch_size=8, cache_dir=str(tmp_path / "cache"))
    ledger = tmp_path / "exp.jsonl"
    kw = dict(overrides=ov, runs_dir=tmp_path / "runs", print_fn=lambda m: None)
    real_train = trainer_mod.train
    monkeypatch.setattr(trainer_mod, "train", lambda cfg: real_train(cfg, print_fn=lambda *a: 0))
    assert len(run_sweep(None, ["_tiny_models:tiny_cnn"], [0], ledger, **kw)) == 1
    row = read_rows(ledger)[0]
    ledger.unlink()
    assert run_sweep(None, ["_tiny_models:tiny_cnn"], [0], ledger, **kw) == []  # no retraining
    assert read_rows(ledger) == [row]


def test_grid_run_key_follows_the_recipe_files_contents(tmp_path: Path) -> None:
    from senet.train.sweep import run_key

    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 2\n")
    before = run_key({"config_file": str(recipe), "lr": 0.1})
    recipe.write_text("epochs: 3\n")  # an edited recipe: another run, not one "finished earlier"
    now = run_key({"config_file": str(recipe), "lr": 0.1})
    assert now != before and run_key({"config_file": str(recipe), "lr": 0.1, "seed": 4}) == now


def test_ctrl_c_stops_a_grid_sweep_and_the_run_resumes_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from senet.train.grids import Cell, Grid
    from senet.train.sweep import run_grid, senet_train_fn

    calls: list[str] = []

    def interrupted(cfg, print_fn=print):  # noqa: ANN001, ANN202 - a run that saw Ctrl-C and checkpointed
        calls.append(cfg.output)
        return {"status": "interrupted", "resume": "..."}

    monkeypatch.setattr(trainer_mod, "train", interrupted)
    grid = Grid("g", "x", [Cell("a", {}), Cell("b", {"rd_ratio": 0.5})])
    with pytest.raises(KeyboardInterrupt, match="run the same command again"):
        run_grid(grid, senet_train_fn, tmp_path, {"model": "resnet20", "data": str(tmp_path)}, seeds=2, log=None)
    assert len(calls) == 1  # the sweep stopped: no other cell started
    assert not list(tmp_path.rglob("cell.json"))  # not recorded as failed: the next start resumes it
