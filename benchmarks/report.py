"""Regenerate the results tables in docs/ from the ledger (results/*.jsonl); never type a result table by hand.

Each docs page marks where a table goes with a pair of comments naming the experiment (the ledger file's stem)::

    <!-- ledger:speedrun -->
    ... generated, replaced on every run ...
    <!-- /ledger:speedrun -->

For every experiment, rows are grouped by recipe (``recipe_hash``; a grid's rows by the grid's shared recipe,
``sweep_recipe``), precision, epochs and machine; within a group each model (a grid's rows: each cell) gets n, top-1
mean ± std, top-1 error, training and evaluation seconds, and, where its plain twin (``se_resnet20`` -> ``resnet20``,
or the grid's cell without attention) has runs of the same seeds, the paired difference (mean ± std over seeds, wins).
Denoising rows (``task: denoise``) get PSNR / SSIM, the noisy input's PSNR and the gain instead of top-1.
Where the same model, seed and recipe ran in both bf16 and fp32, a parity table shows the accuracy difference. Run
from the repo root::

    python benchmarks/report.py            # rewrite the marked sections of docs/*.md
    python benchmarks/report.py --check    # exit 1 if any committed table differs from the ledger (CI runs this)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from senet.train.ledger import attention_kind, read_rows  # noqa: E402

MARK = re.compile(r"(<!-- ledger:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /ledger:(?P=name) -->)", re.S)


def _ms(xs: list[float], digits: int = 2) -> str:
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def plain_twin(model: str) -> str | None:
    """The attention-free twin of a registered model name by senet's naming, or None for a plain model."""
    kind = attention_kind(model)
    return None if kind == "none" else model[len(kind) + 1 :]


def variant(row: dict[str, Any]) -> str:
    """A row's line in a table: the model name, with the kind added where the name does not say it (a grid cell's
    ``attn_layer``, or a family with SE by default such as ``mobilenet_v3_small [se]``)."""
    kind = str(row.get("kind", "none"))
    return row["model"] if kind == attention_kind(row["model"]) else f"{row['model']} [{kind}]"


