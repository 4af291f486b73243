"""The CIFAR-10 speedrun comparison: one recipe, four attention kinds, several seeds, accuracy and time side by side.

Every run goes through ``senet.train.train`` with ``configs/cifar10_speedrun.yaml`` (plus ``--set`` overrides), so
the numbers are those of the ordinary senet training path. Results are appended to a JSONL file as each run ends;
re-running the same command skips finished runs (an interrupted sweep resumes). Run from the repository root::

    # the full recipe, 5 seeds per kind (about 1 h per run on a 2-core AVX2 CPU; seconds on a GPU)
    python benchmarks/speedrun.py --seeds 0-4 --out runs/speedrun/full.jsonl
    # a reduced CPU budget: 10,000 training images, 2 epochs, flip-only TTA
    python benchmarks/speedrun.py --seeds 0-4 --set train_subset=10000 --set epochs=2 --set tta=flip \\
        --out runs/speedrun/short.jsonl
    # training-step throughput of the four kinds, measured alternately in one process
    python benchmarks/speedrun.py --throughput

Time columns: ``train_s`` is the sum of the epochs' training time (data already in memory, decoding and the
whitening init excluded); ``total_s`` adds the evaluations (test-time augmentation included), i.e. the records'
"training + test-time evaluation". ``--summary`` prints the markdown table of an existing JSONL file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: several times faster on a shared 2-core machine; set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

MODELS = ("speednet", "se_speednet", "eca_speednet", "cbam_speednet")
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "cifar10_speedrun.yaml"


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.is_file():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["model"], r["seed"]) for r in rows}


def run_sweep(args: argparse.Namespace) -> None:
    from senet.train import load_config, train
    from senet.train.config import parse_value

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sets = dict(kv.split("=", 1) for kv in args.set)
    done = _done(out)
    # Seeds outer, models inner: a sweep cut short still has every kind at the same number of seeds.
    for seed in _seeds(args.seeds):
        for model in args.models:
            if (model, seed) in done:
                continue
            run_dir = Path(args.runs_dir) / out.stem / f"{model}-s{seed}"
            overrides = {k: parse_value(v) for k, v in sets.items()}
            overrides.update(model=model, seed=seed, output=str(run_dir), progress="none", resume=False)
            if (run_dir / "last.pt").is_file():
                overrides["resume"] = True
            cfg = load_config(args.config, overrides)
            t0 = time.time()
            result = train(cfg)
            if result.get("status") != "done":
                # Nothing is recorded for an unfinished run (it may not have a metrics.jsonl yet). A stop (Ctrl-C)
                # ends the sweep: the same command resumes this run from its checkpoint and skips finished ones.
                print(f"speedrun: {model} seed {seed} ended {result.get('status')!r}; not recorded", flush=True)
                if result.get("status") == "interrupted":
                    print(f"speedrun: re-run the same command to resume it from {run_dir}/last.pt", flush=True)
                    return
                continue
            rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
            row = {
                "model": model,
                "seed": seed,
                "top1": result.get("top1"),
                "ema_top1": result.get("ema_top1"),
                "train_s": round(sum(r["epoch_time_s"] for r in rows), 2),
                "total_s": result.get("train_time_s"),
                "wall_s": round(time.time() - t0, 1),
                "epochs": cfg.epochs,
                "train_images": json.loads((run_dir / "meta.json").read_text())["train_images"],
                "overrides": sets,
                "status": result.get("status"),
                "host": platform.node(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    if out.is_file():
        summary(out)


def summary(path: Path) -> None:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    print(f"\n{path}: {len(rows)} runs")
    print("| model | seeds | top-1 % (mean ± std) | min / max | train s (mean) | train + eval s (mean) |")
    print("|---|---|---|---|---|---|")
    for m in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == m and r.get("top1") is not None]
        acc = [r["top1"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        print(
            f"| {m} | {len(rs)} | {statistics.mean(acc):.2f} ± {sd:.2f} | {min(acc):.2f} / {max(acc):.2f} | "
            f"{statistics.mean(r['train_s'] for r in rs):.1f} | {statistics.mean(r['total_s'] for r in rs):.1f} |"
        )


def throughput(args: argparse.Namespace) -> None:
    """Training steps of the four kinds at the recipe's batch size, alternated, median images/s and ratio to none."""
    import torch.nn.functional as F

    from senet.models import create_model
    from senet.train import load_config
    from senet.train.optim import create_optimizer

    cfg = load_config(args.config)
    bs = args.batch_size or cfg.batch_size
    cl = cfg.channels_last in ("true", "auto")
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
    p.add_argument("--out", default="runs/speedrun/results.jsonl")
    p.add_argument("--runs-dir", default="runs/speedrun")
    p.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    p.add_argument("--throughput", action="store_true", help="time training steps of the kinds side by side")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=0)
    args = p.parse_args(argv)
    if args.summary:
        summary(Path(args.out))
    elif args.throughput:
        throughput(args)
    else:
        run_sweep(args)


if __name__ == "__main__":
    sys.exit(main())
