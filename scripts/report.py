"""Aggregate an ablation's runs into a report: Markdown table, CSV, PNG bar chart, raw metrics copies.

    trickbench report runs/cifar10_cpu [--out results/cifar10_cpu] [--metric test/acc]

Only runs whose metrics.json says "completed" are counted; the others are listed under the table.
The output depends only on the runs' metrics.json files (and plan.json), so the same runs always give
byte-identical files: no dates, no absolute paths, sorted keys, PNG written without a Software tag.
The report's `raw/` (each counted run's metrics.json, definition.json and CSV log, and plan.json) is itself a run
folder: `trickbench report results/X/raw --out OTHER` gives the same report (tests/test_report.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trickbench.io import atomic_write, atomic_write_text
from trickbench.scripts.ablation.collect import (
    arm_curves,
    collect,
    copy_raw,
    paired_differences,
    partial_epochs,
    summarise,
)
from trickbench.scripts.ablation.factorial_report import write_factorial
from trickbench.scripts.ablation.plots import _epoch_ranges, chart_png, curves_png, forest_png, forest_range
from trickbench.scripts.ablation.render import csv_text, markdown, power_markdown


def write_report(
    root: Path,
    out: Path,
    metric: str = "test/acc",
    baseline: str = "baseline",
    power_delta: float | None = None,
    compare: Path | None = None,
) -> list[dict]:
    if root.resolve() == (out / "raw").resolve():
        raise SystemExit(f"error: {root} is the raw/ folder this report would replace; write the report elsewhere")
    plan, runs, pre, incomplete = collect(root)
    if not runs:
        raise SystemExit(
            f"error: no completed runs under {root} (expected <arm>/seed<k>/metrics.json); "
            "run `trickbench ablate CONFIG` first"
        )
    name = plan.get("name") or root.name
    scale = 100.0 if metric.endswith("acc") else 1.0
    if plan.get("design"):
        return write_factorial(root, out, plan, runs, pre, incomplete, metric, scale, compare)
    rows = summarise(runs, metric, baseline, power_delta or 0.003)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", markdown(name, plan, rows, pre, incomplete, metric, baseline, scale, runs))
    atomic_write_text(out / "results.csv", csv_text(rows))
    png = chart_png(name, rows, metric, baseline, scale)
    atomic_write(out / "chart.png", lambda fh: fh.write(png))
    forest = forest_png(name, rows, baseline, scale)
    atomic_write(out / "forest.png", lambda fh: fh.write(forest))
    curve_metric = metric.replace("test/", "val/", 1)
    curves = arm_curves(runs, curve_metric)
    if not curves:  # runs without validation (limit_val_batches: 0): the per-epoch training metric
        curve_metric = metric.replace("test/", "train/", 1)
        curves = arm_curves(runs, curve_metric)
    if curves:
        png_curves = curves_png(name, curves, curve_metric, baseline, scale, partial_epochs(runs, curve_metric))
        atomic_write(out / "curves.png", lambda fh: fh.write(png_curves))
    copy_raw(root, out, plan, runs, pre)
    if power_delta is not None:
        atomic_write_text(out / "power.md", power_markdown(name, rows, baseline, scale, power_delta))
    return rows


def parser(prog: str = "trickbench report") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("runs", help="an ablation's run folder, e.g. runs/cifar10_cpu")
    p.add_argument("--out", default=None, help="output folder (default: results/<ablation name>)")
    p.add_argument("--metric", default="test/acc", help="<stage>/<name> from metrics.json (default test/acc)")
    p.add_argument("--baseline", default="baseline", help="arm the deltas are taken against")
    p.add_argument(
        "--compare",
        default=None,
        help="factorial designs: a one-at-a-time report folder (e.g. results/cifar10_cpu_fast) to set cost against "
        "precision with",
    )
    p.add_argument(
        "--power",
        action="store_true",
        help="also write power.md: seeds each arm needs to detect --power-delta (paired, 80%% power)",
    )
    p.add_argument(
        "--power-delta",
        type=float,
        default=0.003,
        help="true difference to detect, in metric units (default 0.003 = 0.3 accuracy points)",
    )
    return p


def main(argv: list[str] | None = None, prog: str = "trickbench report") -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    if not args.power_delta > 0:
        p.error(f"--power-delta must be > 0, got {args.power_delta}")
    root = Path(args.runs)
    if not root.is_dir():
        p.error(f"{root} is not a folder; give runs/<ablation name>")
    out = Path(args.out) if args.out else Path("results") / root.name
    compare = Path(args.compare) if args.compare else None
    rows = write_report(root, out, args.metric, args.baseline, args.power_delta if args.power else None, compare)
    print((out / "report.md").read_text())
    if not rows:  # a factorial report: its rows are effects
        files = [f for f in ("report.md", "effects.csv", "effects.png", "interactions.png") if (out / f).exists()]
        print(f"wrote {out}/{', '.join(files)} and raw/")  # no figure before a replicate is complete
        return 0
    if args.power:
        print((out / "power.md").read_text())
    print(f"wrote {out}/report.md, results.csv, chart.png, forest.png and raw/ ({sum(r['n'] for r in rows)} arm runs)")
    return 0


__all__ = [  # the report's pieces, importable from here as before
    "_epoch_ranges",
    "arm_curves",
    "collect",
    "curves_png",
    "forest_range",
    "main",
    "paired_differences",
    "partial_epochs",
    "write_report",
]
