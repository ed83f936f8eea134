"""Final (averaged) weights vs live weights of finished classifier runs, at full length.

For each run directory: test accuracy on the full test split, with the run's configured TTA, of the weights the
run reports (its Lookahead / EMA average) and of the optimizer's own live weights kept in the same checkpoint
(`trickbench.callbacks.averaging.live_weights`). The fast preset's target (issue: the final weights score at least the
live ones) is read off this table, not off a shortened run.

    OMP_NUM_THREADS=1 python -m benchmarks.final_vs_live RUN [RUN ...] --data_dir DATA
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml

from benchmarks.at_length import live_vs_final
from benchmarks.common import RESULTS, command, machine, provenance_lines, refuse_existing, save

NAME = "final_vs_live"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (config.yaml + checkpoints/last.ckpt)")
    ap.add_argument("--data_dir", default=None, help="replaces the runs' data_dir (data moved since)")
    ap.add_argument("--out", default=str(RESULTS / NAME))
    args = ap.parse_args(argv)
    refuse_existing(args.out, NAME)
    from trickbench.run.run_dir import provenance

    prov = provenance()
    rows = []
    for run in args.runs:
        weights = live_vs_final(Path(run), args.data_dir)
        if weights is None:
            raise SystemExit(f"{run} is not a classifier run: nothing to compare")
        seed = yaml.safe_load((Path(run) / "config.yaml").read_text()).get("seed_everything")
        rows.append({"run": str(run), "seed": seed, **weights})
    diffs = [r["final"] - r["live"] for r in rows]
    lines = ["| run | seed | final weights | live weights | final - live |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['run']} | {r['seed']} | {100 * r['final']:.2f}% | {100 * r['live']:.2f}% "
        f"| {100 * (r['final'] - r['live']):+.2f} |"
        for r in rows
    ]
    mean = statistics.fmean(diffs)
    where = machine()
    md = (
        "# Final vs live weights at full length\n\n"
        + "\n".join(lines)
        + f"\n\nmean final - live: {100 * mean:+.2f} points over {len(rows)} runs "
        f"({sum(d >= 0 for d in diffs)} of {len(rows)} with final >= live)\n\n"
        f"- machine: {where['cpu']}, torch threads {where['torch_threads']}\n"
        + provenance_lines(prov)
        + f"- command: `{command()}`\n"
    )
    payload = {"rows": rows, "mean_final_minus_live": mean, "provenance": prov, "command": command()}
    save(args.out, NAME, payload, md)
    return payload


if __name__ == "__main__":
    main()
