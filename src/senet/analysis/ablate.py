"""The paper's ablation grids as resumable sweeps of ordinary training runs.

A *grid* is a list of :class:`Cell` s; each cell is a set of model keyword overrides (``attn_layer``,
``attn_kwargs``, ``attn_position``, ``attn_stages``) and optional training overrides, trained once per seed by a
*train function* ``train_fn(config, run_dir) -> metrics`` — in the CLI, the same function ``senet train`` calls.

Layout of a sweep directory::

    OUT/runs/<key>/seed<k>/             the run's own directory (checkpoints, metrics written by the trainer)
    OUT/runs/<key>/seed<k>/cell.json    {"status": "ok"|"failed", "metrics": {...}, "error": "...", "config": ...}
    OUT/<grid>.csv, OUT/<grid>.md, OUT/<grid>.png

``<key>`` is a hash of the run's config without its seed and device, so grids that share a setting (SE with
sigmoid gate, avg squeeze, standard position) share its runs when they use the same ``OUT``. A run whose
``cell.json`` says ``ok`` is skipped when the sweep is started again (resume); a failed run is retried and, if it
fails again, its error goes in its row instead of stopping the sweep.

Paper numbers are the SE-ResNet-50 **ImageNet** ablations (Hu et al., TPAMI 2019, Tables 10-16) and the ECA paper's
ResNet-50 comparison, copied from ``reference-numbers.md``; they are shown beside CIFAR results for direction only.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import json
import math
import multiprocessing as mp
import os
import re
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Cell",
    "Grid",
    "GRIDS",
    "named_grid",
    "load_grid",
    "run_sweep",
    "summarize",
    "write_tables",
    "TrainFn",
    "config_key",
    "senet_train_fn",
    "cell_cost",
]

TrainFn = Callable[[dict[str, Any], Path], Mapping[str, Any]]


@dataclass
class Cell:
    """One setting of a grid.

    Args:
        label: short name shown in tables (also the run directory name, sanitised).
        model_kwargs: keyword overrides for ``create_model`` (e.g. ``{"attn_layer": "se"}``).
        train: overrides of the training config for this cell only.
        paper: the paper's (top-1, top-5) error for this setting, if it has one.
    """

    label: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    paper: tuple[float, float] | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.label).strip("_") or "cell"


@dataclass
class Grid:
    """A named list of cells; ``swept`` names the varied setting (x-axis label of the plot)."""

    name: str
    swept: str
    cells: list[Cell]
    paper_source: str = ""


_SE = "SE-ResNet-50 on ImageNet (Hu et al. TPAMI 2019"
_ECA = "ResNet-50 on ImageNet (ECA-Net, Wang et al. CVPR 2020, Table 2; error = 100 - accuracy)"


def _se(**kw: Any) -> dict[str, Any]:
    return {"attn_layer": "se", **kw}


def _grids(stages: Sequence[int]) -> dict[str, Grid]:
    grids = {
        "reduction": Grid(
            "reduction",
            "reduction ratio r",
            [
                Cell(f"r={r}", _se(attn_kwargs={"rd_ratio": 1.0 / r, "rd_min": 1}), paper=p)
                for r, p in zip(
                    (2, 4, 8, 16, 32),
                    ((22.29, 6.00), (22.25, 6.09), (22.26, 5.99), (22.28, 6.03), (22.72, 6.20)),
                )
            ],
            _SE + ", Table 10)",
        ),
        "squeeze": Grid(
            "squeeze",
            "squeeze operator",
            [
                Cell("max", _se(attn_kwargs={"squeeze": "max"}), paper=(22.57, 6.09)),
                Cell("avg", _se(), paper=(22.28, 6.03)),
            ],
            _SE + ", Table 11)",
        ),
        "gate": Grid(
            "gate",
            "excitation gate",
            [
                Cell("relu", _se(attn_kwargs={"gate_layer": "relu"}), paper=(23.47, 6.98)),
                Cell("tanh", _se(attn_kwargs={"gate_layer": "tanh"}), paper=(23.00, 6.38)),
                Cell("sigmoid", _se(), paper=(22.28, 6.03)),
            ],
            _SE + ", Table 12)",
        ),
        "stages": Grid(
            "stages",
            "stages with SE",
            # Stage numbers follow the paper (ResNet-50: 2..5; CIFAR ResNets: 2..4). The paper reports 2, 3 and 4.
            [
                Cell(
                    f"stage {s}",
                    _se(attn_stages=[s]),
                    paper={2: (23.03, 6.48), 3: (23.04, 6.32), 4: (22.68, 6.22)}.get(s),
                )
                for s in stages
            ]
            + [Cell("all", _se(), paper=(22.28, 6.03))],
            _SE + ", Table 13)",
        ),
        "position": Grid(
            "position",
            "integration",
            [
                Cell("standard", _se(), paper=(22.28, 6.03)),
                Cell("pre", _se(attn_position="pre"), paper=(22.23, 6.00)),
                Cell("post", _se(attn_position="post"), paper=(22.78, 6.35)),
                Cell("identity", _se(attn_position="identity"), paper=(22.20, 6.15)),
            ],
            _SE + ", Table 14)",
        ),
        "inner": Grid(
            "inner",
            "SE position in the block",
            [
                Cell("standard", _se(), paper=(22.28, 6.03)),
                Cell("SE-3x3", _se(attn_position="inner"), paper=(22.48, 6.02)),
            ],
            _SE + ", Table 15)",
        ),
        "nosqueeze": Grid(
            "nosqueeze",
            "squeeze",
            [
                Cell("SE", _se(), paper=(22.28, 6.03)),
                Cell("NoSqueeze", {"attn_layer": "nosqueeze"}, paper=(22.93, 6.39)),
            ],
            _SE + ", Table 16)",
        ),
        "attention": Grid(
            "attention",
            "attention block",
            [
                Cell("none", {"attn_layer": "none"}, paper=(24.80, 7.48)),
                Cell("SE", _se(), paper=(23.29, 6.62)),
                Cell("ECA", {"attn_layer": "eca"}, paper=(22.52, 6.32)),
                Cell("CBAM", {"attn_layer": "cbam"}, paper=(22.66, 6.31)),
            ],
            "ResNet-50 on ImageNet, ECA-Net (Wang et al. CVPR 2020) Table 2, error = 100 - accuracy; its plain and "
            "SE rows equal Hu et al.'s Table 2",
        ),
    }
    return grids


#: The named grids.
GRIDS = tuple(_grids((2, 3, 4)))


def named_grid(name: str, stages: Sequence[int] = (2, 3, 4)) -> Grid:
    """A grid from the paper by name (see :data:`GRIDS`); ``stages`` are the model's stage numbers (``stages`` grid).

    The ``reduction`` grid sets ``rd_min=1`` so the SE width is the paper's ``C // r`` (CIFAR nets otherwise keep a
    minimum width, which would make several ratios identical at 16-64 channels).
    """
    from senet.errors import SenetError

    grids = _grids(stages)
    if name not in grids:
        raise SenetError(f"unknown grid {name!r}; choose one of {', '.join(grids)} or give a YAML file")
    return grids[name]


def load_grid(path: str | os.PathLike[str]) -> tuple[Grid, dict[str, Any]]:
    """A custom grid from YAML; returns it with the file's ``train`` defaults (may be empty).

    Format::

        name: width            # optional, default: the file name
        swept: SE width        # x-axis label, optional
        model: resnet20        # optional default for --model
        train: {epochs: 5}     # training overrides for every cell, optional
        cells:
          - label: r=4
            model_kwargs: {attn_layer: se, attn_kwargs: {rd_ratio: 0.25}}
            train: {lr: 0.05}  # optional, this cell only
            paper: [22.25, 6.09]  # optional
    """
    import yaml

    from senet.errors import SenetError

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SenetError(f"cannot read grid file {str(path)!r}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list) or not doc["cells"]:
        raise SenetError(f"grid file {str(path)!r} needs a non-empty 'cells' list (see senet ablate --help)")
    cells = []
    for i, c in enumerate(doc["cells"]):
        if not isinstance(c, dict) or "label" not in c:
            raise SenetError(f"{path}: cell {i} must be a mapping with a 'label'")
        extra = set(c) - {"label", "model_kwargs", "train", "paper"}
        if extra:
            raise SenetError(f"{path}: cell {c['label']!r} has unknown key(s) {sorted(extra)}")
        paper = tuple(c["paper"]) if c.get("paper") is not None else None
        cells.append(Cell(str(c["label"]), dict(c.get("model_kwargs") or {}), dict(c.get("train") or {}), paper))  # type: ignore[arg-type]
    labels = [c.slug for c in cells]
    if len(set(labels)) != len(labels):
        raise SenetError(f"{path}: cell labels must be unique")
    grid = Grid(
        str(doc.get("name") or path.stem), str(doc.get("swept") or "setting"), cells, str(doc.get("source", ""))
    )
    defaults = dict(doc.get("train") or {})
    if doc.get("model"):
        defaults.setdefault("model", doc["model"])
    return grid, defaults


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)


def config_key(config: Mapping[str, Any]) -> str:
    """A short stable hash of a run config, ignoring ``seed`` and ``device`` (the run-directory name)."""
    import hashlib

    rest = {k: v for k, v in config.items() if k not in ("seed", "device", "ledger", "experiment")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _ledger_rows(ledger: str | os.PathLike[str] | None) -> dict[tuple[str, ...], dict[str, Any]]:
    from senet.train.ledger import read_rows, row_key

    return {row_key(r): r for r in read_rows(ledger)} if ledger is not None else {}


def _ledger_key(config: Mapping[str, Any]) -> tuple[str, int, str, str, str]:
    """The ledger's (model, seed, recipe, amp, kind) key of a cell's run, from its resolved training config."""
    from senet.train import load_config
    from senet.train.ledger import config_key

    return config_key(load_config(config.get("config_file"), {k: v for k, v in config.items() if k != "config_file"}))


def _run_one(train_fn: TrainFn, config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    # Top-level so a process pool can pickle it; never raises: the error travels in the record.
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    try:
        metrics = dict(train_fn(config, rd))
        record = {"status": "ok", "metrics": metrics, "config": config}
    except Exception as exc:  # noqa: BLE001 - a failing cell must not stop the sweep
        record = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
            "traceback": traceback.format_exc()[-4000:],
            "config": config,
        }
    _write_json(rd / "cell.json", record)
    return record


def run_sweep(
    grid: Grid,
    train_fn: TrainFn,
    out_dir: str | os.PathLike[str],
    base_config: Mapping[str, Any],
    seeds: int | Sequence[int] = 3,
    jobs: int = 1,
    devices: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
    train: bool = True,
    ledger: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Train every (cell, seed) not finished yet; returns one record per run (``cell``, ``seed``, ``status``, ...).

    ``base_config`` is the training config shared by every run; each run gets ``seed``, ``model_kwargs`` (merged
    with the cell's) and the cell's ``train`` overrides, plus ``device`` round-robin from ``devices`` if given.
    ``jobs > 1`` runs cells in that many worker processes (``spawn``: ``train_fn`` must be importable).
    ``train=False`` only collects the runs finished so far (a report of a sweep still in progress).
    ``ledger``: a results-ledger file (:mod:`senet.train.ledger`); every finished run appends its row there, and a
    (model, seed, recipe) already in it is not trained again (its row stands in for the run's metrics).
    """
    out = Path(out_dir)
    in_ledger = _ledger_rows(ledger)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    todo: list[tuple[Cell, int, dict[str, Any], Path]] = []
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for cell in grid.cells:
        for seed in seed_list:
            config = _merge(base_config, cell.train)
            config["model_kwargs"] = _merge(dict(base_config.get("model_kwargs") or {}), cell.model_kwargs)
            run_dir = out / "runs" / config_key(config) / f"seed{seed}"
            done = run_dir / "cell.json"
            if done.exists():
                try:
                    rec = json.loads(done.read_text())
                except (OSError, json.JSONDecodeError):
                    rec = {}
                if rec.get("status") == "ok":
                    records[(cell.label, seed)] = rec
                    if log:
                        log(f"[skip] {cell.label} seed {seed}: finished earlier")
                    continue
            config["seed"] = seed
            if ledger is not None:
                config.update(ledger=str(ledger))
                row = in_ledger.get(_ledger_key(config))
                if row is not None:
                    records[(cell.label, seed)] = {"status": "ok", "metrics": row, "config": config}
                    if log:
                        log(f"[skip] {cell.label} seed {seed}: in the ledger {ledger}")
                    continue
            if devices:
                config["device"] = devices[len(todo) % len(devices)]
            todo.append((cell, seed, config, run_dir))

    def finish(cell: Cell, seed: int, rec: dict[str, Any]) -> None:
        records[(cell.label, seed)] = rec
        if log:
            what = rec["error"] if rec["status"] != "ok" else json.dumps(rec["metrics"], default=str)[:200]
            log(f"[{rec['status']}] {cell.label} seed {seed}: {what}")

    if not train:
        todo = []
    if jobs <= 1 or len(todo) <= 1:
        for cell, seed, config, run_dir in todo:
            if log:
                log(f"[run] {cell.label} seed {seed} -> {run_dir}")
            finish(cell, seed, _run_one(train_fn, config, str(run_dir)))
    else:
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures, futures_dir = {}, {}
            for cell, s, c, d in todo:
                fut = pool.submit(_run_one, train_fn, c, str(d))
                futures[fut], futures_dir[fut] = (cell, s), d
            for fut in cf.as_completed(futures):
                cell, seed = futures[fut]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OOM killer
                    rec = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    _write_json(Path(futures_dir[fut]) / "cell.json", rec)
                finish(cell, seed, rec)
    return [
        {"cell": c.label, "seed": s, **records[(c.label, s)]}
        for c in grid.cells
        for s in seed_list
        if (c.label, s) in records
    ]


