"""What a training run optimises and reports: one strategy object per task, called by the trainer.

* :class:`ClassifyTask` (``task: classify``, the default): cross-entropy on labels, top-1/top-5 accuracy.
* :class:`DenoiseTask` (``task: denoise``): synthetic Gaussian noise on random crops of clean images (any source
  :mod:`senet.data` reads; labels are ignored), an L2 or L1 loss on the denoised image, and PSNR / SSIM
  (torchmetrics) at each evaluation noise level beside the noisy input's PSNR.

The trainer owns everything else (data, optimizer, schedule, AMP, checkpoints, resume, DDP, progress, ledger), so a
task is only: which loader settings it needs, how a batch becomes a loss, what a training epoch and an evaluation
report, and which of those go into ``result.json``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from senet.errors import SenetError
from senet.utils.optional import require

from .distributed import DistInfo, all_reduce_sum
from .evaluate import autocast_context, evaluate

__all__ = ["ClassifyTask", "DenoiseTask", "create_task", "sigma_range", "psnr", "ssim", "TASKS"]

TASKS = ("classify", "denoise")


def sigma_range(value: Any) -> tuple[float, float]:
    """``25`` -> ``(25, 25)``; ``"15-50"``, ``"[15, 50]"`` or ``[15, 50]`` -> ``(15, 50)`` (0-255 pixel units).

    Raises:
        SenetError: not a number or a pair ``lo <= hi`` of non-negative numbers.
    """
    v = value
    if isinstance(v, str):
        text = v.strip().strip("[]()")
        parts = [p for p in text.replace(",", "-").split("-") if p.strip()] if text else []
        try:
            v = [float(p) for p in parts]
        except ValueError:
            v = None
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [float(v)]
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = [v[0], v[0]]
    ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
    if not ok or not 0 <= v[0] <= v[1]:  # type: ignore[index]
        raise SenetError(f"noise_sigma must be a number (25) or a range lo-hi (15-50 or [15, 50]), got {value!r}")
    return float(v[0]), float(v[1])  # type: ignore[index]


class ClassifyTask:
    """Image classification: cross-entropy (with label smoothing), top-1 / top-5 accuracy."""

    name = "classify"
    #: create_loaders settings this task forces (none: the config's own).
    loader_overrides: dict[str, Any] = {}

    def __init__(self, cfg: Any) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.tta = cfg.tta

    def model_classes(self, num_classes: int) -> int | None:
        return num_classes

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[Any, Any]:
        """``(loss, output)`` of one training batch (called inside the trainer's autocast)."""
        logits = model(x)
        return self.criterion(logits.float(), y), logits

    def accumulate(self, sums: torch.Tensor, loss: torch.Tensor, out: Any, y: torch.Tensor) -> int:
        """Add the batch to the epoch's running ``sums`` (3 numbers); returns the batch's image count."""
        n = y.numel()
        sums[0] += loss.detach().double() * n
        sums[1] += (out.argmax(1) == y).sum()
        sums[2] += n
        return n

    def train_columns(self, sums: torch.Tensor) -> dict[str, float]:
        return {"train_loss": float(sums[0] / sums[2]), "train_top1": float(100 * sums[1] / sums[2])}

    def evaluate(
        self, model: nn.Module, loader: Any, num_classes: int, *, device: torch.device, amp: str, dist_info: DistInfo
    ) -> dict[str, Any]:
        return evaluate(
            model, loader, num_classes, device=device, amp=amp, dist_info=dist_info, with_confusion=False, tta=self.tta
        )

    def eval_columns(self, r: dict[str, Any], prefix: str) -> dict[str, float]:
        if prefix == "eval":
            return {"eval_loss": r["loss"], "eval_top1": r["top1"], "eval_top5": r["top5"]}
        return {f"{prefix}_top1": r["top1"], f"{prefix}_top5": r["top5"]}

    def log_parts(self, row: dict[str, Any]) -> list[str]:
        parts = [f"loss {row['train_loss']:.4f}", f"train {row['train_top1']:.2f}%"]
        if "eval_top1" in row:
            parts.append(f"test {row['eval_top1']:.2f}% (top-5 {row['eval_top5']:.2f}%)")
        if "ema_top1" in row:
            parts.append(f"ema {row['ema_top1']:.2f}%")
        return parts

    def result_fields(self, final: dict[str, Any]) -> dict[str, Any]:
        keys = ("eval_top1", "eval_top5", "ema_top1", "train_loss")
        out = {k.replace("eval_", ""): round(final[k], 4) for k in keys if k in final}
        if "top1" in out:
            out["top1_err"] = round(100 - out["top1"], 4)
        return out


def _sig(s: float) -> str:
    return f"{s:g}"


class DenoiseTask:
    """Gaussian denoising: ``noisy = clean + N(0, sigma^2)`` on random ``crop`` x ``crop`` patches, in [0, 1] units.

    ``sigma`` is drawn per image, uniformly in ``noise_sigma``'s range (a fixed value: non-blind). The model maps the
    noisy patch to the clean one; the loss is the mean squared (``l2``, DnCNN's) or absolute (``l1``) error.
    Noise and crops come from generators seeded with ``(seed, rank, epoch, step)``, so a resumed run sees exactly the
    batches an uninterrupted one would. Evaluation adds noise at each of ``eval_sigmas`` (seeded by sigma and batch,
    the same noise for every model) to the whole held-out images and reports the mean per-image PSNR and SSIM of the
    clamped output and the PSNR of the (unclipped) noisy input. Columns at the primary sigma (the training sigma, or
    for a range the eval sigma nearest its middle) have no suffix: ``eval_psnr``, ``eval_psnr_noisy``, ``eval_ssim``.
    """

    name = "denoise"
    # Images in [0, 1] (mean 0, std 1 "normalisation"), no zero-padded translation or cutout: both would put black
    # regions into the clean target.
    loader_overrides: dict[str, Any] = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "pad": 0, "cutout": 0}

    def __init__(self, cfg: Any, rank: int = 0) -> None:
        _torchmetrics()  # fail at the start of the run, not at its first evaluation
        self.sigma = sigma_range(cfg.noise_sigma)
        self.crop = int(cfg.crop)
        self.loss_name = cfg.denoise_loss
        self.seed, self.rank = int(cfg.seed), int(rank)
        mid = 0.5 * (self.sigma[0] + self.sigma[1])
        sigmas = sorted({float(s) for s in cfg.eval_sigmas})
        if self.sigma[0] == self.sigma[1] and self.sigma[0] not in sigmas:
            sigmas = sorted([*sigmas, self.sigma[0]])
        self.eval_sigmas = sigmas
        self.primary = min(sigmas, key=lambda s: (abs(s - mid), s))

    def model_classes(self, num_classes: int) -> int | None:
        return None

    def _generator(self, device: torch.device, epoch: int, step: int) -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed((self.seed * 1_000_003 + self.rank * 7_919 + epoch * 10_007 + step + 31) % (2**62))
        return g

    def _crop(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        k = self.crop
        if k <= 0 or (k >= h and k >= w):
            return x
        kh, kw = min(k, h), min(k, w)
        oy = torch.randint(0, h - kh + 1, (n,), generator=g, device=x.device)
        ox = torch.randint(0, w - kw + 1, (n,), generator=g, device=x.device)
        iy = (oy[:, None] + torch.arange(kh, device=x.device)).view(n, 1, kh, 1).expand(n, c, kh, w)
        ix = (ox[:, None] + torch.arange(kw, device=x.device)).view(n, 1, 1, kw).expand(n, c, kh, kw)
        return x.gather(2, iy).gather(3, ix)

    def add_noise(self, clean: torch.Tensor, g: torch.Generator, sigma: float | None = None) -> torch.Tensor:
        """``clean`` + Gaussian noise of ``sigma`` (0-255 units; default: drawn per image in the training range)."""
        n = clean.shape[0]
        if sigma is None:
            lo, hi = self.sigma
            s = lo + (hi - lo) * torch.rand(n, generator=g, device=clean.device, dtype=torch.float32)
        else:
            s = torch.full((n,), float(sigma), device=clean.device)
        noise = torch.randn(clean.shape, generator=g, device=clean.device, dtype=clean.dtype)
        return clean + noise * (s / 255.0).view(n, *([1] * (clean.dim() - 1))).to(clean.dtype)

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[Any, Any]:
        g = self._generator(x.device, epoch, step)
        clean = self._crop(x, g)
        out = model(self.add_noise(clean, g)).float()
        loss = F.mse_loss(out, clean.float()) if self.loss_name == "l2" else F.l1_loss(out, clean.float())
        return loss, (out, clean)

    def accumulate(self, sums: torch.Tensor, loss: torch.Tensor, out: Any, y: torch.Tensor) -> int:
        den, clean = out
        n = clean.shape[0]
        sums[0] += loss.detach().double() * n
        with torch.no_grad():
            sums[1] += psnr(den.detach().clamp(0, 1), clean).double().sum()
        sums[2] += n
        return n

    def train_columns(self, sums: torch.Tensor) -> dict[str, float]:
        return {"train_loss": float(sums[0] / sums[2]), "train_psnr": float(sums[1] / sums[2])}

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        loader: Any,
        num_classes: int = 0,
        *,
        device: torch.device | str = "cpu",
        amp: str = "fp32",
        dist_info: DistInfo | None = None,
    ) -> dict[str, Any]:
        """Mean per-image ``psnr``, ``ssim`` and ``psnr_noisy`` at each eval sigma: ``{"n", "sigmas": {s: {...}}}``."""
        device = torch.device(device)
        was_training = model.training
        model.eval()
        k = len(self.eval_sigmas)
        sums = torch.zeros(3 * k + 2, dtype=torch.float64, device=device)  # per sigma: psnr, ssim, noisy; loss, n
        for b, (x, _) in enumerate(loader):
            clean = x.float()
            for i, s in enumerate(self.eval_sigmas):
                # The same noise for every model and epoch: seeded by sigma and batch only (not by the run's seed).
                g = torch.Generator(device=device)
                g.manual_seed(int(s * 1000) * 100_003 + b * 7 + (dist_info.rank if dist_info else 0))
                noisy = self.add_noise(clean, g, s)
                with autocast_context(device, amp):
                    out = model(noisy)
                out = out.float()
                if s == self.primary:
                    fn = F.mse_loss if self.loss_name == "l2" else F.l1_loss
                    sums[-2] += fn(out, clean, reduction="none").flatten(1).mean(1).double().sum()
                out = out.clamp(0, 1)
                sums[3 * i] += psnr(out, clean).double().sum()
                sums[3 * i + 1] += ssim(out, clean).double().sum()
                sums[3 * i + 2] += psnr(noisy, clean).double().sum()
            sums[-1] += clean.shape[0]
        all_reduce_sum(sums, dist_info or DistInfo())
        model.train(was_training)
        n = max(1.0, float(sums[-1]))
        per = {
            _sig(s): {
                "psnr": float(sums[3 * i]) / n,
                "ssim": float(sums[3 * i + 1]) / n,
                "psnr_noisy": float(sums[3 * i + 2]) / n,
            }
            for i, s in enumerate(self.eval_sigmas)
        }
        return {"n": int(sums[-1]), "loss": float(sums[-2]) / n, "primary": _sig(self.primary), "sigmas": per}

    def eval_columns(self, r: dict[str, Any], prefix: str) -> dict[str, float]:
        p = r["sigmas"][r["primary"]]
        cols = {f"{prefix}_psnr": p["psnr"], f"{prefix}_ssim": p["ssim"]}
        if prefix == "eval":
            cols = {"eval_loss": r["loss"], **cols, "eval_psnr_noisy": p["psnr_noisy"]}
            for s, m in r["sigmas"].items():
                cols.update({f"eval_psnr_s{s}": m["psnr"], f"eval_ssim_s{s}": m["ssim"]})
                cols[f"eval_psnr_noisy_s{s}"] = m["psnr_noisy"]
        return cols

    def log_parts(self, row: dict[str, Any]) -> list[str]:
        parts = [f"loss {row['train_loss']:.5f}", f"train {row['train_psnr']:.2f} dB"]
        if "eval_psnr" in row:
            parts.append(
                f"test sigma {_sig(self.primary)}: {row['eval_psnr']:.2f} dB (noisy {row['eval_psnr_noisy']:.2f}), "
                f"SSIM {row['eval_ssim']:.4f}"
            )
        if "ema_psnr" in row:
            parts.append(f"ema {row['ema_psnr']:.2f} dB")
        return parts

    def result_fields(self, final: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"task": "denoise", "sigma": _sig(self.primary)}
        for k in ("eval_psnr", "eval_psnr_noisy", "eval_ssim", "ema_psnr", "train_loss"):
            if k in final:
                out[k.replace("eval_", "")] = round(final[k], 4)
        if "psnr" in out:
            out["psnr_gain"] = round(out["psnr"] - out["psnr_noisy"], 4)
            out["by_sigma"] = {
                _sig(s): {
                    m: round(final[f"eval_{m}_s{_sig(s)}"], 4)
                    for m in ("psnr", "ssim", "psnr_noisy")
                    if f"eval_{m}_s{_sig(s)}" in final
                }
                for s in self.eval_sigmas
            }
        return out


def psnr(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of ``out`` against ``clean``, ``(N, C, H, W)`` in [0, 1] (torchmetrics)."""
    f = _torchmetrics().functional.image.peak_signal_noise_ratio
    return f(out.float(), clean.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of ``(N, C, H, W)`` images in [0, 1] (11x11 Gaussian window, sigma 1.5; torchmetrics)."""
    f = _torchmetrics().functional.image.structural_similarity_index_measure
    return f(out.float(), clean.float(), data_range=1.0, reduction="none")


def _torchmetrics() -> Any:
    tm = require("torchmetrics", "the denoising task's PSNR and SSIM (task: denoise)")
    require("torchmetrics.functional.image", "the denoising task's PSNR and SSIM (task: denoise)")
    return tm


def create_task(cfg: Any, rank: int = 0) -> ClassifyTask | DenoiseTask:
    """The task object of ``cfg.task``."""
    if cfg.task == "denoise":
        return DenoiseTask(cfg, rank)
    if cfg.task == "classify":
        return ClassifyTask(cfg)
    raise SenetError(f"task must be one of {', '.join(TASKS)}, not {cfg.task!r}")
