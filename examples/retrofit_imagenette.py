"""Retrofit SE into a trained ResNet-18 and fine-tune it: the experiment recorded in docs/retrofit.md.

1. Train torchvision's ResNet-18 from scratch on Imagenette at low resolution (CPU budget).
2. ``senet.retrofit(model, "se", init="identity")``: accuracy right after insertion must be unchanged.
3. Fine-tune: ``--frozen-epochs`` with only the new SE parameters + classifier trainable, then ``--finetune-epochs``
   with everything. With ``--control`` the un-retrofitted network gets the same extra epochs, so the gain from SE
   can be told apart from the gain of training longer.

Images are decoded once from the archive (tar members read in place, nothing extracted) into uint8 tensors at
``--cache-size`` pixels; training uses random crops of ``--size`` + flips on those tensors. ``--bf16`` autocast
only where the CPU has bf16 units.

    python examples/retrofit_imagenette.py --data ../shared/data/imagenette-224.tar.gz --out runs/retrofit
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import tarfile
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as TF

import senet
from senet.retrofit import freeze_backbone, unfreeze

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def load_imagenette(archive: str, size: int, limit: int = 0) -> tuple[dict[str, tuple], list[str]]:
    """``{split: (uint8 images (N, 3, size, size), labels)}`` and class wnids, read from the tar in one pass."""
    raw: dict[str, list[tuple[bytes, str]]] = {"train": [], "val": []}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in raw:
                continue
            if limit and sum(w == parts[2] for _, w in raw[parts[1]]) >= limit:
                continue  # a balanced subset: at most `limit` images per class
            raw[parts[1]].append((tar.extractfile(member).read(), parts[2]))
    classes = sorted({wnid for items in raw.values() for _, wnid in items})  # sorted wnids, as ImageFolder
    out = {}
    for split, items in raw.items():
        imgs = []
        for i in range(0, len(items), 256):
            chunk = [decode_jpeg(torch.frombuffer(bytearray(d), dtype=torch.uint8), mode=ImageReadMode.RGB)
                     for d, _ in items[i : i + 256]]  # fmt: skip
            # Batched uint8 antialiased resize (the archive's images are all 224x224); odd sizes go one by one.
            if len({im.shape for im in chunk}) == 1:
                imgs.append(TF.resize(torch.stack(chunk), [size, size], antialias=True))
            else:
                imgs += [TF.resize(im, [size, size], antialias=True)[None] for im in chunk]
        labels = torch.tensor([classes.index(w) for _, w in items])
        out[split] = (torch.cat(imgs), labels)
    return out, classes


def batches(x: torch.Tensor, y: torch.Tensor, bs: int, size: int, train: bool, gen: torch.Generator):
    n = x.shape[0]
    idx = torch.randperm(n, generator=gen) if train else torch.arange(n)
    for i in range(0, n, bs):
        j = idx[i : i + bs]
        xb = x[j]
        pad = x.shape[-1] - size
        if train:
            # One random crop offset and flip per batch keeps this a couple of tensor ops (no per-image Python).
            dy, dx = (int(v) for v in torch.randint(0, pad + 1, (2,), generator=gen))
            xb = xb[..., dy : dy + size, dx : dx + size]
            flip = torch.rand(xb.shape[0], generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
        else:
            o = pad // 2
            xb = xb[..., o : o + size, o : o + size]
        xb = (xb.float() - MEAN) / STD
        yield xb, y[j]


@torch.no_grad()
def evaluate_fp32(model, x, y, size, bs=256) -> tuple[float, torch.Tensor]:
    """Accuracy and logits in fp32 (used to show retrofit changes nothing)."""
    model.eval()
    outs = [model(xb) for xb, _ in batches(x, y, bs, size, False, torch.Generator())]
    logits = torch.cat(outs)
    return (logits.argmax(1) == y).float().mean().item(), logits


def train(model, x, y, epochs, lr, wd, bs, size, seed, log, tag, bf16=False):
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        momentum=0.9,
        nesterov=True,
    )
    steps = epochs * math.ceil(x.shape[0] / bs)
    warm = min(steps // 10, 200)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))),
    )
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        t0, seen, loss_sum = time.time(), 0, 0.0
        for xb, yb in batches(x, y, bs, size, True, gen):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += xb.shape[0]
            loss_sum += loss.item() * xb.shape[0]
        dt = time.time() - t0
        log(f"[{tag}] epoch {epoch + 1}/{epochs} loss {loss_sum / seen:.4f} {seen / dt:.0f} img/s {dt:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/imagenette-224.tar.gz", metavar="TAR")
    ap.add_argument("--out", default="runs/retrofit_imagenette", metavar="DIR")
    ap.add_argument("--size", type=int, default=112, help="train/eval crop (default: 112)")
    ap.add_argument("--cache-size", type=int, default=128, help="decoded image size (default: 128)")
    ap.add_argument("--epochs", type=int, default=8, help="from-scratch epochs (default: 8)")
    ap.add_argument("--frozen-epochs", type=int, default=1, help="epochs training only SE + fc (default: 1)")
    ap.add_argument("--finetune-epochs", type=int, default=3, help="epochs training everything (default: 3)")
    ap.add_argument("--lr", type=float, default=0.2, help="from-scratch peak lr (default: 0.2)")
    ap.add_argument("--ft-lr", type=float, default=0.02, help="fine-tuning peak lr (default: 0.02)")
    ap.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    ap.add_argument("--wd", type=float, default=5e-5, help="weight decay (default: 5e-5)")
    ap.add_argument("--seed", type=int, default=0, help="(default: 0)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    ap.add_argument("--limit", type=int, default=0, help="use at most N images per class and split (default: 0 = all)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for training (fast only with AMX/AVX512-BF16)")
    ap.add_argument("--control", action="store_true", help="also give the plain network the same extra epochs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "log.txt")

    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(log_path, "a") as f:
            f.write(msg + "\n")

    log(f"torch {torch.__version__} torchvision {torchvision.__version__} senet {senet.__version__} args {vars(args)}")
    t_all = time.time()
    t = time.time()
    data, classes = load_imagenette(args.data, args.cache_size, args.limit)
    (xtr, ytr), (xva, yva) = data["train"], data["val"]
    log(f"decoded {len(xtr)} train / {len(xva)} val images at {args.cache_size}px in {time.time() - t:.0f} s")

    results: dict[str, object] = {"args": vars(args)}
    model = torchvision.models.resnet18(num_classes=len(classes))
    t = time.time()
    train(
        model,
        xtr,
        ytr,
        args.epochs,
        args.lr,
        args.wd,
        args.batch_size,
        args.size,
        args.seed,
        log,
        "scratch",
        args.bf16,
    )
    results["scratch_train_s"] = round(time.time() - t)
    acc0, logits0 = evaluate_fp32(model, xva, yva, args.size)
    log(f"ResNet-18 after {args.epochs} epochs: val top-1 {acc0:.4f}")
    results["acc_before"] = acc0
    base_state = copy.deepcopy(model.state_dict())
    torch.save(base_state, os.path.join(args.out, "resnet18_base.pt"))

    model, report = senet.retrofit(model, "se", init="identity")
    log(report.summary())
    acc1, logits1 = evaluate_fp32(model, xva, yva, args.size)
    diff = (logits1 - logits0).abs().max().item()
    log(f"right after retrofit: val top-1 {acc1:.4f}, max |logit change| {diff:.3g}")
    results.update(acc_after_insert=acc1, max_logit_change=diff, params_added=report.params_added)

    t = time.time()
    if args.frozen_epochs:
        trainable = freeze_backbone(model)
        log(f"phase 1: {len(trainable)} trainable tensors (SE + fc)")
        train(model, xtr, ytr, args.frozen_epochs, args.ft_lr * 5, 0.0, args.batch_size, args.size, args.seed + 1,
              log, "se+fc", args.bf16)  # fmt: skip
        unfreeze(model)
        results["acc_after_frozen"] = evaluate_fp32(model, xva, yva, args.size)[0]
        log(f"after SE+fc phase: val top-1 {results['acc_after_frozen']:.4f}")
    train(model, xtr, ytr, args.finetune_epochs, args.ft_lr, args.wd, args.batch_size, args.size, args.seed + 2, log,
          "finetune", args.bf16)  # fmt: skip
    results["finetune_s"] = round(time.time() - t)
    results["acc_finetuned"] = evaluate_fp32(model, xva, yva, args.size)[0]
    gammas = [model.get_submodule(s.path).gamma.item() for s in report.sites]
    results["gammas"] = [round(g, 4) for g in gammas]
    log(f"SE-ResNet-18 after fine-tuning: val top-1 {results['acc_finetuned']:.4f}; gammas {results['gammas']}")

    if args.control:
        plain = torchvision.models.resnet18(num_classes=len(classes))
        plain.load_state_dict(base_state)
        t = time.time()
        total = args.frozen_epochs + args.finetune_epochs
        train(
            plain,
            xtr,
            ytr,
            total,
            args.ft_lr,
            args.wd,
            args.batch_size,
            args.size,
            args.seed + 2,
            log,
            "control",
            args.bf16,
        )
        results["control_s"] = round(time.time() - t)
        results["acc_control"] = evaluate_fp32(plain, xva, yva, args.size)[0]
        log(f"control (plain ResNet-18, same extra epochs): val top-1 {results['acc_control']:.4f}")

    results["wall_s"] = round(time.time() - t_all)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "gammas"}))


if __name__ == "__main__":
    main()