def _mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return None, None
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def _err(metrics: Mapping[str, Any], k: int) -> float | None:
    # Trainers report accuracy or error, in % or as a fraction; normalise to error in %.
    for key in (f"top{k}_err", f"top{k}_error", f"val_top{k}_err"):
        if metrics.get(key) is not None:
            return float(metrics[key])
    for key in (f"top{k}", f"acc{k}", f"top{k}_acc", f"val_top{k}", f"val_acc{k}", f"test_top{k}"):
        if metrics.get(key) is not None:
            acc = float(metrics[key])
            return 100.0 - (100.0 * acc if acc <= 1.0 else acc)
    return None


def summarize(
    grid: Grid,
    records: Sequence[Mapping[str, Any]],
    cost: Mapping[str, Mapping[str, Any]] | None = None,
    seeds: int | None = None,
) -> list[dict[str, Any]]:
    """One row per cell: seeds ok/total, mean ± std top-1/top-5 error (%), cost columns, paper numbers, errors.

    ``cost[label]`` may hold ``params``, ``macs`` and ``throughput`` (images/s) for that cell's model. ``seeds`` is
    the number of seeds asked for (default: the runs recorded), so unfinished runs show as missing.
    """
    cost = cost or {}
    rows = []
    for cell in grid.cells:
        recs = [r for r in records if r["cell"] == cell.label]
        ok = [r for r in recs if r.get("status") == "ok"]
        t1 = _mean_std(_err(r["metrics"], 1) for r in ok)
        t5 = _mean_std(_err(r["metrics"], 5) for r in ok)
        errors = sorted({str(r.get("error")) for r in recs if r.get("status") != "ok"})
        c = cost.get(cell.label, {})
        rows.append(
            {
                "cell": cell.label,
                "seeds_ok": len(ok),
                "seeds": seeds if seeds is not None else len(recs),
                "top1_err_mean": t1[0],
                "top1_err_std": t1[1],
                "top5_err_mean": t5[0],
                "top5_err_std": t5[1],
                "params": c.get("params"),
                "macs": c.get("macs"),
                "throughput": c.get("throughput"),
                "paper_top1_err": cell.paper[0] if cell.paper else None,
                "paper_top5_err": cell.paper[1] if cell.paper else None,
                "error": "; ".join(errors),
            }
        )
    return rows


