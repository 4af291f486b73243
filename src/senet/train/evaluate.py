"""Evaluation: loss, top-1 / top-5 accuracy, per-class accuracy and the confusion matrix, summed over DDP ranks."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import DistInfo, all_reduce_sum

__all__ = ["evaluate", "autocast_context", "top_confusions", "tta_logits", "TTA_MODES"]

#: Test-time augmentation modes of :func:`tta_logits`.
TTA_MODES = ("none", "flip", "flip_translate")


def autocast_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` in ``bf16``/``fp16``, a null context for ``fp32``."""
    if amp == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def tta_logits(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """``model(x)``, or the mean logits over test-time views.

    ``flip``: the image and its mirror image, averaged. ``flip_translate``: that average weighted 1/2, plus the same
    for the image shifted one pixel up-left and one pixel down-right (reflect padding), 1/4 each -- the views of the
    CIFAR-10 speedrun records. Logits are averaged in float32.
    """
    if tta == "none":
        return model(x).float()
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")

    def flip_mean(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v).float() + model(v.flip(-1)).float())

    out = flip_mean(x)
    if tta == "flip":
        return out
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = (padded[..., :-2, :-2], padded[..., 2:, 2:])
    return 0.5 * out + 0.25 * flip_mean(shifted[0]) + 0.25 * flip_mean(shifted[1])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    num_classes: int,
    *,
    device: torch.device | str = "cpu",
    amp: str = "fp32",
    dist_info: DistInfo | None = None,
    with_confusion: bool = True,
    tta: str = "none",
) -> dict[str, Any]:
    """Run ``model`` over ``loader`` (test-time augmentation ``tta``, see :func:`tta_logits`); returns ``loss``,
    ``top1``, ``top5`` (percent), ``n``, and with ``with_confusion`` the ``confusion`` matrix (rows: true class,
    columns: predicted) and ``per_class`` accuracy."""
    device = torch.device(device)
    info = dist_info or DistInfo()
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    k = min(5, num_classes)
    for x, y in loader:
        with autocast_context(device, amp):
            logits = tta_logits(model, x, tta)
        logits = logits.float()
        sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
        topk = logits.topk(k, dim=1).indices
        hit = topk.eq(y[:, None])
        sums[1] += hit[:, 0].sum()
        sums[2] += hit.any(dim=1).sum()
        sums[3] += y.numel()
        if with_confusion:
            conf += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes**2).view(num_classes, -1)
    all_reduce_sum(sums, info)
    if with_confusion:
        all_reduce_sum(conf, info)
    model.train(was_training)
    n = max(1.0, float(sums[3]))
    out: dict[str, Any] = {
        "loss": float(sums[0]) / n,
        "top1": 100.0 * float(sums[1]) / n,
        "top5": 100.0 * float(sums[2]) / n,
        "n": int(sums[3]),
    }
    if with_confusion:
        c = conf.cpu()
        totals = c.sum(1).clamp_min(1)
        out["confusion"] = c.tolist()
        out["per_class"] = (100.0 * c.diag().double() / totals).tolist()
    return out


def top_confusions(confusion: list[list[int]], names: list[str], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` largest off-diagonal cells of ``confusion`` (rows: true class, columns: predicted), by name:
    ``{"true", "predicted", "count", "share"}`` with ``share`` the percent of that true class's images; ties are
    broken by class order. Readable where a many-class confusion matrix is not."""
    c = torch.as_tensor(confusion, dtype=torch.int64)
    off = c.clone()
    off.fill_diagonal_(0)
    flat = off.flatten()
    order = torch.sort(flat, descending=True, stable=True).indices[:k].tolist()
    rows = c.sum(1)
    out = []
    for i in order:
        count = int(flat[i])
        if count == 0:
            break
        t, p = divmod(i, c.shape[1])
        out.append(
            {"true": names[t], "predicted": names[p], "count": count, "share": round(100.0 * count / int(rows[t]), 2)}
        )
    return out
