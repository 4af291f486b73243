"""CIFAR-10 training throughput (images/s): the straightforward pipeline vs senet's, for resnet20 and se_resnet20.

* straightforward: torchvision ``ImageFolder`` over the extracted JPEG tree + ``DataLoader`` workers (PIL decode,
  RandomCrop(32, padding=4), flip, ToTensor, Normalize per image) + the fp32 eager model, SGD.
* senet: the decoded uint8 tensor cache + batched on-device augmentation (``senet.data.TensorLoader``) + the trainer's
  speed settings (``amp``/``channels_last`` resolved as ``senet train`` does, optional ``torch.compile``), SGD.

Both run the same optimizer step on the same model definitions; only the input pipeline and the speed settings differ.
Run from the repository root::

    python benchmarks/train_throughput.py --steps 30 --batch-size 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def _step_loop(model, batches, steps, warmup, amp, device):  # noqa: ANN001, ANN201
    from senet.train.evaluate import autocast_context

    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    it = iter(batches)
    n, t0 = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x, y = next(it)
        x, y = x.to(device), y.to(device)
        with autocast_context(device, amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            n += y.numel()
    return n / (time.perf_counter() - t0)


def _forever(loader):  # noqa: ANN001, ANN202
    epoch = 0
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def straightforward(name, root, batch_size, steps, warmup, workers):  # noqa: ANN001, ANN201
    import torchvision
    from torchvision import transforms as T

    from senet.models import create_model

    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        ]
    )
    ds = torchvision.datasets.ImageFolder(os.path.join(root, "train"), transform=tf)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0
    )
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    return _step_loop(model, _forever(dl), steps, warmup, "fp32", torch.device("cpu"))


def senet_pipeline(name, data, batch_size, steps, warmup, compile_):  # noqa: ANN001, ANN201
    from senet.models import create_model
    from senet.train.trainer import resolve_amp

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = resolve_amp("auto", device)
    cl = amp != "fp32"
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    if compile_:
        model = torch.compile(model)
    data.train.channels_last = cl
    return _step_loop(model, _forever(data.train), steps, warmup + (5 if compile_ else 0), amp, device), amp, cl


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", default=None, help="CIFAR-10 archive or folder (default: $SENET_DATA_DIR / ../shared/data)"
    )
    p.add_argument("--models", default="resnet20,se_resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the straightforward pipeline")
    p.add_argument("--compile", action="store_true", help="torch.compile senet's model")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from senet.data import create_loaders, detect_source, resolve_data
    from senet.data.imagenet import folder_root
    from senet.utils.table import print_table

    path = resolve_data(args.data, "cifar10")
    src = detect_source(path)
    root = folder_root(src)  # the straightforward pipeline needs files on disk: a safe, cached extraction
    data = create_loaders(src, batch_size=args.batch_size, device="cuda" if torch.cuda.is_available() else "cpu")
    rows, out = [], {}
    names = args.models.split(",")
    samples: dict[tuple[str, str], list[float]] = {}
    # Alternate the pipelines round by round and report medians: on a shared machine the load drifts, and
    # back-to-back single measurements mostly measure that drift.
    for _ in range(args.rounds):
        for name in names:
            base = straightforward(name, str(root), args.batch_size, args.steps, args.warmup, args.workers)
            fast, amp, cl = senet_pipeline(name, data, args.batch_size, args.steps, args.warmup, args.compile)
            samples.setdefault((name, "straightforward"), []).append(base)
            samples.setdefault((name, "senet"), []).append(fast)
    for name in names:
        base = statistics.median(samples[(name, "straightforward")])
        fast = statistics.median(samples[(name, "senet")])
        out[name] = {
            "straightforward": base,
            "senet": fast,
            "ratio": fast / base,
            "samples": {k: samples[(name, k)] for k in ("straightforward", "senet")},
        }
        rows.append([name, f"{base:.0f}", f"{fast:.0f}", f"{fast / base:.2f}x"])
    print_table(
        [
            "model",
            "straightforward img/s",
            f"senet img/s ({amp}{', CL' if cl else ''}{', compile' if args.compile else ''})",
            "senet / straightforward",
        ],
        rows,
        title=f"CIFAR-10 training throughput, median of {args.rounds} rounds, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads",
    )
    if len(names) == 2:
        for kind in ("straightforward", "senet"):
            r = out[names[1]][kind] / out[names[0]][kind]
            print(f"{names[1]} / {names[0]} ({kind}): {r:.3f}")
            out[f"{names[1]}/{names[0]}_{kind}"] = r
    out.update(
        batch_size=args.batch_size,
        steps=args.steps,
        rounds=args.rounds,
        torch=str(torch.__version__),
        compile=args.compile,
        machine=platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("train_throughput.py", main))