def _pm(m: float | None, s: float | None) -> str:
    return "–" if m is None else f"{m:.2f} ± {s:.2f}"


def _n(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def write_tables(
    grid: Grid, rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str], plot: bool = True
) -> dict[str, Path]:
    """Write ``<grid>.csv``, ``<grid>.md`` and (``plot=True``) ``<grid>.png`` into ``out_dir``; returns their paths."""
    from senet.utils.table import markdown_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["cell"])
    writer.writeheader()
    writer.writerows(rows)
    paths["csv"] = out / f"{grid.name}.csv"
    _write_text(paths["csv"], buf.getvalue())
    headers = [
        grid.swept,
        "seeds",
        "top-1 err % (ours)",
        "top-5 err % (ours)",
        "params",
        "MACs",
        "img/s",
        "paper top-1 / top-5 err % (ImageNet)",
        "error",
    ]
    table_rows = [
        [
            r["cell"],
            f"{r['seeds_ok']}/{r['seeds']}",
            _pm(r["top1_err_mean"], r["top1_err_std"]),
            _pm(r["top5_err_mean"], r["top5_err_std"]),
            _n(r["params"], ","),
            _n(r["macs"], ","),
            _n(r["throughput"], ".0f"),
            "–" if r["paper_top1_err"] is None else f"{r['paper_top1_err']:.2f} / {r['paper_top5_err']:.2f}",
            r["error"] or "",
        ]
        for r in rows
    ]
    md = f"### {grid.name}\n\n" + markdown_table(headers, table_rows) + "\n"
    if grid.paper_source:
        md += f"\nPaper column: {grid.paper_source}.\n"
    paths["md"] = out / f"{grid.name}.md"
    _write_text(paths["md"], md)
    if plot and rows:
        from senet.utils.optional import optional

        # The tables are the result of a long grid: a missing matplotlib skips the figure with a warning, never
        # the tables.
        if optional("matplotlib", "the ablation figure", "senet ablate") is None:
            return paths
        from .plots import plot_ablation

        paths["png"] = plot_ablation(
            [r["cell"] for r in rows],
            [r["top1_err_mean"] for r in rows],
            [r["top1_err_std"] for r in rows],
            out / f"{grid.name}.png",
            title=f"{grid.name}: top-1 error vs {grid.swept}",
            reference=[r["paper_top1_err"] for r in rows],
        )
    return paths


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def senet_train_fn(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The train function of ``senet ablate``: the same :func:`senet.train.train` that ``senet train`` calls.

    ``config`` holds training-config keys (plus ``config_file``: a YAML recipe applied first). The run writes into
    ``run_dir``; a run interrupted earlier (``last.pt`` present) is resumed rather than restarted.
    """
    from senet.train import load_config, train

    overrides = {k: v for k, v in config.items() if k != "config_file"}
    overrides["output"] = str(run_dir)
    overrides["resume"] = (Path(run_dir) / "last.pt").is_file()
    overrides.setdefault("progress", "none")
    result = train(load_config(config.get("config_file"), overrides), print_fn=lambda *a: None)
    if result.get("status", "done") != "done":
        raise RuntimeError(f"training ended with status {result.get('status')!r}: {json.dumps(result)[:200]}")
    return result


def cell_cost(
    model: str,
    model_kwargs: Mapping[str, Any],
    num_classes: int = 10,
    throughput_batch: int = 64,
    iters: int = 3,
    throughput: bool = True,
) -> dict[str, Any]:
    """Params, MACs (one image) and, with ``throughput``, measured fp32 inference images/s of one cell's model."""
    import torch

    from senet.bench.flops import count_macs, count_params
    from senet.bench.speed import model_input_size, time_model
    from senet.train.checkpoint import build_model

    net = build_model(model, num_classes, dict(model_kwargs))
    size = model_input_size(net, model)
    speed = time_model(net, (throughput_batch, *size), warmup=1, iters=iters).throughput if throughput else None
    return {"params": count_params(net), "macs": count_macs(net, torch.randn(1, *size)).macs, "throughput": speed}
