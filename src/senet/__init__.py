"""senet: Squeeze-and-Excitation networks and the channel-attention family for PyTorch.

>>> import senet
>>> block = senet.create_attn("se", 256)          # any of senet.list_attn()
>>> fast = senet.optimize(model, example_batch)   # fastest checked inference form on this machine (measured)
"""

from ._version import __version__
from .errors import SenetError
from .export.fast import optimize
from .factory import create_model
from .layers import create_attn, list_attn
from .models import list_models

# The function, not the subpackage: `senet.retrofit(model, "se")`; its helpers stay importable from the package
# (`from senet.retrofit import attention_modules`), which the import system finds in sys.modules, not here.
from .retrofit import retrofit

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
