"""Run `senet` subcommands in one process where the optional packages cannot be imported (as after a base-only
``pip install senet``). Usage: ``python _blocked_run.py COMMANDS.json`` -- a JSON list of argv lists; prints one JSON
line: ``[{"argv", "rc", "out", "err"}]``, with the traceback in ``err`` if a command raised."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

# Every package of an optional extra (pyproject.toml) plus timm (tests only). None in sys.modules is what a missing
# package looks like to `import` (ModuleNotFoundError) and to importlib.util.find_spec (None).
BLOCKED = ("matplotlib", "onnx", "onnxruntime", "onnxscript", "tensorboard", "keras", "timm", "pretrainedmodels")


def main() -> None:
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]
    from senet.cli import main as senet_main

    results = []
    for argv in json.loads(open(sys.argv[1]).read()):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if argv[0] == "import":  # a library import rather than a command
                    __import__(argv[1])
                    rc = 0
                else:
                    rc = senet_main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the console script would show: a traceback
                traceback.print_exc()
                rc = 1
        results.append({"argv": argv, "rc": rc, "out": out.getvalue(), "err": err.getvalue()})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
