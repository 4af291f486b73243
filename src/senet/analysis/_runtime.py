"""Glue between the analysis commands and ``senet.train`` / ``senet.data``: load a trained model, get its evaluation
batches preprocessed exactly as in training, evaluate, and save a pruned model as a checkpoint ``senet eval`` reads."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.data import LoaderConfig, create_loaders
from senet.data.splits import eval_source
from senet.errors import SenetError
from senet.resolve import model_from_run, resolve_model
from senet.runs import Run, load_run
from senet.train import evaluate as train_evaluate
from senet.train import save_checkpoint

from .prune import prune_attention
from .recorder import attention_blocks, parse_block_name

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
    The info dict holds the :class:`~senet.runs.Run` (``run``) and, for callers that print them, its model name,
    config, classes, class names, preprocessing and input size.
    """
    run = load_run(path)
    ckpt = run.checkpoint or {}
    pruned = list(ckpt.get("pruned_attention") or [])
    model = _pruned_model(run, pruned, path) if pruned else model_from_run(run)
    info = {
        "run": run,
        "model": run.model_name,
        "config": run.config,
        "classes": run.classes,
        "class_names": run.class_names,
        "preprocess": run.preprocess,
        "input_size": run.input_size,
        "checkpoint": ckpt,
        "run_dir": str(run.path),
    }
    return model.to(device), info


def _pruned_model(run: Run, pruned: list[str], path: str | os.PathLike[str]) -> nn.Module:
    """Rebuild the unpruned architecture, prune the recorded blocks, then load the pruned weights."""
    ckpt = run.checkpoint or {}
    kwargs = {
        k: v for k, v in (run.config.get("model_kwargs") or {}).items() if k not in ("attn_stages", "attn_layer")
    }
    kwargs.update(ckpt.get("unpruned_model_kwargs") or {})  # the attention layout before pruning
    model = resolve_model(run.model_name, len(run.classes), kwargs)
    prune_attention(model, pruned)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise SenetError(f"pruned checkpoint {str(path)!r} does not fit: {str(exc).splitlines()[0][:200]}") from exc
    return model.eval()


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
    if batch_size < 1 or (max_images is not None and max_images < 1):
        raise SenetError(f"--batch-size and --max-images must be positive, got {batch_size} and {max_images}")
    run: Run = info["run"]
    source = eval_source(data or None, run.config, run.classes, info.get("run_dir"))
    path = getattr(source, "path", source)
    bundle = create_loaders(source, LoaderConfig.from_run(run, batch_size, device=device))
    if list(bundle.classes) != run.classes:
        raise SenetError(
            f"the classes of {str(path)!r} ({len(bundle.classes)}) differ from the checkpoint's "
            f"({len(run.classes)}): pass the dataset the model was trained on"
        )
    return list(_limit(bundle.eval, max_images, len(run.classes))), list(run.class_names)


def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: Any) -> dict[str, float]:
    """Top-1 / top-5 error (%) and the image count of ``model`` on ``batches`` (fp32, eval mode)."""
    batches = list(batches)
    num_classes = int(max(int(y.max()) for _, y in batches) + 1)
    with torch.no_grad():
        num_classes = max(num_classes, int(model(batches[0][0][:1]).shape[-1]))
    r = train_evaluate(model, batches, num_classes, device=device, with_confusion=False)
    return {"top1_err": 100.0 - r["top1"], "top5_err": 100.0 - r["top5"], "images": r["n"]}


def save_pruned(model: nn.Module, info: dict[str, Any], pruned: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Write the pruned model as a ``senet train``-format checkpoint (weights only, no optimizer state).

    When whole stages were pruned, ``config.model_kwargs.attn_stages`` is narrowed to the remaining stages (or
    ``attn_layer`` set to ``"none"`` when no block is left), so the file also loads with plain ``senet eval``;
    ``pruned_attention`` lists the blocks for :func:`load_model`.
    """
    run: Run = info["run"]
    ckpt = run.checkpoint or {}
    kwargs = dict(run.config.get("model_kwargs") or {})
    unpruned = dict(
        ckpt.get("unpruned_model_kwargs") or {k: kwargs[k] for k in ("attn_stages", "attn_layer") if k in kwargs}
    )
    all_names = list(ckpt.get("all_attention") or [])
    if not all_names:
        # Names before pruning: rebuild the unpruned model's list from the checkpoint's config.
        ref = resolve_model(run.model_name, len(run.classes), kwargs)
        all_names = [n for n, _ in attention_blocks(ref)]
    stage_of = {n: parse_block_name(n) for n in all_names}
    if all_names and set(all_names) <= set(pruned):
        # "none", not None: create_model drops None overrides and would rebuild the default attention.
        kwargs["attn_layer"] = "none"
        kwargs.pop("attn_stages", None)
    elif all(stage_of.values()):
        gone = {stage_of[n][0] for n in pruned}  # type: ignore[index]
        whole = all(n in pruned for n in all_names if stage_of[n][0] in gone)  # type: ignore[index]
        if whole:
            kwargs["attn_stages"] = sorted({s[0] for s in stage_of.values() if s} - gone)  # type: ignore[index]
    pruned_run = dataclasses.replace(run, config={**run.config, "model_kwargs": kwargs}, version={})
    state = {
        "model": model.state_dict(),
        "ema": None,
        **pruned_run.checkpoint_fields(),
        "epoch": ckpt.get("epoch"),
        "pruned_attention": list(pruned),
        "unpruned_model_kwargs": unpruned,
        "all_attention": all_names,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(state, path)
