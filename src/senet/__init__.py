"""senet: Squeeze-and-Excitation networks and the channel-attention family for PyTorch.

>>> import senet
>>> block = senet.create_attn("se", 256)          # any of senet.list_attn()
>>> fast = senet.optimize(model, example_batch)   # fastest checked inference form on this machine (measured)
"""

from importlib.metadata import PackageNotFoundError, version

from . import retrofit  # callable module: senet.retrofit(model, ...) and senet.retrofit.<helpers>
from .errors import SenetError
from .export.fast import optimize
from .layers import create_attn, list_attn
from .models import create_model, list_models

try:
    __version__ = version("senet")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "SenetError",
    "__version__",
    "create_attn",
    "create_model",
    "list_attn",
    "list_models",
    "optimize",
    "retrofit",
]
