"""The public airbench94 recipe, re-implemented as one standalone script, on senet's data: what the data allows.

Keller Jordan's airbench94 (github.com/KellerJordan/cifar10-airbench, ``legacy/airbench94.py``; 94.01 % mean over
1,000 runs on the original CIFAR-10) is written here from its description, not copied, with every ingredient kept:

* network: a frozen 2x2 patch-whitening conv (24 filters from the eigenvectors of the 2x2-patch covariance of the
  first 5,000 training images, uncentred, eps 5e-4) with a trained bias, GELU, three groups 64/256/256 of conv ->
  max-pool -> BN -> GELU -> conv -> BN -> GELU (BN eps 1e-12, momentum 0.4 in PyTorch's convention, scales frozen),
  Dirac-initialised convs, a 3x3 max-pool, a bias-free linear layer and logits x 1/9;
* data: fixed CIFAR mean/std; translate by up to 2 px from reflect padding; a random flip per image drawn once, then
  the whole set mirrored on odd epochs (alternating flips); batch 1024, the incomplete batch dropped;
* optimisation: 9.9 epochs (ceil(48 x 9.9) = 476 steps); SGD Nesterov 0.85 on the summed loss with label smoothing
  0.2, lr 11.5 and weight decay 0.0153 per 1024 examples in the decoupled form (lr / (1024 (1 + 1 / 0.15)));
  BN shifts at 64x the lr but the same per-step decay; triangle schedule 0.2 -> 1 at 23 % -> 0.07; the whitening
  bias trains for 3 epochs, then freezes; Lookahead every 5 steps with d = 0.95^5 (t / T)^3 over all float state,
  the net taking the average at the end;
* evaluation: 6-view test-time augmentation (0.5 x the flip-averaged image + 0.25 x each flip-averaged 1-px shift).

Precision: on CUDA as the public code (fp16 weights, BN in fp32, channels_last); on a CPU fp32 weights under bf16
autocast (``--precision`` changes it). Timing as the public code: ``train_s`` covers the whitening init and the
training steps, ``eval_s`` the test-time-augmented evaluation; data loading and decoding are excluded.

Data: any source senet reads (``--data``: the CIFAR-10 JPEG archive, an ImageFolder tree, or torchvision's
``cifar-10-batches-py`` pickles), decoded once into senet's uint8 tensor cache. A pickle folder keeps its stored
order, as the public code does; JPEG trees are stored class by class, so their training images are put in one fixed
random order (generator seed 0) first, so that "the first 5,000" is a uniform sample as it is in the original.

One JSON line per seed. Run from the repository root::

    python benchmarks/airbench_reference.py --seeds 0-2 --ledger results/speedrun.jsonl --experiment speedrun
    python benchmarks/airbench_reference.py --tiny        # generated images, 1 epoch: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

# Idle OpenMP threads sleep instead of spinning: several times faster on a shared 2-core machine; set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

MODEL = "airbench94-reference"
LABEL = "reference (public recipe, exact)"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Hyp:
    """airbench94's hyperparameters (its ``hyp`` dict), in its own units."""

    epochs: float = 9.9
    batch_size: int = 1024
    lr: float = 11.5  # per 1024 examples, decoupled from the momentum
    momentum: float = 0.85
    weight_decay: float = 0.0153  # per 1024 examples, decoupled from the lr
    bias_scaler: float = 64.0  # lr multiplier of the BN shifts (not of their decay)
    label_smoothing: float = 0.2
    whiten_bias_epochs: int = 3
    translate: int = 2
    widths: tuple[int, int, int] = (64, 256, 256)
    bn_decay: float = 0.6  # running-stat decay; PyTorch's momentum is 1 - this
    logit_scale: float = 1 / 9
    whiten_images: int = 5000
    whiten_eps: float = 5e-4
    lookahead_every: int = 5
    lookahead_decay: float = 0.95
    warmup_frac: float = 0.23
    lr_start: float = 0.2
    lr_end: float = 0.07
    eval_batch_size: int = 2000


# ----------------------------------------------------------------------------------------------------------- network


def _conv(cin: int, cout: int, k: int = 3, padding: int = 1, bias: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, padding=padding, bias=bias)
    with torch.no_grad():
        if bias:
            conv.bias.zero_()
        nn.init.dirac_(conv.weight[:cin])  # the first `cin` filters pass their input through at step 0
    return conv


def _bn(channels: int, decay: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=1 - decay)
    bn.weight.requires_grad_(False)
    return bn


