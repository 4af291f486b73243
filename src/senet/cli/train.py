"""``senet train``: train a model from the zoo on an image dataset; any config key is a ``--key value`` flag."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

import yaml

from senet.runs import CONFIG_FILE, load_run
from senet.train import config_to_dict, load_config, train
from senet.train.config import TrainConfig
from senet.train.trainer import run_dir_for

_FLAGS = ("model", "data", "epochs", "batch_size", "lr", "seed", "output", "device")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model (CIFAR to ImageNet, CPU to torchrun DDP)",
        description=(
            "Train a model on an ImageFolder dir, a .tar/.tar.gz of one, or a CIFAR pickle folder. Settings layer as "
            "defaults -> --config YAML -> flags; every key of senet.train.TrainConfig is also a flag (--key value, "
            "e.g. --schedule step --milestones '[100, 150]' --model-kwargs '{rd_ratio: 0.25}'). "
            "For DDP: torchrun --nproc-per-node N -m senet train ..."
        ),
        allow_abbrev=False,
        epilog="config keys (each also a --key value flag): " + _keys_help(),
    )
    p.add_argument("--model", metavar="NAME", help="zoo model name, or module:callable (default: resnet20)")
    p.add_argument(
        "--data", metavar="PATH", help="dataset, or folder of datasets (default: $SENET_DATA_DIR or ../shared/data)"
    )
    p.add_argument("--config", metavar="YAML", help="recipe file, e.g. configs/cifar10_quick.yaml (default: none)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (default: 10)")
    p.add_argument("--batch-size", type=int, metavar="N", help="global batch size over all processes (default: 128)")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate (default: 0.1)")
    p.add_argument("--seed", type=int, metavar="N", help="seed for init, shuffling and augmentation (default: 0)")
    p.add_argument(
        "--output", metavar="DIR", help="run folder; {model} and {seed} are filled in (default: runs/{model}-s{seed})"
    )
    p.add_argument("--device", metavar="DEV", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    p.add_argument("--download", action="store_true", help="download CIFAR-10/100 through torchvision if missing")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")

    # Everything argparse does not know becomes a config override (senet.cli.main hands the unknown tokens to
    # `extra_args`); TrainConfig validates names and types.
    p.set_defaults(extra_args=lambda extra: {"overrides": _pairs(extra, p)})
    return p


def _keys_help() -> str:
    return ", ".join(f"{f.name}={getattr(TrainConfig(), f.name)!r}" for f in dataclasses.fields(TrainConfig))


def _pairs(extra: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or len(tok) == 2:
            parser.error(f"unexpected argument {tok!r}: config overrides are --key value")
        key, eq, value = tok[2:].partition("=")
        if not eq:
            if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                value = extra[i + 1]
                i += 1
            else:
                value = "true"
        out[key.replace("-", "_")] = value
        i += 1
    return out


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = dict(getattr(args, "overrides", {}) or {})
    for key in _FLAGS:
        v = getattr(args, key)
        if v is not None:
            overrides[key] = v
    if args.resume:
        overrides["resume"] = True
    if args.download:
        overrides["download"] = True
    base = None
    if args.resume:
        # A resumed run keeps its own resolved config; flags given now (e.g. more --epochs) still win.
        folder = run_dir_for(load_config(args.config, overrides))
        if (folder / CONFIG_FILE).is_file():
            base = load_run(folder, checkpoint=False).config
            # The run continues in the folder it was found in, whatever an {dataset} in the template now gives.
            overrides["output"] = str(folder)
    cfg = load_config(args.config, overrides, base=base)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    result = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result))
    return {"done": 0, "interrupted": 130, "non_finite_loss": 3}.get(result.get("status", "done"), 1)
