"""benchmarks/report.py: docs tables generated from the ledger, and the committed ones up to date."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("senet_report", ROOT / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


def _row(model: str, seed: int, top1: float, amp: str = "bf16", train_s: float = 100.0, kind: str = "") -> dict:
    return dict(
        experiment="exp",
        model=model,
        kind=kind or report.attention_kind(model),
        seed=seed,
        recipe_hash="r1",
        commit="c",
        machine="CPU X (amx)",
        amp=amp,
        train_s=train_s,
        eval_s=5.0,
        top1=top1,
        top5=99.0,
        epochs=10,
        date="2026-12-03T10:00Z",
    )


def test_paired_differences_wins_and_time_ratio() -> None:
    rows = [_row("speednet", 0, 90.0), _row("speednet", 1, 91.0), _row("se_speednet", 0, 90.5, train_s=110.0)]
    rows.append(_row("se_speednet", 1, 90.0, train_s=110.0))
    text = report.render("exp", rows)
    line = next(x for x in text.splitlines() if x.startswith("| se_speednet"))
    assert "| 2 | 0,1 | 90.25 ± 0.35 |" in line and "-0.25 ± 1.06 (n=2)" in line and "| 1/2 |" in line
    assert "1.100" in line
    assert "speednet | 2 | 0,1 | 90.50 ± 0.71 | 9.50 ± 0.71" in text


def test_grid_cells_of_one_model_pair_by_kind() -> None:
    # mobilenet_v3_small has SE by default; a grid's cells set attn_layer none / eca (one recipe, kinds differ).
    rows = [_row("mobilenet_v3_small", s, 60.0 + s, kind=k) for s in (0, 1) for k in ("none", "se", "eca")]
    rows[1]["top1"] += 2.0  # SE, seed 0
    text = report.render("exp", rows)
    lines = {x.split(" | ")[0][2:]: x for x in text.splitlines() if x.startswith("| mobilenet")}
    assert set(lines) == {"mobilenet_v3_small [none]", "mobilenet_v3_small [se]", "mobilenet_v3_small [eca]"}
    assert (
        "+1.00 ± 1.41 (n=2)" in lines["mobilenet_v3_small [se]"]
        and "+0.00 ± 0.00 (n=2)" in lines["mobilenet_v3_small [eca]"]
    )
    assert "| – |" in lines["mobilenet_v3_small [none]"]


def test_parity_table_pairs_bf16_and_fp32_of_the_same_cell() -> None:
    text = report.render("exp", [_row("resnet20", 0, 87.0, "fp32", 300.0), _row("resnet20", 0, 87.3, "bf16", 120.0)])
    assert "| resnet20 | 0 | `r1` | 87.00 | 87.30 | +0.30 | 300 | 120 |" in text


def test_regenerate_then_check(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "results" / "exp.jsonl").write_text(json.dumps(_row("speednet", 0, 90.0)) + "\n")
    doc = tmp_path / "docs" / "page.md"
    doc.write_text("# t\n\n<!-- ledger:exp -->\nold table\n<!-- /ledger:exp -->\ntail\n")
    assert report.regenerate(tmp_path / "results", tmp_path / "docs", check=True) == ["docs/page.md"]
    assert "old table" in doc.read_text()  # --check writes nothing
    assert report.regenerate(tmp_path / "results", tmp_path / "docs", check=False) == ["docs/page.md"]
    assert "| speednet | 1 | 0 | 90.00 |" in doc.read_text() and doc.read_text().endswith("tail\n")
    assert report.regenerate(tmp_path / "results", tmp_path / "docs", check=True) == []


def test_committed_docs_match_the_committed_ledger() -> None:
    stale = report.regenerate(ROOT / "results", ROOT / "docs", check=True)
    assert not stale, f"run `python benchmarks/report.py` and commit: {stale}"


def test_denoise_rows_get_a_psnr_table_with_paired_gains() -> None:
    def row(model: str, seed: int, psnr: float) -> dict:
        r = _row(model, seed, 0.0, amp="fp32")
        del r["top1"], r["top5"]
        by = {"15": {"psnr": psnr + 3}, "25": {"psnr": psnr}, "50": {"psnr": psnr - 4}}
        return {**r, "task": "denoise", "sigma": "25", "psnr": psnr, "psnr_noisy": 20.17, "ssim": 0.8, "by_sigma": by}

    rows = [
        row("denoiser", 0, 28.0),
        row("denoiser", 1, 28.2),
        row("se_denoiser", 0, 28.5),
        row("se_denoiser", 1, 28.5),
    ]
    for r in rows:
        r["psnr_gain"] = r["psnr"] - r["psnr_noisy"]
    text = report.render("denoise", rows)
    assert "| noisy PSNR dB | PSNR dB | gain dB | SSIM | PSNR σ15 dB | PSNR σ25 dB | PSNR σ50 dB |" in text
    assert "| se_denoiser | 2 | 0,1 | 25 | 20.17 ± 0.00 | 28.50 ± 0.00 |" in text
    assert "+0.400 ± 0.141 (n=2) | 2/2 |" in text and "top-1" not in text


def test_labelled_grid_cells_group_by_the_sweep_recipe_and_pair_with_the_plain_cell() -> None:
    # A fine-tuning grid: the cells differ in more than the kind (retrofit, init), so their recipes differ.
    cells = [
        ("plain", "none", "ra", 90.0),
        ("SE, identity init", "se", "rb", 91.0),
        ("SE, paper init", "se", "rc", 89.5),
    ]
    rows = []
    for label, kind, recipe, top1 in cells:
        for s in (0, 1):
            r = _row("efficientnet_lite0", s, top1 + s, kind=kind)
            rows.append(dict(r, recipe_hash=recipe, cell=label, sweep_recipe="grid1"))
    text = report.render("exp", rows)
    assert "recipe `grid1`" in text and text.count("**recipe") == 1
    lines = {x.split(" | ")[0][2:]: x for x in text.splitlines() if x.startswith("| ") and "|---" not in x}
    assert {"plain", "SE, identity init", "SE, paper init"} <= set(lines)
    assert "+1.00 ± 0.00 (n=2)" in lines["SE, identity init"] and "| 2/2 |" in lines["SE, identity init"]
    assert "-0.50 ± 0.00 (n=2)" in lines["SE, paper init"] and "| – |" in lines["plain"]


def test_grids_of_two_models_in_one_ledger_keep_their_lines_and_parity_keeps_cells_apart() -> None:
    rows = []
    for model, base in (("resnet20", 90.0), ("resnet56", 92.0)):
        for label, kind, gain in (("plain", "none", 0.0), ("SE", "se", 1.0)):
            for s in (0, 1):
                r = _row(model, s, base + gain + s, kind=kind)
                rows.append(dict(r, cell=label, sweep_recipe="grid1"))
    text = report.render("exp", rows)
    lines = {x.split(" | ")[0][2:]: x for x in text.splitlines() if x.startswith("| ") and "|---" not in x}
    assert {"resnet20: plain", "resnet20: SE", "resnet56: plain", "resnet56: SE"} <= set(lines)
    assert all("+1.00 ± 0.00 (n=2)" in lines[f"{m}: SE"] for m in ("resnet20", "resnet56"))
    # bf16 and fp32 runs of a grid's two cells (one model, one recipe) make two parity lines, not one.
    pr = [
        dict(_row("resnet20", 0, 90.0 + g, amp=a, kind=k), cell=c)
        for c, k, g in (("plain", "none", 0), ("SE", "se", 1))
        for a in ("bf16", "fp32")
    ]
    parity = report.parity_table(pr)
    assert sum(x.startswith("| resnet20: ") for x in parity) == 2
