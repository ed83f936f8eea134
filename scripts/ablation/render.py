"""The report's text: the Markdown table with its notes (test-only arms, mixed wall times, where the runs ran and
with what), the CSV, and the power table."""

from __future__ import annotations

import math

from trickbench.scripts.ablation.collect import Run, metric_of
from trickbench.scripts.ablation.stats import detectable_delta

WALL_SPREAD = 1.5  # runs of one arm whose wall times differ more than this factor did not run under equal load


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
                f"{_f(p.record.wall_seconds if p.record.wall_seconds is not None else math.nan, 1, '.0f')} s"
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
        w = r.record.wall_seconds
        if isinstance(w, (int, float)) and w > 0:
            walls.setdefault(r.arm, []).append(float(w))
    spread = {arm: (min(w), max(w)) for arm, w in walls.items() if len(w) > 1 and max(w) > WALL_SPREAD * min(w)}
    hosts = {(r.record.provenance.get("host"), r.record.provenance.get("cpu")) for r in runs}
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


def cpu_kind(provenance: dict) -> str:
    """The CPU's name with the kernels torch used on it (recorded since `cpu_capability` existed)."""
    cap = provenance.get("cpu_capability")
    return f"{provenance.get('cpu', '?')}{f' ({cap})' if cap else ''}"


def machines(runs: list[Run], arms: bool = True) -> list[str]:
    """Where and with what the counted runs ran (their metrics.json provenance), one line per distinct
    (CPU/GPU, threads, versions, git commit), with how many runs (and which arms)."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        p = r.record.provenance
        if not p:
            key = "no provenance recorded"
        else:
            v = p.get("versions") or {}
            device = (
                ", ".join(p.get("cuda_devices") or [])
                or f"{cpu_kind(p)}, {p.get('torch_threads', '?')} torch thread(s)"
            )
            commit = f"{str(p.get('git_commit', '?'))[:10]}{' (dirty)' if p.get('git_dirty') else ''}"
            key = (
                f"{device}; torch {v.get('torch', '?')}, lightning {v.get('lightning', '?')}, "
                f"python {v.get('python', '?')}; git {commit}"
            )
        groups.setdefault(key, []).append(r)
    out = []
    for key, group in groups.items():
        names = f" ({', '.join(dict.fromkeys(r.arm for r in group))})" if arms else ""
        out.append(f"- {len(group)} run(s){names}: {key}")
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
