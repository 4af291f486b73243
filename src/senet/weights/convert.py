"""From a published checkpoint to a loaded senet model.

Pipeline: read (safetensors / safe pickle / URL with SHA-256) -> detect the layout -> convert to canonical names
(:mod:`senet.weights.layouts`) -> read the architecture off the tensors -> pick the senet model -> make the exact
adaptations the tensors dictate (ECA k, MLP biases) -> check structure the weights cannot show (stride placement,
stem pooling) -> strict load. Every failure is a :class:`~senet.errors.SenetError` that names the layout it
believed it saw and the missing / unexpected / mis-shaped keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from senet._version import __version__
from senet.errors import SenetError
from senet.layers.base import iter_attention
from senet.models import create_model, is_model, list_models
from senet.models._mbconv import Conv2dSame

from .io import Checkpoint, fetch_url, is_url, read_checkpoint, save_safetensors
from .layouts import Arch, Detection, detect_layout, get_layout, infer_arch, strip_prefixes
from .pretrained import get_pretrained_cfg

__all__ = [
    "LoadResult",
    "Converted",
    "to_canonical",
    "infer_model",
    "bind_state_dict",
    "load_pretrained",
    "convert_checkpoint",
    "save_pretrained",
    "model_name_of",
]

StateDict = dict[str, torch.Tensor]


@dataclass
class LoadResult:
    """What :func:`load_pretrained` did."""

    path: str
    layout: str
    detection: Detection | None
    arch: Arch | None
    adapted: list[str] = field(default_factory=list)  # model changes made to fit exactly (ECA k, MLP biases)
    missing: list[str] = field(default_factory=list)  # left at init (strict=False or new attention)
    unexpected: list[str] = field(default_factory=list)
    mis_shaped: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def model_name_of(model: nn.Module) -> str:
    """The registry name of a senet model when it carries one, else its class name."""
    for attr in ("model_name", "name", "arch"):
        v = getattr(model, attr, None)
        if isinstance(v, str) and v:
            return v
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), str):
        return cfg["model"]
    return type(model).__name__


def to_canonical(state_dict: Mapping[str, torch.Tensor], layout: str | None = None) -> tuple[StateDict, Detection]:
    """Convert a published state_dict to canonical senet names. ``layout=None`` detects it."""
    if layout is None:
        det = detect_layout(state_dict)
    else:
        get_layout(layout)
        _, prefixes = strip_prefixes(state_dict)
        det = Detection(layout, ["given by the caller"], prefixes, [layout])
    sd, _ = strip_prefixes(state_dict)
    return get_layout(det.layout).to_canonical(sd), det


# ---------------------------------------------------------------------------------------------------------------
# Which senet model
# ---------------------------------------------------------------------------------------------------------------


def _candidate_names(arch: Arch, layout: str) -> list[tuple[str, dict[str, Any]]]:
    """``(senet model name, overrides)`` that could hold ``arch``, best first.

    Registered names come first (``se_resnet50_caffe`` for the Caffe release); a family member with explicit
    overrides follows for widths the registry has no name for (torchvision's ``resnext101_32x8d``).
    """
    if arch.block == "mbconv":
        return _mbconv_candidates(arch, layout)
    prefix = {"se": "se_", "eca": "eca_", "cbam": "cbam_", None: ""}[arch.attn]
    d = arch.depth
    if arch.deep_stem and arch.groups == 64:
        return [("senet154", {})]
    out: list[tuple[str, dict[str, Any]]] = []
    if arch.groups > 1:
        shape = {"groups": arch.groups, "base_width": arch.base_width}
        out += [(f"{prefix}resnext{d}_{arch.groups}x{arch.base_width}d", {}), (f"{prefix}resnext{d}_32x4d", shape)]
        family, base = f"{prefix}resnext50_32x4d", 50
    else:
        shape = {"base_width": arch.base_width} if arch.base_width != 64 else {}
        if shape:
            out.append((f"{prefix}wide_resnet{d}_{arch.base_width // 64}", {}))
        elif get_layout(layout).caffe:
            out.append((f"{prefix}resnet{d}_caffe", {}))
        out.append((f"{prefix}resnet{d}", shape))
        base = 50 if arch.block == "bottleneck" else 18
        family = f"{prefix}resnet{base}" + ("_caffe" if get_layout(layout).caffe and not shape else "")
    # Depths without a registered name (timm's resnet26, legacy_seresnext26_32x4d): the family member of the same
    # block type with the blocks per stage given explicitly.
    if d != base:
        out.append((family, {**shape, "layers": list(arch.depths)}))
    return out


#: MBConv entrypoints, by whether the net has MobileNetV3's hidden FC after pooling.
_MBCONV_NAMES = {
    True: ("mobilenet_v3_large", "mobilenet_v3_small"),
    False: tuple(f"efficientnet_b{i}" for i in range(4)) + tuple(f"efficientnet_lite{i}" for i in range(3)),
}


def _mbconv_candidates(arch: Arch, layout: str) -> list[tuple[str, dict[str, Any]]]:
    """Every MBConv entrypoint with the attention the tensors show and the structure the layout implies; the
    exact tensor-shape match in :func:`infer_model` picks the one."""
    kw = {"attn_layer": arch.attn or "none", **_mbconv_layout_kwargs(arch, layout)}
    names = _MBCONV_NAMES[bool(arch.head_hidden)]
    if arch.attn is None:
        # Without SE, EfficientNet-Lite and SE-less B0..B2 have the same tensors (only the activation differs,
        # ReLU6 vs SiLU); the published SE-less weights are the Lite ones.
        names = tuple(sorted(names, key=lambda n: "lite" not in n))
    return [(name, dict(kw)) for name in names]


def _mbconv_layout_kwargs(arch: Arch, layout: str) -> dict[str, Any]:
    fn = get_layout(layout).mbconv_kwargs
    return dict(fn(arch)) if fn is not None else {}


def _attn_kwarg_options(arch: Arch) -> list[dict[str, Any]]:
    """``create_model`` overrides to try, in order, so the attention widths / kernels / biases match."""
    opts: list[dict[str, Any]] = [{}]
    if arch.block == "mbconv":
        return opts
    if arch.attn in ("se", "cbam"):
        bias_key = "bias" if arch.attn == "se" else "mlp_bias"
        base = {bias_key: bool(arch.attn_bias)}
        opts.append({"attn_kwargs": dict(base)})
        # The paper's C // 16 (rd_min=1 undoes the CIFAR nets' floor of 4), then timm's rounding to 8.
        opts.append({"attn_kwargs": {**base, "rd_ratio": 1 / 16, "rd_divisor": 1, "rd_min": 1}})
        opts.append({"attn_kwargs": {**base, "rd_ratio": 1 / 16, "rd_divisor": 8}})
    elif arch.attn == "eca":
        opts.append({"eca_kernels": list(arch.eca_kernels)})
    return opts


def _structure_options(arch: Arch, layout: str) -> list[dict[str, Any]]:
    """Overrides that put the stride and the stem pool where ``layout`` has them (tried after the defaults)."""
    if layout == "senet" or arch.block == "mbconv":
        return [{}]
    caffe = get_layout(layout).caffe
    opt: dict[str, Any] = {"stem_pool": "caffe" if caffe else "pad"}
    if arch.block == "bottleneck":
        opt["stride_in_1x1"] = caffe and arch.groups == 1
    return [{}, opt]


def _create(name: str, **kwargs: Any) -> nn.Module:
    return create_model(name, **kwargs)


def _create_uninitialised(name: str, **kwargs: Any) -> nn.Module:
    """Build without running the weight init (a strict load overwrites every tensor; SENet-154 inits in seconds).

    Falls back to a normal build when the model has non-persistent buffers, which no load would fill.
    """
    with torch.device("meta"):
        model = _create(name, **kwargs)
    persistent = set(model.state_dict())
    if any(n not in persistent for n, _ in model.named_buffers()):
        return _create(name, **kwargs)
    return model.to_empty(device="cpu")


def _model_exists(name: str) -> bool:
    return bool(is_model(name))


def infer_model(
    arch: Arch,
    layout: str,
    model_name: str | None = None,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Pick the senet model (and ``create_model`` overrides) for weights of ``arch`` in ``layout``.

    Candidates (``model_name`` if given, else names derived from ``arch``) are built on the meta device with the
    default options first, then with structure overrides (stride placement, stem pool) and attention overrides
    (SE width rounding, MLP bias, per-stage ECA kernels). The first whose structure fits ``layout`` and whose
    tensors match ``shapes`` (the canonical checkpoint's, when given) wins; failing an exact match, the first
    whose structure fits (the load then adapts or reports the difference).
    """
    if model_name and arch.block == "mbconv":
        # A named MBConv model still needs the structure the layout implies (BN eps, SAME padding).
        names = [(model_name, _mbconv_candidates(arch, layout)[0][1])]
    else:
        names = [(model_name, {})] if model_name else _candidate_names(arch, layout)
    existing = [(n, kw) for n, kw in names if _model_exists(n)]
    if not existing:
        tried = ", ".join(n for n, _ in names)
        raise SenetError(
            f"no senet model for {arch.describe()} (layout {layout}); tried {tried}. Pass --model NAME "
            f"(one of {len(list_models())} models: see senet.models.list_models())"
        )
    base: dict[str, Any] = {}
    if arch.num_classes:
        base["num_classes"] = arch.num_classes
    fallback: tuple[str, dict[str, Any]] | None = None
    for name, name_kw in existing:
        for s_opt in _structure_options(arch, layout):
            for a_opt in _attn_kwarg_options(arch):
                kwargs = {**base, **name_kw, **s_opt, **a_opt}
                try:
                    with torch.device("meta"):
                        model = _create(name, **kwargs)
                except (TypeError, ValueError):  # the model does not take this override
                    continue
                if _structure_problems(model, layout, arch):
                    continue
                own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
                if shapes is None:
                    if _arch_fits(arch, own):
                        return name, kwargs
                elif own == dict(shapes):
                    return name, kwargs
                if fallback is None:
                    fallback = (name, kwargs)
    return fallback or (existing[0][0], {**base, **existing[0][1]})


def _arch_fits(arch: Arch, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Do the attention tensors of a candidate model have the shapes ``arch`` needs?"""
    if arch.attn is None:
        return True
    for s in range(len(arch.depths)):
        hits = {k: v for k, v in shapes.items() if re.match(rf"^layer{s + 1}\.0\.(attn|se)\.", k)}
        if arch.attn == "eca":
            conv = [v for k, v in hits.items() if k.endswith("conv.weight")]
            if not conv or conv[0][-1] != arch.eca_kernels[s]:
                return False
        else:
            fc1 = [v for k, v in hits.items() if k.endswith("fc1.weight")]
            if not fc1 or fc1[0][0] != arch.rd_channels[s]:
                return False
            has_bias = any(k.endswith("fc1.bias") for k in hits)
            if arch.attn == "cbam" and has_bias != bool(arch.attn_bias):
                return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# Loading canonical tensors into a model, with the exact adaptations
# ---------------------------------------------------------------------------------------------------------------


def _attn_prefixes(model: nn.Module) -> list[str]:
    """``name.`` of every attention block, nested ones too (an ECA inside a retrofit wrapper is rebuilt on its own)."""
    return [site.name + "." for site in iter_attention(model, nested=True) if site.name]


def _is_attn_key(key: str, prefixes: list[str]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def bind_state_dict(
    canonical: Mapping[str, torch.Tensor], model: nn.Module, adapt: bool = True
) -> tuple[StateDict, list[str]]:
    """Canonical tensors ready for ``model`` (canonical names are senet's), plus exact adaptations.

    With ``adapt=True`` three differences that the tensors fully determine are resolved without changing the
    network's function: a bias-free SE/CBAM MLP loads into a biased one with zero biases; an MLP bias the model
    lacks is added to its ``nn.Linear``; an ECA kernel size different from the model's replaces that block's
    ``Conv1d``. Returns the state_dict and a list of what was adapted.
    """
    own = model.state_dict()
    sd = dict(canonical)  # canonical names are senet's module names
    notes: list[str] = []
    # PyTorch < 0.4 checkpoints (the Caffe/Cadene SENet release) predate BatchNorm's step counter; BatchNorm's own
    # loader fills it in, and only momentum=None BatchNorm reads it.
    n_counters = 0
    for key in own:
        if key.endswith(".num_batches_tracked") and key not in sd:
            if key[: -len("num_batches_tracked")] + "running_mean" in sd:
                sd[key] = torch.zeros((), dtype=torch.long)
                n_counters += 1
    if n_counters:
        notes.append(f"{n_counters} BatchNorm num_batches_tracked counters absent from the checkpoint set to 0")
    if not adapt:
        return sd, notes
    attn_prefixes = _attn_prefixes(model)
    n_zero = 0
    n_added = 0
    n_eca = 0
    for key in list(own):
        if key.endswith(".bias") and key not in sd and _is_attn_key(key, attn_prefixes):
            w = key[: -len("bias")] + "weight"
            if w in sd:
                sd[key] = torch.zeros_like(own[key], device="cpu")
                n_zero += 1
    for key in list(sd):
        if key in own or not key.endswith(".bias") or not _is_attn_key(key, attn_prefixes):
            continue
        mod_name = key[: -len(".bias")]
        try:
            mod = model.get_submodule(mod_name)
        except AttributeError:
            continue
        if isinstance(mod, nn.Linear) and mod.bias is None and sd[key].shape == (mod.out_features,):
            mod.bias = nn.Parameter(torch.zeros(mod.out_features, device=mod.weight.device, dtype=mod.weight.dtype))
            n_added += 1
    for prefix in attn_prefixes:
        key = prefix + "conv.weight"
        mod = model.get_submodule(prefix[:-1])
        is_eca = hasattr(mod, "kernel_size") and isinstance(getattr(mod, "conv", None), nn.Conv1d)
        if is_eca and key in sd and key in own:
            k_new = int(sd[key].shape[-1])
            if sd[key].shape != own[key].shape and sd[key].ndim == 3 and k_new % 2 == 1:
                old = mod.conv
                mod.conv = nn.Conv1d(1, 1, k_new, padding=(k_new - 1) // 2, bias=False).to(old.weight)
                mod.kernel_size = k_new
                n_eca += 1
    if n_zero:
        notes.append(f"{n_zero} attention biases absent from the checkpoint set to zero (same function)")
    if n_added:
        notes.append(f"{n_added} attention MLP layers given the biases the checkpoint carries")
    if n_eca:
        notes.append(f"{n_eca} ECA blocks rebuilt with the checkpoint's kernel sizes")
    return sd, notes


def _compare(sd: Mapping[str, torch.Tensor], model: nn.Module) -> tuple[list[str], list[str], list[str]]:
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    mis = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    return missing, unexpected, mis


def _fmt_keys(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n} more)" if len(keys) > n else "")


def _structure_problems(model: nn.Module, layout: str, arch: Arch | None) -> list[str]:
    """Differences the weights cannot reveal but the layout implies: stride placement and stem max-pool."""
    problems: list[str] = []
    # senet's own files (ResNet or MBConv names) are whatever senet model wrote them, SAME padding included: no
    # structure is implied beyond the tensors.
    if arch is None or layout in ("senet", "senet_mbconv"):
        return problems
    if arch.block == "mbconv":
        return _mbconv_structure_problems(model, layout, arch)
    caffe = get_layout(layout).caffe
    if caffe and arch.block == "basic":
        # timm's legacy_seresnet18/34 (the Caffe release has no basic-block SE nets) put a ReLU between bn2 and
        # the SE gate; senet's BasicBlock gates bn2's output, so no senet model computes the same function.
        problems.append(
            "basic-block weights in the Caffe/legacy layout come from timm's legacy_seresnet18/34, which apply a "
            "ReLU before SE; senet's BasicBlock does not"
        )
        return problems
    pool = next((m for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)), None)
    if pool is not None:
        pad = pool.padding if isinstance(pool.padding, int) else pool.padding[0]
        if caffe and not (pool.ceil_mode and pad == 0):
            problems.append("the Caffe release needs the stem max-pool 3x3/2 with ceil_mode=True and no padding")
        if not caffe and (pool.ceil_mode or pad != 1):
            problems.append("this layout needs the stem max-pool 3x3/2 with padding 1 (floor mode)")
    if arch.block == "bottleneck":
        try:
            conv1 = model.get_submodule("layer2.0.conv1")
            conv2 = model.get_submodule("layer2.0.conv2")
        except AttributeError:
            return problems
        stride_1x1 = getattr(conv1, "stride", (1, 1))[0] == 2
        want_1x1 = caffe and arch.groups == 1
        if stride_1x1 != want_1x1:
            where = "first 1x1 conv" if want_1x1 else "3x3 conv"
            problems.append(f"this layout puts the stride on the {where} of each bottleneck (model: the other)")
        del conv2
    return problems


def _mbconv_structure_problems(model: nn.Module, layout: str, arch: Arch) -> list[str]:
    """BatchNorm epsilon and TF SAME padding: the layout implies them, the tensors cannot show them."""
    want = _mbconv_layout_kwargs(arch, layout)
    problems = []
    bn = next((m for m in model.modules() if isinstance(m, nn.BatchNorm2d)), None)
    if "bn_eps" in want and bn is not None and abs(bn.eps - want["bn_eps"]) > 1e-12:
        problems.append(f"this layout needs BatchNorm eps={want['bn_eps']:g} (model: {bn.eps:g})")
    same = any(isinstance(m, Conv2dSame) for m in model.modules())
    if same != (want.get("pad_type") == "same"):
        problems.append(f"this layout needs pad_type={want.get('pad_type', '')!r} (model: {'same' if same else ''!r})")
    if problems:
        call = ", ".join(f"{k}={v!r}" for k, v in want.items())
        problems.append(f"build the model with create_model(name, {call})")
    return problems


def _head_only_change(
    model: nn.Module, sd: Mapping[str, torch.Tensor], mis: list[str], unexpected: list[str]
) -> list[str]:
    """Classifier keys that differ because the model was built for another number of classes than the checkpoint's.

    Only the classifier may differ, and only when the model's ``num_classes`` disagrees with the checkpoint's
    ``fc`` rows (or is 0: no classifier); anything else stays an error. Whether the difference was asked for
    (fine-tuning) is the caller's to say (``replace_head``).
    """
    n = getattr(model, "num_classes", None)
    w = sd.get("fc.weight")
    if not isinstance(n, int) or w is None or w.ndim != 2 or w.shape[0] == n:
        return []
    head = [k for k in ("fc.weight", "fc.bias") if k in sd]
    mis_keys = [m.split(":")[0] for m in mis]
    if n == 0 and not mis and set(unexpected) == set(head):
        return head
    if n > 0 and set(mis_keys) == set(head) and not unexpected:
        return head
    return []


def _load_into(
    model: nn.Module,
    canonical: StateDict,
    *,
    path: str,
    det: Detection | None,
    arch: Arch | None,
    strict: bool,
    adapt: bool,
    init_missing_attn: bool,
    metadata: dict[str, Any],
    replace_head: bool = False,
) -> LoadResult:
    layout = det.layout if det else "senet"
    sd, notes = bind_state_dict(canonical, model, adapt=adapt)
    missing, unexpected, mis = _compare(sd, model)
    attn_prefixes = _attn_prefixes(model)
    where = f"{path} (layout {det})" if det else path
    if init_missing_attn:
        missing_attn = [k for k in missing if _is_attn_key(k, attn_prefixes)]
        missing = [k for k in missing if k not in missing_attn]
    else:
        missing_attn = []
    head_skipped = _head_only_change(model, sd, mis, unexpected)
    if head_skipped:
        rows = sd[head_skipped[0]].shape[0]
        if not replace_head:
            if strict:
                # A default-built model must not come back with a random classifier in place of the file's.
                raise SenetError(
                    f"{path} has a {rows}-class classifier but {model_name_of(model)} was built with "
                    f"num_classes={model.num_classes}: pass num_classes={rows} to load it, or num_classes=K to "
                    "replace it with a fresh K-class head (load_pretrained: replace_head=True)"
                )
            head_skipped = []
        else:
            mis = [m for m in mis if m.split(":")[0] not in head_skipped]
            unexpected = [k for k in unexpected if k not in head_skipped]
            notes.append(
                f"classifier not loaded: the checkpoint has {rows} classes, the model was built with "
                f"num_classes={model.num_classes} (new head zero-initialised)"
            )
    problems = _structure_problems(model, layout, arch)
    if problems:
        raise SenetError(
            f"{where} does not fit {model_name_of(model)}: {'; '.join(problems)}. Renaming keys is not enough; "
            "pick the matching model (e.g. the *_caffe variant for the Caffe release)"
        )
    if strict and (missing or unexpected or mis):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_fmt_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_fmt_keys(unexpected)}")
        if mis:
            parts.append(f"mis-shaped {len(mis)}: {_fmt_keys(mis, 4)}")
        hint = ""
        if missing and all(_is_attn_key(k, attn_prefixes) for k in missing) and not unexpected and not mis:
            hint = "; to start the attention blocks fresh from plain weights pass init_missing_attn=True"
        elif arch is not None:
            hint = f"; the weights describe {arch.describe()}"
        raise SenetError(f"{where} does not fit {model_name_of(model)}: {'; '.join(parts)}{hint}")
    skip = set(unexpected) | set(head_skipped) | {m.split(":")[0] for m in mis}
    loadable = {k: v for k, v in sd.items() if k not in skip}
    own = model.state_dict()
    with torch.no_grad():
        for k, v in loadable.items():
            own[k].copy_(v.to(dtype=own[k].dtype) if own[k].is_floating_point() else v)
        # The replaced head may be uninitialised storage (convert builds on meta); zero it as
        # senet.retrofit.set_num_classes does, so fine-tuning starts from a uniform prediction.
        for k in ("fc.weight", "fc.bias"):
            if head_skipped and k in own:
                own[k].zero_()
    return LoadResult(
        path=path,
        layout=layout,
        detection=det,
        arch=arch,
        adapted=notes,
        missing=missing + missing_attn,
        unexpected=unexpected,
        mis_shaped=mis,
        metadata=metadata,
    )


def _structure_signature(model: nn.Module) -> list[tuple[Any, ...]]:
    """What decides a model's function beyond tensor shapes: module types, conv/pool geometry, attention placement.

    ECA kernel sizes are left out (:func:`bind_state_dict` adapts them), as are classifier sizes.
    """
    sig: list[tuple[Any, ...]] = []
    for name, m in model.named_modules():
        if name.split(".")[-1] in ("fc", "head_drop") or isinstance(m, nn.Conv1d):
            continue
        extra: tuple[Any, ...] = ()
        if isinstance(m, nn.Conv2d):
            extra = (m.kernel_size, m.stride, m.padding, m.dilation, m.groups)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            extra = (m.kernel_size, m.stride, m.padding, m.ceil_mode)
        elif hasattr(m, "attn_position"):
            extra = (m.attn_position,)
        elif hasattr(m, "squeeze") and isinstance(m.squeeze, str):
            extra = (m.squeeze,)
        elif isinstance(m, nn.BatchNorm2d):
            extra = (m.eps,)
        sig.append((name, type(m).__name__, *extra))
    return sig


def _check_recorded_structure(model: nn.Module, metadata: Mapping[str, Any], path: str) -> None:
    """A converted file records the model (and overrides) it was verified against; refuse a model that computes
    something else with the same tensor shapes (e.g. Caffe weights saved for ``se_resnet50`` with
    ``stride_in_1x1=True`` loaded into the stock ``se_resnet50``)."""
    name = metadata.get("model")
    if not isinstance(name, str) or not _model_exists(name):
        return
    kwargs = dict(metadata.get("model_kwargs") or {})
    kwargs.pop("num_classes", None)
    try:
        with torch.device("meta"):
            recorded = _create(name, **kwargs)
    except (TypeError, ValueError):
        return
    want, got = _structure_signature(recorded), _structure_signature(model)
    if want == got:
        return
    diff = next((f"{w} vs {g}" for w, g in zip(want, got) if w != g), f"{len(want)} vs {len(got)} modules")
    call = ", ".join([repr(name)] + [f"{k}={v!r}" for k, v in kwargs.items()])
    raise SenetError(
        f"{path} was converted for create_model({call}); {model_name_of(model)} differs in structure "
        f"(first difference: {diff}). Build the model with those arguments"
    )


def _resolve_source(path_or_url: str | os.PathLike[str], sha256: str | None) -> str:
    src = os.fspath(path_or_url)
    if is_url(src):
        return str(fetch_url(src, sha256=sha256))
    return src


def load_pretrained(
    model: nn.Module,
    path_or_url: str | os.PathLike[str],
    strict: bool = True,
    *,
    layout: str | None = None,
    sha256: str | None = None,
    adapt: bool = True,
    init_missing_attn: bool = False,
    replace_head: bool = False,
) -> LoadResult:
    """Load published weights of any supported layout into a senet ``model`` (in place).

    Args:
        model: a senet model (``create_model(name, pretrained=...)`` calls this).
        path_or_url: a ``.safetensors`` file, a pickled checkpoint (read with ``weights_only=True``), or an
            http(s) URL, fetched only because the caller passed it and checked against ``sha256``.
        strict: every tensor must match by name and shape (the default); ``False`` loads what matches and
            reports the rest in the result.
        layout: skip detection and treat the file as this layout (:func:`senet.weights.list_layouts`).
        sha256: expected SHA-256 (or hex prefix) of a URL download.
        adapt: resolve the exact differences described in :func:`bind_state_dict` (ECA k, MLP biases).
        init_missing_attn: attention tensors the file lacks keep their initialisation (start an SE model from
            plain ResNet weights); everything else stays strict.
        replace_head: the model was built for another number of classes on purpose (fine-tuning): a classifier
            of another size in the file is skipped and the model's is zero-initialised. Without it a
            classifier of another size is an error (strict) or reported in ``mis_shaped`` (``strict=False``).

    Returns:
        A :class:`LoadResult` (layout, evidence, adaptations, keys not loaded, file metadata).
    """
    path = _resolve_source(path_or_url, sha256)
    ckpt = read_checkpoint(path)
    meta_layout = ckpt.metadata.get("layout") if isinstance(ckpt.metadata.get("layout"), str) else None
    if layout is None and meta_layout == "senet":
        canonical, det, arch = dict(ckpt.state_dict), None, None
        _check_recorded_structure(model, ckpt.metadata, path)
    else:
        canonical, det = to_canonical(ckpt.state_dict, layout)
        arch = infer_arch(canonical) if det.layout != "senet" else None
    model_was_training = model.training
    result = _load_into(
        model,
        canonical,
        path=path,
        det=det,
        arch=arch,
        strict=strict,
        adapt=adapt,
        init_missing_attn=init_missing_attn,
        metadata=ckpt.metadata,
        replace_head=replace_head,
    )
    model.train(model_was_training)
    return result


@dataclass
class Converted:
    """Result of :func:`convert_checkpoint`: a senet model holding the converted weights."""

    model: nn.Module
    model_name: str
    model_kwargs: dict[str, Any]
    detection: Detection
    arch: Arch
    load: LoadResult
    checkpoint: Checkpoint


def convert_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    model_name: str | None = None,
    layout: str | None = None,
    *,
    sha256: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> Converted:
    """Detect, convert and strictly load a published checkpoint into a freshly built senet model (eval mode).

    ``source`` is a file, a URL (with ``sha256``) or an in-memory state_dict. ``model_name`` / ``layout`` skip
    inference / detection; ``model_kwargs`` are ``create_model`` overrides used as given, on top of the options a
    senet file (or ``senet train`` checkpoint) records for its model. A ``num_classes`` there that differs from the
    checkpoint's classifier gives a fresh, zero-initialised head; every other tensor still loads strictly.
    """
    if isinstance(source, Mapping):
        path = "<state_dict>"
        ckpt = Checkpoint(dict(source), {}, path)
    else:
        path = _resolve_source(source, sha256)
        ckpt = read_checkpoint(path)
    canonical, det = to_canonical(ckpt.state_dict, layout)
    arch = infer_arch(canonical)
    recorded = ckpt.metadata.get("model")
    explicit_classes = (model_kwargs or {}).get("num_classes")
    if model_name in (None, recorded) and isinstance(recorded, str) and _model_exists(recorded):
        # A senet training checkpoint or converted file names its model and the overrides it was built with
        # (attn_position, ...): the tensors cannot show those, so they are kept under the caller's own.
        model_name = recorded
        model_kwargs = {**(ckpt.metadata.get("model_kwargs") or {}), **(model_kwargs or {})}
    if model_kwargs is not None:
        name = model_name or _candidate_names(arch, det.layout)[0][0]
        kwargs = dict(model_kwargs)
        kwargs.setdefault("num_classes", arch.num_classes or 1000)
    else:
        shapes = {k: tuple(v.shape) for k, v in canonical.items()}
        name, kwargs = infer_model(arch, det.layout, model_name, shapes)
    model = _create_uninitialised(name, **kwargs)
    model.eval()
    result = _load_into(
        model,
        canonical,
        path=path,
        det=det,
        arch=arch,
        strict=True,
        adapt=True,
        init_missing_attn=False,
        metadata=ckpt.metadata,
        replace_head=explicit_classes is not None,
    )
    return Converted(model, name, kwargs, det, arch, result, ckpt)


def save_pretrained(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    model_name: str | None = None,
    layout_source: str = "senet",
    model_kwargs: Mapping[str, Any] | None = None,
    class_names: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``model``'s weights to a safetensors file with senet metadata. Returns the metadata written.

    The file records ``layout="senet"`` (its tensors use senet's names) and ``source_layout`` (where they came
    from), the model name and overrides, and the preprocessing of :func:`get_pretrained_cfg`.
    """
    name = model_name or model_name_of(model)
    cfg = get_pretrained_cfg(name)
    meta: dict[str, Any] = {
        "model": name,
        "layout": "senet",
        "source_layout": layout_source,
        "senet_version": __version__,
        **cfg.metadata(),
    }
    if model_kwargs:
        meta["model_kwargs"] = dict(model_kwargs)
    if class_names is not None:
        meta["class_names"] = list(class_names)
    if extra:
        meta.update(extra)
    save_safetensors(model.state_dict(), path, meta)
    return meta
