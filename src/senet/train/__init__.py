"""Training: a typed config, the :class:`Trainer` lifecycle (checkpoints, exact resume, DDP, EMA, AMP), evaluation.

Run folders are read with :func:`senet.runs.load_run`; models are built by :func:`senet.resolve.resolve_model`.

>>> from senet.train import load_config, train
>>> cfg = load_config("configs/cifar10_quick.yaml", {"model": "se_resnet20"})   # doctest: +SKIP
>>> result = train(cfg)                                                           # doctest: +SKIP
"""

from .checkpoint import build_model, load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import TrainConfig, config_to_dict, load_config
from .evaluate import evaluate
from .optim import LRSchedule, ModelEma, create_optimizer, param_groups
from .trainer import Trainer, train

__all__ = [
    "LRSchedule",
    "ModelEma",
    "TrainConfig",
    "Trainer",
    "build_model",
    "config_to_dict",
    "create_optimizer",
    "evaluate",
    "load_checkpoint",
    "load_config",
    "model_from_checkpoint",
    "param_groups",
    "save_checkpoint",
    "train",
]
