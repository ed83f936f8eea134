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
import csv
import io
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trickbench.io import atomic_write, atomic_write_text
from trickbench.scripts.ablation.stats import detectable_delta, holm, mean_std, paired_diff, seeds_needed, welch_diff

SKIP_DIRS = {"prerequisites", "slurm"}


@dataclass
class Run:
    label: str  # "<arm>/seed<k>" (or "prerequisites/<name>/seed<k>")
    arm: str
    seed: int
    record: dict[str, Any]
    raw: str  # metrics.json text, copied verbatim
    definition: dict[str, Any] | None = None  # the run's definition.json (written by scripts.ablate)
    path: Path | None = None  # the run directory (its csv/metrics.csv feeds the curves)


def _seed_dirs(folder: Path) -> list[Path]:
    dirs = [d for d in folder.glob("seed*") if re.fullmatch(r"seed-?\d+", d.name)]
    return sorted(dirs, key=lambda d: int(d.name[4:]))


def collect(root: Path) -> tuple[dict[str, Any], list[Run], list[Run], list[str]]:
    """(plan, arm runs, prerequisite runs, labels of runs that are planned/present but not completed)."""
    plan_path = root / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.is_file() else {}
    arms = plan.get("arms") or sorted(
        (d.name for d in root.iterdir() if d.is_dir() and d.name not in SKIP_DIRS), key=lambda a: (a != "baseline", a)
    )
    groups = [(a, root / a, "") for a in arms]
    groups += [(p, root / "prerequisites" / p, "prerequisites/") for p in plan.get("prerequisites", [])]
    runs, pre, incomplete = [], [], set(plan.get("runs", {}))
    for arm, folder, prefix in groups:
        for d in _seed_dirs(folder):
            label = f"{prefix}{arm}/{d.name}"
            incomplete.add(label)
            try:
                raw = (d / "metrics.json").read_text()
                record = json.loads(raw)
            except (OSError, ValueError):
                continue
            if record.get("status") == "completed":
                incomplete.discard(label)
                try:
                    definition = json.loads((d / "definition.json").read_text())
                except (OSError, ValueError):
                    definition = None
                (pre if prefix else runs).append(Run(label, arm, int(d.name[4:]), record, raw, definition, d))
    done = {r.label for r in runs + pre}
    return plan, runs, pre, sorted(incomplete - done)


def metric_of(record: dict[str, Any], metric: str) -> float:
    stage, key = metric.split("/", 1)
    value = (record.get(stage) or {}).get(key)
    return math.nan if value is None else float(value)


def summarise(runs: list[Run], metric: str, baseline: str, power_delta: float = 0.003) -> list[dict[str, Any]]:
    """One row per arm (plan order): n, mean, std; the **paired** delta vs `baseline` over the seeds both ran
    (95% t interval, two-sided p, Holm-adjusted p over all arms, seeds a paired test needs to detect
    `power_delta` at 80% power from the measured std of the differences); the unpaired Welch delta for
    comparison; mean wall time."""
    by_arm: dict[str, list[Run]] = {}
    for r in runs:
        by_arm.setdefault(r.arm, []).append(r)
    base = [metric_of(r.record, metric) for r in by_arm.get(baseline, [])]
    base_by_seed = {r.seed: metric_of(r.record, metric) for r in by_arm.get(baseline, [])}
    rows = []
    for arm, group in by_arm.items():
        values = [metric_of(r.record, metric) for r in group]
        mean, std = mean_std(values)
        compare = bool(base) and arm != baseline
        diff = welch_diff(values, base) if compare else None
        paired = paired_diff({r.seed: metric_of(r.record, metric) for r in group}, base_by_seed) if compare else None
        walls = [float(r.record["wall_seconds"]) for r in group if "wall_seconds" in r.record]
        need = math.nan
        if paired is not None and paired.n >= 2 and paired.sd > 0:
            need = float(seeds_needed(paired.sd, power_delta))
        nan = math.nan
        rows.append(
            {
                "arm": arm,
                "n": len(values),
                "mean": mean,
                "std": std,
                "values": values,
                "delta": diff.delta if diff else nan,
                "ci_low": diff.low if diff else nan,
                "ci_high": diff.high if diff else nan,
                "wall_seconds": mean_std(walls)[0],
                "seeds": [r.seed for r in group],
                "paired_delta": paired.delta if paired else nan,
                "paired_low": paired.low if paired else nan,
                "paired_high": paired.high if paired else nan,
                "p": paired.p if paired else nan,
                "n_pairs": paired.n if paired else 0,
                "sd_diff": paired.sd if paired else nan,
                "seeds_needed": need,
            }
        )
    adjusted = holm({r["arm"]: r["p"] for r in rows if r["arm"] != baseline})
    for r in rows:
        r["p_holm"] = adjusted.get(r["arm"], math.nan)
    return rows


