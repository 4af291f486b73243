"""Keras 3 versions of the senet attention blocks (optional extra ``senet[keras]``).

>>> import keras
>>> from senet.keras import SqueezeExcite, ECA, CBAM
>>> x = keras.Input((56, 56, 24))
>>> y = SqueezeExcite(rd_ratio=1 / 4)(x)          # the Keras tutorials' "ratio=4": Dense 24->6->24, 318 params

The layers use only ``keras.ops``, so they run on any Keras backend; senet tests them on the PyTorch backend (no
TensorFlow needed). ``import senet`` never imports Keras: this package is imported only on demand.

Backend choice: Keras picks its backend from ``$KERAS_BACKEND`` or ``~/.keras/keras.json`` (which Keras itself
writes with ``"tensorflow"`` on first use). When neither names an installed backend, and Keras has not been imported
yet, importing ``senet.keras`` selects the PyTorch backend (always installed with senet) instead of failing on a
missing TensorFlow. Set ``KERAS_BACKEND`` to choose explicitly.

``from_torch`` / ``to_torch`` convert blocks with their weights between :mod:`senet.layers` and these layers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

# Keras backend name -> the module it imports.
_BACKEND_MODULES = {
    "tensorflow": "tensorflow",
    "jax": "jax",
    "torch": "torch",
    "numpy": "numpy",
    "openvino": "openvino",
}


def _configured_backend() -> str:
    """The backend Keras would load: ``$KERAS_BACKEND``, else keras.json's, else Keras' default (tensorflow)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError):
        return "tensorflow"


def _select_backend() -> None:
    if "keras" in sys.modules:  # too late to choose; use whatever the caller set up
        return
    module = _BACKEND_MODULES.get(_configured_backend())
    if module is None or importlib.util.find_spec(module) is None:
        os.environ["KERAS_BACKEND"] = "torch"


_select_backend()

from senet.utils.optional import require  # noqa: E402

require("keras", "senet.keras")  # one line naming the extra instead of a ModuleNotFoundError traceback

from .convert import from_torch, to_torch  # noqa: E402
from .layers import CBAM, ECA, SCSE, EffectiveSE, SqueezeExcite  # noqa: E402

# The same aliases as senet.layers.
SEModule = SqueezeExcite
EfficientChannelAttn = ECA

__all__ = [
    "CBAM",
    "ECA",
    "SCSE",
    "EffectiveSE",
    "EfficientChannelAttn",
    "SEModule",
    "SqueezeExcite",
    "from_torch",
    "to_torch",
]