class _Scale(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def make_net(hyp: Hyp, num_classes: int = 10) -> nn.Sequential:
    """The airbench94 network; ``net[0]`` is the whitening conv (weights frozen, bias trained)."""
    layers: list[nn.Module] = [_conv(3, 24, k=2, padding=0, bias=True), nn.GELU()]
    prev = 24
    for w in hyp.widths:
        layers += [
            _conv(prev, w),
            nn.MaxPool2d(2),
            _bn(w, hyp.bn_decay),
            nn.GELU(),
            _conv(w, w),
            _bn(w, hyp.bn_decay),
            nn.GELU(),
        ]
        prev = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(prev, num_classes, bias=False), _Scale(hyp.logit_scale)]
    net = nn.Sequential(*layers)
    net[0].weight.requires_grad_(False)
    return net


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float) -> None:
    """Filters = eigenvectors of the uncentred 2x2-patch covariance / sqrt(eigenvalue + eps), largest first, and
    their negatives (float32, as the public code)."""
    x = images.float()
    c = x.shape[1]
    patches = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
    cov = patches.T @ patches / patches.shape[0]
    evals, evecs = torch.linalg.eigh(cov, UPLO="U")
    evals, evecs = evals.flip(0), evecs.flip(1)
    filt = (evecs.T / torch.sqrt(evals + eps)[:, None]).reshape(c * 4, c, 2, 2)
    conv.weight.copy_(torch.cat([filt, -filt]).to(conv.weight))


# -------------------------------------------------------------------------------------------------------------- data


@dataclass
class Data:
    """uint8 N x 3 x 32 x 32 images and int64 labels, on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str
    kind: str


def load_data(path: str | None, cache_dir: str | None, device: torch.device) -> Data:
    """CIFAR-10 through senet's tensor cache (JPEG archive, ImageFolder tree or torchvision pickles)."""
    from senet.data import detect_source, eval_split, load_tensor_split, resolve_data

    where = resolve_data(path, "cifar10", False)
    src = detect_source(where)
    tr = load_tensor_split(src, "train", cache_dir)
    te = load_tensor_split(src, eval_split(src), cache_dir)
    tx, ty = tr.images, tr.labels
    if src.kind != "pickle":
        # Files come class by class; the original batches are in a random order, which the whitening init relies on.
        order = torch.randperm(len(ty), generator=torch.Generator().manual_seed(0))
        tx, ty = tx[order], ty[order]
    return Data(tx.to(device), ty.to(device), te.images.to(device), te.labels.to(device), where.name, src.kind)


def generated_data(device: torch.device, n_train: int = 512, n_test: int = 256, classes: int = 10) -> Data:
    """Noise images whose class shows as a colour tint (learnable in a few steps): for ``--tiny`` without data."""
    g = torch.Generator().manual_seed(0)
    palette = torch.randint(-60, 61, (classes, 3, 1, 1), generator=g)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        x = 128 + torch.randint(-50, 51, (n, 3, 32, 32), generator=g) + palette[y]
        return x.clamp(0, 255).to(torch.uint8), y

    (tx, ty), (ex, ey) = make(n_train), make(n_test)
    return Data(tx.to(device), ty.to(device), ex.to(device), ey.to(device), "generated", "generated")


