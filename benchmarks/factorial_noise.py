"""Where a two-replicate factorial table's noise comes from: the per-run sd of the design rows with each factor on
and with it off, from the replicate-to-replicate differences of the committed raw records.

With two replicates, one block column and a column for every estimable term, a row's OLS residual is half of its
between-replicate difference less the mean difference, so the residual sd the report pools is the sd of those
differences over sqrt(2). The report assumes one sd for every row; this shows whether a factor breaks that.

    python -m benchmarks.factorial_noise results/cifar10_cpu_factorial/raw > results/cifar10_cpu_factorial/noise.md
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trickbench.scripts.ablation.collect import collect
from trickbench.scripts.ablation.factorial_report import responses


def differences(raw: Path, metric: str = "test/acc") -> tuple[dict[str, Any], dict[str, float], list[int]]:
    """(plan, each design row's second-replicate result minus its first in points, the two seeds), read the way the
    report reads them."""
    plan, runs, _, _ = collect(raw)
    trained, _ = responses(plan["design"], runs, metric)
    seeds = sorted(plan["seeds"])[:2]
    rows = plan["design"]["rows"]
    return plan, {r["arm"]: 100 * (trained[(i, seeds[1])] - trained[(i, seeds[0])]) for i, r in enumerate(rows)}, seeds


def per_run_sd(ds: list[float]) -> float:
    return statistics.stdev(ds) / math.sqrt(2)


def split(diffs: dict[str, float], inside: Callable[[str], bool]) -> tuple[list[float], list[float]]:
    """The differences of the rows `inside` picks, and of the others."""
    return [d for a, d in diffs.items() if inside(a)], [d for a, d in diffs.items() if not inside(a)]


def main(argv: list[str] | None = None) -> int:
    raw = Path((argv if argv is not None else sys.argv[1:])[0])
    plan, diffs, seeds = differences(raw)
    levels = {row["arm"]: row["levels"] for row in plan["design"]["rows"]}
    factors = sorted({f for lv in levels.values() for f in lv})
    lines = [
        f"# Noise by factor: {plan['name']}",
        "",
        f"Per-run sd (points) of the rows at each level, from the {len(diffs)} rows' differences seed {seeds[1]} "
        f"minus seed {seeds[0]} (sd / sqrt 2); all rows: **{per_run_sd(list(diffs.values())):.2f}**.",
        "",
        "| factor | level | rows | per-run sd | other rows | their per-run sd |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for f in factors:
        for level in sorted({lv[f] for lv in levels.values()} - {"off", "none"}):
            on, off = split(diffs, lambda a, f=f, level=level: levels[a][f] == level)
            lines.append(f"| {f} | {level} | {len(on)} | {per_run_sd(on):.2f} | {len(off)} | {per_run_sd(off):.2f} |")
    pairs = []  # the two-trick cell (both on) whose rows are noisiest
    two = [f for f in factors if {lv[f] for lv in levels.values()} == {"off", "on"}]
    for i, f in enumerate(two):
        for g in two[i + 1 :]:
            both, rest = split(diffs, lambda a, f=f, g=g: levels[a][f] == levels[a][g] == "on")
            pairs.append((per_run_sd(both), f, g, len(both), per_run_sd(rest), len(rest)))
    sd, f, g, n, sd_rest, n_rest = max(pairs)
    lines += [
        "",
        f"Noisiest pair of tricks: {f} and {g} both on, {n} rows, per-run sd **{sd:.2f}**; the other "
        f"{n_rest} rows **{sd_rest:.2f}**.",
    ]
    lines += ["", "Rows whose two replicates differ by more than 1.5 points:", ""]
    for arm, d in sorted(diffs.items(), key=lambda kv: -abs(kv[1])):
        if abs(d) > 1.5:
            lv = levels[arm]
            on = ", ".join(f if lv[f] == "on" else f"{f}={lv[f]}" for f in factors if lv[f] not in ("off", "none"))
            lines.append(f"- {arm}: {d:+.2f} ({on or 'no trick'})")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
