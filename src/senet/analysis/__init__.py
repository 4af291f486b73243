"""Research tools: excitation recording and statistics (paper Sec. 7.2), attention pruning, ablation sweeps.

* :class:`Recorder` — removable forward hooks on attention gates with streaming per-class statistics.
* :mod:`~senet.analysis.stats` — class-specificity and saturation of each block; ``.npz`` save/load.
* :mod:`~senet.analysis.plots` — the paper's excitation figures from arrays (matplotlib, Agg).
* :func:`prune_attention` — replace chosen attention blocks by identity.
* :mod:`~senet.analysis.ablate` — tables and figures of the paper's ablation grids (the grids and their runner are
  :mod:`senet.train.grids` and :mod:`senet.train.sweep`).
"""

from .prune import module_paths, prune_attention, select_blocks
from .recorder import (
    Recorder,
    add_identity_distance,
    attention_blocks,
    default_blocks,
    gate_module,
    identity_gammas,
    parse_block_name,
)
from .stats import SAT_HIGH, SAT_LOW, ClassStats, ExcitationStats, load_stats, save_stats

__all__ = [
    "SAT_HIGH",
    "SAT_LOW",
    "ClassStats",
    "ExcitationStats",
    "Recorder",
    "add_identity_distance",
    "attention_blocks",
    "identity_gammas",
    "default_blocks",
    "gate_module",
    "load_stats",
    "module_paths",
    "parse_block_name",
    "prune_attention",
    "save_stats",
    "select_blocks",
]
