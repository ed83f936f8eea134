"""The report of a factorial ablation: effects table (Markdown, CSV), effects and interaction plots, the stopping
rule, and cost against precision next to a one-at-a-time table. Depends only on the runs' records and plan.json,
so the same runs give the same files."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from trickbench.io import atomic_write, atomic_write_text
from trickbench.scripts.ablation.collect import STOPPING, Run, collect, copy_raw, metric_of
from trickbench.scripts.ablation.design import Design
from trickbench.scripts.ablation.effects import Analysis, analyse, by_size, level_differences
from trickbench.scripts.ablation.factorial import ROMAN, design_from_record
from trickbench.scripts.ablation.factorial_plots import effects_png, interactions_png
from trickbench.scripts.ablation.render import _f, cpu_kind, machines  # the one-at-a-time report's number format, hosts

EFFECT, WIDTH, SD = "+.2f", ".2f", ".3f"  # format specs: effects and bounds, half-widths, one run's sd


def responses(
    design: dict[str, Any], runs: list[Run], metric: str
) -> tuple[dict[tuple[int, int], float], dict[str, dict[tuple[int, int], float]]]:
    """(trained responses by (row, seed), test-factor responses by factor then (row, seed))."""
    row_of = {r["arm"]: i for i, r in enumerate(design["rows"])}
    trained: dict[tuple[int, int], float] = {}
    tested: dict[str, dict[tuple[int, int], float]] = {t: {} for t in design["test_factors"]}
    for run in runs:
        arm, _, test = run.arm.partition("+")
        if arm not in row_of:
            continue
        value = metric_of(run.record, metric)
        if math.isnan(value):
            continue
        (tested[test] if test else trained)[(row_of[arm], run.seed)] = value
    return trained, tested


def analysis_of(design: dict[str, Any], runs: list[Run], metric: str) -> tuple[Design, Analysis]:
    d = design_from_record(design)
    trained, tested = responses(design, runs, metric)
    return d, analyse(d, trained, tested)


def cpu_hours(runs: list[Run]) -> float:
    """Σ (fit + test seconds) x torch threads over the runs' records, in hours (what a CPU table cost)."""
    total = 0.0
    for r in runs:
        seconds = (r.record.fit_seconds or 0.0) + (r.record.test_seconds or 0.0)
        total += seconds * int(r.record.provenance.get("torch_threads") or 1)
    return total / 3600.0


def one_at_a_time(folder: Path) -> dict[str, float] | None:
    """A one-at-a-time report's median paired half-width (metric units), runs and CPU-hours, from its files."""
    csv_path = folder / "results.csv"
    if not csv_path.is_file():
        return None
    rows = list(csv.DictReader(csv_path.open()))
    widths = [
        (float(r["paired_high"]) - float(r["paired_low"])) / 2
        for r in rows
        if r.get("paired_low") not in (None, "", "nan") and r.get("paired_high") not in (None, "", "nan")
    ]
    _, runs, pre, _ = collect(folder / "raw")
    return {"halfwidth": statistics.median(widths), "runs": len(runs) + len(pre), "hours": cpu_hours(runs + pre)}


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"


def cost_line(a: Analysis, hours: float, runs: int, other: dict[str, float] | None, scale: float) -> str:
    """One line: the median main-effect half-width for its cost, next to the one-at-a-time table's, and that
    table's scaled to this one's cost (a half-width shrinks as 1/sqrt(runs) at a fixed noise)."""
    mains = [e.halfwidth for e in a.mains()]
    if not mains or any(math.isnan(w) for w in mains):
        return "Cost against precision: needs two complete replicates (no interval yet)."
    mine = statistics.median(mains)
    line = (
        f"Cost against precision: median main-effect 95% half-width **{mine * scale:.3f}** from {runs} runs "
        f"({hours:.1f} CPU-hours, teacher and test-only evaluations included)"
    )
    if other:
        line += (
            f"; the one-at-a-time table: median paired half-width **{other['halfwidth'] * scale:.3f}** from "
            f"{other['runs']} runs ({other['hours']:.1f} CPU-hours)"
        )
        if hours > 0:
            line += f", i.e. {other['halfwidth'] * math.sqrt(other['hours'] / hours) * scale:.3f} at this table's cost"
    return line + "."


