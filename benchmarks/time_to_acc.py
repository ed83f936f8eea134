"""Benchmark 3: time to accuracy on CPU, template CLI vs a hand-written loop, whole process each.

Both sides are separate subprocesses started by this script and timed from outside (process start
to exit: imports, data loading, training, per-epoch validation, final test). The template side is
the ordinary CLI (`trickbench fit --config <recipe>`, W&B disabled, its default CSV
logger, checkpointing, progress bar and post-fit test); the plain side is `benchmarks/plain_mnist.py`
with the same recipe. Sides alternate (and swap which goes first) so machine load hits both alike.

    OMP_NUM_THREADS=1 WANDB_MODE=disabled python -m benchmarks.time_to_acc --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, median, refuse_existing, save_with_machine, table
from trickbench.run import record as run_record

NAME = "time_to_acc"  # results go to results/bench/<NAME>/
ROOT = Path(__file__).resolve().parents[1]
TASKS = {"mlp": ("configs/mnist_mlp.yaml", 0.98), "cnn": ("configs/mnist_cnn.yaml", 0.99)}


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one child process. CPU time (user + sys of the child) is what other
    agents' load on a shared machine disturbs least; wall time is what a user waits."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    t0, c0 = time.perf_counter(), _child_cpu()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, cpu, proc.stdout


def run_template(config: str, data_dir: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        cmd = [
            sys.executable,
            "-m",
            "trickbench",
            "fit",
            "--config",
            config,
            "--data.init_args.data_dir",
            data_dir,
            "--run_dir",
            run_dir,
            *extra,
        ]
        seconds, cpu, _ = _run(cmd)
        rec = run_record.load(run_dir).to_dict()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "test_acc": rec["test"]["acc"],
        "fit_seconds": rec.get("fit_seconds"),
    }


def run_plain(config: str, data_dir: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.plain_mnist", "--config", config, "--data_dir", data_dir, *extra]
    seconds, cpu, out = _run(cmd)
    rec = json.loads(out.strip().splitlines()[-1])
    return {"seconds": seconds, "cpu_seconds": cpu, "test_acc": rec["test_acc"], "fit_seconds": rec["train_seconds"]}


def bench_task(name: str, repeats: int, data_dir: str, tiny: bool, val_size: int | None = None) -> dict:
    config, target = TASKS[name]
    # --tiny: a few batches only, to check the plumbing (tests); accuracy targets are then meaningless.
    t_extra = (
        [
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--data.init_args.accept_nonoriginal",
            "true",
        ]
        if tiny
        else []
    )  # tests' generated data
    p_extra = ["--max_epochs", "1", "--limit_train", "256"] if tiny else []
    if val_size is not None:
        t_extra, p_extra = (
            t_extra + ["--data.init_args.val_size", str(val_size)],
            p_extra + ["--val_size", str(val_size)],
        )
    runs: dict[str, list[dict]] = {"template": [], "plain": []}
    for rep in range(repeats):
        order = ["template", "plain"] if rep % 2 == 0 else ["plain", "template"]
        for side in order:
            fn = run_template if side == "template" else run_plain
            r = fn(config, data_dir, t_extra if side == "template" else p_extra)
            runs[side].append(r)
            print(
                f"[{name}] rep {rep} {side:8s} {r['seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s CPU  "
                f"test acc {r['test_acc']:.4f}",
                flush=True,
            )
    med = {s: median([r["seconds"] for r in rs]) for s, rs in runs.items()}
    cpu = {s: median([r["cpu_seconds"] for r in rs]) for s, rs in runs.items()}
    return {
        "config": config,
        "target_acc": target,
        "runs": runs,
        "median_seconds": med,
        "ratio_of_medians": med["template"] / med["plain"],
        "median_cpu_seconds": cpu,
        "cpu_ratio_of_medians": cpu["template"] / cpu["plain"],
        "all_reach_target": all(r["test_acc"] >= target for rs in runs.values() for r in rs),
    }


def report(task: str, r: dict, repeats: int) -> str:
    acc = lambda s: min(x["test_acc"] for x in r["runs"][s])  # noqa: E731
    rows = [
        [
            f"{task} ({r['config']})",
            clock,
            f">= {r['target_acc']:.0%}",
            f"{r[key]['plain']:.1f}",
            f"{r[key]['template']:.1f}",
            f"{r[key]['template'] / r[key]['plain']:.3f}",
            f"{acc('plain'):.4f} / {acc('template'):.4f}",
        ]
        for clock, key in (("CPU", "median_cpu_seconds"), ("wall", "median_seconds"))
    ]
    md = table(
        [
            "task",
            "clock",
            "target",
            "plain loop s (median)",
            "template s (median)",
            "ratio",
            "min test acc plain / template",
        ],
        rows,
    )
    return (
        md
        + f"\n\n{repeats} alternating repeats per side; whole process timed from outside (imports, data, train, eval)."
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data_dir", default="data")
    ap.add_argument("--val_size", type=int, default=None, help="override the recipe's hold-out (tests' tiny data)")
    ap.add_argument("--out", default=str(RESULTS / NAME))
    ap.add_argument("--tiny", action="store_true", help="a few batches per run: checks the plumbing only")
    args = ap.parse_args(argv)
    refuse_existing(args.out, *(f"time_to_acc_{t}" for t in args.tasks))
    results = {}
    for task in args.tasks:  # one result file per task, so a long CNN run never loses the MLP numbers
        r = results[task] = bench_task(task, args.repeats, args.data_dir, args.tiny, args.val_size)
        md = report(task, r, args.repeats)
        save_with_machine(
            args.out,
            f"time_to_acc_{task}",
            {"tiny": args.tiny, "repeats": args.repeats, "result": r},
            f"Time to accuracy on CPU ({task}): template CLI vs hand-written loop",
            md,
        )
        print(md, flush=True)
    return results


if __name__ == "__main__":
    main()
