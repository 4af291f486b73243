"""The training loop: data -> model -> optimizer -> epochs of steps, with checkpoints, metrics and clean stops.

One function, :func:`train`, drives a run from a :class:`~senet.train.config.TrainConfig`. It works the same as one
process on a CPU and as N ``torchrun`` processes on GPUs (DDP; rank 0 logs and writes).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from senet.errors import SenetError
from senet.utils.hardware import auto_precision, machine_info

from .checkpoint import build_model, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, config_to_dict
from .distributed import DistInfo, all_reduce_sum, barrier, cleanup, init_distributed
from .evaluate import autocast_context
from .hooks import RecipeHooks
from .optim import LRSchedule, ModelEma, create_optimizer
from .tasks import ClassifyTask, DenoiseTask, create_task

__all__ = ["train", "resolve_device", "resolve_amp", "run_dir_for", "code_version"]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: the local rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SenetError(f"device {name!r} asked for but CUDA is not available: use --device cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto``: what :func:`senet.utils.hardware.auto_precision` picks for the device. fp16 is CUDA-only."""
    if amp == "fp16" and device.type != "cuda":
        raise SenetError("amp fp16 needs a CUDA device: use amp bf16 or fp32 on CPU")
    return auto_precision(device, amp).amp


def run_dir_for(cfg: TrainConfig) -> Path:
    """The run folder: ``cfg.output`` with ``{model}``, ``{seed}`` and ``{dataset}`` filled in."""
    try:
        return Path(cfg.output.format(model=cfg.model.replace(":", "_"), seed=cfg.seed, dataset=cfg.dataset))
    except (KeyError, IndexError) as exc:
        raise SenetError(f"output {cfg.output!r} has an unknown placeholder {exc}; use {{model}}, {{seed}}") from exc


def code_version() -> dict[str, Any]:
    """senet and torch versions, and the git commit (with a dirty flag) when running from a checkout."""
    from senet._version import __version__

    out: dict[str, Any] = {"senet": __version__, "torch": str(torch.__version__)}
    repo = Path(__file__).resolve().parents[3]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if (repo / ".git").exists():
            head = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            )
            if head.returncode == 0:
                out["git_commit"] = head.stdout.strip()
                dirty = subprocess.run(
                    ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                )
                out["git_dirty"] = bool(dirty.stdout.strip())
    return out


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the current step, checkpoints and returns."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
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


class _Logger:
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
            from senet.utils.optional import optional

            # Logging is a side feature: without tensorboard the run trains and writes metrics.csv as usual.
            if optional("tensorboard", "TensorBoard logs (--tensorboard)", "senet train") is not None:
                from torch.utils.tensorboard import SummaryWriter

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
        from senet.utils.io import atomic_write_text

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


