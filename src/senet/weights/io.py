"""Reading and writing checkpoints safely.

* safetensors files carry senet's metadata (model name, layout, preprocessing, class names) as JSON strings.
* Pickled checkpoints (``.pth``, ``.pth.tar``, ``.pkl``, ``.bin``) are read with ``torch.load(weights_only=True)``:
  a pickle that needs arbitrary code is refused with a :class:`~senet.errors.SenetError` naming the globals it asked
  for. Old checkpoints that store a NumPy scalar (``best_prec1``) are the one exception allowed through: NumPy scalar
  reconstruction is data, not code.
* Training checkpoints are unwrapped: ``{"state_dict": ...}``, ``{"model": ...}``, optimizer state alongside.
* URLs are fetched only when the caller passes one, and only with a SHA-256 to check against.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from senet.errors import SenetError
from senet.runs import Run, is_run_checkpoint
from senet.utils.io import atomic_path

__all__ = [
    "Checkpoint",
    "read_checkpoint",
    "unwrap_state_dict",
    "save_safetensors",
    "is_url",
    "fetch_url",
    "sha256_file",
    "METADATA_JSON_KEYS",
]

#: Metadata keys whose values are JSON-encoded (safetensors metadata is ``dict[str, str]``).
METADATA_JSON_KEYS = ("mean", "std", "input_size", "crop_pct", "class_names", "model_kwargs", "num_classes")

# Containers a training script wraps its weights in, most specific first. EMA weights are preferred by timm's
# own loader only on request, so "state_dict" wins over "state_dict_ema" here too. A `senet train` checkpoint is
# the exception (read_checkpoint): its EMA weights win, as in `senet eval`.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "net", "module", "weights", "params")

# Globals that old (mmcv, ECA-Net era) checkpoints pickle for NumPy scalars such as ``best_prec1``. Rebuilding a
# scalar from its dtype and raw bytes executes no user code.
_NUMPY_SAFE = {
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
}
_NUMPY_DTYPE_RE = re.compile(r"^numpy\.dtypes\.\w+DType$")


@dataclass
class Checkpoint:
    """A state_dict plus everything else the file told us."""

    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)  # decoded safetensors metadata, or pickle extras
    path: str = ""
    wrapper: str | None = None  # the key the weights were found under ("state_dict", "model", ...)
    extras: list[str] = field(default_factory=list)  # other top-level keys (optimizer, epoch, ...): ignored
    run: Run | None = field(default=None, repr=False)  # the run a `senet train` checkpoint describes


def is_url(s: str | os.PathLike[str]) -> bool:
    return isinstance(s, str) and s.split("://", 1)[0] in ("http", "https")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_dir() -> Path:
    root = os.environ.get("SENET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "senet")
    return Path(root) / "weights"


def fetch_url(url: str, sha256: str | None = None, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download ``url`` once into the cache and return its path, after checking its SHA-256.

    The expected hash comes from ``sha256``, a ``#sha256=<hex>`` URL fragment, or (torch.hub's convention) the
    ``name-<hex prefix>.ext`` file name. Without any of these the download is refused: an unchecked file from the
    network is not loaded.
    """
    url, _, fragment = url.partition("#")
    if sha256 is None and fragment.startswith("sha256="):
        sha256 = fragment[len("sha256=") :]
    name = os.path.basename(url.split("?", 1)[0]) or "download"
    expected = (sha256 or "").lower()
    if not expected:
        m = re.search(r"-([0-9a-f]{8,64})\.", name)
        if m is None:
            raise SenetError(
                f"refusing to download {url} without a SHA-256 to check: pass sha256=... (CLI: --sha256) or "
                "append '#sha256=<hex>' to the URL"
            )
        expected = m.group(1)
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
        raise SenetError(f"sha256 {sha256!r} is not a hex digest (8 to 64 hex characters)")
    dest_dir = Path(cache_dir) if cache_dir is not None else _cache_dir()
    dest = dest_dir / name
    if dest.is_file() and sha256_file(dest).startswith(expected):
        return dest
    with atomic_path(dest, suffix=".part") as tmp:
        torch.hub.download_url_to_file(url, str(tmp), progress=True)
        got = sha256_file(tmp)
        if not got.startswith(expected):
            raise SenetError(f"SHA-256 mismatch for {url}: expected {expected}, got {got}; the file was not kept")
    return dest


def _looks_like_state_dict(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    n_tensors = sum(isinstance(v, torch.Tensor) for v in obj.values())
    return n_tensors > 0 and n_tensors >= 0.9 * len(obj) and all(isinstance(k, str) for k in obj)


def unwrap_state_dict(obj: Any, path: str = "<checkpoint>") -> tuple[dict[str, torch.Tensor], str | None, list[str]]:
    """Find the weights in a loaded checkpoint object.

    Returns ``(state_dict, wrapper_key, other_top_level_keys)``. Non-tensor entries inside a state_dict (rare
    ``_metadata``-like leftovers) are dropped.
    """
    if hasattr(obj, "state_dict") and callable(obj.state_dict) and isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if _looks_like_state_dict(obj):
        return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}, None, []
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if _looks_like_state_dict(inner):
                sd = {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}
                return sd, key, [str(k) for k in obj if k != key]
    top = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
    raise SenetError(
        f"{path}: no state_dict found (top level: {top}); expected a state_dict or a dict with one of "
        f"{', '.join(_WRAPPER_KEYS)}"
    )


