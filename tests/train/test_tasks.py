"""The task strategies of the trainer: denoising config, noise, crops, metrics, ledger rows; classification hashes."""

from __future__ import annotations

import math

import pytest
import torch

from senet.errors import SenetError
from senet.train import load_config
from senet.train.config import config_to_dict
from senet.train.ledger import DENOISE_REQUIRED, append_row, recipe_hash
from senet.train.tasks import ClassifyTask, DenoiseTask, create_task, psnr, sigma_range, ssim

_NEW_KEYS = ("task", "eval_subset", "noise_sigma", "crop", "denoise_loss", "eval_sigmas")


@pytest.mark.parametrize(
    "value, expected",
    [(25, (25.0, 25.0)), ("15-50", (15.0, 50.0)), ("[15, 50]", (15.0, 50.0)), ([15, 50], (15.0, 50.0)), ("7", (7, 7))],
)
def test_sigma_range_forms(value: object, expected: tuple[float, float]) -> None:
    assert sigma_range(value) == expected


@pytest.mark.parametrize("value", ["50-15", "abc", [1, 2, 3], -5, True])
def test_sigma_range_rejects(value: object) -> None:
    with pytest.raises(SenetError, match="noise_sigma must be a number"):
        sigma_range(value)


def test_config_validation_is_one_line() -> None:
    cfg = load_config(None, {"task": "denoise", "noise_sigma": "15-50", "crop": "24", "denoise_loss": "l1"})
    assert cfg.noise_sigma == [15.0, 50.0] and cfg.crop == 24
    assert load_config(None, {"task": "denoise", "noise_sigma": "25"}).noise_sigma == 25.0
    for bad, match in [
        ({"noise_sigma": "50"}, "noise_sigma set but task is 'classify': add --task denoise"),
        ({"task": "segment"}, "task must be one of classify, denoise"),
        ({"task": "denoise", "denoise_loss": "l3"}, "denoise_loss must be one of l2, l1"),
        ({"task": "denoise", "noise_sigma": "a-b"}, "noise_sigma must be"),
        ({"task": "denoise", "crop": "-1"}, "crop must not be negative"),
    ]:
        with pytest.raises(SenetError, match=match) as e:
            load_config(None, bad)
        assert "\n" not in str(e.value)


def test_classification_recipe_hash_is_unchanged_by_the_new_keys() -> None:
    # Ledger rows written before these keys existed must keep their hash (sweeps skip cells by it).
    d = config_to_dict(load_config(None, {"model": "resnet20"}))
    old = {k: v for k, v in d.items() if k not in _NEW_KEYS}
    assert recipe_hash(d) == recipe_hash(old)
    den = config_to_dict(load_config(None, {"task": "denoise"}))
    assert recipe_hash(den) != recipe_hash(d)
    assert recipe_hash(config_to_dict(load_config(None, {"eval_subset": 100}))) != recipe_hash(d)
    assert isinstance(create_task(load_config(None, {})), ClassifyTask)


def _task(**kw: str) -> DenoiseTask:
    return DenoiseTask(load_config(None, {"task": "denoise", **kw}))


def test_noise_has_the_asked_sigma_and_is_replayable() -> None:
    task = _task(noise_sigma="25", crop="8", seed="3")
    clean = torch.rand(64, 3, 16, 16)
    model = torch.nn.Identity()
    loss, (out, c) = task.forward(model, clean, torch.zeros(64), epoch=1, step=5)
    assert c.shape == (64, 3, 8, 8) and out.shape == c.shape
    noise = out - c
    assert noise.std().item() == pytest.approx(25 / 255, rel=0.03)
    assert loss.item() == pytest.approx(float((noise**2).mean()))
    again = task.forward(model, clean, torch.zeros(64), epoch=1, step=5)[1][0]
    other = task.forward(model, clean, torch.zeros(64), epoch=1, step=6)[1][0]
    assert torch.equal(out, again) and not torch.equal(out, other)
    # Each crop is a window of its own image (offsets drawn per image).
    win = clean.unfold(2, 8, 1).unfold(3, 8, 1)  # N, C, 9, 9, 8, 8
    for i in (0, 17):
        hits = (win[i] == c[i][:, None, None]).all(-1).all(-1).all(0)
        assert hits.any()
    blind = _task(noise_sigma="[10, 60]")
    stds = (blind.add_noise(torch.zeros(200, 1, 32, 32), torch.Generator().manual_seed(0)) * 255).flatten(1).std(1)
    assert stds.min() > 10 * 0.93 and stds.max() < 60 * 1.07 and stds.max() - stds.min() > 30  # 1024 px: ~2 % error


def test_psnr_ssim_and_evaluation() -> None:
    clean = torch.rand(4, 3, 16, 16)
    noisy = clean + 0.1
    assert psnr(noisy, clean).tolist() == pytest.approx([20.0] * 4, abs=1e-4)  # 10 log10(1 / 0.01)
    assert ssim(clean, clean).tolist() == pytest.approx([1.0] * 4, abs=1e-5)
    task = _task(noise_sigma="25", eval_sigmas="[15, 50]")
    assert task.eval_sigmas == [15.0, 25.0, 50.0] and task.primary == 25.0
    loader = [(clean, torch.zeros(4)), (clean.flip(-1), torch.zeros(4))]
    r = task.evaluate(torch.nn.Identity(), loader)
    assert r["n"] == 8 and r["primary"] == "25"
    for s, m in r["sigmas"].items():
        # The identity "denoiser" returns the noisy input, clamped: never worse than it, close for small sigma.
        assert m["psnr"] >= m["psnr_noisy"] - 1e-6
        assert m["psnr_noisy"] == pytest.approx(20 * math.log10(255 / float(s)), abs=0.4)
    cols = task.eval_columns(r, "eval")
    assert cols["eval_psnr"] == r["sigmas"]["25"]["psnr"] and "eval_ssim_s50" in cols
    fields = task.result_fields({**cols, "train_loss": 0.1})
    assert fields["psnr_gain"] == pytest.approx(fields["psnr"] - fields["psnr_noisy"], abs=1e-3)
    assert set(fields["by_sigma"]) == {"15", "25", "50"}


def test_ledger_requires_denoising_metrics(tmp_path) -> None:  # noqa: ANN001
    row = {k: 0 for k in DENOISE_REQUIRED if k != "psnr"}
    row["task"] = "denoise"
    with pytest.raises(SenetError, match="ledger row lacks psnr"):
        append_row(tmp_path / "d.jsonl", row)
    append_row(tmp_path / "d.jsonl", {**row, "psnr": 30.0})  # no top1/top5 needed
