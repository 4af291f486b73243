"""senet: Squeeze-and-Excitation networks and the channel-attention family for PyTorch.

>>> import senet
>>> block = senet.create_attn("se", 256)          # any of senet.list_attn()
>>> fast = senet.optimize(model, example_batch)   # fastest checked inference form on this machine (measured)
"""

from . import retrofit  # callable module: senet.retrofit(model, ...) and senet.retrofit.<helpers>
from ._version import __version__
from .errors import SenetError
from .export.fast import optimize
from .factory import create_model
from .layers import create_attn, list_attn
from .models import list_models

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
