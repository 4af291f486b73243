"""Fake train functions for the ablation-runner tests (importable by spawned workers; no torch import)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fake_train(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Deterministic 'accuracy' from the config; fails when the cell asks for it; counts its calls in run_dir."""
    calls = Path(run_dir) / "calls.txt"
    calls.write_text(str(int(calls.read_text()) + 1 if calls.exists() else 1))
    if config.get("model_kwargs", {}).get("attn_layer") == "boom" and not os.environ.get("FAKE_TRAIN_FIXED"):
        raise RuntimeError("cell exploded\nsecond line")
    r = config["model_kwargs"].get("attn_kwargs", {}).get("rd_ratio", 1.0)
    return {"top1": 0.9 - 0.01 * config["seed"] - r / 10, "top5": 0.99, "config_echo": json.dumps(config)[:20]}
