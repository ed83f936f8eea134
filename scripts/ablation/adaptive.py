"""Seeds until the answer is sharp: a factorial sweep that adds whole replicates (one new seed, every design row)
until every main effect's 95% half-width is at most the target, or the run budget is spent. Each round is an
ordinary sweep (finished runs are skipped), so the loop resumes where it stopped and takes the same decisions
from the same records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trickbench.io import atomic_write_json
from trickbench.scripts.ablation.collect import collect
from trickbench.scripts.ablation.factorial_report import STOPPING, analysis_of
from trickbench.scripts.ablation.plan import AblationError, Plan

TARGET = "target reached"
BUDGET = "budget spent"


def decide(max_halfwidth: float, target: float, replicates: int, rows: int, max_runs: int) -> str | None:
    """The rule that ends the sweep now, or None to add a replicate. NaN (no interval yet) never meets the target."""
    if max_halfwidth <= target:
        return TARGET
    if (replicates + 1) * rows > max_runs:
        return BUDGET
    return None


def until_sharp(
    plan: Plan,
    make_plan: Callable[[list[int]], Plan],
    run: Callable[[Plan], int],
    target: float,
    max_runs: int,
    metric: str = "test/acc",
) -> int:
    if not plan.design:
        raise AblationError("--target-halfwidth needs a `design: factorial` ablation file")
    rows = len(plan.design["rows"])
    seeds = sorted({j.seed for j in plan.jobs if not j.prerequisite})
    if len(seeds) * rows > max_runs:
        raise AblationError(
            f"--max-runs {max_runs} is below the file's own {len(seeds)} replicate(s) x {rows} rows = "
            f"{len(seeds) * rows} runs; raise it or list fewer seeds"
        )
    while True:
        plan = make_plan(seeds)
        rc = run(plan)
        if rc != 0:
            return rc  # failed or left-alone runs: the decision waits for a complete record
        _, runs, _, _ = collect(plan.root)
        _, analysis = analysis_of(plan.design, runs, metric)
        widest = analysis.max_main_halfwidth()
        rule = decide(widest, target, len(seeds), rows, max_runs)
        print(f"{plan.name}: {len(seeds)} replicate(s), widest main-effect half-width {widest:.5f} (target {target})")
        if rule:
            break
        seeds = seeds + [max(seeds) + 1]
    record = {
        "rule": rule,
        "target": target,
        "max_runs": max_runs,
        "runs": len(seeds) * rows,
        "seeds": seeds,
        "max_halfwidth": widest,
        "metric": metric,
    }
    atomic_write_json(Path(plan.root) / STOPPING, record)
    print(f"{plan.name}: stopped, {rule} ({record['runs']} runs); {plan.root / STOPPING}")
    return 0
