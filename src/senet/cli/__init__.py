"""The ``senet`` command line: one console script, one subcommand per module in this package.

Each ``senet/cli/<name>.py`` that defines ``add_parser(subparsers)`` and ``run(args) -> int`` becomes
``senet <name>`` (underscores become dashes). A command that takes free-form ``--key value`` arguments (``senet
train``'s config overrides) sets an ``extra_args(tokens) -> dict`` default on its parser: :func:`main` passes it
the tokens argparse did not know and sets the returned attributes; for other commands unknown tokens are an error.
Optional dependencies (matplotlib, onnxruntime, ...) are imported where they are used, never at import.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from senet._version import __version__

__all__ = ["main", "build_parser", "run_script"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="senet",
        description="Squeeze-and-Excitation networks and channel attention (SE, ECA, CBAM) for PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"senet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser") and hasattr(module, "run"):
            sub = module.add_parser(subparsers)
            sub.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``senet`` console script. Returns the process exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    extra_args = getattr(args, "extra_args", None)
    if extra and extra_args is None:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra_args is not None:
        vars(args).update(extra_args(extra))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 1
    return run_script(f"senet {args.command}", args.func, args)


_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def run_script(prog: str, func: Callable[..., int | None], *args: Any) -> int:
    """Call ``func(*args)`` as a command: user mistakes (bad path, bad value: ``SenetError`` and the OS errors) print
    one line ``PROG: error: ...`` and give status 2, Ctrl-C gives 130; ``SENET_DEBUG=1`` shows the traceback.

    The ``senet`` subcommands and the scripts in ``benchmarks/`` share it, so neither shows a traceback for a typo.
    """
    try:
        return int(func(*args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        if os.environ.get("SENET_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
