"""One sweep runner: train every (seed, model) cell of a recipe that the results ledger does not hold yet.

Used by ``benchmarks/speedrun.py`` and ``benchmarks/gpu_suite.py``. Seeds are the outer loop, so a sweep cut short
still has every model at the same number of seeds. Each finished run appends its own row (the trainer's ``ledger``
option); an interrupted run resumes from its checkpoint when the same sweep is started again.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import load_config
from .ledger import config_key, done_keys

__all__ = ["parse_seeds", "run_sweep"]


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> 0..4, ``"0,2,5"`` -> [0, 2, 5], ``"0-1,7"`` -> [0, 1, 7]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


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
    """Train the missing cells; returns the results of the runs made now. Stops at an interrupted run."""
    from .trainer import train

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
            cfg = load_config(config, ov)
            if config_key(cfg) in done:
                print_fn(f"skip {model} seed {seed}: already in {ledger}")
                continue
            result_file = run_dir / "result.json"
            if (run_dir / "last.pt").is_file():
                if result_file.is_file() and '"done"' in result_file.read_text():
                    # Finished but not in this ledger (the recipe changed, or the ledger was reset): train it again.
                    shutil.rmtree(run_dir)
                else:
                    cfg = load_config(config, dict(ov, resume=True))
            result = train(cfg)
            results.append(result)
            status = result.get("status")
            if status == "interrupted":  # a stop (Ctrl-C, SIGTERM) ends the sweep; the same call resumes it
                print_fn(f"{model} seed {seed}: interrupted, not recorded; start the same sweep again to resume it")
                return results
            if status != "done":  # e.g. a non-finite loss: nothing recorded, the other cells still run
                print_fn(f"{model} seed {seed}: ended {status!r}, not recorded; going on with the next run")
    return results