def _f(x: float, scale: float, fmt: str, empty: str = "n/a") -> str:
    return empty if math.isnan(x) else format(x * scale, fmt)


def markdown(
    name: str,
    plan: dict,
    rows: list[dict],
    pre: list[Run],
    incomplete: list[str],
    metric: str,
    baseline: str,
    scale: float,
    runs: list[Run] | None = None,
) -> str:
    unit = " (%)" if scale == 100 else ""
    lines = [f"# Ablation `{name}`", ""]
    if incomplete:
        done = len(runs or []) + len(pre)
        lines += [
            (
                f"**PARTIAL: {done} of {done + len(incomplete)} planned runs completed** (the sweep is resumable; "
                "the n column gives each arm's seeds so far, and the runs not yet counted are listed under the "
                "table)."
            ),
            "",
        ]
    if plan.get("source"):
        lines += [f"Ablation file `{plan['source']}`.", ""]
    lines += [*ran_with(runs or []), ""]
    tests = sum(1 for r in rows if not math.isnan(r["p"]))
    lines += [
        (
            f"`{metric}`{unit}: mean ± sample std over seeds. Paired Δ = mean over the seeds both ran of "
            f"(arm − `{baseline}`), with its 95% t interval and two-sided p; a seed fixes everything but the arm, so "
            f"pairing removes the seed-to-seed spread. p (Holm): adjusted for the {tests} "
            f"comparison{'s' * (tests != 1)} "
            "with Holm's "
            "step-down method (family-wise error 5%). Welch Δ: the same difference with seeds treated as unpaired, "
            "for comparison. Seeds needed: for a paired test (5%, two-sided) to detect a true Δ of "
            + ("0.3 percentage points" if scale == 100 else "0.003")
            + " at 80% power, from this arm's std of "
            "the per-seed differences. Wall = seconds per run, process start to end of test."
        ),
        "",
        f"| arm | n | {metric}{unit} | paired Δ vs {baseline} [95% CI] | p | p (Holm) | Welch Δ [95% CI] | "
        "seeds needed | wall (s/run) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def interval(d: float, lo: float, hi: float) -> str:
        if math.isnan(d):
            return "—"
        return f"{_f(d, scale, '+.2f')} [{_f(lo, scale, '+.2f')}, {_f(hi, scale, '+.2f')}]"

    for r in rows:
        p = "—" if math.isnan(r["p"]) else f"{r['p']:.3g}"
        ph = "—" if math.isnan(r["p_holm"]) else f"{r['p_holm']:.3g}"
        need = "—" if math.isnan(r["seeds_needed"]) else str(int(r["seeds_needed"]))
        lines.append(
            f"| {r['arm']} | {r['n']} | {_f(r['mean'], scale, '.2f')} ± {_f(r['std'], scale, '.2f')} "
            f"| {interval(r['paired_delta'], r['paired_low'], r['paired_high'])} | {p} | {ph} "
            f"| {interval(r['delta'], r['ci_low'], r['ci_high'])} | {need} "
            f"| {_f(r['wall_seconds'], 1, '.0f')} |"
        )
    lines += [*test_only_notes(plan, baseline), *wall_notes(rows, runs or [])]
    if pre:
        lines += [
            "",
            "Prerequisite runs (not arms): "
            + "; ".join(
                f"`{p.label}` {metric} {_f(metric_of(p.record, metric), scale, '.2f')}, "
                f"{_f(float(p.record.get('wall_seconds', math.nan)), 1, '.0f')} s"
                for p in pre
            )
            + ".",
        ]
    if incomplete:
        lines += ["", f"Not counted (no completed metrics.json): {', '.join(f'`{x}`' for x in incomplete)}."]
    lines += ["", "Machine and code of the counted runs (from each run's provenance):", *machines((runs or []) + pre)]
    lines += [
        "",
        "Files: `results.csv` (full precision), `chart.png`, `forest.png` (paired deltas), `curves.png` (the val "
        "metric per epoch, or the train metric when the runs do not validate), `raw/` (each run's metrics.json, "
        "definition.json and CSV log; itself a run folder that regenerates this report).",
        "",
    ]
    return "\n".join(lines)


WALL_SPREAD = 1.5  # runs of one arm whose wall times differ more than this factor did not run under equal load


def test_only_notes(plan: dict, baseline: str) -> list[str]:
    """One line per test-only arm (`evaluate:`): it trained nothing; its Δ is on the weights of the arm it tests."""
    tested = {spec["arm"]: spec["evaluates"] for spec in (plan.get("runs") or {}).values() if spec.get("evaluates")}
    return (
        [
            "",
            *(
                f"`{arm}` is test-only: each seed tests the final weights of `{target}`'s run of the same seed with "
                f"the arm's test-time fragments; it trains nothing, so its wall is a test pass"
                + (", and its Δ is the test-time trick alone on the very same weights." if target == baseline else ".")
                for arm, target in tested.items()
            ),
        ]
        if tested
        else []
    )


def wall_notes(rows: list[dict], runs: list[Run]) -> list[str]:
    """A flag when the wall column mixes load conditions or machines: an arm whose runs' wall times differ by more
    than WALL_SPREAD x, or counted runs on more than one host or CPU (from their provenance)."""
    walls: dict[str, list[float]] = {}
    for r in runs:
        w = r.record.get("wall_seconds")
        if isinstance(w, (int, float)) and w > 0:
            walls.setdefault(r.arm, []).append(float(w))
    spread = {arm: (min(w), max(w)) for arm, w in walls.items() if len(w) > 1 and max(w) > WALL_SPREAD * min(w)}
    hosts = {
        ((r.record.get("provenance") or {}).get("host"), (r.record.get("provenance") or {}).get("cpu")) for r in runs
    }
    out = []
    if spread:
        detail = "; ".join(f"`{arm}` {lo:.0f}-{hi:.0f} s" for arm, (lo, hi) in spread.items())
        out.append(
            f"**The wall column mixes load conditions**: within an arm, some runs took more than {WALL_SPREAD:g}x as "
            f"long as others ({detail}); runs that shared the machine with other work were slower. Compare cost across "
            "arms only roughly."
        )
    if len(hosts) > 1:
        out.append(f"**The wall column mixes machines**: the counted runs ran on {len(hosts)} host/CPU combinations.")
    return ["", *out] if out else []


def machines(runs: list[Run]) -> list[str]:
    """Where and with what the counted runs ran (their metrics.json provenance), one line per distinct
    (CPU/GPU, threads, versions, git commit), with how many runs and which arms."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        p = r.record.get("provenance") or {}
        if not p:
            key = "no provenance recorded"
        else:
            v = p.get("versions") or {}
            device = (
                ", ".join(p.get("cuda_devices") or [])
                or f"{p.get('cpu', '?')}, {p.get('torch_threads', '?')} torch thread(s)"
            )
            commit = f"{str(p.get('git_commit', '?'))[:10]}{' (dirty)' if p.get('git_dirty') else ''}"
            key = (
                f"{device}; torch {v.get('torch', '?')}, lightning {v.get('lightning', '?')}, "
                f"python {v.get('python', '?')}; git {commit}"
            )
        groups.setdefault(key, []).append(r)
    out = []
    for key, group in groups.items():
        arms = ", ".join(dict.fromkeys(r.arm for r in group))
        out.append(f"- {len(group)} run(s) ({arms}): {key}")
    return out


def ran_with(runs: list[Run]) -> list[str]:
    """The header's base configs and overrides, taken from what the counted runs ran (their definition.json),
    not from the ablation file as it is now; runs that ran differently are listed by group."""
    groups: dict[tuple, list[str]] = {}
    for r in runs:
        d = r.definition or {}
        key = (tuple(d.get("base") or ()), tuple(o for o in d.get("overrides") or ()))
        groups.setdefault(key if r.definition else ("?",), []).append(r.label)
    out = []
    for key, labels in groups.items():
        who = "All counted runs" if len(groups) == 1 else f"{len(labels)} run(s) ({', '.join(labels)})"
        if key == ("?",):
            out.append(f"{who}: no definition.json recorded (run outside scripts.ablate?); what they ran is unknown.")
            continue
        bases = ", ".join(f"`{b}`" for b in key[0]) or "(none)"
        out.append(f"{who} ran base configs {bases} with overrides `{' '.join(key[1]) or '(none)'}`.")
    if len(groups) > 1:
        out.append("**The counted runs did not all run the same base and overrides.**")
    return out


def csv_text(rows: list[dict]) -> str:
    cols = [
        "arm",
        "n",
        "mean",
        "std",
        "delta",
        "ci_low",
        "ci_high",
        "wall_seconds",
        "seeds",
        "values",
        "paired_delta",
        "paired_low",
        "paired_high",
        "p",
        "p_holm",
        "n_pairs",
        "sd_diff",
        "seeds_needed",
    ]
    num = lambda x: "" if math.isnan(x) else f"{x:.6f}"  # noqa: E731
    out = [",".join(cols)]
    for r in rows:
        first = [num(r[c]) for c in cols[2:8]]
        extra = [num(r[c]) for c in ("paired_delta", "paired_low", "paired_high", "p", "p_holm")]
        extra += [str(r["n_pairs"]), num(r["sd_diff"]), num(r["seeds_needed"])]
        out.append(
            ",".join(
                [
                    r["arm"],
                    str(r["n"]),
                    *first,
                    " ".join(map(str, r["seeds"])),
                    " ".join(f"{v:.6f}" for v in r["values"]),
                    *extra,
                ]
            )
        )
    return "\n".join(out) + "\n"


def _png(fig) -> bytes:
    """The figure as PNG bytes without a Software tag (no version string: byte-identical output), then closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def chart_png(name: str, rows: list[dict], metric: str, baseline: str, scale: float) -> bytes:
    """Bars of each arm's mean paired difference from the baseline (seed by seed), the per-seed differences as dots,
    and the zero line, so sub-point effects are as visible as large ones; the baseline's own mean is in the title.
    An arm far off the others' scale is clipped at the axis edge with its value written on it (`forest_range`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = paired_differences(rows, baseline)
    arms = [r for r in rows if r["arm"] != baseline]
    half, off = forest_range(arms, diffs)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(arms) + 1.5), 3.8), dpi=110)
    for x, r in enumerate(arms):
        mean = r["paired_delta"] * scale
        if math.isnan(mean):
            continue
        shown = max(-half * scale, min(half * scale, mean))
        colour = "#c44e52" if r["arm"] in off else "#55a868" if mean > 0 else "#4c72b0"
        ax.bar(x, shown, color=colour, width=0.7)
        if r["arm"] in off:
            ax.text(x, shown * 0.5, f"{mean:+.1f}\noff scale", ha="center", va="center", fontsize=7, color="white")
            continue
        ax.plot([x + 0.22] * len(diffs[r["arm"]]), [d * scale for d in diffs[r["arm"]]], "k.", markersize=4)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylim(-half * scale, half * scale)
    ax.set_xticks(range(len(arms)), [r["arm"] for r in arms], rotation=30, ha="right")
    unit = " (points)" if scale == 100 else ""
    ax.set_ylabel(f"{metric} minus {baseline}{unit}")
    base = next((r for r in rows if r["arm"] == baseline), None)
    where = (
        f" ({baseline} {base['mean'] * scale:.2f}{'%' if scale == 100 else ''})"
        if base and not math.isnan(base["mean"])
        else ""
    )
    ax.set_title(f"{name}: mean paired difference per arm, seeds as dots{where}", fontsize=9)
    return _png(fig)


def paired_differences(rows: list[dict], baseline: str) -> dict[str, list[float]]:
    """Per arm, arm minus baseline for every seed both ran (the points behind the paired interval)."""
    base = next((dict(zip(r["seeds"], r["values"])) for r in rows if r["arm"] == baseline), {})
    return {
        r["arm"]: [v - base[s] for s, v in zip(r["seeds"], r["values"]) if s in base]
        for r in rows
        if r["arm"] != baseline
    }


OFF_SCALE = 4.0  # an arm reaching this many times further from zero than every other arm is drawn off scale


def forest_range(arms: list[dict], diffs: dict[str, list[float]]) -> tuple[float, set[str]]:
    """(half-width of the forest plot's x-axis, arms drawn off scale). An arm whose interval and dots reach more
    than OFF_SCALE times further from zero than every other arm's would squash the others into a line (a
    -32-point arm beside 1-point tricks); it is drawn as an arrow at the axis edge with its numbers instead."""
    extent = {}
    for r in arms:
        values = [
            abs(v)
            for v in [*diffs[r["arm"]], r["paired_delta"], r["paired_low"], r["paired_high"]]
            if not math.isnan(v)
        ]
        extent[r["arm"]] = max(values, default=0.0)
    order = sorted(extent, key=lambda a: extent[a], reverse=True)
    off = set()
    while len(order) - len(off) >= 2 and extent[order[len(off)]] > OFF_SCALE * extent[order[len(off) + 1]]:
        off.add(order[len(off)])
    inside = [extent[a] for a in order if a not in off]
    return 1.08 * max(inside, default=0.0) or 1.0, off


def forest_png(name: str, rows: list[dict], baseline: str, scale: float) -> bytes:
    """Forest plot: each arm's paired delta vs the baseline with its 95% t interval, the per-seed differences as
    dots, and the zero line; arms top to bottom in plan order; far-out arms at the edge (`forest_range`).
    Byte-identical for the same rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = paired_differences(rows, baseline)
    arms = [r for r in rows if r["arm"] != baseline]
    half, off = forest_range(arms, diffs)
    fig, ax = plt.subplots(figsize=(7.2, max(2.2, 0.42 * len(arms) + 1.2)), dpi=110)
    for i, r in enumerate(arms):
        y = len(arms) - 1 - i
        if r["arm"] in off:  # an arrow at the axis edge on its side, its numbers beside it
            side = 1.0 if r["paired_delta"] > 0 else -1.0
            ax.plot([side * 0.97 * half * scale], [y], ">" if side > 0 else "<", color="#c44e52", markersize=8)
            lo, mid, hi = (r[k] * scale for k in ("paired_low", "paired_delta", "paired_high"))
            interval = f" [{lo:+.2f}, {hi:+.2f}]" if not (math.isnan(lo) or math.isnan(hi)) else ""  # 1 seed: none
            ax.text(
                side * 0.92 * half * scale,
                y,
                f"{mid:+.2f}{interval}, off scale",
                fontsize=8,
                ha="right" if side > 0 else "left",
                va="center",
                color="#c44e52",
            )
            continue
        ax.plot([d * scale for d in diffs[r["arm"]]], [y] * len(diffs[r["arm"]]), ".", color="#999999", markersize=5)
        if not math.isnan(r["paired_delta"]):
            lo, hi = r["paired_low"], r["paired_high"]
            if not (math.isnan(lo) or math.isnan(hi)):
                ax.plot([lo * scale, hi * scale], [y, y], "-", color="#4c72b0", linewidth=2)
            ax.plot([r["paired_delta"] * scale], [y], "o", color="#4c72b0", markersize=6)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlim(-half * scale, half * scale)
    ax.set_yticks(range(len(arms)), [f"{r['arm']} (n={r['n_pairs']})" for r in reversed(arms)])
    unit = " (points)" if scale == 100 else ""
    ax.set_xlabel(f"paired difference vs {baseline}{unit}: mean, 95% t interval, seeds")
    ax.set_title(f"{name}: each arm minus {baseline}, same seeds")
    return _png(fig)


def csv_log(run: Run) -> Path | None:
    """The run's CSV log: `csv/metrics.csv` in a run directory, `metrics.csv` in a report's raw/ copy."""
    for path in (run.path / "csv" / "metrics.csv", run.path / "metrics.csv") if run.path else ():
        if path.is_file():
            return path
    return None


def epoch_curve(run: Run, metric: str) -> dict[int, float]:
    """epoch -> `metric` from the run's CSV log (one row per logged step or epoch)."""
    path = csv_log(run)
    if path is None:
        return {}
    curve: dict[int, float] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get(metric) not in (None, "") and row.get("epoch") not in (None, ""):
                curve[int(float(row["epoch"]))] = float(row[metric])
    return curve


def arm_curves(runs: list[Run], metric: str) -> dict[str, dict[int, float]]:
    """Per arm, the mean over its runs of `metric` at each epoch every one of them logged."""
    by_arm: dict[str, list[dict[int, float]]] = {}
    for r in runs:
        by_arm.setdefault(r.arm, []).append(epoch_curve(r, metric))
    out = {}
    for arm, curves in by_arm.items():
        epochs = sorted(set.intersection(*(set(c) for c in curves))) if all(curves) else []
        if epochs:
            out[arm] = {e: math.fsum(c[e] for c in curves) / len(curves) for e in epochs}
    return out


def partial_epochs(runs: list[Run], metric: str) -> dict[str, list[int]]:
    """Per arm, the epochs that some but not all of its runs logged (left out of its mean curve): a run resumed
    from a checkpoint whose earlier log rows were lost starts later. The curves figure names them."""
    by_arm: dict[str, list[set[int]]] = {}
    for r in runs:
        by_arm.setdefault(r.arm, []).append(set(epoch_curve(r, metric)))
    out = {}
    for arm, logged in by_arm.items():
        if any(logged):
            partial = set.union(*logged) - set.intersection(*logged)
            if partial:
                out[arm] = sorted(partial)
    return out


def _epoch_ranges(epochs: list[int]) -> str:
    """0-based epochs as 1-based ranges: [0, 1, 2, 5] -> '1-3, 6'."""
    spans: list[list[int]] = []
    for e in epochs:
        if spans and e == spans[-1][1] + 1:
            spans[-1][1] = e
        else:
            spans.append([e, e])
    return ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in spans)