def _by_variant(rows: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    # A model seen with several kinds (a grid's cells) shows the kind on every line, the plain one included: the
    # bare name of an SE-by-default family would read as its SE network.
    kinds: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        kinds[r["model"]].add(str(r.get("kind", "none")))
    out: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        label = f"{r['model']} [{r.get('kind', 'none')}]" if len(kinds[r["model"]]) > 1 else variant(r)
        if r.get("cell"):  # a grid's rows carry their cell's label (the model's too when grids of two models share)
            label = f"{r['model']}: {r['cell']}" if len(kinds) > 1 else r["cell"]
        out[label][int(r["seed"])] = r  # a repeated cell keeps its latest row
    return out


def _twin(v: str, variants: dict[str, dict[int, dict[str, Any]]]) -> str | None:
    """The attention-free twin of a table line: the same model with kind none, else the name's plain twin; for a
    grid's cells, the one cell of the group without attention."""
    first = next(iter(variants[v].values()), {}) if v in variants else {}
    if first.get("cell"):
        plain = [
            u
            for u, c in variants.items()
            if all(r.get("kind") == "none" and r["model"] == first["model"] for r in c.values())
        ]
        return plain[0] if len(plain) == 1 and plain[0] != v else None
    model, _, kind = v.partition(" [")
    if not kind:
        return plain_twin(v)
    if kind == "none]":
        return None
    if f"{model} [none]" in variants:
        return f"{model} [none]"
    return model if attention_kind(model) == "none" else None


def _order(variants: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    return sorted(variants, key=lambda v: (_twin(v, variants) or v, _twin(v, variants) is not None, v))


def group_table(rows: list[dict[str, Any]]) -> list[str]:
    """One recipe x precision group: a line per model, with paired differences against its plain twin."""
    by_model = _by_variant(rows)
    order = _order(by_model)
    out = [
        "| model | n | seeds | top-1 % | top-1 error % | train s | eval s | Δ top-1 vs plain (paired) | wins | "
        "train time / plain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in order:
        cells = by_model[m]
        seeds = sorted(cells)
        acc = [cells[s]["top1"] for s in seeds]
        err = [100 - a for a in acc]
        tr = [cells[s]["train_s"] for s in seeds]
        ev = [cells[s]["eval_s"] for s in seeds]
        delta, wins, ratio = "–", "–", "–"
        twin = _twin(m, by_model)
        if twin in by_model:
            common = [s for s in seeds if s in by_model[twin]]
            if common:
                d = [cells[s]["top1"] - by_model[twin][s]["top1"] for s in common]
                delta = (
                    f"{statistics.mean(d):+.2f} ± {statistics.stdev(d):.2f}" if len(d) > 1 else f"{d[0]:+.2f}"
                ) + (f" (n={len(d)})")
                wins = f"{sum(x > 0 for x in d)}/{len(d)}"
                base = statistics.mean(by_model[twin][s]["train_s"] for s in common)
                ratio = f"{statistics.mean(cells[s]['train_s'] for s in common) / base:.3f}" if base > 0 else "–"
        out.append(
            f"| {m} | {len(seeds)} | {','.join(map(str, seeds))} | {_ms(acc)} | {_ms(err)} | {_ms(tr, 0)} | "
            f"{_ms(ev, 0)} | {delta} | {wins} | {ratio} |"
        )
    return out


def denoise_table(rows: list[dict[str, Any]]) -> list[str]:
    """One recipe group of denoising runs (``task: denoise``): PSNR / SSIM at the training sigma, the noisy input's
    PSNR and the gain over it, PSNR at each evaluation sigma, and the paired PSNR difference against the plain twin."""
    by_model = _by_variant(rows)
    order = _order(by_model)
    sigmas = sorted({s for r in rows for s in (r.get("by_sigma") or {})}, key=float)
    out = [
        "| model | n | seeds | σ | noisy PSNR dB | PSNR dB | gain dB | SSIM | "
        + "".join(f"PSNR σ{s} dB | " for s in sigmas)
        + "train s | Δ PSNR vs plain (paired) | wins |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(sigmas) + "---|---|---|",
    ]
    for m in order:
        cells = by_model[m]
        seeds = sorted(cells)
        col = {k: [cells[s][k] for s in seeds] for k in ("psnr_noisy", "psnr", "psnr_gain", "ssim", "train_s")}
        per = [
            _ms([cells[x]["by_sigma"][s]["psnr"] for x in seeds if s in (cells[x].get("by_sigma") or {})])
            for s in sigmas
        ]
        delta, wins = "–", "–"
        twin = _twin(m, by_model)
        common = [s for s in seeds if s in by_model.get(twin or "", {})]
        if common:
            d = [cells[s]["psnr"] - by_model[twin][s]["psnr"] for s in common]  # type: ignore[index]
            delta = (f"{statistics.mean(d):+.3f} ± {statistics.stdev(d):.3f}" if len(d) > 1 else f"{d[0]:+.3f}") + (
                f" (n={len(d)})"
            )
            wins = f"{sum(x > 0 for x in d)}/{len(d)}"
        sig = ",".join(sorted({str(cells[s].get("sigma")) for s in seeds}))
        out.append(
            f"| {m} | {len(seeds)} | {','.join(map(str, seeds))} | {sig} | {_ms(col['psnr_noisy'])} | "
            f"{_ms(col['psnr'])} | {_ms(col['psnr_gain'])} | {_ms(col['ssim'], 4)} | "
            + "".join(f"{p} | " for p in per)
            + f"{_ms(col['train_s'], 0)} | {delta} | {wins} |"
        )
    return out


def parity_table(rows: list[dict[str, Any]]) -> list[str]:
    """bf16 vs fp32 for the same model, seed and recipe (the check before bf16 becomes a default)."""
    cells: dict[tuple[str, int, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        # A grid's cells share model and recipe: the line (kind or cell label) keeps them apart.
        line = variant(r) if not r.get("cell") else f"{r['model']}: {r['cell']}"
        cells[(line, int(r["seed"]), r["recipe_hash"])][r.get("amp") or "?"] = r
    pairs = [(k, v) for k, v in sorted(cells.items()) if "bf16" in v and "fp32" in v]
    if not pairs:
        return []
    out = [
        "",
        "bf16 autocast vs fp32, same model, seed and recipe:",
        "",
        "| model | seed | recipe | fp32 top-1 % | bf16 top-1 % | bf16 − fp32 | fp32 train s | bf16 train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (model, seed, recipe), v in pairs:
        a, b = v["fp32"], v["bf16"]
        out.append(
            f"| {model} | {seed} | `{recipe}` | {a['top1']:.2f} | {b['top1']:.2f} | {b['top1'] - a['top1']:+.2f} | "
            f"{a['train_s']:.0f} | {b['train_s']:.0f} |"
        )
    return out


def render(experiment: str, rows: list[dict[str, Any]]) -> str:
    """The markdown for one experiment's ledger rows."""
    if not rows:
        return f"_No rows in results/{experiment}.jsonl yet._\n"
    # Times only compare on one machine, so the machine is part of the group.
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        recipe = r.get("sweep_recipe") or r["recipe_hash"]  # a grid's cells share their sweep's recipe
        groups[(recipe, r.get("amp") or "?", int(r.get("epochs", 0)), r["machine"])].append(r)
    lines = [f"Generated by `python benchmarks/report.py` from `results/{experiment}.jsonl` ({len(rows)} runs)."]
    for (recipe, amp, epochs, machine), rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        dates = sorted(r.get("date", "") for r in rs if r.get("date"))
        when = f"{dates[0][:10]} – {dates[-1][:10]}" if dates else "?"
        lines += [
            "",
            f"**recipe `{recipe}`, {amp}, {epochs} epochs** — {len(rs)} runs, {when}, on {machine}",
            "",
            *(denoise_table(rs) if rs[0].get("task") == "denoise" else group_table(rs)),
        ]
    lines += parity_table([r for r in rows if r.get("task") != "denoise"])
    return "\n".join(lines) + "\n"


def regenerate(results_dir: Path, docs_dir: Path, check: bool) -> list[str]:
    """Rewrite (or, with ``check``, compare) every marked section; returns the files that were or would be changed."""
    changed = []
    for doc in sorted(docs_dir.rglob("*.md")):
        text = doc.read_text(encoding="utf-8")

        def fill(m: re.Match[str]) -> str:
            rows = read_rows(results_dir / f"{m['name']}.jsonl")
            return m.group(1) + render(m["name"], rows) + m.group(4)

        new = MARK.sub(fill, text)
        if new != text:
            changed.append(str(doc.relative_to(docs_dir.parent)))
            if not check:
                doc.write_text(new, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(ROOT / "results"), help="folder of ledger files (default: results/)")
    p.add_argument("--docs", default=str(ROOT / "docs"), help="folder of markdown pages (default: docs/)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a table is stale")
    args = p.parse_args(argv)
    changed = regenerate(Path(args.results), Path(args.docs), args.check)
    if args.check and changed:
        print(
            f"stale ledger tables in {', '.join(changed)}: run python benchmarks/report.py and commit", file=sys.stderr
        )
        return 1
    print(("would update: " if args.check else "updated: ") + (", ".join(changed) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
