"""``retrofit()``: put attention blocks into an existing network, and the report it returns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import SenetError
from ..layers import attn_knobs, create_attn, get_attn
from ..layers.create_attn import AttnType
from ..models._mbconv import is_se_kind as _is_se
from ..utils.table import markdown_table
from .blocks import POSITIONS, IdentityInitAttn, unwrap
from .families import Plan, Site, plan_model, plan_targets

__all__ = ["retrofit", "RetrofitReport", "RetrofitSite", "attention_modules", "retrofit_param_names", "INITS"]

INITS = ("identity", "paper")

# Attribute holding [(paper_name, module_path), ...] on a retrofitted model: plain data, so it survives deepcopy and
# pickling, and module paths are resolved on every call.
SITES_ATTR = "_senet_attn_sites"


@dataclass
class RetrofitSite:
    """Where one block went."""

    name: str  # paper-style name, e.g. "SE_4_6" (6th block of layer3 in a ResNet)
    path: str  # module path of the inserted module, e.g. "layer3.5.attn"
    channels: int
    action: str  # "insert" or "replace"
    params: int  # parameters of the inserted module (wrapper included)
    removed: int = 0  # parameters of the module it replaced (kept inside the wrapper with init="identity")


@dataclass
class RetrofitReport:
    """What :func:`retrofit` did. ``print(report)`` gives a summary line and a table; :meth:`to_dict` for JSON."""

    model: str
    family: str
    attn_layer: str
    position: str
    init: str
    sites: list[RetrofitSite] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    @property
    def params_added(self) -> int:
        """Net parameter change (negative when a swap removed more than it added)."""
        return self.params_after - self.params_before

    def summary(self) -> str:
        return (
            f"retrofit {self.attn_layer} ({self.position}, init={self.init}) into {self.model} [{self.family}]: "
            f"{len(self.sites)} blocks, {self.params_added:+,} params "
            f"({self.params_before:,} -> {self.params_after:,})"
        )

    def table(self) -> str:
        rows = [(s.name, s.path, s.channels, s.action, f"{s.params:,}", f"{s.removed:,}") for s in self.sites]
        return markdown_table(("name", "module", "channels", "action", "params", "replaced params"), rows)

    def __str__(self) -> str:
        return self.summary() + "\n" + self.table()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params_added"] = self.params_added
        return d


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _kind_name(kind: AttnType) -> str:
    if isinstance(kind, str):
        return kind.lower().replace("-", "_")
    return getattr(kind, "__name__", None) or getattr(getattr(kind, "func", None), "__name__", "attn")


# Paper-style site-name prefix: ``SE`` for every kind, as in senet's models (``SE_4_6`` is a place, not a kind).
_SITE_PREFIX = "SE"


def is_se_kind(kind: AttnType) -> bool:
    return _is_se(kind)


def _old_rd_channels(old: nn.Module | None) -> int | None:
    """Reduced width of an SE being replaced, so a swap keeps its budget unless told otherwise."""
    for attr in ("fc1", "conv_reduce"):
        layer = getattr(old, attr, None)
        if isinstance(layer, nn.Conv2d | nn.Linear):
            return layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
    return None


def _block_kwargs(kind: AttnType, site: Site, user: dict[str, Any], family: str) -> dict[str, Any]:
    knobs = attn_knobs(kind) or {}
    kw: dict[str, Any] = {}
    user_sets_width = any(k in user for k in ("rd_ratio", "rd_channels"))
    if not user_sets_width:
        rd = _old_rd_channels(site.replaced)
        if rd is not None and "rd_channels" in knobs:
            kw["rd_channels"] = rd
        elif family == "mobilenetv2" and "rd_ratio" in knobs:
            kw["rd_ratio"] = 1 / 8  # the reduction used for SE-MobileNetV2 in the ECA paper and senet's zoo
    if site.se_defaults and is_se_kind(kind) and not user_sets_width:
        # senet MBConv nets: the paper's SE form (width from the expanded or input channels, its gate and
        # activation), unless the user sets a width; a swap keeps the old SE's width (already in kw).
        kw = {**{k: v for k, v in site.se_defaults.items() if k in knobs}, **kw}
    kw.update(user)
    return kw


class _AttentionModulesMethod:
    """``model.attention_modules()`` on a retrofitted model that has no such method.

    A small class rather than ``types.MethodType``: a bound method pickles as ``getattr(model, name)``, which cannot
    be rebuilt while the model itself is being unpickled, whereas an instance's state is restored after the model
    exists, so ``torch.save(model)`` and ``copy.deepcopy`` both work.
    """

    def __init__(self, model: nn.Module) -> None:
        self.__self__ = model

    def __call__(self) -> Iterator[tuple[str, nn.Module]]:
        return attention_modules(self.__self__)


def _attach_attention_modules(model: nn.Module) -> None:
    if not hasattr(type(model), "attention_modules"):
        # An instance attribute: senet models define the method on the class and are left alone.
        model.attention_modules = _AttentionModulesMethod(model)


def retrofit(
    model: nn.Module,
    attn_layer: AttnType = "se",
    position: str = "standard",
    stages: Sequence[int] | None = None,
    init: str = "identity",
    targets: Sequence[str] | str | None = None,
    example_input: torch.Tensor | None = None,
    **attn_kwargs: Any,
) -> tuple[nn.Module, RetrofitReport]:
    """Insert attention blocks into ``model`` (in place) and return it with a :class:`RetrofitReport`.

    Args:
        model: a supported network (see :data:`senet.retrofit.SUPPORTED`), or any network with ``targets``.
        attn_layer: a kind from :func:`senet.list_attn` (``"se"``, ``"eca"``, ``"cbam"``...), a class or a partial.
        position: for ResNet blocks, one of ``standard`` | ``pre`` | ``post`` | ``identity`` | ``inner`` (paper
            Sec. 6.5); other families have one place (``standard``); ``targets`` accept ``standard``/``post`` (both
            mean "after the module").
        stages: only these stages (ResNets: paper numbering 2-5 = ``layer1``..``layer4``; other families: the stage
            numbers the report shows). ``None`` = all.
        init: ``"identity"`` — every site computes exactly what it computed before (each block is wrapped as
            ``base + gamma * (attn(x) - base)`` with ``gamma = 0``; see :class:`~senet.retrofit.IdentityInitAttn`);
            ``"paper"`` — the plain block with its normal initialisation (a swap then drops the old SE).
        targets: fnmatch globs on module names (``["layer3.*"]``); the block goes after each matching module (the
            outermost one when nested names match). Overrides the family rules.
        example_input: input used to find the targets' channels (default: ``1x3x64x64`` zeros).
        **attn_kwargs: the block's knobs (``rd_ratio``, ``rd_divisor``, ``kernel_size``...). Swaps keep the old SE's
            reduced width unless ``rd_ratio``/``rd_channels`` is given; MobileNetV2 uses ``rd_ratio=1/8``.

    Returns:
        ``(model, report)`` — the same model object, modified in place.

    Raises:
        SenetError: unsupported architecture (the message lists what can be targeted), bad position/stage/init/kind.

    >>> import torchvision
    >>> model, report = retrofit(torchvision.models.resnet18(), "se", init="paper")
    >>> report.params_added
    89080
    """
    _check_args(attn_layer, position, init)
    plan = _plan(model, position, targets, example_input)
    sites = _select_stages(plan, stages)
    before = _count(model)
    # Build every block before installing any, so a bad knob leaves the model untouched.
    built = [_build_block(model, site, attn_layer, attn_kwargs, plan.family, init) for site in sites]
    records = []
    for site, module in zip(sites, built):
        site.install(module)
        site.name = (
            site.path.rpartition(".")[0] if plan.family == "targets" else f"{_SITE_PREFIX}_{site.stage}_{site.index}"
        )
        action = "replace" if site.replaced is not None else "insert"
        records.append(
            RetrofitSite(site.name, site.path, site.channels, action, _count(module), _count(site.replaced))
        )
    previous = list(getattr(model, SITES_ATTR, []))
    setattr(model, SITES_ATTR, previous + [(s.name, s.path) for s in records])
    _attach_attention_modules(model)
    report = RetrofitReport(
        model=type(model).__name__,
        family=plan.family,
        attn_layer=_kind_name(attn_layer),
        position=position,
        init=init,
        sites=records,
        params_before=before,
        params_after=_count(model),
    )
    return model, report


def _check_args(attn_layer: AttnType, position: str, init: str) -> None:
    if init not in INITS:
        raise SenetError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    if position not in POSITIONS:
        raise SenetError(f"unknown position {position!r}; choose one of: {', '.join(POSITIONS)}")
    try:
        if get_attn(attn_layer) is None:
            raise SenetError("attn_layer 'none' inserts nothing; choose one of senet.list_attn()")
    except SenetError:
        raise
    except ValueError as e:
        raise SenetError(str(e)) from e


def _plan(
    model: nn.Module, position: str, targets: Sequence[str] | str | None, example_input: torch.Tensor | None
) -> Plan:
    """Where the blocks go: the family's rules, or after each module ``targets`` names (channels found by a probe)."""
    if not targets:
        return plan_model(model, position)
    probe = example_input if example_input is not None else torch.zeros(1, 3, 64, 64)
    ref = next(model.parameters(), None)
    if ref is not None:
        probe = probe.to(ref.device, ref.dtype if probe.is_floating_point() else probe.dtype)
    return plan_targets(model, targets, position, probe)


