"""The sweep runner: train every (seed, setting) of a sweep that is not finished yet, resumably.

One module serves every sweep of the project:

* :func:`run_sweep` — models x seeds of one recipe into a results ledger (``benchmarks/speedrun.py``,
  ``benchmarks/gpu_suite.py``). Seeds are the outer loop, so a sweep cut short still has every model at the same
  number of seeds. Each finished run appends its own row (the trainer's ``ledger`` option); an interrupted run
  resumes from its checkpoint when the same sweep is started again.
* :func:`run_grid` — the cells of an ablation grid (:mod:`senet.train.grids`) x seeds (``senet ablate``), in worker
  processes if asked; a failing run puts its error in its record instead of stopping the sweep.

Both skip a run the ledger already holds (same ledger key: model, seed, recipe, amp, kind) and resume a run whose
folder has a ``last.pt``. Layout of a grid sweep directory::

    OUT/runs/<key>/seed<k>/             the run's own directory (checkpoints, metrics written by the trainer)
    OUT/runs/<key>/seed<k>/cell.json    {"status": "ok"|"failed", "metrics": {...}, "error": "...", "config": ...}

``<key>`` (:func:`run_key`) is a hash of the run's config (and of its YAML recipe's contents) without its seed and
device, so grids that share a
setting (SE with sigmoid gate, avg squeeze, standard position) share its runs when they use the same ``OUT``.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from senet.utils.io import atomic_write_text

from . import trainer
from .config import load_config
from .grids import Cell, Grid
from .ledger import append_row, config_key, done_keys, read_rows, row_from_run, row_key

__all__ = ["TrainFn", "parse_seeds", "run_grid", "run_key", "run_sweep", "senet_train_fn"]

#: ``train_fn(config, run_dir) -> metrics`` of :func:`run_grid`; raises when the run fails.
TrainFn = Callable[[dict[str, Any], Path], Mapping[str, Any]]


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> 0..4, ``"0,2,5"`` -> [0, 2, 5], ``"0-1,7"`` -> [0, 1, 7]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _ledger_key(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The ledger's key of a run, from its overrides (``config_file``: the YAML recipe applied first)."""
    overrides = {k: v for k, v in config.items() if k != "config_file"}
    return config_key(load_config(config.get("config_file"), overrides))


def run_sweep(
    config: str | Path | None,
    models: Iterable[str],
    seeds: Iterable[int],
    ledger: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    experiment: str = "",
    runs_dir: str | Path = "runs",
    print_fn: Callable[[str], Any] = print,
) -> list[dict[str, Any]]:
    """Train the (seed, model) cells missing from ``ledger``; returns the results of the runs made now.

    Stops at an interrupted run (Ctrl-C, SIGTERM); the same call resumes it.
    """
    ledger = Path(ledger)
    experiment = experiment or ledger.stem
    done = done_keys(ledger)
    results = []
    for seed in seeds:
        for model in models:
            run_dir = Path(runs_dir) / experiment / f"{model.replace(':', '_')}-s{seed}"
            ov = dict(overrides or {}, model=model, seed=seed, output=str(run_dir), resume=False)
            ov.update(ledger=str(ledger), experiment=experiment)
            ov.setdefault("progress", "none")
            key = _ledger_key(dict(ov, config_file=config))
            if key in done:
                print_fn(f"skip {model} seed {seed}: already in {ledger}")
                continue
            if _finished(run_dir) and _keep_finished(run_dir, experiment, ledger, done, key, print_fn):
                continue
            ov["resume"] = (run_dir / "last.pt").is_file()
            result = trainer.train(load_config(config, ov))
            results.append(result)
            status = result.get("status")
            if status == "interrupted":
                print_fn(f"{model} seed {seed}: interrupted, not recorded; start the same sweep again to resume it")
                return results
            if status != "done":  # e.g. a non-finite loss: nothing recorded, the other cells still run
                print_fn(f"{model} seed {seed}: ended {status!r}, not recorded; going on with the next run")
    return results


