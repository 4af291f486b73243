"""``torch.export`` to a ``.pt2`` ExportedProgram with a dynamic batch axis, checked against eager PyTorch."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from senet.errors import SenetError
from senet.utils.io import atomic_path

from .onnx import ExportResult, _input_tensor
from .optimize import fold_bn as _fold_bn

__all__ = ["export_program"]


def export_program(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int] = (3, 224, 224),
    *,
    dynamic_batch: bool = True,
    fold_bn: bool = False,
    check: bool = True,
    check_batches: Sequence[int] = (1, 3),
    atol: float | None = 1e-4,
    max_batch: int = 4096,
) -> ExportResult:
    """Export ``model`` (a copy, eval mode) with :func:`torch.export.export` and save it with ``torch.export.save``.

    The saved program is re-loaded with :func:`torch.export.load` and compared with the eager model on random inputs
    of each of ``check_batches``. Arguments as :func:`senet.export.export_onnx`.
    """
    model = copy.deepcopy(model).eval()
    if fold_bn:
        model = _fold_bn(model, inplace=True)
    x = _input_tensor(input_size, 2)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=max_batch)},) if dynamic_batch else None
    with torch.no_grad():
        ep = torch.export.export(model, (x,), dynamic_shapes=dynamic_shapes)
    out_path = Path(path)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        torch.export.save(ep, str(tmp))
    ops = sorted({str(n.target) for n in ep.graph.nodes if n.op == "call_function"})
    result = ExportResult(str(out_path), "exported-program", ops=ops, size_bytes=out_path.stat().st_size)
    if check:
        loaded = torch.export.load(str(out_path)).module()
        worst = 0.0
        for i, batch in enumerate(check_batches if dynamic_batch else (2,)):
            xb = _input_tensor(input_size, batch, seed=i + 1)
            with torch.no_grad():
                worst = max(worst, float((loaded(xb) - model(xb)).abs().max()))
            result.checked_batches.append(batch)
        result.max_abs_diff = worst
        if atol is not None and worst > atol:
            raise SenetError(f"{out_path}: the exported program differs from PyTorch by {worst:.3g} (> {atol:g})")
    return result
