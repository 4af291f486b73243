"""The model zoo: ResNet / ResNeXt / SENet-154, CIFAR ResNets, MobileNetV2 and VGG-16-BN, attention as an argument;
and a residual denoiser (``denoiser``, ``se_denoiser``, ...) for ``senet train --task denoise``.

>>> from senet.models import create_model, list_models
>>> model = create_model("se_resnet50", num_classes=10, attn_position="pre", attn_stages=(4, 5))
>>> [name for name, _ in model.attention_modules()][:2]
['SE_4_1', 'SE_4_2']

Every model has ``forward_features``, ``forward_head(x, pre_logits=False)``, ``reset_classifier(num_classes)``,
``num_features``, ``num_classes`` and ``attention_modules()`` (paper-style names ``SE_<stage>_<block>``).
"""

# Model files register their entrypoints on import.
from . import cifar_resnet, denoiser, efficientnet, mobilenet, mobilenetv3, resnet, speednet, vgg
from ._base import ClassifierModel
from ._mbconv import MBConvNet
from ._registry import create_model, is_model, list_models, model_entrypoint, register_model
from ._summary import LayerRow, ModelSummary, summary
from .denoiser import ResidualDenoiser
from .mobilenet import MobileNetV2
from .resnet import ATTN_POSITIONS, ResNet
from .speednet import SpeedNet
from .vgg import VGG

__all__ = [
    "ATTN_POSITIONS",
    "ClassifierModel",
    "LayerRow",
    "ModelSummary",
    "MBConvNet",
    "MobileNetV2",
    "ResNet",
    "ResidualDenoiser",
    "SpeedNet",
    "VGG",
    "create_model",
    "is_model",
    "list_models",
    "model_entrypoint",
    "register_model",
    "summary",
]
