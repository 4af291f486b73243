"""What the machine offers: usable CPU cores, and the loader worker count that fits them."""

from __future__ import annotations

import os

__all__ = ["default_workers", "usable_cpus"]


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``) -- the
    number PyTorch's DataLoader compares ``num_workers`` against."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers(cap: int = 4) -> int:
    """DataLoader workers by default: ``cap``, but never more than the usable cores (more only time-slice the same
    cores, and PyTorch warns about it on every run)."""
    return min(cap, usable_cpus())
