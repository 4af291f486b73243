"""Every GPU row of the results, in one prepared, resumable command: run it whenever a GPU is lent.

A GPU comes to this project now and then, for ~15 minutes, and starting it costs minutes. This script spends those
minutes in order of value, writing every finished run to the same results ledger as the CPU runs (``results/``), so
an interrupted suite resumes where it stopped (finished cells are skipped, a cut run resumes from its checkpoint):

1. ``speedrun``: the speedrun recipe (configs/cifar10_speedrun.yaml), none / SE / ECA / CBAM x 5 seeds, compiled,
   data on the device, timed like the public records (training + TTA evaluation). One discarded warm-up run per kind
   first fills the compile caches, so the timed runs exclude compilation (what is left is Dynamo's re-trace).
2. ``paper``: resnet20/56/110 vs their SE twins, the paper's 164-epoch protocol (configs/cifar10_resnet_paper.yaml),
   seeds 0-1, into ``results/cifar_resnet.jsonl``.
3. ``throughput``: training img/s of resnet50 vs se_resnet50 (bf16, channels_last, batch 256, 224 px), alternated
   in one process, with the ratio (goal: SE/plain >= 0.95, >= 3,000 img/s on an H100-class GPU), into
   ``results/gpu_throughput.jsonl``.

``--tiny`` runs the same stages on the CPU at a budget of seconds on generated images, into a temporary ledger: CI
runs it so the script is known to work before a GPU's minutes are spent on it. Run from the repository root::

    python benchmarks/gpu_suite.py                    # everything, in order (needs CUDA unless --tiny)
    python benchmarks/gpu_suite.py --stages speedrun  # one stage
    python benchmarks/gpu_suite.py --tiny             # the CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STAGES = ("speedrun", "paper", "throughput")
SPEEDRUN_MODELS = ("speednet", "se_speednet", "eca_speednet", "cbam_speednet")
PAPER_MODELS = ("resnet20", "se_resnet20", "resnet56", "se_resnet56", "resnet110", "se_resnet110")


def _tiny_data(root: Path) -> Path:
    """A 10-class ImageFolder of random 32x32 PNGs (class visible in the mean colour), 16 train / 4 test per class."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("test", 4)):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
                img[c % 3] = img[c % 3] // (1 + c // 3)
                write_png(img, str(d / f"{i:03d}.png"))
    return root


def stage_speedrun(args: argparse.Namespace, print_fn) -> None:  # noqa: ANN001
    from senet.train.sweep import parse_seeds, run_sweep

    ov = dict(args.base_overrides, compile=args.compile)
    models = list(SPEEDRUN_MODELS)
    ledger = args.results / "speedrun.jsonl"
    if args.compile:
        # Warm-up: one short run per kind, outside the ledger, so the timed runs find the compile caches filled.
        warm = dict(ov, epochs=1, eval_every=1, ledger=None, train_subset=min(2048, ov.get("train_subset") or 2048))
        with tempfile.TemporaryDirectory() as tmp:
            for m in models:
                run_sweep(args.recipe, [m], [0], Path(tmp) / "warm.jsonl", overrides=warm, runs_dir=tmp)
    run_sweep(
        args.recipe, models, parse_seeds(args.seeds), ledger, overrides=ov, runs_dir=args.runs_dir, print_fn=print_fn
    )


def stage_paper(args: argparse.Namespace, print_fn) -> None:  # noqa: ANN001
    from senet.train.sweep import run_sweep

    ov = dict(args.base_overrides, compile=args.compile)
    if args.tiny:
        ov.update(epochs=1, milestones=[1.0, 1.0], eval_batch_size=64, batch_size=32)
    models = PAPER_MODELS[:2] if args.tiny else PAPER_MODELS
    run_sweep(
        ROOT / "configs" / "cifar10_resnet_paper.yaml",
        models,
        [0, 1] if not args.tiny else [0],
        args.results / "cifar_resnet.jsonl",
        overrides=ov,
        runs_dir=args.runs_dir,
        print_fn=print_fn,
    )


