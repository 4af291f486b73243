"""The trainer's lifecycle pieces one by one (setup, train_one_epoch, evaluate, save, finish), its hooks, and the
loader config built from a training config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny_data import write_tree  # noqa: E402

from senet.data import LoaderConfig, create_loaders  # noqa: E402
from senet.errors import SenetError  # noqa: E402
from senet.runs import load_run  # noqa: E402
from senet.train import load_config  # noqa: E402
from senet.train.hooks import FreezePhases, build_hooks  # noqa: E402
from senet.train.ledger import read_rows  # noqa: E402
from senet.train.trainer import Trainer  # noqa: E402

# A 2-epoch run of a small BatchNorm CNN; tests override single keys.
SETTINGS = {
    "model": "_tiny_models:tiny_bn_cnn",
    "epochs": 2,
    "batch_size": 8,
    "lr": 0.05,
    "progress": "none",
    "deterministic": True,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("life") / "ds"
    write_tree(folder, n_train=16, n_test=4)
    return folder


def _cfg(tiny: Path, out: Path, **kw):  # noqa: ANN003, ANN202
    where = {"data": str(tiny), "output": str(out), "cache_dir": str(out.parent / "cache")}
    return load_config(None, {**SETTINGS, **where, **kw})


def _trainer(cfg) -> Trainer:  # noqa: ANN001
    t = Trainer(cfg, print_fn=lambda *a: None)
    t.setup()
    return t


def test_setup_writes_the_run_record(tiny: Path, tmp_path: Path) -> None:
    t = _trainer(_cfg(tiny, tmp_path / "run"))
    assert t.steps_per_epoch == len(t.data.train) > 0 and t.num_classes == len(t.data.classes) and t.start_epoch == 0
    run = load_run(tmp_path / "run", checkpoint=False)  # config.yaml + meta.json, before any checkpoint
    assert run.model_name == "_tiny_models:tiny_bn_cnn" and run.config["resume"] is False
    assert run.meta["num_classes"] == t.num_classes and run.version == t.run.version
    assert not (tmp_path / "run" / "last.pt").exists()
    t.close()


def test_one_epoch_evaluate_save_finish(tiny: Path, tmp_path: Path) -> None:
    t = _trainer(_cfg(tiny, tmp_path / "run", ema=0.9))
    row = t.train_one_epoch(0)
    assert row is not None and row["epoch"] == 1 and {"train_loss", "train_top1", "lr"} <= row.keys()
    assert t.schedule.step_count == t.steps_per_epoch == int(t.ema.updates)  # the EMA hook ran after every step
    cols = t.evaluate()
    assert {"eval_loss", "eval_top1", "eval_top5", "ema_top1", "eval_time_s"} <= cols.keys()
    t.save(1)
    run = load_run(tmp_path / "run")
    assert run.checkpoint["epoch"] == 1 and run.classes == t.data.classes and run.preprocess == t.data.preprocess
    assert run.state_dict(use_ema=True) is run.checkpoint["ema"]
    t.logger.log_epoch({**row, **cols, "wall_time_s": 1.0})
    result = t.finish()
    assert result["status"] == "done" and result["epochs_done"] == 1 and "top1" in result
    assert (tmp_path / "run" / "result.json").is_file()
    t.close()


def test_fit_resumes_from_a_saved_position(tiny: Path, tmp_path: Path) -> None:
    t = Trainer(_cfg(tiny, tmp_path / "run"), stop_after_steps=2, print_fn=lambda *a: None)
    t.setup()
    assert t.fit()["status"] == "interrupted" and t.result["step"] == 2
    t.close()
    before = load_run(tmp_path / "run").checkpoint["partial_time_s"]
    assert before > 0
    again = _trainer(_cfg(tiny, tmp_path / "run", resume=True))
    assert (again.start_epoch, again.start_step) == (0, 2)
    assert again.fit()["status"] == "done"
    again.close()
    # The resumed epoch's time counts the steps trained before the stop (its image count does).
    assert load_run(tmp_path / "run").metrics()[0]["epoch_time_s"] > before


def test_resume_on_another_machine_keeps_precision_and_names_both(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import senet.train.trainer as trainer_mod
    from senet.train.ledger import row_from_run
    from senet.utils import hardware as hw

    def machine(model: str, cap: str) -> None:
        info = {"cpu_model": model, "cpu_capability": cap, "threads": 1}
        monkeypatch.setattr(trainer_mod, "machine_info", lambda device: dict(info))
        monkeypatch.setattr(hw, "cpu_capability", lambda: cap)

    machine("AVX2 box", "avx2")
    t = Trainer(_cfg(tiny, tmp_path / "run"), stop_after_steps=2, print_fn=lambda *a: None)
    t.setup()
    assert t.amp == "fp32" and t.fit()["status"] == "interrupted"
    t.close()
    machine("AMX box", "amx")  # auto would pick bf16 here: the run must stay in the fp32 it started in
    said: list[str] = []
    again = Trainer(_cfg(tiny, tmp_path / "run", resume=True), print_fn=said.append)
    again.setup()
    assert again.amp == "fp32" and "started in fp32: kept" in again.precision.reason
    assert any("AMX box (amx) (resumed; began on AVX2 box (avx2))" in line for line in said), said
    again.fit()
    assert again.finish()["status"] == "done"
    again.close()
    meta = load_run(tmp_path / "run", checkpoint=False).meta
    assert meta["machines"] == ["AVX2 box (avx2)", "AMX box (amx)"] and meta["amp"] == "fp32"
    row = row_from_run(tmp_path / "run", "x")
    assert row["machine"] == "AVX2 box (avx2) then AMX box (amx)" and row["amp"] == "fp32"
    # An explicit --amp on resume is obeyed.
    forced = _trainer(_cfg(tiny, tmp_path / "run2", amp="bf16"))
    assert forced.amp == "bf16"
    forced.close()


def test_resume_refuses_a_changed_recipe_and_a_passed_epoch(tiny: Path, tmp_path: Path) -> None:
    t = Trainer(_cfg(tiny, tmp_path / "run", epochs=3), stop_after_steps=3, print_fn=lambda *a: None)
    t.setup()
    t.fit()
    t.close()
    # The optimizer state would keep lr 0.05: a changed lr would be recorded but not applied.
    with pytest.raises(SenetError, match=r"another recipe \(lr 0\.05 -> 0\.01\)"):
        _trainer(_cfg(tiny, tmp_path / "run", epochs=3, lr=0.01, resume=True))
    # More epochs (train longer) and another eval_every are allowed.
    _trainer(_cfg(tiny, tmp_path / "run", epochs=4, eval_every=2, resume=True)).close()
    ledger, results = tmp_path / "l.jsonl", []
    for _ in range(2):  # the second resume finds the run finished: no second ledger row, result.json kept
        done = Trainer(_cfg(tiny, tmp_path / "run", epochs=3, resume=True, ledger=str(ledger)), print_fn=lambda *a: 0)
        done.setup()
        done.fit()
        assert done.finish()["status"] == "done"
        done.close()
        results.append((tmp_path / "run" / "result.json").read_text())
    assert len(read_rows(ledger)) == 1 and results[0] == results[1] and '"epochs_done": 3' in results[0]
    with pytest.raises(SenetError, match="already at epoch 3, past epochs 2"):
        _trainer(_cfg(tiny, tmp_path / "run", epochs=2, resume=True))


def test_freeze_phases_hook(tiny: Path, tmp_path: Path) -> None:
    from senet.models import create_model
    from senet.retrofit.training import classifier_name

    model = create_model("resnet20", num_classes=3)
    head = classifier_name(model)
    trains = lambda: {n.startswith(f"{head}.") for n, p in model.named_parameters() if p.requires_grad}  # noqa: E731
    cfg = _cfg(tiny, tmp_path / "run", freeze_epochs=1)
    phases = FreezePhases(model, cfg)
    said: list[str] = []
    phases.begin(0, said.append)
    assert said and trains() == {True}  # the warm-up trains only the classifier
    phases.start_epoch(1)  # the warm-up is over: everything trains
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(SenetError, match="single-process"):
        FreezePhases(model, cfg, distributed=True)
    probe = FreezePhases(model, _cfg(tiny, tmp_path / "run", freeze="backbone"))
    assert trains() == {True} and probe.probe_norms
    model.train()
    probe.start_epoch(0)
    assert not any(m.training for m in probe.probe_norms)  # the probe keeps the backbone's BN statistics
    recipe = object()
    assert build_hooks(recipe, probe, None, model) == [probe, recipe]  # type: ignore[arg-type]


def test_loader_config_from_train_config(tiny: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny, tmp_path / "run", pad=2, cutout=3, eval_batch_size=5)
    lc = LoaderConfig.from_train_config(cfg, device="cpu", channels_last=False, cutout=0)
    assert (lc.batch_size, lc.eval_batch_size, lc.pad, lc.cutout, lc.seed) == (8, 5, 2, 0, cfg.seed)
    for name in LoaderConfig.FROM_TRAIN_CONFIG:
        assert hasattr(cfg, name)
    by_config = create_loaders(tiny, lc, with_train=False, workers=0)
    by_kwargs = create_loaders(
        tiny, batch_size=8, eval_batch_size=5, with_train=False, workers=0, cache_dir=lc.cache_dir
    )
    assert by_config.preprocess == by_kwargs.preprocess and by_config.classes == by_kwargs.classes
    assert [len(y) for _, y in by_config.eval] == [len(y) for _, y in by_kwargs.eval]
