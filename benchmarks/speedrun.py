"""The CIFAR-10 speedrun comparison: one recipe, four attention kinds, several seeds, accuracy and time side by side.

Every run goes through ``senet.train.train`` with ``configs/cifar10_speedrun.yaml`` (plus ``--set`` overrides), so
the numbers are those of the ordinary senet training path. Each finished run appends one row to the results ledger
(``results/speedrun.jsonl`` by default, see ``senet.train.ledger``); re-running the same command skips the cells
(model, seed, recipe) already there and resumes an interrupted run from its checkpoint. Run from the repository root::

    # the full recipe, 3 seeds per kind
    python benchmarks/speedrun.py --seeds 0-2
    # a reduced CPU budget in its own ledger file
    python benchmarks/speedrun.py --seeds 0-4 --set train_subset=8000 --set epochs=2 --set tta=none \\
        --ledger results/speedrun_reduced.jsonl
    # training-step throughput of the four kinds, measured alternately in one process
    python benchmarks/speedrun.py --throughput

Time columns: ``train_s`` is the sum of the epochs' training time (data already in memory, decoding and the
whitening init excluded); ``eval_s`` the evaluations (test-time augmentation included); their sum is the records'
"training + test-time evaluation". ``--summary`` prints the ledger's tables (as ``benchmarks/report.py`` writes them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: several times faster on a shared 2-core machine; set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

MODELS = ("speednet", "se_speednet", "eca_speednet", "cbam_speednet")
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "cifar10_speedrun.yaml"
LEDGER = Path(__file__).resolve().parents[1] / "results" / "speedrun.jsonl"


def sweep(args: argparse.Namespace) -> None:
    from senet.train.config import parse_sets
    from senet.train.sweep import parse_seeds, run_sweep

    sets = parse_sets(args.set)
    run_sweep(
        args.config,
        args.models,
        parse_seeds(args.seeds),
        args.ledger,
        overrides=sets,
        experiment=args.experiment,
        runs_dir=args.runs_dir,
        print_fn=lambda m: print(m, flush=True),
    )
    summary(Path(args.ledger))


def summary(path: Path) -> None:
    """The ledger's tables, as docs/ shows them (benchmarks/report.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import render

    from senet.train.ledger import read_rows

    print(render(path.stem, read_rows(path)))


def throughput(args: argparse.Namespace) -> None:
    """Training steps of the four kinds at the recipe's batch size, alternated, median images/s and ratio to none."""
    import torch.nn.functional as F

    from senet.models import create_model
    from senet.train import load_config
    from senet.train.optim import create_optimizer
    from senet.utils.hardware import auto_precision

    cfg = load_config(args.config)
    bs = args.batch_size or cfg.batch_size
    # The layout `senet train` would pick for fp32 on this CPU (auto follows the CPU); the steps run in fp32.
    cl = auto_precision("cpu", "fp32", cfg.channels_last).channels_last
    x = torch.randn(bs, 3, 32, 32)
    y = torch.randint(0, 10, (bs,))
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    nets = {}
    for m in args.models:
        net = create_model(m)
        if cl:
            net = net.to(memory_format=torch.channels_last)
        nets[m] = (net, create_optimizer(net, cfg))
    times: dict[str, list[float]] = {m: [] for m in nets}

    def step(net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        loss = F.cross_entropy(net(x), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for net, opt in nets.values():  # warm-up
        step(net, opt)
    for _ in range(args.repeats):
        for m, (net, opt) in nets.items():
            t0 = time.perf_counter()
            step(net, opt)
            times[m].append(time.perf_counter() - t0)
    base = statistics.median(times[args.models[0]])
    print(f"training step, batch {bs}, channels_last={cl}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    print("| model | img/s (median) | step time / none |")
    print("|---|---|---|")
    for m, ts in times.items():
        med = statistics.median(ts)
        print(f"| {m} | {bs / med:.0f} | {med / base:.3f} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(RECIPE))
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2,5")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--ledger", default=str(LEDGER), help="results ledger to append to and resume from")
    p.add_argument("--experiment", default="", help="experiment name in the rows (default: the ledger's stem)")
    p.add_argument("--runs-dir", default="runs/speedrun", help="run folders go to RUNS_DIR/EXPERIMENT/MODEL-sSEED")
    p.add_argument("--summary", action="store_true", help="print the tables of --ledger and stop")
    p.add_argument("--throughput", action="store_true", help="time training steps of the kinds side by side")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=0)
    args = p.parse_args(argv)
    if args.summary:
        summary(Path(args.ledger))
    elif args.throughput:
        throughput(args)
    else:
        sweep(args)


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("speedrun.py", main))