def _keep_finished(
    run_dir: Path,
    experiment: str,
    ledger: Path,
    done: set[tuple[Any, ...]],
    cell: tuple[Any, ...],
    print_fn: Callable[[str], Any],
) -> bool:
    """Whether the finished run in ``run_dir`` is the cell ``cell`` (nothing left to train). It is never deleted: a
    row missing from the ledger (reset, or lost) is appended again; a run of another recipe or precision (e.g.
    resumed on a machine where ``amp: auto`` differs) is moved aside to ``NAME.RECIPE-AMP`` to make room."""
    row = row_from_run(run_dir, experiment)
    key = row_key(row)
    if key not in done:
        append_row(ledger, row)
        done.add(key)
        print_fn(f"{run_dir} had finished (top-1 {row.get('top1')}); its row is back in {ledger}")
    if key == cell:
        return True
    aside, n = run_dir.with_name(f"{run_dir.name}.{row['recipe_hash']}-{row['amp']}"), 1
    while aside.exists():
        aside, n = run_dir.with_name(f"{run_dir.name}.{row['recipe_hash']}-{row['amp']}.{n}"), n + 1
    run_dir.rename(aside)
    print_fn(f"{run_dir} held a finished run of another recipe or precision (in {ledger}): moved to {aside}")
    return False


def _finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that finished (its ``result.json`` says done)."""
    result_file = run_dir / "result.json"
    if not ((run_dir / "last.pt").is_file() and result_file.is_file()):
        return False
    try:
        return json.loads(result_file.read_text(encoding="utf-8")).get("status") == "done"
    except ValueError:
        return False


def senet_train_fn(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The train function of ``senet ablate``: the same :func:`senet.train.train` that ``senet train`` calls.

    ``config`` holds training-config keys (plus ``config_file``: a YAML recipe applied first). The run writes into
    ``run_dir``; a run interrupted earlier (``last.pt`` present) is resumed rather than restarted.
    """
    overrides = {k: v for k, v in config.items() if k != "config_file"}
    overrides["output"] = str(run_dir)
    overrides["resume"] = (Path(run_dir) / "last.pt").is_file()
    overrides.setdefault("progress", "none")
    result = trainer.train(load_config(config.get("config_file"), overrides), print_fn=lambda *a: None)
    if result.get("status") == "interrupted":
        # Ctrl-C / SIGTERM: the run checkpointed; the sweep stops (not "failed": the same command resumes it).
        raise KeyboardInterrupt(f"{run_dir} interrupted; run the same command again to resume")
    if result.get("status", "done") != "done":
        raise RuntimeError(f"training ended with status {result.get('status')!r}: {json.dumps(result)[:200]}")
    return result


def run_key(config: Mapping[str, Any]) -> str:
    """A short stable hash of a run config, ignoring ``seed``, ``device`` and the ledger bookkeeping (a grid run's
    directory name)."""
    rest = {k: v for k, v in config.items() if k not in ("seed", "device", "ledger", "experiment", "cell")}
    recipe = Path(str(rest.get("config_file") or ""))
    if recipe.is_file():
        # The YAML's contents, not only its path: an edited recipe is another run, not one "finished earlier".
        rest["config_file_sha256"] = hashlib.sha256(recipe.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "cell.json", json.dumps(record, indent=1, default=str))


def _run_one(train_fn: TrainFn, config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    # Top-level so a process pool can pickle it; never raises: the error travels in the record.
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    try:
        metrics = dict(train_fn(config, rd))
        record = {"status": "ok", "metrics": metrics, "config": config}
    except Exception as exc:  # noqa: BLE001 - a failing cell must not stop the sweep
        record = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
            "traceback": traceback.format_exc()[-4000:],
            "config": config,
        }
    _write_record(rd, record)
    return record


