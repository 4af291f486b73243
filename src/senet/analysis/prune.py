"""Replace attention blocks by identity: the paper's "remove the last stage's SE blocks" finding as a tool.

The paper (Sec. 7.2 and Sec. 4) notes that the last stage's SE blocks are nearly class-agnostic and saturated, so
dropping them costs < 0.1 % top-5 error on ImageNet while removing most of SE's extra parameters. Blocks can be
chosen by stage (paper-style names ``SE_<stage>_<block>``) or by a class-specificity threshold measured with
:class:`~senet.analysis.Recorder`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from torch import nn

from senet.errors import SenetError

from .recorder import attention_blocks, parse_block_name

__all__ = ["select_blocks", "prune_attention", "module_paths"]


def module_paths(model: nn.Module) -> dict[str, str]:
    """Attention block name (as :func:`attention_blocks` gives it) -> its dotted module path in ``model``."""
    path_of = {id(m): p for p, m in model.named_modules()}
    return {name: path_of[id(m)] for name, m in attention_blocks(model)}


def select_blocks(
    names: Sequence[str],
    stages: Iterable[int] | None = None,
    max_specificity: float | None = None,
    specificity: Mapping[str, float] | None = None,
) -> list[str]:
    """Blocks to prune: those in ``stages`` and/or with class-specificity ``<= max_specificity``.

    With both criteria a block must meet both. Stage numbers are the first number of paper-style names.
    """
    if stages is None and max_specificity is None:
        raise SenetError("choose blocks to prune with --stages and/or --max-specificity")
    chosen = list(names)
    if stages is not None:
        wanted = set(stages)
        parsed = {n: parse_block_name(n) for n in chosen}
        if any(p is None for p in parsed.values()):
            raise SenetError(f"--stages needs paper-style block names (SE_<stage>_<block>), got {', '.join(names)}")
        have = sorted({p[0] for p in parsed.values() if p})
        if not wanted & set(have):
            raise SenetError(f"no attention block in stage(s) {sorted(wanted)}; this model has stages {have}")
        chosen = [n for n in chosen if parsed[n][0] in wanted]  # type: ignore[index]
    if max_specificity is not None:
        if specificity is None:
            raise ValueError("max_specificity needs the measured specificity of each block")
        chosen = [n for n in chosen if specificity[n] <= max_specificity]
    return chosen


def prune_attention(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Replace the named attention blocks of ``model`` by ``nn.Identity`` in place; returns their module paths."""
    paths = module_paths(model)
    done: list[str] = []
    for name in names:
        if name not in paths:
            raise ValueError(f"unknown attention block {name!r}; this model has: {', '.join(paths)}")
        model.set_submodule(paths[name], nn.Identity())
        done.append(paths[name])
    return done
