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


def _flip_probe(n: int = 8) -> TensorSplit:
    """Images whose left half is bright and right half dark, label = index: a flip shows in the left column."""
    imgs = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    imgs[..., :2] = 200
    return TensorSplit(imgs, torch.arange(n), ["a"], ["a"])


def _flipped_per_epoch(loader: TensorLoader, epochs: int, n: int) -> torch.Tensor:
    seen = torch.zeros(epochs, n, dtype=torch.bool)
    for e in range(epochs):
        loader.set_epoch(e)
        for x, y in loader:
            seen[e, y] = x[:, 0, 0, 0] < x[:, 0, 0, -1]
    return seen


def test_alternate_flips_invert_every_image_on_odd_epochs() -> None:
    n = 64
    kw = dict(train=True, mean=(0.0,) * 3, std=(1 / 255,) * 3, pad=0, seed=5)
    alt = _flipped_per_epoch(TensorLoader(_flip_probe(n), 16, flip_mode="alternate", **kw), 4, n)
    assert torch.equal(alt[1], ~alt[0]) and torch.equal(alt[2], alt[0]) and torch.equal(alt[3], ~alt[0])
    assert 16 < int(alt[0].sum()) < 48  # random once per image at epoch 0
    rnd = _flipped_per_epoch(TensorLoader(_flip_probe(n), 16, flip_mode="random", **kw), 4, n)
    assert not torch.equal(rnd[1], ~rnd[0])  # independent coin flips do not alternate
    # Resuming mid-epoch replays the same batches; two ranks of 8 see what one process of 16 sees.
    full = list(TensorLoader(_flip_probe(n), 16, flip_mode="alternate", **kw))
    late = TensorLoader(_flip_probe(n), 16, flip_mode="alternate", **kw)
    late.set_epoch(0, start_batch=2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[2:], late))
    ranks = [list(TensorLoader(_flip_probe(n), 16, flip_mode="alternate", rank=r, world_size=2, **kw)) for r in (0, 1)]
    assert torch.equal(torch.cat([ranks[0][0][0], ranks[1][0][0]]), full[0][0])
    with pytest.raises(SenetError, match="flip_mode"):
        TensorLoader(_flip_probe(n), 16, flip_mode="often", **kw)


def test_alternate_flips_need_the_tensor_loader(tmp_path: Path) -> None:
    from senet.data import create_loaders

    write_tree(tmp_path / "ds", n_train=4, n_test=2)
    with pytest.raises(SenetError, match="flip_mode 'alternate' needs the tensor loader"):
        create_loaders(tmp_path / "ds", batch_size=4, loader="dataloader", flip_mode="alternate", workers=0)
    # The file loader's other augmentation settings are obeyed (flip) or refused (the tensor path's crop options).
    for key, value in (("cutout", 8), ("pad_mode", "reflect")):
        with pytest.raises(SenetError, match=f"{key} .* needs the tensor loader"):
            create_loaders(tmp_path / "ds", batch_size=4, loader="dataloader", workers=0, **{key: value})
    for flip in (True, False):
        dl = create_loaders(tmp_path / "ds", batch_size=4, loader="dataloader", workers=0, flip=flip, img_size=8)
        steps = [type(t).__name__ for t in dl.train.loader.dataset.transform.transforms]
        assert ("RandomHorizontalFlip" in steps) is flip


def test_recipe_turns_on_the_airbench_ingredients() -> None:
    cfg = load_config(RECIPE)
    assert (cfg.lookahead_every, cfg.lookahead_decay, cfg.flip_mode) == (5, 0.95, "alternate")
    assert (cfg.whiten_bias_epochs, cfg.norm_bias_decay) == (3, True)


def test_lookahead_and_alternate_flips_resume_bit_identically(tmp_path: Path) -> None:
    # 48 images, 6 steps per epoch: Lookahead pulls every 2 of the 18 steps; the stop at step 3 falls between two
    # pulls, mid-epoch 1. The whitening bias freezes after epoch 1 and shifts/biases are decayed: every recipe extra
    # is active across the resume.
    def cfg(out: str, **kw: object):  # noqa: ANN202
        small = {"epochs": 3, "batch_size": 8, "eval_batch_size": 8, "data_init_images": 8, "tta": "none"}
        extras = {"lookahead_every": 2, "whiten_bias_epochs": 1, "flip_mode": "alternate", "norm_bias_decay": True}
        return _tiny_recipe(tmp_path, out, deterministic=True, **small, **extras, **kw)

    quiet = {"print_fn": lambda *a: None}
    full = train(cfg("full"), **quiet)
    assert train(cfg("split"), stop_after_steps=3, **quiet)["status"] == "interrupted"
    split = train(cfg("split", resume=True), **quiet)
    assert split["status"] == "done" and split["top1"] == full["top1"]
    from senet.train import load_checkpoint

    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ema = a["hooks"]["lookahead"]
    assert ema.keys() == b["hooks"]["lookahead"].keys()
    assert all(torch.equal(ema[k], b["hooks"]["lookahead"][k]) for k in ema)
    # The run ends on the average: every float entry of the net equals Lookahead's copy.
    assert all(torch.equal(a["model"][k], ema[k]) for k in ema)
    assert any(k.endswith("running_var") for k in ema)


def test_whitening_bias_freezes_after_its_epochs(tmp_path: Path) -> None:
    from senet.train import load_checkpoint

    def bias_after_each_epoch(out: str, epochs_trained: int) -> list[torch.Tensor]:
        kw = {"epochs": 3, "batch_size": 16, "whiten_bias_epochs": epochs_trained, "lookahead_every": 0, "tta": "none"}
        got = []
        for e in range(3):  # 48 images: 3 steps per epoch, stopped after each epoch
            r = train(_tiny_recipe(tmp_path, out, resume=e > 0, **kw), stop_after_steps=3, print_fn=lambda *a: None)
            assert r["status"] == ("done" if e == 2 else "interrupted")
            got.append(load_checkpoint(tmp_path / out)["model"]["whiten.bias"])
        return got

    frozen = bias_after_each_epoch("frozen", 1)
    assert torch.equal(frozen[0], frozen[1]) and torch.equal(frozen[1], frozen[2])
    assert frozen[0].abs().sum() > 0  # it did train in epoch 1 (it starts at 0)
    trained = bias_after_each_epoch("trained", 0)
    assert not torch.equal(trained[0], trained[1]) and not torch.equal(trained[1], trained[2])
