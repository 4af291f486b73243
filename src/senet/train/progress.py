"""What a run shows and how it stops: per-epoch logs and metrics files, the progress bar, the SIGINT stop flag.

Used by :class:`senet.train.trainer.Trainer`; everything here acts on rank 0 only (other ranks get ``enabled=False``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from senet.utils.io import atomic_write_text
from senet.utils.optional import optional

from .config import TrainConfig
from .tasks import ClassifyTask, DenoiseTask

__all__ = ["StopFlag", "MetricsLogger", "progress_bar", "advance_bar", "close_bar"]


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the current step, checkpoints and returns."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


class MetricsLogger:
    """Rank-0 output: per-epoch lines, optional rich progress bar, metrics.csv/jsonl, TensorBoard."""

    def __init__(
        self, run_dir: Path, cfg: TrainConfig, enabled: bool, print_fn: Any, task: ClassifyTask | DenoiseTask
    ) -> None:
        self.run_dir, self.enabled, self.print, self.task = run_dir, enabled, print_fn, task
        mode = cfg.progress
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode if enabled else "none"
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        if enabled and cfg.tensorboard:
            # Logging is a side feature: without tensorboard the run trains and writes metrics.csv as usual.
            if optional("tensorboard", "TensorBoard logs (--tensorboard)", "senet train") is not None:
                from torch.utils.tensorboard import SummaryWriter  # optional extra: imported only when asked for

                self.tb = SummaryWriter(str(run_dir / "tb"))
        jl = run_dir / "metrics.jsonl"
        if enabled and jl.is_file():
            self.rows = [json.loads(line) for line in jl.read_text().splitlines() if line.strip()]

    def epoch_rows(self, upto: int) -> None:
        """Keep only rows of epochs already done (a resume drops rows of the interrupted epoch)."""
        self.rows = [r for r in self.rows if r["epoch"] <= upto]

    def log_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.run_dir / "metrics.csv", buf.getvalue())
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(k, v, row["epoch"])
            self.tb.flush()
        if self.mode != "none":
            parts = [f"epoch {row['epoch']}/{row['epochs']}", *self.task.log_parts(row)]
            parts += [f"lr {row['lr']:.4g}", f"{row['img_per_s']:.0f} img/s", f"{row['epoch_time_s']:.1f}s"]
            self.print("  ".join(parts))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def progress_bar(logger: MetricsLogger, epoch: int, epochs: int, total: int, done: int) -> Any:
    if logger.mode != "bar":
        return None
    # rich is imported only when a bar is shown (an interactive terminal).

    p = Progress(
        TextColumn(f"epoch {epoch + 1}/{epochs}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]:>6.0f} img/s  loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        transient=True,
    )
    p.start()
    p.add_task("train", total=total, completed=done, speed=0.0, loss=math.nan)
    return p


def advance_bar(bar: Any, speed: float, loss: torch.Tensor | None) -> None:
    """One step on the bar; the loss (a host sync) is shown only on the steps that check it anyway."""
    if bar is None:
        return
    if loss is None:
        bar.update(bar.task_ids[0], advance=1, speed=speed)
    else:
        bar.update(bar.task_ids[0], advance=1, speed=speed, loss=float(loss.detach()))


def close_bar(bar: Any) -> None:
    if bar is not None:
        bar.stop()
