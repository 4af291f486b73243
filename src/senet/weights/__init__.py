"""Checkpoint interop: load the published weights of every major SE / ECA / CBAM implementation.

>>> from senet.weights import detect_layout, load_pretrained, convert_checkpoint
>>> det = detect_layout(torch.load("se_resnet50-ce0d4300.pth", weights_only=True))   # doctest: +SKIP
>>> det.layout
'caffe_senet'
>>> model = senet.create_model("se_resnet50_caffe", pretrained="se_resnet50-ce0d4300.pth")   # doctest: +SKIP

Layouts (see :func:`list_layouts`): senet's own, the Caffe SENet release (Cadene / timm legacy), timm ResNets with
attention, torchvision ResNet/ResNeXt/Wide-ResNet, the ECA-Net and CBAM releases, mmpretrain SEResNet and
moskomule/senet.pytorch. Pickles are read with ``weights_only=True``; URLs are fetched only when given, with a
SHA-256 check.
"""

from .convert import (
    Converted,
    LoadResult,
    bind_state_dict,
    convert_checkpoint,
    infer_model,
    load_pretrained,
    model_name_of,
    save_pretrained,
    to_canonical,
)
from .io import (
    Checkpoint,
    fetch_url,
    read_checkpoint,
    save_safetensors,
    sha256_file,
    unwrap_state_dict,
    weights_normalization,
)
from .layouts import LAYOUTS, Arch, Detection, Layout, detect_layout, get_layout, infer_arch, list_layouts
from .pretrained import PretrainedCfg, get_pretrained_cfg, list_pretrained, resolve_pretrained_cfg

__all__ = [
    "LAYOUTS",
    "Arch",
    "Checkpoint",
    "Converted",
    "Detection",
    "Layout",
    "LoadResult",
    "PretrainedCfg",
    "bind_state_dict",
    "convert_checkpoint",
    "detect_layout",
    "fetch_url",
    "get_layout",
    "get_pretrained_cfg",
    "infer_arch",
    "infer_model",
    "list_layouts",
    "list_pretrained",
    "load_pretrained",
    "model_name_of",
    "read_checkpoint",
    "weights_normalization",
    "resolve_pretrained_cfg",
    "save_pretrained",
    "save_safetensors",
    "sha256_file",
    "to_canonical",
    "unwrap_state_dict",
]
