"""The results ledger: rows from run folders, atomic appends, resume keys, recipe hashes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tree  # noqa: E402

from senet.errors import SenetError  # noqa: E402
from senet.train import load_config, train  # noqa: E402
from senet.train.config import config_to_dict  # noqa: E402
from senet.train.ledger import (  # noqa: E402
    REQUIRED,
    append_row,
    attention_kind,
    config_key,
    config_recipe_hash,
    done_keys,
    read_rows,
    recipe_hash,
    recorded_dataset,
    row_from_run,
)


def _row(**kw):  # noqa: ANN003, ANN202
    row = {k: 0 for k in REQUIRED}
    row.update(experiment="x", model="speednet", kind="none", seed=0, recipe_hash="abc", commit="c", machine="m")
    row.update(amp="bf16")
    row.update(kw)
    return row


def test_append_keeps_old_rows_and_leaves_no_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "results" / "x.jsonl"
    append_row(path, _row(seed=0))
    append_row(path, _row(seed=1, top1=91.5))
    rows = read_rows(path)
    assert [r["seed"] for r in rows] == [0, 1] and rows[1]["top1"] == 91.5
    assert done_keys(path) == {("speednet", s, "abc", "bf16", "none", "cpu") for s in (0, 1)}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_append_repairs_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(_row(seed=5)))  # a hand-edited file without the trailing newline
    append_row(path, _row(seed=6))
    assert [r["seed"] for r in read_rows(path)] == [5, 6]


def test_rows_missing_columns_and_bad_lines_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SenetError, match="lacks top1"):
        append_row(tmp_path / "x.jsonl", {k: 0 for k in REQUIRED if k != "top1"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_row()) + "\n{not json\n")
    with pytest.raises(SenetError, match=r"bad.jsonl:2 is not a JSON ledger row"):
        read_rows(bad)
    assert read_rows(tmp_path / "absent.jsonl") == []


def test_recipe_hash_ignores_names_paths_and_hardware_but_not_hyperparameters() -> None:
    a = config_to_dict(load_config(None, {"model": "resnet20", "seed": 0, "output": "a", "amp": "bf16"}))
    b = config_to_dict(load_config(None, {"model": "se_resnet20", "seed": 3, "output": "b", "amp": "fp32"}))
    c = config_to_dict(load_config(None, {"model": "resnet20", "lr": 0.2}))
    assert recipe_hash(a) == recipe_hash(b) != recipe_hash(c)
    assert len(recipe_hash(a)) == 12


@pytest.mark.parametrize(
    "name,kind",
    [
        ("se_resnet20", "se"),
        ("eca_speednet", "eca"),
        ("cbam_resnet50", "cbam"),
        ("resnet20", "none"),
        ("speednet", "none"),
    ],
)
def test_attention_kind_from_the_name(name: str, kind: str) -> None:
    assert attention_kind(name) == kind


def test_a_finished_run_appends_its_row_and_an_unfinished_one_refuses(tmp_path: Path) -> None:
    write_tree(tmp_path / "ds", n_train=8, n_test=4)
    ledger = tmp_path / "results" / "tiny.jsonl"
    cfg = dict(
        model="_tiny_models:tiny_bn_cnn",
        data=str(tmp_path / "ds"),
        epochs=2,
        batch_size=8,
        progress="none",
        cache_dir=str(tmp_path / "cache"),
        ledger=str(ledger),
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    train(load_config(None, {**cfg, "output": str(tmp_path / "run")}), print_fn=lambda *a: None)
    (row,) = read_rows(ledger)
    assert row["experiment"] == "tiny" and row["epochs"] == 2 and row["seed"] == 0
    assert row["train_s"] > 0 and row["eval_s"] > 0 and 0 <= row["top1"] <= 100
    assert row["machine"] != "unknown" and row["amp"] in ("bf16", "fp32")
    half = tmp_path / "half"
    train(load_config(None, {**cfg, "output": str(half), "ledger": None}), stop_after_steps=1, print_fn=lambda *a: 0)
    with pytest.raises(SenetError, match="did not finish"):
        row_from_run(half, "tiny")
    assert len(read_rows(ledger)) == 1


def test_config_recipe_hash_names_the_dataset_the_run_will_record(tmp_path: Path) -> None:
    # A folder of the user's own images records its own name (not the config's default 'cifar10'); a sweep that asks
    # the ledger before training must hash the same thing, or it trains every finished cell again.
    write_tree(tmp_path / "flowers", n_train=4, n_test=2)
    cfg = load_config(None, {"data": str(tmp_path / "flowers")})
    assert recorded_dataset(cfg) == "flowers"
    assert config_recipe_hash(cfg) == recipe_hash(dict(config_to_dict(cfg), dataset="flowers"))
    assert config_recipe_hash(cfg) != recipe_hash(config_to_dict(cfg))
    missing = load_config(None, {"data": str(tmp_path / "not_there"), "dataset": "cifar100"})
    assert recorded_dataset(missing) == "cifar100"  # nothing to read yet: the name a download would fetch


def test_config_key_tells_a_bf16_run_from_its_fp32_twin() -> None:
    bf16, fp32 = (load_config(None, {"amp": a, "device": "cpu"}) for a in ("bf16", "fp32"))
    assert config_key(bf16)[:3] == config_key(fp32)[:3]  # one recipe: the parity table pairs them
    assert (config_key(bf16)[3], config_key(fp32)[3]) == ("bf16", "fp32")  # two cells: the sweep trains both


def test_a_gpu_sweep_does_not_skip_the_cells_a_cpu_ran(tmp_path: Path) -> None:
    # The GPU suite shares the speedrun recipe (device, data path and compile are not the recipe) and bf16 with the
    # AVX-512 BF16 CPU runs already in the ledger: the device keeps the cells apart.
    path = tmp_path / "x.jsonl"
    append_row(path, _row(seed=0))  # a row from before the device column: a CPU run
    append_row(path, _row(seed=0, device="cuda"))
    assert {k[-1] for k in done_keys(path)} == {"cpu", "cuda"} and len(done_keys(path)) == 2
    assert config_key(load_config(None, {"device": "cpu"}))[-1] == "cpu"


def test_a_recipe_keeps_its_hash_when_config_keys_are_added() -> None:
    # The committed bf16/fp32 parity rows came from the documented command (docs/results.md) before later keys
    # (task, freeze, layer_decay, ...) existed; the same command today must still find them, or sweeps retrain.
    repo = Path(__file__).resolve().parents[2]
    rows = read_rows(repo / "results" / "precision_parity.jsonl")
    cfg = load_config(repo / "configs" / "cifar10_cpu_budget.yaml", {"eval_every": 5, "data": "/nonexistent"})
    assert rows and {r["recipe_hash"] for r in rows} == {config_recipe_hash(cfg)}


def test_kind_is_read_from_the_network_and_attn_layer_is_not_the_recipe() -> None:
    from senet.models import create_model
    from senet.retrofit import retrofit
    from senet.train.ledger import model_attention

    assert model_attention(create_model("mobilenet_v3_small")) == "se"  # SE by default, not in its name
    assert model_attention(create_model("mobilenet_v3_small", attn_layer="eca")) == "eca"
    assert model_attention(create_model("resnet20")) == "none"
    swapped, _ = retrofit(create_model("se_resnet20"), "eca")  # the old SE stays inside the swap wrapper
    assert model_attention(swapped) == "eca"
    cells = [
        load_config(None, {"model": "mobilenet_v3_small", "model_kwargs": {"attn_layer": a}}) for a in ("none", "se")
    ]
    keys = [config_key(c) for c in cells]
    assert keys[0][2] == keys[1][2] and (keys[0][4], keys[1][4]) == ("none", "se")  # one recipe, two cells
