"""Optional dependencies: every import of a package outside the base install goes through :func:`require`.

A missing package becomes one :class:`~senet.errors.SenetError` line naming what needs it and the pip command that
installs it (``matplotlib is needed for --plot: pip install 'senet[plot]'``), never a ``ModuleNotFoundError``
traceback. :func:`optional` is the same for side features (a plot beside the results): it prints that line as a
warning and returns ``None``, so the command still finishes with its results.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from senet.errors import SenetError

__all__ = ["EXTRAS", "MissingDependency", "optional", "pyplot", "require", "warn_skipped"]

#: Top-level package -> the pyproject extra that installs it (None: not part of an extra, named on its own).
EXTRAS: dict[str, str | None] = {
    "matplotlib": "plot",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
    "tensorboard": "tensorboard",
    "keras": "keras",
    "torchmetrics": "denoise",
    "torchao": "quant",
    "timm": None,
}


class MissingDependency(SenetError, ImportError):
    """An optional package is not installed (or fails to import); the message says how to install it.

    Both a :class:`SenetError` (the CLI prints it as one line) and an ``ImportError`` (what library callers that
    probe for an optional feature expect)."""

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message)
        self.module = module


def _install_hint(top: str) -> str:
    extra = EXTRAS.get(top)
    return f"pip install 'senet[{extra}]'" if extra else f"pip install {top}"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.pyplot"``) or raise :class:`MissingDependency` saying that it is
    needed for ``purpose`` (e.g. ``"--plot"``) and which extra installs it."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or top).split(".")[0]
        if missing == top or missing in EXTRAS:
            msg = f"{missing} is needed for {purpose}: {_install_hint(missing)}"
        else:  # the package is there but one of its own dependencies is not: a broken install
            msg = f"{top} is installed but cannot be imported ({exc}): reinstall it with {_install_hint(top)}"
        raise MissingDependency(msg, missing) from None


def optional(module: str, purpose: str, command: str = "senet") -> ModuleType | None:
    """:func:`require` for a side feature: on a missing package print ``<command>: warning: <why>; skipped`` to
    stderr and return ``None`` (the caller skips the feature and carries on)."""
    try:
        return require(module, purpose)
    except MissingDependency as exc:
        warn_skipped(exc, command)
        return None


def warn_skipped(exc: MissingDependency, command: str = "senet") -> None:
    """Print the one-line warning for a side feature skipped because of ``exc``."""
    print(f"{command}: warning: {exc}; skipped", file=sys.stderr, flush=True)


def pyplot(purpose: str) -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only), or :class:`MissingDependency`."""
    matplotlib = require("matplotlib", purpose)
    matplotlib.use("Agg", force=True)
    return require("matplotlib.pyplot", purpose)