class AlternatingFlipLoader:
    """Training batches as the public loader makes them: reflect-padded images cropped at a random offset in
    [-translate, translate]^2 drawn per image per epoch, a random flip per image drawn once, the whole set mirrored on
    odd epochs, a fresh shuffle per epoch, the incomplete batch dropped. Randomness comes from ``gen`` (CPU)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, hyp: Hyp, gen: torch.Generator, dtype: Any):
        self.labels, self.hyp, self.gen, self.dtype = labels, hyp, gen, dtype
        self.r = hyp.translate
        self.device = images.device
        # Reflect padding is not implemented for integers; values stay exact through float.
        self.padded = F.pad(images.float(), (self.r,) * 4, mode="reflect").to(torch.uint8)
        self.n, self.size = len(labels), images.shape[-1]
        self.flip0 = (torch.rand(self.n, generator=gen) < 0.5).to(self.device)
        self.mean = torch.tensor(CIFAR_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(CIFAR_STD, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.n // self.hyp.batch_size

    def epoch(self, epoch: int):  # noqa: ANN201 - a generator of (x, y)
        shifts = torch.randint(0, 2 * self.r + 1, (self.n, 2), generator=self.gen).to(self.device)
        flip = self.flip0 ^ bool(epoch % 2)
        order = torch.randperm(self.n, generator=self.gen).to(self.device)
        s, bs = self.size, self.hyp.batch_size
        ar = torch.arange(s, device=self.device)
        for b in range(len(self)):
            idx = order[b * bs : (b + 1) * bs]
            x = self.padded[idx]
            oy, ox = shifts[idx, 0], shifts[idx, 1]
            rows = (oy[:, None] + ar).view(-1, 1, s, 1).expand(-1, 3, s, s + 2 * self.r)
            cols = (ox[:, None] + ar).view(-1, 1, 1, s).expand(-1, 3, s, s)
            x = x.gather(2, rows).gather(3, cols)
            x = torch.where(flip[idx].view(-1, 1, 1, 1), x.flip(3), x)
            yield normalize(x, self.mean, self.std, self.dtype), self.labels[idx]


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dtype: Any) -> torch.Tensor:
    x = (x.float() / 255 - mean) / std
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------------------- training


class Lookahead:
    """Every ``every`` steps: ema <- lerp(ema, net, 1 - d), net <- ema, over every float state entry."""

    def __init__(self, net: nn.Module) -> None:
        self.ema = {k: v.clone() for k, v in net.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, net: nn.Module, d: float) -> None:
        for k, v in net.state_dict().items():
            if k in self.ema:
                self.ema[k].lerp_(v, 1 - d)
                v.copy_(self.ema[k])


def lr_factor(step: int, total: int, hyp: Hyp) -> float:
    """The triangle: lr_start -> 1 over the first warmup_frac of the steps, then -> lr_end at the last."""
    up = int(total * hyp.warmup_frac)
    if step < up:
        f = step / up
        return hyp.lr_start * (1 - f) + f
    f = (step - up) / (total - up)
    return (1 - f) + hyp.lr_end * f


class Precision:
    """fp16: the net in half precision with BN in fp32 (the public code, CUDA); bf16: bf16 autocast; fp32."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name == "auto":
            name = "fp16" if device.type == "cuda" else "bf16"
        if name == "fp16" and device.type != "cuda":
            raise SystemExit("airbench_reference: --precision fp16 needs CUDA; use bf16 or fp32 on a CPU")
        self.name, self.device = name, device
        self.input_dtype = torch.half if name == "fp16" else torch.float32

    def prepare(self, net: nn.Module) -> nn.Module:
        net = net.to(self.device, memory_format=torch.channels_last)
        if self.name == "fp16":
            net = net.half()
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.float()
        return net

    def autocast(self) -> Any:
        import contextlib

        if self.name == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        # The public code takes the loss of the fp16 logits as they are; under autocast they are cast to fp32.
        return out if self.name == "fp16" else out.float()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def tta_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """0.5 x mirror-averaged image + 0.5 x the mean of the mirror-averaged 1-px shifts (up-left and down-right)."""

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * net(v).float() + 0.5 * net(v.flip(-1)).float()

    s = x.shape[-1]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., :s, :s], padded[..., 2 : s + 2, 2 : s + 2]]
    return 0.5 * mirror(x) + 0.25 * (mirror(shifted[0]) + mirror(shifted[1]))


@torch.no_grad()
def evaluate(net: nn.Module, data: Data, hyp: Hyp, prec: Precision, tta: bool, limit: int = 0) -> tuple[float, float]:
    """Top-1 and top-5 (percent) on the test set, with or without test-time augmentation."""
    net.eval()
    mean = torch.tensor(CIFAR_MEAN, device=data.test_x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=data.test_x.device).view(1, 3, 1, 1)
    xs, ys = (data.test_x[:limit], data.test_y[:limit]) if limit else (data.test_x, data.test_y)
    top1 = top5 = 0
    for xb, yb in zip(xs.split(hyp.eval_batch_size), ys.split(hyp.eval_batch_size)):
        x = normalize(xb, mean, std, prec.input_dtype)
        with prec.autocast():
            logits = tta_logits(net, x) if tta else net(x).float()
        best = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += int((best[:, 0] == yb).sum())
        top5 += int((best == yb[:, None]).any(1).sum())
    return 100.0 * top1 / len(ys), 100.0 * top5 / len(ys)


