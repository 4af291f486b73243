"""Config layering (defaults -> YAML -> overrides) and one-line rejection of unknown keys and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from senet.errors import SenetError
from senet.train import TrainConfig, load_config


def test_layering_yaml_then_overrides(tmp_path: Path) -> None:
    y = tmp_path / "r.yaml"
    y.write_text("epochs: 7\nlr: 0.2\nmilestones: [3, 5]\nmodel_kwargs: {rd_ratio: 0.25}\n")
    cfg = load_config(y, {"lr": "0.05", "batch_size": "64", "nesterov": "false", "output": "123"})
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.nesterov) == (7, 0.05, 64, False)
    assert cfg.milestones == [3.0, 5.0] and cfg.model_kwargs == {"rd_ratio": 0.25}
    assert cfg.output == "123", "a string field keeps a numeric-looking value as text"
    assert cfg.weight_decay == TrainConfig().weight_decay


def test_base_config_sits_under_yaml_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(None, {"epochs": 9}, base={"epochs": 3, "lr": 0.3})
    assert (cfg.epochs, cfg.lr) == (9, 0.3)


def test_true_false_choices_accept_yaml_booleans(tmp_path: Path) -> None:
    # `--set channels_last=true` and `channels_last: true` in a recipe reach the config as YAML booleans.
    y = tmp_path / "r.yaml"
    y.write_text("channels_last: true\n")
    assert load_config(y).channels_last == "true"
    assert load_config(None, {"channels_last": "false"}).channels_last == "false"
    with pytest.raises(SenetError, match="optimizer must be"):
        load_config(None, {"optimizer": "true"})


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"learning_rate": "0.1"}, "unknown config key 'learning_rate'"),
        ({"epoch": "3"}, "did you mean 'epochs'"),
        ({"epochs": "three"}, "epochs must be an integer"),
        ({"epochs": "2.5"}, "epochs must be an integer"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"nesterov": "maybe"}, "nesterov must be true or false"),
        ({"milestones": "30"}, "milestones must be a list"),
        ({"schedule": "triangle"}, "schedule must be one of"),
        ({"lr": "-1"}, "lr must be positive"),
        ({"ema": "1.5"}, r"ema must be in \[0, 1\)"),
        ({"schedule": "onecycle", "warmup_epochs": "2"}, "warmup_epochs 2.0 is ignored by schedule onecycle"),
    ],
)
def test_rejections_are_one_line(overrides: dict, match: str) -> None:
    with pytest.raises(SenetError, match=match) as exc:
        load_config(None, overrides)
    assert "\n" not in str(exc.value)


def test_yaml_unknown_key_names_the_file(tmp_path: Path) -> None:
    y = tmp_path / "bad.yaml"
    y.write_text("epochs: 3\nwarmup: 2\n")
    with pytest.raises(SenetError, match=r"bad.yaml: unknown config key 'warmup' \(did you mean"):
        load_config(y)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SenetError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(SenetError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_repo_recipes_load() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    recipes = sorted(root.glob("*.yaml"))
    assert len(recipes) >= 4
    for r in recipes:
        load_config(r)
    paper = load_config(root / "imagenet_se_resnet50_paper.yaml")
    assert (paper.batch_size, paper.lr, paper.milestones, paper.epochs) == (1024, 0.6, [30, 60, 90], 100)


def test_set_options_parse_as_yaml_and_refuse_malformed_items() -> None:
    from senet.train.config import parse_sets

    assert parse_sets(["epochs=30", "model-kwargs={rd_ratio: 0.25}", "data=a=b"]) == {
        "epochs": 30,
        "model_kwargs": {"rd_ratio": 0.25},
        "data": "a=b",
    }
    for bad in ("foo", "=3"):
        with pytest.raises(SenetError, match="--set takes KEY=VALUE"):
            parse_sets([bad])
