"""An ablation's runs as the report sees them: the completed runs of each arm (their records, definitions and
CSV logs, read through trickbench/run/record.py), their per-arm summary with paired differences, and the
per-epoch curves."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trickbench.io import atomic_write, atomic_write_text
from trickbench.run import record as run_record
from trickbench.run.record import Record, RunRecordError
from trickbench.scripts.ablation.stats import holm, mean_std, paired_diff, seeds_needed, welch_diff

SKIP_DIRS = {"prerequisites", "slurm"}
STOPPING = "stopping.json"  # written by a factorial sweep with --target-halfwidth: which rule ended it
TEACHER_FILES = ("checkpoints/last.ckpt", "config.yaml")  # a teacher's weights and net, kept in raw/ as in the run


@dataclass
class Run:
    label: str  # "<arm>/seed<k>" (or "prerequisites/<name>/seed<k>")
    arm: str
    seed: int
    record: Record
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
                raw = run_record.path_of(d).read_text()
                record = run_record.load_text(raw)
            except (OSError, ValueError, RunRecordError):
                continue
            if record.completed:
                incomplete.discard(label)
                try:
                    definition = json.loads((d / "definition.json").read_text())
                except (OSError, ValueError):
                    definition = None
                (pre if prefix else runs).append(Run(label, arm, int(d.name[4:]), record, raw, definition, d))
    done = {r.label for r in runs + pre}
    return plan, runs, pre, sorted(incomplete - done)


def metric_of(record: Record, metric: str) -> float:
    try:
        return record.metric(metric)
    except KeyError:
        return math.nan


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
        walls = [float(r.record.wall_seconds) for r in group if r.record.wall_seconds is not None]
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


def paired_differences(rows: list[dict], baseline: str) -> dict[str, list[float]]:
    """Per arm, arm minus baseline for every seed both ran (the points behind the paired interval)."""
    base = next((dict(zip(r["seeds"], r["values"])) for r in rows if r["arm"] == baseline), {})
    return {
        r["arm"]: [v - base[s] for s, v in zip(r["seeds"], r["values"]) if s in base]
        for r in rows
        if r["arm"] != baseline
    }


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


def copy_raw(root: Path, out: Path, plan: dict, runs: list, pre: list) -> None:
    """`out/raw/`: each counted run's metrics.json, CSV log and definition.json, plan.json (and the sweep's
    stopping.json): a run folder the same report can be made from again. A prerequisite that teaches keeps its
    final checkpoint and config.yaml too, so `ablate --restore` can go on from it elsewhere (ablation/restore.py)."""
    shutil.rmtree(out / "raw", ignore_errors=True)  # a fresh copy: no stale runs from an older report
    for r in runs + pre:
        atomic_write_text(out / "raw" / r.label / run_record.FILENAME, r.raw)
        log = csv_log(r)
        if log is not None:  # the curves' source, verbatim
            atomic_write_text(out / "raw" / r.label / "metrics.csv", log.read_text())
        if r.path is not None and (r.path / "definition.json").is_file():  # what the run ran (header, staleness)
            atomic_write_text(out / "raw" / r.label / "definition.json", (r.path / "definition.json").read_text())
    taught = {r["teacher"] for r in plan.get("runs", {}).values() if r.get("teacher")}
    for r in pre:
        for name in TEACHER_FILES if r.arm in taught and r.path is not None else ():
            if (r.path / name).is_file():
                copy_file(r.path / name, out / "raw" / r.label / name)
    if plan:
        atomic_write_text(out / "raw" / "plan.json", (root / "plan.json").read_text())
    if (root / STOPPING).is_file():
        atomic_write_text(out / "raw" / STOPPING, (root / STOPPING).read_text())


def copy_file(src: Path, dest: Path) -> None:
    """`src` to `dest`, bytes verbatim and atomically (a killed copy leaves nothing half-written)."""
    atomic_write(dest, lambda fh: fh.write(src.read_bytes()))
