"""The results ledger: every finished run as one JSON line in ``results/<experiment>.jsonl``, kept in the repository.

Full-budget runs cost tens of CPU-minutes each, so they accumulate over days and machines. The ledger is append-only:
a row is never edited, and a new row is added by rewriting the file atomically (temporary file + rename, under a lock
file), so a killed writer leaves either the old file or the new one, never half a line. Sweep runners ask
:func:`done_keys` which (model, seed, recipe, amp, kind) cells already exist and skip them; the tables in ``docs/`` are
generated from these files by ``benchmarks/report.py``, never typed by hand.

A row holds: experiment, model, kind (attention kind), seed, recipe_hash (the training recipe without the fields that
name the run or the machine), commit, machine (CPU model and capability, or the GPU's name), amp, train_s (sum of the
epochs' training time), eval_s (evaluations, test-time augmentation included), top1, top5 (percent), epochs, and
free-form extras. Rows of the denoising task (``task: denoise``) carry ``task``, ``sigma``, ``psnr``, ``psnr_noisy``,
``psnr_gain`` (dB), ``ssim`` and ``by_sigma`` instead of top1/top5 (:data:`DENOISE_REQUIRED`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from senet.errors import SenetError
from senet.utils.io import atomic_write_text

__all__ = [
    "REQUIRED",
    "DENOISE_REQUIRED",
    "required_columns",
    "attention_kind",
    "recipe_hash",
    "row_from_run",
    "append_row",
    "read_rows",
    "done_keys",
    "row_key",
    "config_key",
    "recipe_changes",
    "config_recipe_hash",
    "recorded_dataset",
]

#: Columns every row must have.
REQUIRED = (
    "experiment",
    "model",
    "kind",
    "seed",
    "recipe_hash",
    "commit",
    "machine",
    "amp",
    "train_s",
    "eval_s",
    "top1",
    "top5",
)

#: Columns every denoising row must have (the metrics differ from a classifier's; the bookkeeping does not).
DENOISE_REQUIRED = (*REQUIRED[:-2], "task", "sigma", "psnr", "psnr_noisy", "psnr_gain", "ssim")

# Config keys added after ledgers had rows: at these defaults they are left out of the recipe hash, so a run of an
# unchanged recipe keeps the hash (and the done-cell of a sweep) it had before the key existed.
_LATER_DEFAULTS: dict[str, Any] = {
    "task": "classify",
    "eval_subset": 0,
    "noise_sigma": 25.0,
    "crop": 0,
    "denoise_loss": "l2",
    "eval_sigmas": [15.0, 25.0, 50.0],
    "freeze": "none",
    "layer_decay": 1.0,
}

# Config fields that name the run, place its files or pick the hardware: two runs that differ only in these trained
# the same recipe. amp/channels_last/compile are recorded as columns instead (bf16-vs-fp32 parity pairs on them).
_NOT_RECIPE = frozenset(
    {
        "model",
        "seed",
        "output",
        "data",
        "download",
        "resume",
        "progress",
        "tensorboard",
        "cache_dir",
        "workers",
        "device",
        "threads",
        "log_interval",
        "check_every",
        "amp",
        "channels_last",
        "compile",
        "deterministic",
        "checkpoint_every",
        "ledger",
        "cell",
        "experiment",
    }
)


def attention_kind(model: str) -> str:
    """The attention kind in a registered model name (``se_resnet20`` -> ``se``), or ``none``."""
    from senet.layers import list_attn  # torch: the ledger itself is read without it

    head = model.split(":")[-1].split("_")[0]
    return head if head in list_attn() else "none"


def model_attention(model: Any) -> str:
    """The attention kinds an ``nn.Module`` holds, as the ledger's ``kind`` (``se``, ``eca+se``, or ``none``).

    Read from the built network rather than its name: ``mobilenet_v3_small`` has SE by default, and a grid's cells
    change the kind through ``model_kwargs``. A retrofit swap wrapper counts as its new block only (its ``kind``).
    """
    from senet.layers import iter_attention  # torch: the ledger itself is read without it

    kinds = {site.kind for site in iter_attention(model) if site.kind is not None}
    return "+".join(sorted(kinds)) or "none"


def recipe_hash(config: dict[str, Any]) -> str:
    """12 hex digits identifying the training recipe in ``config`` (a resolved config dict).

    Like the model name, ``model_kwargs.attn_layer`` is what a comparison varies, not the recipe: it is the row's
    ``kind``, so a grid's none / SE / ECA cells share one recipe and pair up by seed.
    """
    recipe = {
        k: v
        for k, v in sorted(config.items())
        if k not in _NOT_RECIPE and not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])
    }
    if isinstance(recipe.get("model_kwargs"), dict) and "attn_layer" in recipe["model_kwargs"]:
        recipe["model_kwargs"] = {k: v for k, v in recipe["model_kwargs"].items() if k != "attn_layer"}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:12]


def recipe_changes(old: dict[str, Any], new: dict[str, Any], allowed: Iterable[str] = ()) -> list[str]:
    """The recipe settings that differ between two resolved configs (``"lr 0.1 -> 0.01"``), leaving out what
    :func:`recipe_hash` leaves out, the recorded ``dataset`` and the keys in ``allowed``. A key missing from ``old``
    (a run from before it existed) counts as its default."""
    from senet.train.config import TrainConfig, config_to_dict  # torch: the ledger itself is read without it

    defaults = config_to_dict(TrainConfig())
    skip = _NOT_RECIPE | {"dataset", *allowed}
    out = []
    for k in sorted(set(old) | set(new)):
        if k in skip:
            continue
        a, b = old.get(k, defaults.get(k)), new.get(k, defaults.get(k))
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(f"{k} {a!r} -> {b!r}")
    return out


def recorded_dataset(cfg: Any, data_path: str | os.PathLike[str] | None = None) -> str:
    """The dataset name a run of ``cfg`` records in its ``config.yaml``: what ``--data`` resolves to, not the lookup
    name's default (a folder ``flowers/`` records ``flowers`` although ``cfg.dataset`` says ``cifar10``).

    ``data_path`` is the resolved path when the caller has it (the trainer); otherwise it is resolved here without
    downloading, and a source that cannot be found yet keeps ``cfg.dataset`` (a download fetches that name).
    """
    from senet.data.sources import dataset_name, resolve_data

    if data_path is None:
        folders = tuple(s for s in (cfg.train_split, cfg.val_split) if s)
        try:
            data_path = resolve_data(cfg.data, cfg.dataset, False, folders)
        except SenetError:
            return cfg.dataset
    return dataset_name(Path(data_path), cfg.dataset)


def config_key(cfg: Any) -> tuple[str, int, str, str, str, str]:
    """The :func:`row_key` that a finished run of the :class:`~senet.train.TrainConfig` ``cfg`` will have (``amp:
    auto`` resolved for this machine as the trainer resolves it; the attention kind read from the network, built
    on the meta device without weights), so a sweep can skip a cell that is done."""
    import torch

    from senet.train.checkpoint import build_model
    from senet.train.trainer import resolve_device
    from senet.utils.hardware import auto_precision

    device = resolve_device(cfg.device)
    amp = auto_precision(device, cfg.amp, cfg.channels_last).amp
    classes = None if getattr(cfg, "task", "classify") == "denoise" else 10  # the count does not change the kind
    try:
        with torch.device("meta"):
            model = build_model(cfg.model, classes, cfg.model_kwargs, cfg.retrofit)
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta is built for real (same kind)
        model = build_model(cfg.model, classes, cfg.model_kwargs, cfg.retrofit)
    return (cfg.model, int(cfg.seed), config_recipe_hash(cfg), amp, model_attention(model), device.type)


def config_recipe_hash(cfg: Any) -> str:
    """:func:`recipe_hash` of a :class:`~senet.train.TrainConfig` as its finished run will record it, so a sweep can
    ask the ledger before training whether this cell is done."""
    from senet.train.config import config_to_dict

    return recipe_hash(dict(config_to_dict(cfg), dataset=recorded_dataset(cfg)))


def row_key(row: dict[str, Any]) -> tuple[str, int, str, str, str, str]:
    """What makes a run unique in a ledger file: model, seed, recipe, the precision it trained in, its attention
    kind and the device type (the recipe leaves amp, ``attn_layer`` and the device out so that a bf16 run and its
    fp32 twin, a grid's none and SE cells, or a CPU run and its GPU twin share a recipe and pair up; the key keeps
    them apart, so a GPU sweep does not skip the cells a CPU already ran). Rows from before the ``device`` column
    were all CPU runs."""
    device = str(row.get("device") or "cpu")
    return (str(row["model"]), int(row["seed"]), str(row["recipe_hash"]), str(row["amp"]), str(row["kind"]), device)


def _machine(meta: dict[str, Any]) -> str:
    from senet.utils.hardware import machine_label  # torch: the ledger itself is read without it

    # A run resumed on other machines names each in turn: its seconds then mix machines and do not compare.
    machines = meta.get("machines") or [machine_label(meta)]
    return " then ".join(machines)


def row_from_run(run_dir: str | os.PathLike[str], experiment: str, **extra: Any) -> dict[str, Any]:
    """A ledger row from a finished run folder (``result.json``, ``meta.json``, ``config.yaml``, ``metrics.jsonl``).

    Raises :class:`SenetError` when the run did not finish (no ``result.json`` with status ``done``).
    """
    from senet.runs import load_run  # torch: the ledger itself is read (benchmarks/report.py) without it

    run = Path(run_dir)
    try:
        record = load_run(run, checkpoint=False)
        result, meta, config, rows = record.result(), record.meta, record.config, record.metrics()
    except (OSError, ValueError) as exc:
        raise SenetError(f"{str(run)!r} is not a finished senet run folder ({exc.__class__.__name__}: {exc})") from exc
    denoise = config.get("task", "classify") == "denoise"
    if result.get("status") != "done" or result.get("psnr" if denoise else "top1") is None:
        raise SenetError(f"run {str(run)!r} did not finish (status {result.get('status')!r}); resume it first")
    train_s = sum(r.get("epoch_time_s", 0.0) for r in rows)
    eval_s = sum(r.get("eval_time_s", 0.0) for r in rows)
    commit = meta.get("git_commit", "unknown")
    if meta.get("git_dirty"):
        commit += "+dirty"
    row = {
        "experiment": experiment,
        "model": config["model"],
        "kind": meta.get("attention") or attention_kind(config["model"]),
        "seed": int(config["seed"]),
        "recipe_hash": recipe_hash(config),
        "commit": commit,
        "machine": _machine(meta),
        "device": str(meta.get("device") or "cpu").split(":")[0],
        "cpu_capability": meta.get("cpu_capability"),
        "amp": meta.get("amp"),
        "channels_last": meta.get("channels_last"),
        "compile": config.get("compile", False),
        "threads": meta.get("threads"),
        "epochs": int(result.get("epochs_done", len(rows))),
        "train_s": round(train_s, 3),
        "eval_s": round(eval_s, 3),
        **(
            {k: result.get(k) for k in ("task", "sigma", "psnr", "psnr_noisy", "psnr_gain", "ssim", "by_sigma")}
            if denoise
            else {"top1": result["top1"], "top5": result.get("top5")}
        ),
        "train_images": meta.get("train_images"),
        "date": meta.get("date") or _mtime_date(run / "result.json"),
    }
    if config.get("cell"):
        # A grid's cells differ in more than the attention kind (retrofit, init, base options): the row names its
        # cell, and ``sweep_recipe`` (the recipe without the model's options) groups the grid's cells in one table.
        shared = {k: v for k, v in config.items() if k not in ("model_kwargs", "retrofit")}
        row.update(cell=config["cell"], sweep_recipe=recipe_hash(shared))
    row.update(extra)
    return row


def _mtime_date(path: Path) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` so two sweeps appending at once cannot lose each other's rows."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def required_columns(row: dict[str, Any]) -> tuple[str, ...]:
    """The columns a run's row needs: :data:`DENOISE_REQUIRED` for a denoising run, else :data:`REQUIRED`."""
    return DENOISE_REQUIRED if row.get("task") == "denoise" else REQUIRED


