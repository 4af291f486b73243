"""A tiny CIFAR-like ImageFolder and a `senet train`-format checkpoint of se_resnet20, built at test time."""

from __future__ import annotations

from pathlib import Path

import torch

CLASSES = ["cat", "dog", "frog"]


def tiny_folder(root: Path, per_class: int = 4) -> Path:
    """``root/{train,test}/<class>/<i>.png`` with 32x32 images whose colour depends on the class."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for k, c in enumerate(CLASSES):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = torch.randint(0, 120, (3, 32, 32), generator=g, dtype=torch.uint8)
                img[k] += 120
                write_png(img, str(d / f"{i}.png"))
    return root


def tiny_checkpoint(path: Path, data: Path, model_name: str = "se_resnet20") -> Path:
    from senet.train import config_to_dict, load_config, save_checkpoint
    from senet.train.checkpoint import build_model

    torch.manual_seed(0)
    model = build_model(model_name, len(CLASSES))
    with torch.no_grad():  # make the gates differ between images (fresh BN statistics would give near-constant ones)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    cfg = config_to_dict(load_config(None, {"model": model_name, "data": str(data)}))
    state = {
        "model": model.state_dict(),
        "ema": None,
        "config": cfg,
        "classes": CLASSES,
        "class_names": CLASSES,
        "preprocess": {"kind": "tensor", "img_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "epoch": 1,
    }
    return save_checkpoint(state, path)