def train(
    cfg: TrainConfig,
    *,
    model: nn.Module | None = None,
    stop_after_steps: int | None = None,
    print_fn: Any = None,
) -> dict[str, Any]:
    """Train per ``cfg`` and return the final result dict (also printed as the last JSON line by the CLI).

    ``model`` replaces ``cfg.model`` with a ready module (it must accept the data's classes). ``stop_after_steps``
    stops like a SIGINT after that many optimizer steps in this call (used by the resume tests).
    """
    print_fn = print_fn or (lambda *a: print(*a, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    info = init_distributed(device.type)
    try:
        return _train(cfg, info, device, model, stop_after_steps, print_fn)
    finally:
        cleanup(info)


def _train(
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
    model_override: nn.Module | None,
    stop_after_steps: int | None,
    print_fn: Any,
) -> dict[str, Any]:
    from senet.data import create_loaders, resolve_data
    from senet.data.splits import run_source, split_options
    from senet.train.ledger import model_attention, recorded_dataset
    from senet.utils.io import atomic_write_text

    say = print_fn if info.is_main else (lambda *a: None)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    resolve_amp(cfg.amp, device)  # validates fp16-on-CPU with its one-line error
    precision = auto_precision(device, cfg.amp, cfg.channels_last)
    amp, channels_last = precision.amp, precision.channels_last
    machine = machine_info(device)

    run_dir = run_dir_for(cfg)
    last = run_dir / "last.pt"
    ckpt = None
    if cfg.resume:
        if not last.is_file():
            raise SenetError(f"--resume: no checkpoint {str(last)!r}; start without --resume or fix --output")
        ckpt = load_checkpoint(last, map_location="cpu")
    elif last.is_file():
        raise SenetError(f"{str(run_dir)!r} already holds a run: add --resume to continue it or pick another --output")
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    task = create_task(cfg, info.rank)  # what a batch's loss and an evaluation are (senet.train.tasks)
    # Rank 0 downloads (if asked) while the others wait, then everyone resolves the same path.
    folders = tuple(s for s in (cfg.train_split, cfg.val_split) if s)
    data_path = resolve_data(cfg.data, cfg.dataset, cfg.download, folders) if info.is_main else None
    barrier(info)
    if data_path is None:
        data_path = resolve_data(cfg.data, cfg.dataset, False, folders)
    loader_kwargs: dict[str, Any] = dict(
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        device=device,
        loader=cfg.loader,
        img_size=cfg.img_size,
        crop_pct=cfg.crop_pct,
        pad=cfg.pad,
        pad_mode=cfg.pad_mode,
        flip=cfg.flip,
        flip_mode=cfg.flip_mode,
        cutout=cfg.cutout,
        workers=cfg.workers,
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
        channels_last=channels_last,
        cache_dir=cfg.cache_dir,
        train_subset=cfg.train_subset,
        eval_subset=cfg.eval_subset,
        skip_bad_images=cfg.skip_bad_images,
    )
    loader_kwargs.update(task.loader_overrides)
    data = create_loaders(
        run_source(data_path, split_options(cfg), run_dir, save=info.is_main, say=say), **loader_kwargs
    )
    if data.skipped:
        say(f"senet train: skipping {len(data.skipped)} undecodable image(s) (skip_bad_images), listed at the end")
    num_classes = len(data.classes)
    steps_per_epoch = len(data.train)
    if steps_per_epoch == 0:
        raise SenetError(f"batch size {cfg.batch_size} leaves no full training batch")

    torch.manual_seed(cfg.seed)
    if model_override is not None:
        model = model_override
    else:
        # On resume the checkpoint restores every weight: the original network's file is not needed again.
        weights = None if ckpt is not None else cfg.weights
        model = build_model(cfg.model, task.model_classes(num_classes), cfg.model_kwargs, cfg.retrofit, weights)
    if ckpt is None and cfg.data_init_images > 0 and hasattr(model, "init_whitening"):
        # A data-dependent init (SpeedNet's patch whitening) from the first training batches of epoch 0. Under DDP
        # each rank sees its own slice; DDP's constructor then broadcasts rank 0's weights to all.
        model.init_whitening(_first_images(data.train, cfg.data_init_images))
    if cfg.freeze_epochs and info.enabled:
        raise SenetError("freeze_epochs is single-process only (DDP cannot change its trainable set); drop it")
    if cfg.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    frozen_norms = _freeze_for_probe(model) if cfg.freeze == "backbone" else []  # after SyncBN swapped the layers
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer(model, cfg)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    ema = ModelEma(model, cfg.ema) if cfg.ema > 0 else None
    hooks = RecipeHooks(model, cfg, schedule.total, info.enabled)  # lookahead, whitening-bias freeze

    start_epoch, start_step, partial = 0, 0, [0.0, 0.0, 0.0]
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise SenetError(
                f"checkpoint {str(last)!r} does not fit model {cfg.model!r}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.module.load_state_dict(ckpt["ema"])
            ema.updates.fill_(int(ckpt["ema_updates"]))
        hooks.load_state_dict(ckpt.get("hooks"))
        set_rng_state(ckpt["rng"])
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        partial = list(ckpt.get("partial", partial))
        say(f"senet train: resuming {str(last)!r} at epoch {start_epoch + 1}, step {start_step}")

    if cfg.freeze_epochs and start_epoch < cfg.freeze_epochs:
        # The optimizer already holds every parameter; frozen ones get no gradient, so SGD/AdamW leave them alone.
        from senet.retrofit import freeze_all_but_classifier, freeze_backbone

        if cfg.retrofit:
            freeze_backbone(model)
            what = "the new attention parameters and the classifier"
        else:
            freeze_all_but_classifier(model)
            what = "the classifier"
        say(f"senet train: epochs 1-{cfg.freeze_epochs} train only {what}")

    train_model: nn.Module = model
    if cfg.compile:
        train_model = torch.compile(model)  # type: ignore[assignment]
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[device.index] if device.type == "cuda" else None)

    logger = _Logger(run_dir, cfg, info.is_main, say, task)
    logger.epoch_rows(start_epoch)
    resolved = config_to_dict(cfg)
    resolved["resume"] = False
    resolved["dataset"] = recorded_dataset(cfg, data_path)  # what was read, not the lookup name's default
    meta = {
        **code_version(),
        "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "device": str(device),
        "amp": amp,
        "channels_last": channels_last,
        "precision_reason": precision.reason,
        **machine,
        "attention": model_attention(model),
        "world_size": info.world_size,
        "data_path": str(data_path),
        "loader": data.loader,
        "num_classes": num_classes,
        "train_images": data.train.num_samples,
        "argv": sys.argv,
    }
    if info.is_main:
        import yaml

        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2) + "\n")
        where = machine.get("gpu") or f"{machine['cpu_model']} ({machine['cpu_capability']})"
        say(f"senet train: {where}; {precision.reason}")
        say(
            f"senet train: {cfg.model} on {data_path} ({data.train.num_samples} train / {data.eval.num_samples} "
            f"eval images, {num_classes} classes), {cfg.epochs} epochs x {steps_per_epoch} steps, device {device}, "
            f"{amp}{', channels_last' if channels_last else ''}, world {info.world_size} -> {run_dir}"
        )

    def make_state(epoch: int, step_in_epoch: int, sums: list[float]) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_updates": int(ema.updates) if ema is not None else 0,
            "hooks": hooks.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "partial": list(sums),
            "config": resolved,
            "classes": list(data.classes),
            "class_names": list(data.class_names),
            "preprocess": data.preprocess,
            "version": {k: v for k, v in meta.items() if k in ("senet", "torch", "git_commit")},
        }

    def checkpoint(epoch: int, step_in_epoch: int, sums: list[float]) -> None:
        if info.is_main:
            save_checkpoint(make_state(epoch, step_in_epoch, sums), last)
        barrier(info)

    result: dict[str, Any] = {"status": "done"}
    steps_this_call = 0
    last_eval: dict[str, Any] = {}
    t_start = time.time()
    check_every = cfg.check_every or (1 if device.type == "cpu" else 25)
    with _StopFlag() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.freeze_epochs and epoch == cfg.freeze_epochs:
                from senet.retrofit import unfreeze

                unfreeze(model)
            train_model.train()
            for m in frozen_norms:  # a linear probe keeps the pretrained backbone's BN statistics
                m.eval()
            hooks.start_epoch(epoch)
            data.train.set_epoch(epoch, start_step)
            sums = torch.tensor(partial if start_step else [0.0, 0.0, 0.0], dtype=torch.float64, device=device)
            t0, seen = time.time(), 0
            bar = _progress(logger, epoch, cfg.epochs, steps_per_epoch, start_step)
            step = start_step
            # The non-finite check and the stop flag are read on the host only every `check_every` steps (and at
            # the last step of an epoch): a per-step `.item()` would make a fast GPU wait for the host each step.
            # The first bad step is kept on the device, so the report names it exactly either way.
            gstep_dev = torch.tensor(epoch * steps_per_epoch + step, device=device)
            first_bad = torch.full((), -1, dtype=torch.long, device=device)
            for x, y in data.train:
                with autocast_context(device, amp):
                    loss, out = task.forward(train_model, x, y, epoch, step)
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), gstep_dev, first_bad)
                gstep_dev += 1
                checking = (step + 1) % check_every == 0 or step + 1 == steps_per_epoch
                stop_seen = False
                if checking:
                    flags = torch.stack(
                        [
                            (first_bad >= 0).double(),
                            torch.tensor(float(bool(stop.signum)), device=device, dtype=torch.float64),
                        ]
                    )
                    all_reduce_sum(flags, info)
                    bad_now, stop_seen = flags.tolist()
                    if bad_now > 0:
                        gstep = int(first_bad) if int(first_bad) >= 0 else epoch * steps_per_epoch + step
                        _close(bar)
                        where = f"last good checkpoint: {last}" if last.is_file() else "no checkpoint was written yet"
                        say(
                            f"senet train: non-finite loss at step {gstep} (epoch {epoch + 1}, batch "
                            f"{gstep - epoch * steps_per_epoch}); stopping; {where}. Lower --lr, add warmup_epochs, "
                            "or use amp fp32."
                        )
                        result = {"status": "non_finite_loss", "step": gstep, "epoch": epoch + 1}
                        break
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                hooks.after_step(schedule.step_count)
                if ema is not None:
                    ema.update(model)
                with torch.no_grad():
                    n = task.accumulate(sums, loss, out, y)
                seen += n
                step += 1
                steps_this_call += 1
                _advance(bar, seen * info.world_size / max(1e-9, time.time() - t0), loss if checking else None)
                if logger.mode == "lines" and step % cfg.log_interval == 0 and info.is_main:
                    say(
                        f"  epoch {epoch + 1} step {step}/{steps_per_epoch} loss {float(loss.detach()):.4f} "
                        f"{seen * info.world_size / max(1e-9, time.time() - t0):.0f} img/s"
                    )
                want_stop = stop_seen > 0 or (stop_after_steps is not None and steps_this_call >= stop_after_steps)
                if want_stop and step < steps_per_epoch:
                    _close(bar)
                    checkpoint(epoch, step, sums.tolist())
                    how = f"senet train --output {run_dir} --resume"
                    say(f"senet train: stopped at epoch {epoch + 1}, step {step}; checkpoint {last}. Resume: {how}")
                    result = {"status": "interrupted", "epoch": epoch + 1, "step": step, "resume": how}
                    break
            else:
                _close(bar)
                all_reduce_sum(sums, info)
                start_step = 0
                elapsed = time.time() - t0
                row: dict[str, Any] = {
                    "epoch": epoch + 1,
                    "epochs": cfg.epochs,
                    **task.train_columns(sums),
                    "lr": optimizer.param_groups[0]["lr"],
                    "epoch_time_s": elapsed,
                    "img_per_s": float(sums[2]) / max(1e-9, elapsed),
                }
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                    t_eval = time.time()
                    last_eval = task.evaluate(
                        train_model if not info.enabled else model,
                        data.eval,
                        num_classes,
                        device=device,
                        amp=amp,
                        dist_info=info,
                    )
                    row.update(task.eval_columns(last_eval, "eval"))
                    if ema is not None:
                        e = task.evaluate(ema.module, data.eval, num_classes, device=device, amp=amp, dist_info=info)
                        row.update(task.eval_columns(e, "ema"))
                    row["eval_time_s"] = time.time() - t_eval
                row["wall_time_s"] = time.time() - t_start
                logger.log_epoch(row)
                if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                    checkpoint(epoch + 1, 0, [0.0, 0.0, 0.0])
                stopping = stop.signum is not None or (
                    stop_after_steps is not None and steps_this_call >= stop_after_steps
                )
                if stopping and epoch + 1 < cfg.epochs:
                    if (epoch + 1) % cfg.checkpoint_every:
                        checkpoint(epoch + 1, 0, [0.0, 0.0, 0.0])
                    how = f"senet train --output {run_dir} --resume"
                    say(f"senet train: stopped after epoch {epoch + 1}; checkpoint {last}. Resume: {how}")
                    result = {"status": "interrupted", "epoch": epoch + 1, "step": 0, "resume": how}
                    break
                continue
            break
    logger.close()
    final = logger.rows[-1] if logger.rows else {}
    result.update(
        model=cfg.model,
        run_dir=str(run_dir),
        checkpoint=str(last),
        epochs_done=final.get("epoch", start_epoch),
        train_time_s=round(time.time() - t_start, 1),
    )
    result.update(task.result_fields(final))
    if data.skipped:
        result.update(skipped_images=len(data.skipped), skipped=list(data.skipped))
        say(f"senet train: skipped {len(data.skipped)} undecodable image(s): " + ", ".join(data.skipped))
    if info.is_main:
        atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
        if cfg.ledger and result["status"] == "done":
            from .ledger import append_row, row_from_run

            append_row(cfg.ledger, row_from_run(run_dir, cfg.experiment or Path(cfg.ledger).stem))
            say(f"senet train: result appended to the ledger {cfg.ledger}")
    return result


