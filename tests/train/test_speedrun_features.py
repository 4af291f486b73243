"""Training options the speedrun recipe adds: linear schedule, BN-shift lr scale, TTA, reflect translate, data init."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from _tiny_data import write_tree  # noqa: E402

from senet.data import TensorLoader, TensorSplit  # noqa: E402
from senet.errors import SenetError  # noqa: E402
from senet.train import load_config, train  # noqa: E402
from senet.train.evaluate import tta_logits  # noqa: E402
from senet.train.optim import LRSchedule, create_optimizer  # noqa: E402

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "cifar10_speedrun.yaml"


def test_linear_schedule_is_the_speedrun_triangle() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = load_config(
        None, {"schedule": "linear", "epochs": 10, "warmup_epochs": 2, "warmup_start": 0.2, "min_lr": 0.07, "lr": 1.0}
    )
    s = LRSchedule(opt, cfg, 10)
    assert [s.factor(i) for i in (0, 10, 20, 60, 100)] == pytest.approx([0.2, 0.6, 1.0, 0.535, 0.07])


def test_bias_lr_scale_multiplies_only_norm_parameters() -> None:
    from senet.models import create_model

    m = create_model("se_speednet")
    cfg = load_config(None, {"lr": 0.5, "bias_lr_scale": 64.0})
    opt = create_optimizer(m, cfg)
    norm_ids = {id(p) for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) for p in mod.parameters()}
    for g in opt.param_groups:
        is_norm = {id(p) in norm_ids for p in g["params"]}
        assert len(is_norm) == 1
        assert g["lr"] == pytest.approx(32.0 if is_norm.pop() else 0.5)
    # SE's fc biases and the whitening bias keep the base lr; every trainable parameter is in exactly one group.
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters() if p.requires_grad)
    # The schedule scales every group from its own base lr.
    sched = LRSchedule(opt, load_config(None, {"lr": 0.5, "bias_lr_scale": 64.0, "schedule": "constant"}), 5)
    assert sorted(sched.base_lrs) == pytest.approx(sorted(g["lr"] for g in opt.param_groups))


def test_tta_views_and_weights() -> None:
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    seen: list[torch.Tensor] = []

    def model(v: torch.Tensor) -> torch.Tensor:
        seen.append(v.clone())
        return v.mean(dim=(1, 2, 3))[:, None] * torch.ones(1, 5)

    assert torch.equal(tta_logits(model, x, "none"), model(x))
    seen.clear()
    tta_logits(model, x, "flip")
    assert len(seen) == 2 and torch.equal(seen[1], x.flip(-1))
    seen.clear()
    out = tta_logits(model, x, "flip_translate")
    assert len(seen) == 6
    up_left = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[..., :-2, :-2]
    assert torch.equal(seen[2], up_left) and torch.equal(seen[3], up_left.flip(-1))
    expect = 0.5 * x.mean(dim=(1, 2, 3)) + 0.25 * sum(v.mean(dim=(1, 2, 3)) for v in (seen[2], seen[4]))
    assert torch.allclose(out[:, 0], expect)
    with pytest.raises(ValueError, match="tta must be one of"):
        tta_logits(model, x, "five_crop")


def test_reflect_translate_never_shows_a_border() -> None:
    # Every pixel 255 except the interior: zero padding would leave 0s at the border, reflection never does.
    imgs = torch.full((64, 3, 8, 8), 200, dtype=torch.uint8)
    split = TensorSplit(imgs, torch.zeros(64, dtype=torch.int64), ["a"], ["a"])
    kw = dict(train=True, mean=(0.0,) * 3, std=(1 / 255,) * 3, pad=2, seed=3)
    (x, _), *_ = list(TensorLoader(split, 64, pad_mode="reflect", **kw))
    assert torch.all(x == 200)
    (z, _), *_ = list(TensorLoader(split, 64, pad_mode="zeros", **kw))
    assert torch.any(z == 0)
    with pytest.raises(SenetError, match="pad_mode"):
        TensorLoader(split, 8, pad_mode="wrap", **kw)


def test_recipe_loads_and_unknown_tta_is_refused() -> None:
    cfg = load_config(RECIPE)
    assert cfg.model == "se_speednet" and cfg.tta == "flip_translate" and cfg.schedule == "linear"
    with pytest.raises(SenetError, match="tta must be one of"):
        load_config(RECIPE, {"tta": "ten_crop"})


def _tiny_recipe(root: Path, out: str, **kw: object):  # noqa: ANN202
    """The speedrun recipe on a 16-image tree with a narrow SpeedNet (widths 8/16/16)."""
    if not (root / "ds").is_dir():
        write_tree(root / "ds", n_train=16, n_test=4)
    base = {
        "data": str(root / "ds"),
        "output": str(root / out),
        "cache_dir": str(root / "cache"),
        "model_kwargs": {"widths": [8, 16, 16]},
        "epochs": 1,
        "batch_size": 16,
        "eval_batch_size": 20,
        "progress": "none",
        "data_init_images": 12,
        "channels_last": "false",
    }
    return load_config(RECIPE, {**base, **kw})


def test_trainer_runs_whitening_init_and_tta(tmp_path: Path) -> None:
    from senet.models import create_model

    model = create_model("se_speednet", num_classes=4, widths=(8, 16, 16))
    before = model.whiten.weight.clone()
    result = train(_tiny_recipe(tmp_path, "run"), model=model)
    assert result["status"] == "done" and 0 <= result["top1"] <= 100
    w = model.whiten.weight
    assert not torch.equal(w, before) and torch.equal(w[12:], -w[:12])  # set from data, frozen during training


def test_speedrun_recipe_resumes_bit_identically(tmp_path: Path) -> None:
    # The whitening init runs once, before step 0; a resumed run restores it from the checkpoint instead.
    def cfg(out: str, **kw: object):  # noqa: ANN202
        small = {"epochs": 2, "batch_size": 8, "eval_batch_size": 8, "data_init_images": 8, "tta": "flip"}
        return _tiny_recipe(tmp_path, out, deterministic=True, **small, **kw)

    quiet = {"print_fn": lambda *a: None}
    full = train(cfg("full"), **quiet)
    assert train(cfg("split"), stop_after_steps=3, **quiet)["status"] == "interrupted"
    split = train(cfg("split", resume=True), **quiet)
    assert split["status"] == "done" and split["top1"] == full["top1"]
    from senet.train import load_checkpoint

    a, b = load_checkpoint(tmp_path / "full")["model"], load_checkpoint(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