def curves_png(
    name: str,
    curves: dict[str, dict[int, float]],
    metric: str,
    baseline: str,
    scale: float,
    partial: dict[str, list[int]] | None = None,
) -> bytes:
    """Each arm's mean `metric` per epoch (from the CSV logs); the baseline black, thick and on top, the arms in
    tab10 colours without its grey, dashed after the first nine. An arm with epochs that not every run logged
    (`partial_epochs`) says which in its legend entry, and its curve has no points there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = [c for c in plt.get_cmap("tab10").colors if len(set(c)) > 1]  # tab10's grey reads as the baseline
    fig, ax = plt.subplots(figsize=(8.6, 3.8), dpi=110)
    arms = [a for a in curves if a != baseline]
    for i, arm in enumerate(arms + [baseline] if baseline in curves else arms):
        if arm == baseline:
            style = {"color": "black", "linewidth": 2.5, "zorder": 3}
        else:
            style = {
                "color": colours[i % len(colours)],
                "linewidth": 1.2,
                "linestyle": "-" if i < len(colours) else "--",
            }
        curve = curves[arm]
        missing = (partial or {}).get(arm)
        word = "epoch" if missing and len(missing) == 1 else "epochs"
        label = f"{arm} ({word} {_epoch_ranges(missing)} missing in some seeds' logs)" if missing else arm
        ax.plot([e + 1 for e in curve], [v * scale for v in curve.values()], marker=".", label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric}, mean over seeds" + (" (%)" if scale == 100 else ""))
    ax.set_title(f"{name}: {metric} per epoch")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: no curve hidden
    return _png(fig)


def power_markdown(name: str, rows: list[dict], baseline: str, scale: float, delta: float) -> str:
    """`--power`: per arm, the measured std of its paired differences, the seeds a paired t-test (5%, two-sided,
    80% power) needs to detect a true Δ of `delta`, and the Δ the seeds it has can detect."""
    unit = " points" if scale == 100 else ""
    lines = [
        f"# Power of `{name}`",
        "",
        (
            f"Seeds each arm needs so that a paired t-test (5%, two-sided) detects a true Δ of "
            f"{_f(delta, scale, 'g')}{unit} vs `{baseline}` with 80% power, from the measured std of its per-seed "
            "differences (an estimate from few seeds: itself uncertain). Detectable Δ: the true Δ the seeds it has "
            "detect with 80% power."
        ),
        "",
        f"| arm | pairs | sd of paired Δ | seeds needed for {_f(delta, scale, 'g')}{unit} "
        "| detectable Δ with its seeds |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        if r["arm"] == baseline:
            continue
        sd, n = r["sd_diff"], r["n_pairs"]
        ok = n >= 2 and not math.isnan(sd) and sd > 0  # the rows' seeds_needed was computed for `delta` too
        need = str(int(r["seeds_needed"])) if ok else "—"
        det = _f(detectable_delta(sd, n), scale, ".2f") if ok else "—"
        lines.append(f"| {r['arm']} | {n} | {_f(sd, scale, '.2f')} | {need} | {det} |")
    return "\n".join(lines + [""])


def write_report(
    root: Path, out: Path, metric: str = "test/acc", baseline: str = "baseline", power_delta: float | None = None
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
    shutil.rmtree(out / "raw", ignore_errors=True)  # a fresh copy: no stale runs from an older report
    for r in runs + pre:
        atomic_write_text(out / "raw" / r.label / "metrics.json", r.raw)
        log = csv_log(r)
        if log is not None:  # the curves' source, verbatim
            atomic_write_text(out / "raw" / r.label / "metrics.csv", log.read_text())
        if r.path is not None and (r.path / "definition.json").is_file():  # what the run ran (header, staleness)
            atomic_write_text(out / "raw" / r.label / "definition.json", (r.path / "definition.json").read_text())
    if power_delta is not None:
        atomic_write_text(out / "power.md", power_markdown(name, rows, baseline, scale, power_delta))
    if plan:
        atomic_write_text(out / "raw" / "plan.json", (root / "plan.json").read_text())
    return rows


def parser(prog: str = "trickbench report") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("runs", help="an ablation's run folder, e.g. runs/cifar10_cpu")
    p.add_argument("--out", default=None, help="output folder (default: results/<ablation name>)")
    p.add_argument("--metric", default="test/acc", help="<stage>/<name> from metrics.json (default test/acc)")
    p.add_argument("--baseline", default="baseline", help="arm the deltas are taken against")
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
    rows = write_report(root, out, args.metric, args.baseline, args.power_delta if args.power else None)
    print((out / "report.md").read_text())
    if args.power:
        print((out / "power.md").read_text())
    print(f"wrote {out}/report.md, results.csv, chart.png, forest.png and raw/ ({sum(r['n'] for r in rows)} arm runs)")
    return 0
