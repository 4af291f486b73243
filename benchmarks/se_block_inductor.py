"""One se_resnet50 bottleneck vs the plain one under Inductor with freezing: CPU time and (optionally) the code.

    python benchmarks/se_block_inductor.py                               # stage-1 and stage-3 blocks, batch 1
    TORCH_LOGS=output_code python benchmarks/se_block_inductor.py 2> code.log   # also the generated code

BN folded, channels_last, one thread, median of ``--iters`` calls (``time.thread_time``: work done by this thread,
not time spent waiting for a core on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch._inductor.config as inductor_config

from senet.export import fold_bn
from senet.models import create_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    inductor_config.freezing = True  # torch.compile(options={"freezing": True}) does not enable it (torch 2.14.1)
    torch.manual_seed(0)
    for stage, shape in (("layer1", (256, 56, 56)), ("layer3", (1024, 14, 14))):
        ms = {}
        for name in ("resnet50", "se_resnet50"):
            block = getattr(fold_bn(create_model(name).eval()), stage)[1]
            x = torch.randn(args.batch, *shape).contiguous(memory_format=torch.channels_last)
            compiled = torch.compile(block)
            with torch.no_grad():
                compiled(x)
                times = []
                for _ in range(args.iters):
                    t = time.thread_time()
                    compiled(x)
                    times.append(time.thread_time() - t)
            ms[name] = 1e3 * statistics.median(times)
            print(f"{stage}[1] {name:<12} {ms[name]:.3f} ms CPU", flush=True)
        print(f"{stage}[1] SE/plain {ms['se_resnet50'] / ms['resnet50']:.3f}", flush=True)


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("se_block_inductor.py", main))
