"""The loop: exact resume (mid-epoch and at epoch ends), run-folder contents, non-finite loss, EMA, checkpoint IO."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny_data import write_tree  # noqa: E402
from _tiny_models import Bomb  # noqa: E402

from senet.errors import SenetError  # noqa: E402
from senet.train import load_checkpoint, load_config, train  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tree(root / "ds", n_train=16, n_test=4)
    return root / "ds"


def _cfg(tiny: Path, out: Path, **kw):  # noqa: ANN003, ANN202
    base = dict(
        model="resnet20",
        data=str(tiny),
        output=str(out),
        epochs=3,
        batch_size=16,
        eval_batch_size=32,
        lr=0.05,
        schedule="cosine",
        warmup_epochs=0.5,
        deterministic=True,
        progress="none",
        seed=1,
        cache_dir=str(out.parent / "cache"),
        ema=0.9,
    )
    base.update(kw)
    return load_config(None, base)


def _weights(run: Path) -> dict:
    return load_checkpoint(run)["model"]


@pytest.mark.parametrize(
    "stops,model",
    [
        ([4], "_tiny_models:tiny_bn_cnn"),
        ([3, 2], "_tiny_models:tiny_bn_cnn"),
        pytest.param([4], "se_resnet20", marks=pytest.mark.slow),
    ],
    ids=["mid-epoch", "epoch-end-then-mid", "se_resnet20"],
)
def test_resume_gives_bit_identical_weights(tiny: Path, tmp_path: Path, stops: list[int], model: str) -> None:
    full = train(_cfg(tiny, tmp_path / "full", model=model), print_fn=lambda *a: None)
    assert full["status"] == "done"
    run = tmp_path / "split"
    first = True
    for n in stops:
        r = train(_cfg(tiny, run, resume=not first, model=model), stop_after_steps=n, print_fn=lambda *a: None)
        assert r["status"] == "interrupted" and "--resume" in r["resume"]
        first = False
    r = train(_cfg(tiny, run, resume=True, model=model), print_fn=lambda *a: None)
    assert r["status"] == "done"
    a, b = _weights(tmp_path / "full"), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca, cb = load_checkpoint(tmp_path / "full"), load_checkpoint(run)
    for k in ca["ema"]:
        assert torch.equal(ca["ema"][k], cb["ema"][k]), k
    rows_a = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_b] == [1, 2, 3]
    for x, y in zip(rows_a, rows_b):
        assert x["train_loss"] == y["train_loss"] and x["eval_top1"] == y["eval_top1"]


def test_run_folder_contents_and_existing_run_guard(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = train(_cfg(tiny, run, epochs=1, tensorboard=True), print_fn=lambda *a: None)
    for f in ("config.yaml", "meta.json", "metrics.csv", "metrics.jsonl", "result.json", "last.pt"):
        assert (run / f).is_file(), f
    assert any((run / "tb").iterdir())
    meta = json.loads((run / "meta.json").read_text())
    assert meta["senet"] and meta["torch"] and meta["train_images"] == 48
    ck = torch.load(run / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["classes"] == ["cat", "dog", "frog"] and ck["preprocess"]["kind"] == "tensor"
    assert {"model", "optimizer", "scheduler", "rng", "config", "ema"} <= set(ck)
    assert 0.0 <= r["top1"] <= 100.0 and r["top1_err"] == pytest.approx(100 - r["top1"])
    with pytest.raises(SenetError, match="already holds a run"):
        train(_cfg(tiny, run, epochs=1), print_fn=lambda *a: None)
    assert not list(run.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "nan"
    msgs: list[str] = []
    r = train(_cfg(tiny, run, ema=0.0), model=Bomb(after=5), print_fn=msgs.append)
    assert r["status"] == "non_finite_loss" and r["step"] == 4 and r["epoch"] == 2
    assert any("non-finite loss at step 4" in m for m in msgs)
    ck = load_checkpoint(run)
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_load_checkpoint_rejects_other_files(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(SenetError, match="not a `senet train` checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"garbage")
    with pytest.raises(SenetError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "y.pt")
    with pytest.raises(SenetError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_lr_schedules() -> None:
    from senet.train import LRSchedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    step = LRSchedule(opt, load_config(None, {"schedule": "step", "epochs": 4, "milestones": [2, 3], "lr": 1.0}), 10)
    assert [step.factor(s) for s in (0, 19, 20, 29, 30)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cos = LRSchedule(opt, load_config(None, {"schedule": "cosine", "epochs": 2, "warmup_epochs": 1, "lr": 1.0}), 10)
    assert cos.factor(0) == pytest.approx(0.1) and cos.factor(10) == pytest.approx(1) and cos.factor(20) < 1e-6
    one = LRSchedule(opt, load_config(None, {"schedule": "onecycle", "epochs": 1, "onecycle_pct": 0.5}), 10)
    assert one.factor(0) == pytest.approx(0.04) and one.factor(5) == pytest.approx(1) and one.factor(10) < 1e-3


def test_weight_decay_skips_norm_and_bias() -> None:
    from senet.models import create_model
    from senet.train import param_groups

    m = create_model("se_resnet20", num_classes=10)
    g = param_groups(m, 5e-4)
    assert g[1]["weight_decay"] == 0 and all(p.ndim == 1 for p in g[1]["params"])
    assert all(p.ndim > 1 for p in g[0]["params"])
    assert sum(p.numel() for grp in g for p in grp["params"]) == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("check_every", [2, 50])
def test_non_finite_loss_found_exactly_when_checked_every_n_steps(
    tiny: Path, tmp_path: Path, check_every: int
) -> None:
    """Host reads of the flags are deferred (GPU default), yet the report names the first bad step exactly."""
    run = tmp_path / f"nan{check_every}"
    msgs: list[str] = []
    r = train(_cfg(tiny, run, ema=0.0, check_every=check_every), model=Bomb(after=5), print_fn=msgs.append)
    assert r["status"] == "non_finite_loss" and r["step"] == 4 and r["epoch"] == 2
    assert any("non-finite loss at step 4" in m for m in msgs)
    assert load_checkpoint(run)["epoch"] == 1


def test_meta_records_machine_and_precision_decision(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "meta"
    msgs: list[str] = []
    train(_cfg(tiny, run, epochs=1, ema=0.0, amp="fp32"), print_fn=msgs.append)
    meta = json.loads((run / "meta.json").read_text())
    from senet.utils.hardware import CAPABILITIES

    assert meta["amp"] == "fp32" and meta["cpu_model"] and meta["cpu_capability"] in CAPABILITIES
    assert "asked for amp fp32" in meta["precision_reason"]
    assert msgs[0].startswith("senet train: ") and meta["cpu_capability"] in msgs[0]