def _select_stages(plan: Plan, stages: Sequence[int] | None) -> list[Site]:
    if stages is None:
        return list(plan.sites)
    wanted = set(stages)
    unknown = sorted(wanted - set(plan.stages))
    if unknown:
        raise SenetError(f"stages {unknown} do not exist in this {plan.family} model; its stages are {plan.stages}")
    return [s for s in plan.sites if s.stage in wanted]


def _build_block(
    model: nn.Module, site: Site, attn_layer: AttnType, attn_kwargs: dict[str, Any], family: str, init: str
) -> nn.Module:
    """The block for one site, on the model's device and dtype and in its train/eval mode (not installed yet)."""
    kw = _block_kwargs(attn_layer, site, attn_kwargs, family)
    try:
        block = create_attn(attn_layer, site.channels, **kw)
    except SenetError:
        raise
    except ValueError as e:
        what = f"{_kind_name(attn_layer)} for {site.path} ({site.channels} channels)"
        raise SenetError(f"cannot build {what}: {e}") from e
    module = IdentityInitAttn(block, base=site.replaced) if init == "identity" else block
    ref = next(model.parameters(), None)
    if ref is not None:
        module.to(device=ref.device, dtype=ref.dtype)
    module.train(model.training)
    return module


def attention_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(name, block)`` for every attention block of ``model``, with paper-style names.

    Works on retrofitted models (blocks put there by :func:`retrofit`, unwrapped from the identity-init wrapper so
    ``block.gate`` and ``block.excitation`` are the block's own) and delegates to the model's own
    ``attention_modules()`` for senet models that were not retrofitted.

    Raises:
        SenetError: the model has no attention blocks senet knows of.
    """
    sites = getattr(model, SITES_ATTR, None)
    own = getattr(type(model), "attention_modules", None)
    if sites is None:
        if own is None:
            raise SenetError(
                f"{type(model).__name__} has no attention blocks senet knows of; add some with senet.retrofit()"
            )
        return iter(list(own(model)))
    found = [(name, unwrap(m)) for name, m in own(model)] if own is not None else []
    # senet models report their own slots, which retrofit may have filled: list each block once.
    seen = {id(m) for _, m in found}
    found += [(n, m) for n, path in sites if id(m := unwrap(model.get_submodule(path))) not in seen]
    return iter(found)


def retrofit_param_names(model: nn.Module) -> list[str]:
    """Names of the parameters :func:`retrofit` added (wrapper scales, and replaced SEs kept by the wrapper)."""
    paths = [path for _, path in getattr(model, SITES_ATTR, [])]
    return [n for n, _ in model.named_parameters() if any(n.startswith(p + ".") for p in paths)]