def markdown(
    name: str,
    design: Design,
    a: Analysis,
    metric: str,
    scale: float,
    stopping: dict | None,
    cost: str,
    incomplete: list[str],
    partial: bool,
) -> str:
    unit = " (points)" if scale == 100.0 else ""
    out = [f"# {name}: factorial trick table" + (" — PARTIAL" if partial else ""), ""]
    if partial:
        out += [f"**PARTIAL:** {len(incomplete)} planned run(s) have not finished; only complete replicates count.", ""]
    out += [
        f"Design: {design.runs} runs per replicate, {len(design.factors)} factors, resolution "
        f"{ROMAN.get(design.resolution, design.resolution)} (generators `{design.generators}`); replicates analysed "
        "(seeds): "
        f"{', '.join(map(str, a.blocks)) or 'none'}; {a.runs} trained runs; residual df {a.df_resid:.0f}; "
        f"one run's sd {_f(a.sigma, scale, SD)}{unit}.",
        f"Metric: `{metric}`. Effect = mean with the term + minus mean with it - (for a trick: on minus off, "
        "averaged over all other factors). 95% t intervals; Holm's p over every effect in the table.",
        "",
    ]
    if stopping:
        out += [
            f"Stopping rule: **{stopping['rule']}** — target max main-effect half-width "
            f"{stopping['target'] * scale:.3g}, budget {stopping['max_runs']} runs; stopped at "
            f"{stopping['runs']} runs with max half-width {_f(stopping['max_halfwidth'], scale, SD)}.",
            "",
        ]
    out += [cost, "", "## Main effects", "", f"| term | effect{unit} | 95% CI | half-width | p | p (Holm) |"]
    out.append("|---|--:|---|--:|--:|--:|")
    for e in sorted(a.mains(), key=by_size):
        out.append(
            f"| {e.term} | {_f(e.effect, scale, EFFECT)} | [{_f(e.low, scale, EFFECT)}, {_f(e.high, scale, EFFECT)}] | "
            f"{_f(e.halfwidth, scale, WIDTH)} | {_p(e.p)} | {_p(e.p_holm)} |"
        )
    for f in design.factors:
        levels = level_differences(a, f)
        if levels:
            ref = next(iter(f.levels))
            out += ["", f"{f.name}, each level against `{ref}` (averaged over the other factors):", ""]
            out += [f"| level | vs {ref}{unit} | 95% CI |", "|---|--:|---|"]
            for lvl, d, lo, hi in levels:
                out.append(f"| {lvl} | {_f(d, scale, EFFECT)} | [{_f(lo, scale, EFFECT)}, {_f(hi, scale, EFFECT)}] |")
    out += ["", "## Two-factor interactions", "", f"| term (= aliases) | effect{unit} | 95% CI | p | p (Holm) |"]
    out.append("|---|--:|---|--:|--:|")
    for e in sorted((e for e in a.effects if e.kind in ("2fi", "test:main")), key=by_size):
        term = " = ".join((e.term, *e.aliases))
        out.append(
            f"| {term} | {_f(e.effect, scale, EFFECT)} | [{_f(e.low, scale, EFFECT)}, {_f(e.high, scale, EFFECT)}] | "
            f"{_p(e.p)} | {_p(e.p_holm)} |"
        )
    out += [
        "",
        "Test-only factors are in both tables: `tta` is the mean within-run difference (the same weights",
        "tested both ways); `tta:X` is half the difference of that effect between X on and X off.",
        "",
    ]
    if a.pending:
        out += [f"Replicates started but not complete (left out): seeds {', '.join(map(str, a.pending))}.", ""]
    if incomplete:
        out += ["Runs planned and not finished:", ""] + [f"- {label}" for label in sorted(incomplete)] + [""]
    out += ["Figures: `effects.png` (every effect with its interval), `interactions.png` (the strongest pairs).", ""]
    return "\n".join(out)


def where(runs: list[Run], pre: list[Run]) -> str:
    """Where the counted runs ran; a note when they ran on more than one kind of CPU or GPU."""
    out = ["## Where the runs ran", "", *machines(runs + pre, arms=False), ""]
    kinds = {tuple(r.record.provenance.get("cuda_devices") or [cpu_kind(r.record.provenance)]) for r in runs + pre}
    if len(kinds) > 1:
        out += [
            f"**The runs ran on {len(kinds)} kinds of processor.** The same run is bitwise reproducible only on the "
            "same kind: on another it ends as if with another seed (results/cifar10_cpu_fast/rerun/README.md), so the "
            "mix adds to the residual sd, within each replicate too.",
            "",
        ]
    return "\n".join(out)


def csv_text(a: Analysis) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["term", "kind", "aliases", "effect", "ci_low", "ci_high", "halfwidth", "p", "p_holm"])
    for e in a.effects:
        w.writerow(
            [e.term, e.kind, " ".join(e.aliases)]
            + [f"{x:.6f}" for x in (e.effect, e.low, e.high, e.halfwidth)]
            + [f"{e.p:.6g}", f"{e.p_holm:.6g}"]
        )
    return buf.getvalue()


def stopping_record(root: Path) -> dict | None:
    path = root / STOPPING
    return json.loads(path.read_text()) if path.is_file() else None


def write_factorial(
    root: Path,
    out: Path,
    plan: dict[str, Any],
    runs: list[Run],
    pre: list[Run],
    incomplete: list[str],
    metric: str,
    scale: float,
    compare: Path | None,
) -> list[dict]:
    """report.md, effects.csv, effects.png, interactions.png and raw/ of a factorial ablation (an empty row list:
    the one-at-a-time summary rows do not apply)."""
    name = plan.get("name") or root.name
    design, a = analysis_of(plan["design"], runs, metric)
    other = one_at_a_time(compare) if compare else None
    if compare and other is None:
        raise SystemExit(f"error: --compare {compare}: no results.csv there; give a one-at-a-time report folder")
    cost = cost_line(a, cpu_hours(runs + pre), len(runs) + len(pre), other, scale)
    partial = bool(incomplete or a.pending)
    unit = "(points)" if scale == 100.0 else ""
    text = markdown(name, design, a, metric, scale, stopping_record(root), cost, incomplete, partial) + where(runs, pre)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "effects.csv", csv_text(a))
    figures = {"effects.png": None, "interactions.png": None}
    if a.effects:
        figures["effects.png"] = effects_png(name, a, scale, unit)
        trained, _ = responses(plan["design"], runs, metric)
        figures["interactions.png"] = interactions_png(name, design, a, trained, scale)
    for file, png in figures.items():
        if png is None:  # a figure of an earlier report in this folder would not show these runs
            (out / file).unlink(missing_ok=True)
        else:
            atomic_write(out / file, lambda fh, png=png: fh.write(png))
    copy_raw(root, out, plan, runs, pre)
    return []