def _decode_metadata(raw: Mapping[str, str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        if k in METADATA_JSON_KEYS:
            try:
                out[k] = json.loads(v)
            except json.JSONDecodeError:
                out[k] = v
        else:
            out[k] = v
    return out


def _torch_load(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError or others here
        first_error = exc
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - not a zip checkpoint or unreadable: report the original error
        unsafe = None
    if unsafe and all(g in _NUMPY_SAFE or _NUMPY_DTYPE_RE.match(g) for g in unsafe):
        allowed = []
        for name in unsafe:
            module, _, attr = name.rpartition(".")
            try:
                allowed.append(getattr(importlib.import_module(module), attr))
            except (ImportError, AttributeError):
                break
        else:
            # dtype objects pickle as their ``numpy.dtypes.*DType`` class, which the scan above does not list.

            allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=True)
    if unsafe:
        raise SenetError(
            f"{path}: refused to unpickle: it needs arbitrary code ({', '.join(unsafe[:5])}); senet loads pickles "
            "only with weights_only=True. If you trust the file, re-save just its state_dict (or convert it to "
            "safetensors in the environment that made it)"
        ) from None
    msg = str(first_error).strip().splitlines()[0] if str(first_error).strip() else type(first_error).__name__
    if "weights_only" in str(first_error) or "Unsupported global" in str(first_error):
        raise SenetError(
            f"{path}: refused to unpickle: the file needs code beyond tensors and plain containers ({msg}); senet "
            "loads pickles only with weights_only=True"
        ) from None
    raise SenetError(f"{path}: cannot read as a PyTorch checkpoint ({msg})") from None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a safetensors or pickled checkpoint into a :class:`Checkpoint` (weights on the CPU)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SenetError(f"checkpoint {path} does not exist")
    if os.path.isdir(path):
        raise SenetError(f"checkpoint {path} is a directory; pass the weights file inside it")
    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors starts with an 8-byte little-endian header length followed by '{'.
    if path.endswith(".safetensors") or (len(head) > 8 and head[8:9] == b"{"):
        try:
            with safe_open(path, framework="pt") as f:
                sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
                meta = f.metadata()
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise SenetError(f"{path}: not a valid safetensors file ({exc})") from None
        return Checkpoint(sd, _decode_metadata(meta), path)
    obj = _torch_load(path)
    run = Run.from_checkpoint(obj, os.path.dirname(os.path.abspath(path))) if is_run_checkpoint(obj) else None
    if run is not None and obj.get("ema") is not None:
        # `senet eval` evaluates the EMA weights when the run kept them; export and convert must ship the same.
        sd, _, _ = unwrap_state_dict(obj["ema"], path)
        wrapper, extras = "ema", [str(k) for k in obj if k != "ema"]
    else:
        sd, wrapper, extras = unwrap_state_dict(obj, path)
    meta: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        # Hints some releases store beside the weights (ECA-Net: "arch").
        for key in ("arch", "model_name", "model", "name"):
            if isinstance(obj.get(key), str):
                meta["arch_hint"] = obj[key]
                break
        meta.update(_senet_train_metadata(obj))
    return Checkpoint(sd, meta, path, wrapper, extras, run)


def weights_normalization(path: str | os.PathLike[str]) -> dict[str, tuple[float, ...]]:
    """The input normalisation (``{"mean": ..., "std": ...}``) a weights file records, or ``{}`` when it records none.

    Fine-tuning from pretrained weights should feed them inputs scaled as they were trained on: senet safetensors
    (``senet convert``, ``senet export``) and ``senet train`` checkpoints carry it; other files fall back to the
    loader's default.
    """
    path = os.fspath(path)
    meta = None
    if path.endswith(".safetensors"):
        try:
            with safe_open(path, framework="pt") as f:  # the header only: the resolver reads the tensors
                meta = _decode_metadata(f.metadata())
        except Exception:  # noqa: BLE001 - read_checkpoint below gives the one-line error for a bad file
            meta = None
    if meta is None:
        meta = read_checkpoint(path).metadata
    mean, std = meta.get("mean"), meta.get("std")
    ok = all(isinstance(v, list | tuple) and len(v) in (1, 3) for v in (mean, std))
    return {"mean": tuple(float(m) for m in mean), "std": tuple(float(s) for s in std)} if ok else {}


def _senet_train_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Model, class names and preprocessing recorded by ``senet train`` (format tag ``senet.train/1``)."""
    if not is_run_checkpoint(obj):
        return {}
    run = Run.from_checkpoint(obj)
    meta: dict[str, Any] = {}
    # A retrofitted run's network is its ``retrofit`` spec; ``model`` is an unused default there.
    if isinstance(run.config.get("model"), str) and not run.config.get("retrofit"):
        meta["model"] = run.model_name
        meta["model_kwargs"] = dict(run.config.get("model_kwargs") or {})
    if run.class_names:
        meta["class_names"] = list(run.class_names)
        meta["num_classes"] = len(run.class_names)
    pre = run.preprocess
    for key in ("mean", "std", "crop_pct"):
        if pre.get(key) is not None:
            meta[key] = list(pre[key]) if isinstance(pre[key], list | tuple) else pre[key]
    if isinstance(pre.get("img_size"), int):
        meta["input_size"] = [3, pre["img_size"], pre["img_size"]]
    return meta


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> None:
    """Write ``state_dict`` to ``path`` atomically, with JSON-encoded ``metadata``.

    Tensors that share storage (tied weights) are cloned so safetensors accepts them; values of
    :data:`METADATA_JSON_KEYS` are JSON-encoded, other values stringified.
    """
    path = os.fspath(path)
    meta: dict[str, str] = {"format": "pt"}
    for k, v in (metadata or {}).items():
        if v is None:
            continue
        meta[k] = json.dumps(v) if (k in METADATA_JSON_KEYS or not isinstance(v, str)) else v
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
