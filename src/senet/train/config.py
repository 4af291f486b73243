"""The training configuration: one typed dataclass, layered defaults -> YAML file -> command-line overrides.

Unknown keys and values of the wrong type are rejected with a one-line :class:`~senet.errors.SenetError` naming the
key, so a typo in a recipe never silently trains something else.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from senet.errors import SenetError
from senet.utils.system import default_workers

from .tasks import sigma_range

__all__ = ["TrainConfig", "load_config", "parse_value", "parse_sets", "config_to_dict"]


@dataclass
class TrainConfig:
    """Everything a training run depends on. Epoch-valued fields (``milestones``, ``warmup_epochs``) are in epochs."""

    # What to train, on what.
    task: str = "classify"  # classify | denoise (senet.train.tasks)
    model: str = "resnet20"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # Retrofit (senet.retrofit): insert attention into an existing network instead of building `model`.
    retrofit: str | None = None  # torchvision:NAME | timm:NAME | senet:NAME; model_kwargs go to senet.retrofit
    # Initial weights (.pt/.pth/.safetensors, read with weights_only=True): the original network's for --retrofit,
    # else the zoo model's in any layout senet.weights reads; a head of another size is replaced for this dataset.
    weights: str | None = None
    freeze: str = "none"  # none | backbone: train only the classifier all run (a linear probe; backbone BN fixed)
    freeze_epochs: int = 0  # warm-up: the first N epochs train only the classifier (+ attention --retrofit added)
    layer_decay: float = 1.0  # < 1: layer-wise lr decay, lr x layer_decay**(layers above); the classifier gets lr
    data: str | None = None  # dataset path, or a folder holding datasets; None: $SENET_DATA_DIR or ../shared/data
    dataset: str = "cifar10"  # the name looked up inside a data folder (cifar10, cifar100, imagenette, imagenet)
    download: bool = False
    # Splits that are not train/ + val/ folders (senet.data.splits); the chosen file lists go to <run>/split.json.
    val_fraction: float = 0.0  # > 0: hold out this stratified share of each class for evaluation
    train_split: str | None = None  # sub-folder to train on (default train/), e.g. photo
    val_split: str | None = None  # sub-folder to evaluate on, e.g. sketch (classes may differ: their union is used)
    split_seed: int = 0  # seed of the --val-fraction draw (kept apart from `seed`, so every seed sees one split)
    output: str = "runs/{model}-s{seed}"
    # Data pipeline.
    loader: str = "auto"  # auto | tensor (small images, augmented on device) | dataloader (files + workers)
    img_size: int | None = None  # dataloader path only (default 224); the tensor path keeps the stored size
    crop_pct: float = 0.875
    pad: int = 4
    pad_mode: str = "zeros"  # zeros | reflect: how the random-translate crop fills the border (tensor path)
    flip: bool = True
    flip_mode: str = "random"  # random (p=0.5 per image per batch) | alternate (airbench94; tensor loader only)
    cutout: int = 0
    workers: int = field(default_factory=default_workers)  # 4, at most the usable CPU cores
    skip_bad_images: bool = False  # leave out undecodable image files (listed at the end) instead of stopping
    train_subset: int = 0  # > 0: train on a fixed random subset of this many images
    eval_subset: int = 0  # > 0: evaluate on a fixed random subset of this many held-out images
    cache_dir: str | None = None
    # Denoising (task: denoise): Gaussian noise on random crops of the images; labels are ignored.
    noise_sigma: float | list[float] | str = 25.0  # 0-255 units; a range (15-50 or [15, 50]) trains a blind denoiser
    crop: int = 0  # > 0: train on random crop x crop patches (0: whole images)
    denoise_loss: str = "l2"  # l2 (DnCNN) | l1
    eval_sigmas: list[float] = field(default_factory=lambda: [15.0, 25.0, 50.0])
    # Optimisation.
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 512
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 5e-4
    wd_skip_norm_bias: bool = True
    # With wd_skip_norm_bias: decay norm shifts and biases after all, by the same per-step amount as the weights
    # (airbench94): their SGD weight_decay becomes weight_decay / their lr scale (bias_lr_scale for norm layers).
    norm_bias_decay: bool = False
    schedule: str = "cosine"  # step | cosine | linear | onecycle | constant
    milestones: list[float] = field(default_factory=lambda: [100.0, 150.0])
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    warmup_start: float = 0.1  # fraction of lr at step 0 of the warmup
    min_lr: float = 0.0
    onecycle_pct: float = 0.25
    label_smoothing: float = 0.0
    bias_lr_scale: float = 1.0  # lr multiplier for normalisation layers' scales and shifts (needs wd_skip_norm_bias)
    data_init_images: int = 5000  # images for a model's data-dependent init (SpeedNet whitening); 0 skips it
    tta: str = "none"  # test-time augmentation at evaluation: none | flip | flip_translate
    grad_clip: float = 0.0
    ema: float = 0.0  # > 0: keep an exponential moving average of the weights with this decay, evaluated too
    # Lookahead (airbench94): every N steps ema <- lerp(ema, net, 1 - d), net <- ema, d = decay**N * (t / T)**3,
    # over all float state (BN running stats too); the net takes the average at the last step. 0: off.
    lookahead_every: int = 0
    lookahead_decay: float = 0.95
    whiten_bias_epochs: int = 0  # > 0: train the whitening conv's bias (SpeedNet) for N epochs, then freeze it
    # Speed.
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto | bf16 | fp16 | fp32; auto: bf16 on CUDA and on CPUs with AMX / AVX-512 BF16
    channels_last: str = "auto"  # auto | true | false; auto: follows the device (senet.utils.hardware)
    compile: bool = False
    threads: int = 0  # > 0: torch.set_num_threads
    # Reproducibility and bookkeeping.
    seed: int = 0
    deterministic: bool = False
    eval_every: int = 1
    checkpoint_every: int = 1
    log_interval: int = 50
    check_every: int = 0  # steps between host reads of the non-finite/stop flags; 0: 1 on CPU, 25 on GPU
    progress: str = "auto"  # auto | bar | lines | none
    tensorboard: bool = False
    resume: bool = False
    sync_bn: bool = False
    # The results ledger (senet.train.ledger): a finished run appends one row to this JSONL file.
    ledger: str | None = None
    experiment: str = ""  # the ledger rows' experiment name; "" -> the ledger file's stem
    cell: str = ""  # the grid cell (senet ablate) this run belongs to: its ledger row's line label, not the recipe


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _check(name: str, value: Any, tp: Any, source: str) -> Any:
    """Validate (and lightly coerce: int -> float, str paths) ``value`` against the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(name, value, a, source)
            except SenetError as exc:
                errors.append(str(exc))
        raise SenetError(errors[0] if errors else f"{source}: {name} has a bad value {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise SenetError(f"{source}: {name} must be a list, got {value!r}")
        return [_check(f"{name}[{i}]", v, item, source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SenetError(f"{source}: {name} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise SenetError(f"{source}: {name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SenetError(f"{source}: {name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SenetError(f"{source}: {name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) and "true" in _CHOICES.get(name, ()):
            # YAML reads a bare `true` as a boolean; `channels_last: true` means the choice "true".
            return "true" if value else "false"
        if not isinstance(value, str):
            raise SenetError(f"{source}: {name} must be a string, got {value!r}")
        return value
    return value


def parse_value(text: str) -> Any:
    """Parse a command-line value as YAML (``0.1``, ``true``, ``[30, 60]``, ``{rd_ratio: 0.25}``, ``null``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options (repeatable) as config overrides, values parsed as YAML; dashes in keys become
    underscores. A malformed item is a one-line error."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SenetError(f"--set takes KEY=VALUE (e.g. --set epochs=30), got {item!r}")
        out[key.strip().replace("-", "_")] = parse_value(value)
    return out


_CHOICES = {
    "optimizer": ("sgd", "adamw"),
    "schedule": ("step", "cosine", "linear", "onecycle", "constant"),
    "amp": ("auto", "bf16", "fp16", "fp32"),
    "channels_last": ("auto", "true", "false"),
    "loader": ("auto", "tensor", "dataloader"),
    "progress": ("auto", "bar", "lines", "none"),
    "pad_mode": ("zeros", "reflect"),
    "flip_mode": ("random", "alternate"),
    "tta": ("none", "flip", "flip_translate"),
    "freeze": ("none", "backbone"),
    "task": ("classify", "denoise"),
    "denoise_loss": ("l2", "l1"),
}


_DEFAULTS = {f.name: getattr(TrainConfig(), f.name) for f in dataclasses.fields(TrainConfig)}


def _validate(cfg: TrainConfig) -> None:
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            raise SenetError(f"{key} must be one of {', '.join(choices)}, not {getattr(cfg, key)!r}")
    for key in ("epochs", "batch_size", "eval_batch_size", "eval_every", "checkpoint_every", "log_interval"):
        if getattr(cfg, key) <= 0:
            raise SenetError(f"{key} must be positive, got {getattr(cfg, key)}")
    if cfg.check_every < 0:
        raise SenetError(f"check_every must be >= 0 (0: automatic), got {cfg.check_every}")
    if cfg.lr <= 0:
        raise SenetError(f"lr must be positive, got {cfg.lr}")
    if not 0.0 <= cfg.ema < 1.0:
        raise SenetError(f"ema must be in [0, 1), got {cfg.ema}")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise SenetError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if cfg.lookahead_every < 0 or cfg.whiten_bias_epochs < 0 or not 0.0 < cfg.lookahead_decay <= 1.0:
        raise SenetError(
            "lookahead_every and whiten_bias_epochs must be >= 0 and lookahead_decay in (0, 1], got "
            f"{cfg.lookahead_every}, {cfg.whiten_bias_epochs}, {cfg.lookahead_decay}"
        )
    if cfg.norm_bias_decay and not cfg.wd_skip_norm_bias:
        raise SenetError("norm_bias_decay needs wd_skip_norm_bias: true (with false, biases are decayed as weights)")
    if cfg.bias_lr_scale <= 0 or cfg.data_init_images < 0:
        raise SenetError("bias_lr_scale must be positive and data_init_images not negative")
    if cfg.weight_decay < 0 or cfg.warmup_epochs < 0 or cfg.pad < 0 or cfg.cutout < 0 or cfg.train_subset < 0:
        raise SenetError("weight_decay, warmup_epochs, pad, cutout and train_subset must not be negative")
    if cfg.schedule == "onecycle" and cfg.warmup_epochs:
        raise SenetError(
            f"warmup_epochs {cfg.warmup_epochs} is ignored by schedule onecycle (its warm-up is onecycle_pct, the "
            "share of steps spent rising): drop warmup_epochs or pick schedule cosine"
        )
    if cfg.freeze_epochs < 0 or (cfg.freeze_epochs and cfg.freeze != "none"):
        raise SenetError(f"freeze_epochs must be >= 0 and goes without --freeze backbone, got {cfg.freeze_epochs}")
    if not 0.0 < cfg.layer_decay <= 1.0:
        raise SenetError(
            f"layer_decay must be in (0, 1] (1: off; 0.65-0.9 is usual for fine-tuning), got {cfg.layer_decay}"
        )
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise SenetError(f"val_fraction must be in [0, 1) (e.g. 0.2), got {cfg.val_fraction}")
    if not 0.0 < cfg.crop_pct <= 1.0:
        raise SenetError(f"crop_pct must be in (0, 1], got {cfg.crop_pct}")
    if cfg.eval_subset < 0 or cfg.crop < 0:
        raise SenetError(f"eval_subset and crop must not be negative, got {cfg.eval_subset}, {cfg.crop}")
    denoise_keys = [
        k for k in ("noise_sigma", "crop", "denoise_loss", "eval_sigmas") if getattr(cfg, k) != _DEFAULTS[k]
    ]
    if cfg.task != "denoise" and denoise_keys:
        raise SenetError(f"{', '.join(denoise_keys)} set but task is {cfg.task!r}: add --task denoise")
    if cfg.task == "denoise":
        lo, hi = sigma_range(cfg.noise_sigma)
        cfg.noise_sigma = lo if lo == hi else [lo, hi]  # one canonical form in config.yaml and the recipe hash
        if not cfg.eval_sigmas or any(s < 0 for s in cfg.eval_sigmas):
            raise SenetError(f"eval_sigmas must be a non-empty list of non-negative numbers, got {cfg.eval_sigmas}")
        if cfg.retrofit or cfg.freeze != "none" or cfg.freeze_epochs:
            raise SenetError(
                "task denoise trains a whole denoiser (e.g. --model se_denoiser): --retrofit, --freeze and "
                "--freeze-epochs are for classifiers"
            )


def _apply(values: dict[str, Any], source: str, current: dict[str, Any]) -> None:
    types_ = _field_types()
    for key, value in values.items():
        k = str(key).replace("-", "_")
        if k not in types_:
            close = difflib.get_close_matches(k, types_, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SenetError(f"{source}: unknown config key {key!r}{hint}; `senet train --help` lists them")
        current[k] = _check(k, value, types_[k], source)


def load_config(
    yaml_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults, then ``base`` (e.g. a checkpoint's config), then the YAML file, then ``overrides``.

    Override values may be strings from the command line; they are parsed as YAML scalars/lists first.
    """
    current = config_to_dict(TrainConfig())
    if base:
        _apply(base, "checkpoint config", current)
    if yaml_path is not None:
        p = Path(yaml_path).expanduser()
        if not p.is_file():
            raise SenetError(f"config file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SenetError(f"config file {str(p)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        if not isinstance(data, dict):
            raise SenetError(f"config file {str(p)!r} must hold a mapping of keys to values")
        _apply(data, str(p), current)
    if overrides:
        parsed = {k: parse_value(v) if isinstance(v, str) else v for k, v in overrides.items()}
        # A path-like or name-like string stays exactly as typed even when YAML reads it as something else (a
        # number, or "a #b" cut at the comment); only null/none still means None.
        types_ = _field_types()
        for k, v in list(parsed.items()):
            tp = types_.get(str(k).replace("-", "_"))
            if isinstance(overrides[k], str) and tp in (str, str | None) and v is not None:
                parsed[k] = overrides[k]
        _apply(parsed, "command line", current)
    cfg = TrainConfig(**current)
    _validate(cfg)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """A plain dict (YAML- and weights_only-safe) of ``cfg``."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
