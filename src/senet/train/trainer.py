"""The training loop: data -> model -> optimizer -> epochs of steps, with checkpoints, metrics and clean stops.

:func:`train` drives a run from a :class:`~senet.train.config.TrainConfig` through a :class:`Trainer`, whose lifecycle
is ``setup()`` (device, precision, run folder, data, model, optimizer, resume) -> ``fit()`` (epochs of
``train_one_epoch()``, ``evaluate()`` and ``save()``) -> ``finish()`` (result.json, ledger). It works the same as one
process on a CPU and as N ``torchrun`` processes on GPUs (DDP; rank 0 logs and writes). What differs between tasks
(:mod:`senet.train.tasks`) and recipes (:mod:`senet.train.hooks`) plugs in through those objects, not the loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from senet._version import __version__
from senet.data import LoaderConfig, create_loaders, resolve_data
from senet.data.splits import run_source, split_options
from senet.errors import SenetError
from senet.resolve import resolve_model
from senet.runs import CHECKPOINT_FILE, Run, load_run
from senet.utils.hardware import auto_precision, machine_info, machine_label
from senet.utils.io import atomic_write_text
from senet.weights import weights_normalization

from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, config_to_dict
from .distributed import all_reduce_sum, barrier, cleanup, init_distributed
from .evaluate import autocast_context
from .hooks import FreezePhases, RecipeHooks, build_hooks
from .ledger import append_row, model_attention, recipe_changes, recorded_dataset, row_from_run
from .optim import LRSchedule, ModelEma, create_optimizer
from .progress import MetricsLogger, StopFlag, advance_bar, close_bar, progress_bar
from .tasks import create_task

__all__ = ["Trainer", "train", "resolve_device", "resolve_amp", "run_dir_for", "code_version"]


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
    trainer = Trainer(cfg, model=model, stop_after_steps=stop_after_steps, print_fn=print_fn)
    try:
        trainer.setup()
        trainer.fit()
        return trainer.finish()
    finally:
        trainer.close()


@dataclass
class _EpochProgress:
    """Where the current epoch stands: running sums (task-defined, 3 numbers), images seen, timing, the bar."""

    epoch: int
    step: int
    sums: torch.Tensor
    t0: float = field(default_factory=time.time)
    seen: int = 0
    bar: Any = None
    before_s: float = 0.0  # seconds this epoch trained before a mid-epoch resume (sums include those steps)

    def speed(self, world_size: int) -> float:
        return self.seen * world_size / max(1e-9, time.time() - self.t0)

    def elapsed(self) -> float:
        """Training seconds of the whole epoch, the part before a resume included."""
        return time.time() - self.t0 + self.before_s


class Trainer:
    """One training run. Lifecycle: :meth:`setup` -> :meth:`fit` -> :meth:`finish`, then :meth:`close`.

    :meth:`fit` runs :meth:`train_one_epoch` per epoch, then :meth:`evaluate` when due and :meth:`save` (the
    checkpoint). Each piece works on its own once :meth:`setup` has run, so tests can drive them one by one.
    Features and the config keys that switch them on:

    * the task (``task``): loss, metrics and evaluation (:mod:`senet.train.tasks`);
    * freeze phases (``freeze``, ``freeze_epochs``), the speedrun extras (``lookahead_every``,
      ``whiten_bias_epochs``) and the EMA (``ema``): hooks (:mod:`senet.train.hooks`);
    * exact resume (``resume``), DDP (``torchrun``), AMP (``amp``), ``compile``, ``sync_bn``, ``grad_clip``;
    * clean stops: SIGINT/SIGTERM (or ``stop_after_steps``) checkpoint mid-epoch and return ``interrupted``; a
      non-finite loss stops with ``non_finite_loss`` and keeps the last good checkpoint.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        model: nn.Module | None = None,
        stop_after_steps: int | None = None,
        print_fn: Any = None,
    ) -> None:
        self.cfg = cfg
        self.model_override = model
        self.stop_after_steps = stop_after_steps
        self.print_fn = print_fn or (lambda *a: print(*a, file=sys.stderr, flush=True))
        self.device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.info = init_distributed(self.device.type)
        self.say = self.print_fn if self.info.is_main else (lambda *a: None)
        self.result: dict[str, Any] = {"status": "done"}
        self.steps_this_call = 0
        self.t_start = time.time()  # reset when fit() starts
        self.stop: StopFlag | None = None
        self.logger: MetricsLogger | None = None

    # -- setup -------------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Device and precision, run folder, data, model, optimizer, resume state, logging; writes config and meta."""
        self._setup_runtime()
        self._setup_run_dir()
        self._keep_resumed_precision()
        self._setup_data()
        self._setup_model()
        self._setup_optim()
        self._restore()
        self.phases.begin(self.start_epoch, self.say)
        self.train_model: nn.Module = self.model
        if self.cfg.compile:
            self.train_model = torch.compile(self.model)  # type: ignore[assignment]
        if self.info.enabled:
            self.train_model = DDP(
                self.train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self._setup_run_record()

    def _setup_runtime(self) -> None:
        cfg, device = self.cfg, self.device
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
        self.precision = auto_precision(device, cfg.amp, cfg.channels_last)
        self.amp, self.channels_last = self.precision.amp, self.precision.channels_last
        self.machine = machine_info(device)

    def _setup_run_dir(self) -> None:
        """The run folder; on resume its checkpoint, else a check that the folder holds no run yet."""
        self.run_dir = run_dir_for(self.cfg)
        self.last = self.run_dir / CHECKPOINT_FILE
        self.resumed: Run | None = None
        if self.cfg.resume:
            if not self.last.is_file():
                raise SenetError(f"--resume: no checkpoint {str(self.last)!r}; start without --resume or fix --output")
            self.resumed = load_run(self.last)
            self._check_resumed_recipe(self.resumed)
        elif self.last.is_file():
            raise SenetError(
                f"{str(self.run_dir)!r} already holds a run: add --resume to continue it or pick another --output"
            )
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    def _setup_data(self) -> None:
        cfg, info = self.cfg, self.info
        self.task = create_task(cfg, info.rank)  # what a batch's loss and an evaluation are (senet.train.tasks)
        # Rank 0 downloads (if asked) while the others wait, then everyone resolves the same path.
        folders = tuple(s for s in (cfg.train_split, cfg.val_split) if s)
        data_path = resolve_data(cfg.data, cfg.dataset, cfg.download, folders) if info.is_main else None
        barrier(info)
        if data_path is None:
            data_path = resolve_data(cfg.data, cfg.dataset, False, folders)
        self.data_path = data_path
        # Pretrained weights see inputs normalised as they were trained (the file's mean/std, e.g. 0.5 for the
        # EfficientNet-Lite TF release); a task's own normalisation (denoising) still wins.
        norm = weights_normalization(cfg.weights) if cfg.weights else {}
        if norm:
            self.say(f"senet train: input mean {list(norm['mean'])} std {list(norm['std'])} from {cfg.weights}")
        loaders = LoaderConfig.from_train_config(
            cfg,
            device=self.device,
            rank=info.rank,
            world_size=info.world_size,
            channels_last=self.channels_last,
            **{**norm, **self.task.loader_overrides},
        )
        source = run_source(data_path, split_options(cfg), self.run_dir, save=info.is_main, say=self.say)
        self.data = create_loaders(source, loaders)
        if self.data.skipped:
            n = len(self.data.skipped)
            self.say(f"senet train: skipping {n} undecodable image(s) (skip_bad_images), listed at the end")
        self.num_classes = len(self.data.classes)
        self.steps_per_epoch = len(self.data.train)
        if self.steps_per_epoch == 0:
            raise SenetError(f"batch size {cfg.batch_size} leaves no full training batch")

    def _setup_model(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if self.model_override is not None:
            model = self.model_override
        else:
            # On resume the checkpoint restores every weight: the original network's file is not needed again.
            weights = None if self.resumed is not None else cfg.weights
            classes = self.task.model_classes(self.num_classes)
            model = resolve_model(cfg.model, classes, cfg.model_kwargs, cfg.retrofit, weights)
        if self.resumed is None and cfg.data_init_images > 0 and hasattr(model, "init_whitening"):
            # A data-dependent init (SpeedNet's patch whitening) from the first training batches of epoch 0. Under
            # DDP each rank sees its own slice; DDP's constructor then broadcasts rank 0's weights to all.
            model.init_whitening(_first_images(self.data.train, cfg.data_init_images))
        FreezePhases.check(cfg, self.info.enabled)  # before SyncBN touches the model
        if cfg.sync_bn and self.info.enabled:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.phases = FreezePhases(model, cfg, self.info.enabled)  # after SyncBN swapped the norm layers
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def _setup_optim(self) -> None:
        cfg = self.cfg
        self.optimizer = create_optimizer(self.model, cfg)
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.ema = ModelEma(self.model, cfg.ema) if cfg.ema > 0 else None
        self.recipe = RecipeHooks(self.model, cfg, self.schedule.total, self.info.enabled)
        self.hooks = build_hooks(self.recipe, self.phases, self.ema, self.model)

    def _check_resumed_recipe(self, run: Run) -> None:
        """A resume continues the run's recipe: the optimizer state restores the old lr, momentum and weight decay,
        so a changed setting would be recorded but not applied. Only ``epochs`` (train longer) and ``eval_every``
        may change, and ``epochs`` not below the epoch the run has reached."""
        changes = recipe_changes(run.config, config_to_dict(self.cfg), allowed=("epochs", "eval_every"))
        if changes:
            raise SenetError(
                f"--resume: {str(self.run_dir)!r} was trained with another recipe ({'; '.join(changes)}); resuming "
                "cannot change it: drop those settings, or start a new run with another --output"
            )
        reached = int((run.checkpoint or {}).get("epoch", 0))
        if reached > self.cfg.epochs:
            raise SenetError(
                f"--resume: {str(self.run_dir)!r} is already at epoch {reached}, past epochs {self.cfg.epochs}; "
                f"resume with epochs >= {reached} or start a new run with another --output"
            )

    def _keep_resumed_precision(self) -> None:
        """A resumed run keeps the precision it started in under ``amp: auto``, also on another machine: a run
        that switches from fp32 to bf16 halfway is neither (an explicit ``--amp`` is obeyed and said)."""
        started = (self.resumed.meta.get("amp") if self.resumed is not None else None) or self.amp
        if self.cfg.amp != "auto" or started == self.amp:
            return
        why = f"{self.precision.reason}; the resumed run started in {started}: kept (pass --amp to change it)"
        self.precision = replace(self.precision, amp=started, reason=why)
        self.amp = started

    def _machines(self) -> list[str]:
        """Every machine the run has trained on, in order (``meta.json``'s ``machines``; one unless resumed)."""
        prev = self.resumed.meta if self.resumed is not None else {}
        known = prev.get("cpu_model") or prev.get("gpu")
        machines = list(prev.get("machines") or ([machine_label(prev)] if known else []))
        here = machine_label(self.machine)
        return machines if machines and machines[-1] == here else [*machines, here]

    def _restore(self) -> None:
        """Load the resumed checkpoint's state (all of it: weights, optimizer, schedule, RNG, position)."""
        self.start_epoch, self.start_step, self.partial, self.partial_s = 0, 0, [0.0, 0.0, 0.0], 0.0
        if self.resumed is None:
            return
        ckpt = self.resumed.checkpoint or {}
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise SenetError(
                f"checkpoint {str(self.last)!r} does not fit model {self.cfg.model!r}: "
                f"{str(exc).splitlines()[0][:200]}"
            ) from exc
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.module.load_state_dict(ckpt["ema"])
            self.ema.updates.fill_(int(ckpt["ema_updates"]))
        self.recipe.load_state_dict(ckpt.get("hooks"))
        set_rng_state(ckpt["rng"])
        self.start_epoch, self.start_step = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        self.partial = list(ckpt.get("partial", self.partial))
        self.partial_s = float(ckpt.get("partial_time_s", 0.0))
        self.say(f"senet train: resuming {str(self.last)!r} at epoch {self.start_epoch + 1}, step {self.start_step}")

    def _setup_run_record(self) -> None:
        """The run's record (config.yaml, meta.json, the fields every checkpoint repeats) and the first log lines."""
        cfg, data, info = self.cfg, self.data, self.info
        self.logger = MetricsLogger(self.run_dir, cfg, info.is_main, self.say, self.task)
        self.logger.epoch_rows(self.start_epoch)
        resolved = config_to_dict(cfg)
        resolved["resume"] = False
        resolved["dataset"] = recorded_dataset(cfg, self.data_path)  # what was read, not the lookup name's default
        meta = self._meta()
        self.run = Run(
            path=self.run_dir,
            config=resolved,
            classes=list(data.classes),
            class_names=list(data.class_names),
            preprocess=data.preprocess,
            meta=meta,
            version=Run.version_of(meta),
        )
        if not info.is_main:
            return
        self.run.save()
        machines = meta["machines"]
        where = machines[-1] if len(machines) == 1 else f"{machines[-1]} (resumed; began on {machines[0]})"
        self.say(f"senet train: {where}; {self.precision.reason}")
        self.say(
            f"senet train: {cfg.model} on {self.data_path} ({data.train.num_samples} train / "
            f"{data.eval.num_samples} eval images, {self.num_classes} classes), {cfg.epochs} epochs x "
            f"{self.steps_per_epoch} steps, device {self.device}, {self.amp}"
            f"{', channels_last' if self.channels_last else ''}, world {info.world_size} -> {self.run_dir}"
        )

    def _meta(self) -> dict[str, Any]:
        return {
            **code_version(),
            "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
            "device": str(self.device),
            "amp": self.amp,
            "channels_last": self.channels_last,
            "precision_reason": self.precision.reason,
            **self.machine,
            "machines": self._machines(),
            "attention": model_attention(self.model),
            "world_size": self.info.world_size,
            "data_path": str(self.data_path),
            "loader": self.data.loader,
            "num_classes": self.num_classes,
            "train_images": self.data.train.num_samples,
            "argv": sys.argv,
        }

    # -- the loop ----------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train from the start (or resumed) position to ``cfg.epochs`` or a stop; returns :attr:`result`."""
        cfg = self.cfg
        self.t_start = time.time()
        with StopFlag() as self.stop:
            for epoch in range(self.start_epoch, cfg.epochs):
                row = self.train_one_epoch(epoch)
                if row is None:  # stopped inside the epoch (signal, non-finite loss): result says why
                    break
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                    row.update(self.evaluate())
                row["wall_time_s"] = time.time() - self.t_start
                self.logger.log_epoch(row)  # type: ignore[union-attr]
                if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                    self.save(epoch + 1)
                if self._stop_after_epoch(epoch):
                    break
        return self.result

    def train_one_epoch(self, epoch: int) -> dict[str, Any] | None:
        """Train ``epoch`` (0-based) from :attr:`start_step`; returns its log row (training columns, lr, time), or
        ``None`` when the run stopped inside it (:attr:`result` says why; a signal also wrote a checkpoint)."""
        self.train_model.train()
        for hook in self.hooks:
            hook.start_epoch(epoch)
        self.data.train.set_epoch(epoch, self.start_step)
        sums, before_s = (self.partial, self.partial_s) if self.start_step else ([0.0, 0.0, 0.0], 0.0)
        ep = _EpochProgress(epoch, self.start_step, torch.tensor(sums, dtype=torch.float64, device=self.device))
        ep.before_s = before_s
        ep.bar = progress_bar(self.logger, epoch, self.cfg.epochs, self.steps_per_epoch, ep.step)
        # The non-finite check and the stop flag are read on the host only every `check_every` steps (and at the last
        # step of an epoch): a per-step `.item()` would make a fast GPU wait for the host each step. The first bad
        # step is kept on the device, so the report names it exactly either way.
        check_every = self.cfg.check_every or (1 if self.device.type == "cpu" else 25)
        gstep_dev = torch.tensor(epoch * self.steps_per_epoch + ep.step, device=self.device)
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        for x, y in self.data.train:
            with autocast_context(self.device, self.amp):
                loss, out = self.task.forward(self.train_model, x, y, epoch, ep.step)
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), gstep_dev, first_bad)
            gstep_dev += 1
            checking = (ep.step + 1) % check_every == 0 or ep.step + 1 == self.steps_per_epoch
            stop_seen = False
            if checking:
                bad, stop_seen = self._check_flags(first_bad)
                if bad:
                    self._report_non_finite(ep, first_bad)
                    return None
            self.train_step(loss)
            with torch.no_grad():
                ep.seen += self.task.accumulate(ep.sums, loss, out, y)
            ep.step += 1
            self.steps_this_call += 1
            self._log_step(ep, loss, checking)
            if (stop_seen or self._step_budget_spent()) and ep.step < self.steps_per_epoch:
                self._interrupt(ep)
                return None
        close_bar(ep.bar)
        all_reduce_sum(ep.sums, self.info)
        self.start_step = 0
        elapsed = ep.elapsed()
        return {
            "epoch": epoch + 1,
            "epochs": self.cfg.epochs,
            **self.task.train_columns(ep.sums),
            "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_time_s": elapsed,
            "img_per_s": float(ep.sums[2]) / max(1e-9, elapsed),
        }

    def train_step(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss`` (fp16-scaled, clipped by ``grad_clip``), then the schedule and hooks."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        for hook in self.hooks:
            hook.after_step(self.schedule.step_count)

    def evaluate(self) -> dict[str, Any]:
        """The task's evaluation columns of the model (and of its EMA), plus ``eval_time_s``."""
        t_eval = time.time()
        kw = dict(device=self.device, amp=self.amp, dist_info=self.info)
        model = self.train_model if not self.info.enabled else self.model
        cols = self.task.eval_columns(self.task.evaluate(model, self.data.eval, self.num_classes, **kw), "eval")
        if self.ema is not None:
            e = self.task.evaluate(self.ema.module, self.data.eval, self.num_classes, **kw)
            cols.update(self.task.eval_columns(e, "ema"))
        cols["eval_time_s"] = time.time() - t_eval
        return cols

    # -- checkpoints and stops ---------------------------------------------------------------------------------------
    def state_dict(
        self, epoch: int, step_in_epoch: int = 0, sums: list[float] | None = None, elapsed_s: float = 0.0
    ) -> dict[str, Any]:
        """Everything an exact resume at ``epoch``/``step_in_epoch`` needs, plus the run's record."""
        ema = self.ema
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_updates": int(ema.updates) if ema is not None else 0,
            "hooks": self.recipe.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "partial": list(sums or [0.0, 0.0, 0.0]),
            "partial_time_s": float(elapsed_s),
            **self.run.checkpoint_fields(),
        }

    def save(
        self, epoch: int, step_in_epoch: int = 0, sums: list[float] | None = None, elapsed_s: float = 0.0
    ) -> None:
        """Write the checkpoint (rank 0, atomically) and wait for every rank."""
        if self.info.is_main:
            save_checkpoint(self.state_dict(epoch, step_in_epoch, sums, elapsed_s), self.last)
        barrier(self.info)

    def _step_budget_spent(self) -> bool:
        return self.stop_after_steps is not None and self.steps_this_call >= self.stop_after_steps

    def _check_flags(self, first_bad: torch.Tensor) -> tuple[bool, bool]:
        """(a non-finite loss was seen, a stop was asked for) on any rank: one host sync."""
        signalled = float(bool(self.stop.signum)) if self.stop is not None else 0.0
        flags = torch.stack(
            [(first_bad >= 0).double(), torch.tensor(signalled, device=self.device, dtype=torch.float64)]
        )
        all_reduce_sum(flags, self.info)
        bad, stop = flags.tolist()
        return bad > 0, stop > 0

    def _report_non_finite(self, ep: _EpochProgress, first_bad: torch.Tensor) -> None:
        spe = self.steps_per_epoch
        gstep = int(first_bad) if int(first_bad) >= 0 else ep.epoch * spe + ep.step
        close_bar(ep.bar)
        where = f"last good checkpoint: {self.last}" if self.last.is_file() else "no checkpoint was written yet"
        self.say(
            f"senet train: non-finite loss at step {gstep} (epoch {ep.epoch + 1}, batch {gstep - ep.epoch * spe}); "
            f"stopping; {where}. Lower --lr, add warmup_epochs, or use amp fp32."
        )
        self.result = {"status": "non_finite_loss", "step": gstep, "epoch": ep.epoch + 1}

    def _log_step(self, ep: _EpochProgress, loss: torch.Tensor, checking: bool) -> None:
        world = self.info.world_size
        advance_bar(ep.bar, ep.speed(world), loss if checking else None)
        if self.logger.mode == "lines" and ep.step % self.cfg.log_interval == 0 and self.info.is_main:  # type: ignore[union-attr]
            self.say(
                f"  epoch {ep.epoch + 1} step {ep.step}/{self.steps_per_epoch} loss {float(loss.detach()):.4f} "
                f"{ep.speed(world):.0f} img/s"
            )

    def _interrupt(self, ep: _EpochProgress) -> None:
        """A stop inside an epoch: checkpoint the exact position (partial sums too) and say how to resume."""
        close_bar(ep.bar)
        self.save(ep.epoch, ep.step, ep.sums.tolist(), ep.elapsed())
        how = f"senet train --output {self.run_dir} --resume"
        self.say(
            f"senet train: stopped at epoch {ep.epoch + 1}, step {ep.step}; checkpoint {self.last}. Resume: {how}"
        )
        self.result = {"status": "interrupted", "epoch": ep.epoch + 1, "step": ep.step, "resume": how}

    def _stop_after_epoch(self, epoch: int) -> bool:
        """After an epoch: stop (checkpointed at its end) when a signal or the step budget asks and epochs remain."""
        # Every rank must agree (a signal can reach one rank between two others' checks): one all-reduce per epoch.
        _, signalled = self._check_flags(torch.full((), -1, dtype=torch.long, device=self.device))
        stopping = signalled or self._step_budget_spent()
        if not stopping or epoch + 1 >= self.cfg.epochs:
            return False
        if (epoch + 1) % self.cfg.checkpoint_every:
            self.save(epoch + 1)
        how = f"senet train --output {self.run_dir} --resume"
        self.say(f"senet train: stopped after epoch {epoch + 1}; checkpoint {self.last}. Resume: {how}")
        self.result = {"status": "interrupted", "epoch": epoch + 1, "step": 0, "resume": how}
        return True

    # -- the end -----------------------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """The result dict (status, where, final metrics); written to result.json and, when done, the ledger."""
        cfg, result = self.cfg, self.result
        self.logger.close()  # type: ignore[union-attr]
        rows = self.logger.rows  # type: ignore[union-attr]
        final = rows[-1] if rows else {}
        result.update(
            model=cfg.model,
            run_dir=str(self.run_dir),
            checkpoint=str(self.last),
            epochs_done=final.get("epoch", self.start_epoch),
            train_time_s=round(time.time() - self.t_start, 1),
        )
        result.update(self.task.result_fields(final))
        skipped = self.data.skipped
        if skipped:
            result.update(skipped_images=len(skipped), skipped=list(skipped))
            self.say(f"senet train: skipped {len(skipped)} undecodable image(s): " + ", ".join(skipped))
        finished_before = self.resumed is not None and self.start_epoch >= cfg.epochs and not self.start_step
        if finished_before and (self.run_dir / "result.json").is_file():
            # Resuming a finished run trains nothing: its result (and its ledger row) stay as they were.
            self.say(f"senet train: {str(self.run_dir)!r} had already finished its {cfg.epochs} epochs; nothing to do")
            return {**json.loads((self.run_dir / "result.json").read_text(encoding="utf-8")), "status": "done"}
        if self.info.is_main:
            atomic_write_text(self.run_dir / "result.json", json.dumps(result, indent=2) + "\n")
            if cfg.ledger and result["status"] == "done":
                append_row(cfg.ledger, row_from_run(self.run_dir, cfg.experiment or Path(cfg.ledger).stem))
                self.say(f"senet train: result appended to the ledger {cfg.ledger}")
        return result

    def close(self) -> None:
        """Leave the process group (DDP); safe to call after a failed setup."""
        cleanup(self.info)


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