def append_row(path: str | os.PathLike[str], row: dict[str, Any], required: Iterable[str] | None = None) -> None:
    """Append ``row`` to the ledger at ``path`` atomically; refuses rows missing a ``required`` column.

    ``required`` defaults to the training-run columns of the row's task (:func:`required_columns`); other ledgers
    (throughput) name theirs.
    """
    if required is None:
        required = required_columns(row)
    missing = [k for k in required if k not in row]
    if missing:
        raise SenetError(f"ledger row lacks {', '.join(missing)}: {json.dumps(row)[:200]}")
    p = Path(path)
    line = json.dumps(row, sort_keys=False) + "\n"
    with _locked(p):
        old = p.read_text(encoding="utf-8") if p.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(p, old + line)


def read_rows(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """All rows of one ledger file or several; a line that is not JSON is a one-line error naming file and line."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[dict[str, Any]] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            continue
        for i, text in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            try:
                out.append(json.loads(text))
            except ValueError as exc:
                raise SenetError(f"{str(p)}:{i} is not a JSON ledger row ({exc}); fix or remove that line") from exc
    return out


def done_keys(path: str | os.PathLike[str]) -> set[tuple[str, int, str, str, str, str]]:
    """The (model, seed, recipe_hash) cells already in the ledger at ``path``."""
    return {row_key(r) for r in read_rows(path)}
