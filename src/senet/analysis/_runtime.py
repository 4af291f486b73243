"""Glue between the analysis commands and ``senet.train`` / ``senet.data``: load a trained model, get its evaluation
batches preprocessed exactly as in training, evaluate, and save a pruned model as a checkpoint ``senet eval`` reads."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError

__all__ = ["pick_device", "load_model", "eval_batches", "evaluate", "save_pruned"]


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as given (checked)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SenetError(f"--device {spec} asked for but CUDA is not available; use --device cpu")
    return dev


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a ``senet train`` checkpoint (or run folder), in eval mode, plus what evaluation needs.

    Checkpoints written by ``senet prune-attention`` (key ``pruned_attention``) are rebuilt, pruned, then loaded.
    """
    from senet.train import load_checkpoint, model_from_checkpoint
    from senet.train.checkpoint import build_model

    from .prune import prune_attention

    ckpt = load_checkpoint(path, map_location="cpu")
    cfg = ckpt["config"]
    pruned = list(ckpt.get("pruned_attention") or [])
    if pruned:
        kwargs = {k: v for k, v in (cfg.get("model_kwargs") or {}).items() if k not in ("attn_stages", "attn_layer")}
        kwargs.update(ckpt.get("unpruned_model_kwargs") or {})  # the attention layout before pruning
        model = build_model(cfg["model"], len(ckpt["classes"]), kwargs)
        prune_attention(model, pruned)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise SenetError(
                f"pruned checkpoint {str(path)!r} does not fit: {str(exc).splitlines()[0][:200]}"
            ) from exc
        model.eval()
    else:
        model = model_from_checkpoint(ckpt)
    pre = dict(ckpt.get("preprocess") or {})
    size = int(pre.get("img_size") or 32)
    info = {
        "model": cfg["model"],
        "config": cfg,
        "classes": list(ckpt["classes"]),
        "class_names": list(ckpt.get("class_names") or ckpt["classes"]),
        "preprocess": pre,
        "input_size": (3, size, size),
        "checkpoint": ckpt,
        "run_dir": str(Path(path) if Path(path).is_dir() else Path(path).parent),
    }
    return model.to(device), info


def _limit(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int | None, num_classes: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    # Evaluation splits are often stored class by class: keep up to ceil(n / classes) images of each class, in order,
    # so a subset still covers every class (the per-class statistics need that).
    if n is None:
        yield from batches
        return
    quota = -(-n // num_classes)
    taken = torch.zeros(num_classes, dtype=torch.long)
    for x, y in batches:
        yc = y.cpu()
        rank = torch.zeros_like(yc)
        for c in yc.unique().tolist():
            idx = (yc == c).nonzero().flatten()
            rank[idx] = taken[c] + torch.arange(len(idx))
            taken[c] += len(idx)
        keep = (rank < quota).nonzero().flatten()
        if len(keep):
            keep = keep.to(y.device)
            yield x[keep], y[keep]
        if bool((taken >= quota).all()):
            return


def eval_batches(
    data: str | None,
    info: dict[str, Any],
    batch_size: int,
    max_images: int | None,
    device: torch.device | str,
) -> tuple[Iterable[tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Batches of the dataset's evaluation split (``test/`` or ``val/``), normalised as during training.

    ``data`` defaults to the training run's dataset. ``max_images`` keeps about N images, the first
    ``ceil(N / classes)`` of each class.
    """
    from senet.data import create_loaders
    from senet.data.splits import eval_source

    if batch_size < 1 or (max_images is not None and max_images < 1):
        raise SenetError(f"--batch-size and --max-images must be positive, got {batch_size} and {max_images}")
    cfg = info["config"]
    source = eval_source(data or None, cfg, info["classes"], info.get("run_dir"))
    path = getattr(source, "path", source)
    pre = info["preprocess"]
    bundle = create_loaders(
        source,
        batch_size=batch_size,
        eval_batch_size=batch_size,
        device=device,
        loader="tensor" if pre.get("kind") == "tensor" else "dataloader",
        img_size=pre.get("img_size"),
        crop_pct=float(pre.get("crop_pct", cfg.get("crop_pct", 0.875))),
        workers=None,  # this machine's default, not the training machine's
        with_train=False,
        mean=tuple(pre["mean"]) if pre.get("mean") else None,
        std=tuple(pre["std"]) if pre.get("std") else None,
    )
    if list(bundle.classes) != info["classes"]:
        raise SenetError(
            f"the classes of {str(path)!r} ({len(bundle.classes)}) differ from the checkpoint's "
            f"({len(info['classes'])}): pass the dataset the model was trained on"
        )
    return list(_limit(bundle.eval, max_images, len(info["classes"]))), list(info["class_names"])


def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: Any) -> dict[str, float]:
    """Top-1 / top-5 error (%) and the image count of ``model`` on ``batches`` (fp32, eval mode)."""
    from senet.train import evaluate as train_evaluate

    batches = list(batches)
    num_classes = int(max(int(y.max()) for _, y in batches) + 1)
    with torch.no_grad():
        num_classes = max(num_classes, int(model(batches[0][0][:1]).shape[-1]))
    r = train_evaluate(model, batches, num_classes, device=device, with_confusion=False)
    return {"top1_err": 100.0 - r["top1"], "top5_err": 100.0 - r["top5"], "images": r["n"]}


def save_pruned(model: nn.Module, info: dict[str, Any], pruned: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Write the pruned model as a ``senet train``-format checkpoint (weights only, no optimizer state).

    When whole stages were pruned, ``config.model_kwargs.attn_stages`` is narrowed to the remaining stages, so the
    file also loads with plain ``senet eval``; ``pruned_attention`` lists the blocks for :func:`load_model`.
    """
    from senet.train import save_checkpoint

    from .recorder import parse_block_name

    ckpt = info["checkpoint"]
    cfg = dict(ckpt["config"])
    kwargs = dict(cfg.get("model_kwargs") or {})
    unpruned = dict(
        ckpt.get("unpruned_model_kwargs") or {k: kwargs[k] for k in ("attn_stages", "attn_layer") if k in kwargs}
    )
    all_names = list(ckpt.get("all_attention") or [])
    if not all_names:
        # Names before pruning: rebuild the unpruned model's list from the checkpoint's config.
        from senet.train.checkpoint import build_model

        from .recorder import attention_blocks

        ref = build_model(cfg["model"], len(ckpt["classes"]), kwargs)
        all_names = [n for n, _ in attention_blocks(ref)]
    stage_of = {n: parse_block_name(n) for n in all_names}
    if all(stage_of.values()):
        gone = {stage_of[n][0] for n in pruned}  # type: ignore[index]
        whole = all(n in pruned for n in all_names if stage_of[n][0] in gone)  # type: ignore[index]
        if whole:
            keep = sorted({s[0] for s in stage_of.values() if s} - gone)  # type: ignore[index]
            if keep:
                kwargs["attn_stages"] = keep
            else:
                kwargs["attn_layer"] = None
    cfg["model_kwargs"] = kwargs
    state = {
        "model": model.state_dict(),
        "ema": None,
        "config": cfg,
        "classes": info["classes"],
        "class_names": info["class_names"],
        "preprocess": info["preprocess"],
        "epoch": ckpt.get("epoch"),
        "pruned_attention": list(pruned),
        "unpruned_model_kwargs": unpruned,
        "all_attention": all_names,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(state, path)