def _finished_record(run_dir: Path) -> dict[str, Any] | None:
    """The ``cell.json`` of a grid run that finished ``ok`` earlier, else None."""
    try:
        rec = json.loads((run_dir / "cell.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("status") == "ok" else None


_Todo = tuple[Cell, int, dict[str, Any], Path]


def _plan_grid(
    grid: Grid,
    out: Path,
    base_config: Mapping[str, Any],
    seed_list: Sequence[int],
    ledger: str | os.PathLike[str] | None,
    devices: Sequence[str] | None,
    log: Callable[[str], None] | None,
) -> tuple[list[_Todo], dict[tuple[str, int], dict[str, Any]]]:
    """The runs still to train, and the records of those finished earlier (in their folder or in the ledger)."""
    in_ledger = {row_key(r): r for r in read_rows(ledger)} if ledger is not None else {}
    todo: list[_Todo] = []
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for cell in grid.cells:
        for seed in seed_list:
            config = _merge(base_config, cell.train)
            config["model_kwargs"] = _merge(dict(base_config.get("model_kwargs") or {}), cell.model_kwargs)
            run_dir = out / "runs" / run_key(config) / f"seed{seed}"
            if (rec := _finished_record(run_dir)) is not None:
                records[(cell.label, seed)] = rec
                if log:
                    log(f"[skip] {cell.label} seed {seed}: finished earlier")
                continue
            config.update(seed=seed, cell=cell.label)
            if ledger is not None:
                config.update(ledger=str(ledger))
                row = in_ledger.get(_ledger_key(config))
                if row is not None:
                    records[(cell.label, seed)] = {"status": "ok", "metrics": row, "config": config}
                    if log:
                        log(f"[skip] {cell.label} seed {seed}: in the ledger {ledger}")
                    continue
            if devices:
                config["device"] = devices[len(todo) % len(devices)]
            todo.append((cell, seed, config, run_dir))
    return todo, records


def _execute(
    todo: Sequence[_Todo], train_fn: TrainFn, jobs: int, log: Callable[[str], None] | None
) -> Iterable[tuple[Cell, int, dict[str, Any]]]:
    """Train each planned run (in ``jobs`` spawned worker processes when more than one); yields as they finish."""
    if jobs <= 1 or len(todo) <= 1:
        for cell, seed, config, run_dir in todo:
            if log:
                log(f"[run] {cell.label} seed {seed} -> {run_dir}")
            yield cell, seed, _run_one(train_fn, config, str(run_dir))
        return
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_run_one, train_fn, c, str(d)): (cell, s, d) for cell, s, c, d in todo}
        try:
            for fut in cf.as_completed(futures):
                cell, seed, run_dir = futures[fut]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OOM killer
                    rec = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    _write_record(Path(run_dir), rec)
                yield cell, seed, rec
        except KeyboardInterrupt:
            # The running workers got the same Ctrl-C and checkpoint; the queued cells must not start.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def run_grid(
    grid: Grid,
    train_fn: TrainFn,
    out_dir: str | os.PathLike[str],
    base_config: Mapping[str, Any],
    seeds: int | Sequence[int] = 3,
    jobs: int = 1,
    devices: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
    train: bool = True,
    ledger: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Train every (cell, seed) not finished yet; returns one record per run (``cell``, ``seed``, ``status``, ...).

    ``base_config`` is the training config shared by every run; each run gets ``seed``, ``model_kwargs`` (merged
    with the cell's) and the cell's ``train`` overrides, plus ``device`` round-robin from ``devices`` if given.
    ``jobs > 1`` runs cells in that many worker processes (``spawn``: ``train_fn`` must be importable).
    ``train=False`` only collects the runs finished so far (a report of a sweep still in progress).
    ``ledger``: a results-ledger file (:mod:`senet.train.ledger`); every finished run appends its row there, and a
    (model, seed, recipe) already in it is not trained again (its row stands in for the run's metrics).
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    todo, records = _plan_grid(grid, Path(out_dir), base_config, seed_list, ledger, devices, log)
    for cell, seed, rec in _execute(todo if train else [], train_fn, jobs, log):
        records[(cell.label, seed)] = rec
        if log:
            what = rec["error"] if rec["status"] != "ok" else json.dumps(rec["metrics"], default=str)[:200]
            log(f"[{rec['status']}] {cell.label} seed {seed}: {what}")
    return [
        {"cell": c.label, "seed": s, **records[(c.label, s)]}
        for c in grid.cells
        for s in seed_list
        if (c.label, s) in records
    ]
