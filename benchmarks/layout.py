"""Training-step throughput in the contiguous (NCHW) vs channels_last (NHWC) memory layout, measured side by side.

``channels_last: auto`` (``senet.utils.hardware.auto_precision``) picks the layout per CPU capability; this is the
measurement behind that choice. Each repeat times one block of SGD steps in each layout, alternating, so slow
drift of a shared machine hits both columns alike; the table gives the medians and their ratio. Run from the
repository root::

    python benchmarks/layout.py --models resnet20 se_resnet20 resnet56 speednet se_speednet --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from senet.cli import run_script  # noqa: E402
from senet.models import create_model  # noqa: E402
from senet.utils.hardware import cpu_capability, cpu_model  # noqa: E402


def _timer(model_name: str, channels_last: bool, batch: int, size: int, steps: int):  # noqa: ANN202
    """A closure that runs ``steps`` SGD steps in one layout and returns the seconds they took."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return time.perf_counter() - t0

    run()  # warm-up: oneDNN primitive creation, allocator
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "se_resnet20"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=32, help="input height and width (default: 32, CIFAR)")
    p.add_argument("--steps", type=int, default=5, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {cpu_model()} ({cpu_capability()}), torch {torch.__version__}, fp32, {torch.get_num_threads()} thread(s), "
        f"batch {args.batch_size}, {args.size}x{args.size}, {args.steps} steps x {args.repeats} alternating repeats"
    )
    print("| model | contiguous img/s | channels_last img/s | channels_last / contiguous |")
    print("|---|---|---|---|")
    for name in args.models:
        runs = {cl: _timer(name, cl, args.batch_size, args.size, args.steps) for cl in (False, True)}
        secs: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for cl, run in runs.items():
                secs[cl].append(run())
        ips = {cl: args.batch_size * args.steps / statistics.median(s) for cl, s in secs.items()}
        print(f"| {name} | {ips[False]:.0f} | {ips[True]:.0f} | {ips[True] / ips[False]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_script("layout.py", main))