def stage_throughput(args: argparse.Namespace, print_fn) -> None:  # noqa: ANN001
    from senet.bench.speed import time_model
    from senet.models import create_model
    from senet.train.ledger import append_row, read_rows
    from senet.train.trainer import code_version
    from senet.utils.hardware import machine_info

    ledger = args.results / "gpu_throughput.jsonl"
    device = torch.device(args.device)
    machine = machine_info(device)
    where = machine.get("gpu") or f"{machine['cpu_model']} ({machine['cpu_capability']})"
    bs, size = (2, 64) if args.tiny else (256, 224)
    if any(r.get("machine") == where and r.get("batch_size") == bs for r in read_rows(ledger)):
        print_fn(f"skip throughput: {ledger} already has {where} at batch {bs}")
        return
    names = ("resnet50", "se_resnet50")
    nets = {n: create_model(n) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(1 if args.tiny else 3):  # alternate the two, so drift hits both alike
        for n in names:
            r = time_model(
                nets[n], (bs, 3, size, size), name=n, mode="train", dtype="bf16", channels_last=True,
                compile=args.compile, device=device, warmup=1 if args.tiny else 5, iters=2 if args.tiny else 20,
            )  # fmt: skip
            times[n].append(r.throughput)
    rates = {n: statistics.median(v) for n, v in times.items()}
    row = {
        "experiment": "gpu_throughput",
        "machine": where,
        "batch_size": bs,
        "img_size": size,
        "dtype": "bf16",
        "channels_last": True,
        "compile": args.compile,
        "resnet50_img_s": round(rates["resnet50"], 1),
        "se_resnet50_img_s": round(rates["se_resnet50"], 1),
        "se_over_plain": round(rates["se_resnet50"] / rates["resnet50"], 4),
        "commit": code_version().get("git_commit", "unknown"),
        "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }
    append_row(ledger, row, required=("experiment", "machine", "se_over_plain"))
    print_fn(json.dumps(row))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {', '.join(STAGES)}")
    p.add_argument("--seeds", default="0-4", help="speedrun seeds (default 0-4)")
    p.add_argument("--tiny", action="store_true", help="seconds-long CPU check on generated data (CI)")
    p.add_argument("--data", default=None, help="CIFAR-10 (default: $SENET_DATA_DIR or ../shared/data)")
    p.add_argument("--results", default=str(ROOT / "results"), help="ledger folder (default results/)")
    p.add_argument("--runs-dir", default="runs/gpu_suite")
    p.add_argument("--compile", choices=("auto", "true", "false"), default="auto", help="auto: on CUDA only")
    args = p.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        p.error(f"unknown stage {bad[0]!r}; choose from {', '.join(STAGES)}")
    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("gpu_suite: no CUDA device here; run it on a GPU, or --tiny for the CPU check", file=sys.stderr)
        return 2
    args.device = "cuda" if cuda and not args.tiny else "cpu"
    args.compile = cuda if args.compile == "auto" else args.compile == "true"
    args.recipe = ROOT / "configs" / "cifar10_speedrun.yaml"
    tmp = None
    if args.tiny:
        tmp = tempfile.TemporaryDirectory(prefix="senet-gpu-suite-")
        root = Path(tmp.name)
        args.data = str(_tiny_data(root / "data"))
        args.results = str(root / "results")
        args.runs_dir = str(root / "runs")
        args.seeds = "0"
    args.results = Path(args.results)
    args.base_overrides = {"device": args.device}
    if args.data:
        args.base_overrides["data"] = args.data
    if args.tiny:
        args.base_overrides.update(epochs=1, batch_size=32, eval_batch_size=64, data_init_images=64, warmup_epochs=0.5)
    t0 = time.time()
    try:
        for stage in stages:
            print(f"== {stage} ({time.time() - t0:.0f} s)", flush=True)
            globals()[f"stage_{stage}"](args, lambda m: print(m, flush=True))
        print(f"== done in {time.time() - t0:.0f} s; ledger files in {args.results}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("gpu_suite.py", main))