def run(
    data: Data,
    hyp: Hyp,
    seed: int,
    prec: Precision,
    *,
    max_steps: int = 0,
    eval_each_epoch: bool = False,
    say: Any = print,
) -> dict[str, Any]:
    """One training run of the recipe, then the TTA evaluation; ``max_steps`` cuts it short (GPU warm-up)."""
    device = data.train_x.device
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = prec.prepare(make_net(hyp))
    loader = AlternatingFlipLoader(data.train_x, data.train_y, hyp, gen, prec.input_dtype)
    if len(loader) == 0:
        raise SystemExit(f"airbench_reference: batch size {hyp.batch_size} is larger than the {loader.n} images")
    total = math.ceil(len(loader) * hyp.epochs)
    kilostep = 1024 * (1 + 1 / (1 - hyp.momentum))
    lr = hyp.lr / kilostep  # for PyTorch SGD on the summed loss
    wd = hyp.weight_decay * hyp.batch_size / kilostep  # the decay taken off per step, for every parameter
    norm_ids = {id(m.bias) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    trainable = [p for p in net.parameters() if p.requires_grad]
    shifts = [p for p in trainable if id(p) in norm_ids]
    others = [p for p in trainable if id(p) not in norm_ids]  # conv and linear weights, the whitening bias
    lr_shift = lr * hyp.bias_scaler
    opt = torch.optim.SGD(
        [
            {"params": shifts, "lr": lr_shift, "weight_decay": wd / lr_shift},
            {"params": others, "lr": lr, "weight_decay": wd / lr},
        ],
        momentum=hyp.momentum,
        nesterov=True,
    )
    base_lrs = [g["lr"] for g in opt.param_groups]

    def set_lr(step: int) -> None:
        for g, b in zip(opt.param_groups, base_lrs):
            g["lr"] = b * lr_factor(step, total, hyp)

    set_lr(0)
    # The public code takes its Lookahead copy before the whitening init; the whitening filters (never trained)
    # then differ from the data's by d(5) x (init - data) ~ 1e-6 after the first pull. Kept for exactness.
    lookahead = Lookahead(net)
    whiten = net[0]

    _sync(device)
    t0 = time.perf_counter()
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    init_whitening(whiten, normalize(data.train_x[: hyp.whiten_images], mean, std, torch.float32), hyp.whiten_eps)
    _sync(device)
    train_s = time.perf_counter() - t0

    step, last_loss = 0, float("nan")
    limit = min(total, max_steps) if max_steps else total
    for epoch in range(math.ceil(hyp.epochs)):
        whiten.bias.requires_grad_(epoch < hyp.whiten_bias_epochs)
        net.train()
        _sync(device)
        t0 = time.perf_counter()
        for x, y in loader.epoch(epoch):
            with prec.autocast():
                out = net(x)
            loss = F.cross_entropy(prec.logits(out), y, label_smoothing=hyp.label_smoothing, reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            set_lr(step)
            if step % hyp.lookahead_every == 0:
                lookahead.update(net, hyp.lookahead_decay**hyp.lookahead_every * (step / total) ** 3)
            if step >= limit:
                lookahead.update(net, 1.0)  # the net takes the average
                break
        _sync(device)
        train_s += time.perf_counter() - t0
        last_loss = float(loss.detach()) / len(y)
        if eval_each_epoch:  # untimed, as in the public code; evaluation changes no state
            acc = evaluate(net, data, hyp, prec, False)[0]
            say(f"  epoch {epoch + 1}: train loss {last_loss:.4f}, test {acc:.2f} % (no TTA)")
        if step >= limit:
            break

    _sync(device)
    t0 = time.perf_counter()
    top1, top5 = evaluate(net, data, hyp, prec, True, limit=hyp.eval_batch_size if max_steps else 0)
    _sync(device)
    eval_s = time.perf_counter() - t0
    return {
        "top1": round(top1, 4),
        "top5": round(top5, 4),
        "train_s": round(train_s, 3),
        "eval_s": round(eval_s, 3),
        "steps": step,
        "last_train_loss": round(last_loss, 4),
    }


# ----------------------------------------------------------------------------------------------------- output, CLI


def _recipe(hyp: Hyp, data: Data) -> dict[str, Any]:
    """What the ledger's recipe hash covers: the hyperparameters and the data (the precision is the ``amp`` column,
    as for senet's own runs; these keys are none of those the ledger leaves out of its hash)."""
    return {
        "recipe": "airbench94",
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(hyp).items()},
        "data_source": data.source,
        "train_images": len(data.train_y),
    }


def _recipe_hash(recipe: dict[str, Any]) -> str:
    from senet.train.ledger import recipe_hash

    return recipe_hash(recipe)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data", default=None, help="CIFAR-10: archive, ImageFolder tree or pickle folder (default: shared)"
    )
    p.add_argument("--cache-dir", default=None, help="senet's tensor cache (default: $SENET_CACHE_DIR or ~/.cache)")
    p.add_argument("--seeds", default="0", help="e.g. 0-2 or 0,3 (default: 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp16", "bf16", "fp32"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--tiny", action="store_true", help="512 images (generated unless --data), 1 epoch, batch 32")
    p.add_argument("--epochs", type=float, default=None, help="override 9.9 (not the public recipe)")
    p.add_argument("--batch-size", type=int, default=None, help="override 1024 (not the public recipe)")
    p.add_argument("--warmup", action="store_true", help="an untimed 10-step run first (CUDA autotuning)")
    p.add_argument("--eval-each-epoch", action="store_true", help="print untimed test accuracy after each epoch")
    p.add_argument("--ledger", default=None, help="append one row per seed to this results ledger")
    p.add_argument("--experiment", default="speedrun", help="the ledger's experiment name (default: speedrun)")
    args = p.parse_args(argv)

    from senet.train.sweep import parse_seeds as _seeds  # the sweeps' seed syntax: 0-4, 0,2,5
    from senet.utils.hardware import machine_info

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    prec = Precision(args.precision, device)
    hyp = Hyp()
    if args.tiny:
        hyp = Hyp(epochs=1, batch_size=32, eval_batch_size=256)
        data = generated_data(device) if args.data is None else _subset(load_data(args.data, args.cache_dir, device))
    else:
        data = load_data(args.data, args.cache_dir, device)
    if args.epochs is not None or args.batch_size is not None:
        hyp = Hyp(
            **{**asdict(hyp), "epochs": args.epochs or hyp.epochs, "batch_size": args.batch_size or hyp.batch_size}
        )
    recipe = _recipe(hyp, data)
    rhash = _recipe_hash(recipe)
    machine = machine_info(device)
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr, results on stdout

    done: set[tuple[str, int, str, str, str, str]] = set()
    if args.ledger:
        from senet.train.ledger import done_keys

        done = done_keys(args.ledger)
    if args.warmup:
        run(data, hyp, 0, prec, max_steps=10, say=say)
    for seed in _seeds(args.seeds):
        if (MODEL, seed, rhash, prec.name, "none", device.type) in done:
            say(f"airbench_reference: seed {seed} is already in {args.ledger}; skipped")
            continue
        say(f"airbench_reference: seed {seed}, {len(data.train_y)} train images from {data.source}, {prec.name}")
        res = run(data, hyp, seed, prec, eval_each_epoch=args.eval_each_epoch, say=say)
        row = _row(args, seed, rhash, res, machine, data, prec, hyp)
        print(json.dumps(row), flush=True)
        if args.ledger:
            from senet.train.ledger import append_row

            append_row(args.ledger, row)
    return 0


def _subset(data: Data, n_train: int = 512, n_test: int = 256) -> Data:
    """``--tiny`` on real data: the first images (the training order is already shuffled or original)."""
    return Data(
        data.train_x[:n_train], data.train_y[:n_train], data.test_x[::40][:n_test], data.test_y[::40][:n_test],
        data.source, data.kind,
    )  # fmt: skip


def _row(
    args: argparse.Namespace,
    seed: int,
    rhash: str,
    res: dict[str, Any],
    machine: dict[str, Any],
    data: Data,
    prec: Precision,
    hyp: Hyp,
) -> dict[str, Any]:
    from senet.train.trainer import code_version
    from senet.utils.hardware import machine_label

    version = code_version()
    commit = version.get("git_commit", "unknown") + ("+dirty" if version.get("git_dirty") else "")
    return {
        "experiment": args.experiment,
        "model": MODEL,
        "kind": "none",
        "seed": seed,
        "recipe_hash": rhash,
        "commit": commit,
        "machine": machine_label(machine),
        "device": "cuda" if machine.get("gpu") else "cpu",
        "amp": prec.name,
        "train_s": res["train_s"],
        "eval_s": res["eval_s"],
        "top1": res["top1"],
        "top5": res["top5"],
        "label": LABEL if hyp == Hyp() else f"{MODEL} (modified: not the public budget)",
        "exact_recipe": hyp == Hyp(),
        "cpu_capability": machine.get("cpu_capability"),
        "threads": machine.get("threads"),
        "torch": version.get("torch"),
        "epochs": hyp.epochs,
        "batch_size": hyp.batch_size,
        "steps": res["steps"],
        "train_images": len(data.train_y),
        "test_images": len(data.test_y),
        "data": data.source,
        "last_train_loss": res["last_train_loss"],
        "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }


if __name__ == "__main__":
    from senet.cli import run_script

    sys.exit(run_script("airbench_reference.py", main))