def _freeze_for_probe(model: nn.Module) -> list[nn.Module]:
    """``--freeze backbone``: only the classifier trains; returns the backbone's norm layers, kept in eval mode."""
    from senet.retrofit import classifier_name, freeze_all_but_classifier

    freeze_all_but_classifier(model)
    head = classifier_name(model)
    norms = (nn.modules.batchnorm._NormBase,)
    return [m for n, m in model.named_modules() if isinstance(m, norms) and not n.startswith(f"{head}.")]


def _first_images(loader: Any, n: int) -> torch.Tensor:
    """Up to ``n`` images from the first training batches of epoch 0 (on the CPU, in float32)."""
    loader.set_epoch(0)
    got: list[torch.Tensor] = []
    count = 0
    for x, _ in loader:
        got.append(x.detach().float().cpu())
        count += x.shape[0]
        if count >= n:
            break
    return torch.cat(got)[:n]


def _progress(logger: _Logger, epoch: int, epochs: int, total: int, done: int) -> Any:
    if logger.mode != "bar":
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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


def _advance(bar: Any, speed: float, loss: torch.Tensor | None) -> None:
    """One step on the bar; the loss (a host sync) is shown only on the steps that check it anyway."""
    if bar is None:
        return
    if loss is None:
        bar.update(bar.task_ids[0], advance=1, speed=speed)
    else:
        bar.update(bar.task_ids[0], advance=1, speed=speed, loss=float(loss.detach()))


def _close(bar: Any) -> None:
    if bar is not None:
        bar.stop()
