"""Run an ablation: every (arm, seed) of an ablation file as its own `trickbench fit` process.

    trickbench ablate configs/ablations/cifar10_cpu.yaml [--runs-dir runs] [--dry-run]
        [--jobs N [--threads T] | --gpus N] [--set data.init_args.data_dir=/data]
        [--rerun-stale] [--launcher local|slurm [--submit]] [--status] [--per-process N] [--restore RAW]

A run is finished when its `metrics.json` says `"status": "completed"`; re-running skips finished runs
and restarts the others, from `checkpoints/last.ckpt` when there is one. A crashed run is recorded and
the sweep goes on; the exit code is 1 if any run failed. Each run's stdout/stderr are appended to
`stdout.log` / `stderr.log` in its run directory. `--per-process N` runs up to N ready jobs in one Python
process, one after another (`trickbench.scripts.ablation.batch`: one Trainer per run, the same results as separate
processes; tests/test_ablate_batch.py). File format: see `scripts/ablation/plan.py`.

Each run stores `definition.json` (its arguments + config-file hashes): a run that holds results of another
definition is *stale*, refused unless `--rerun-stale` (which moves it to `<dir>.stale-<time>`). A damaged
metrics.json is moved to `metrics.json.damaged-<time>`; an attempt without a checkpoint to `attempts/<time>/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from trickbench.scripts.ablation import slurm
from trickbench.scripts.ablation import status as sweep_status
from trickbench.scripts.ablation.adaptive import until_sharp
from trickbench.scripts.ablation.jobs import ELSEWHERE, TRAINED, fill_teacher, finished, job_command
from trickbench.scripts.ablation.plan import AblationError, Plan, load_plan
from trickbench.scripts.ablation.restore import restore
from trickbench.scripts.ablation.state import (
    definition,
    run_state,
    same_definition,
)
from trickbench.scripts.ablation.sweep import (
    Sweep,
    handle_stale,
    preflight,
    print_plan,
    run_task,
    worker_envs,
    write_plan_record,
)

__all__ = [
    "TRAINED",
    "Sweep",
    "definition",
    "fill_teacher",
    "job_command",
    "load_plan",
    "main",
    "run_state",
    "same_definition",
    "worker_envs",
    "write_plan_record",
]


def parse_args(argv: list[str] | None, prog: str = "trickbench ablate") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="ablation file, e.g. configs/ablations/cifar10_cpu.yaml")
    p.add_argument("--runs-dir", default="runs", help="runs go to <runs-dir>/<ablation name>/ (default: runs)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (state + command of every run) and exit")
    par = p.add_mutually_exclusive_group()
    par.add_argument("--gpus", type=int, default=0, help="run one job per GPU on N GPUs concurrently")
    par.add_argument("--jobs", type=int, default=1, help="run N CPU jobs concurrently (default 1)")
    p.add_argument("--threads", type=int, default=None, help="OMP threads per CPU job (default: cores / jobs)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every run, e.g. --set data.init_args.data_dir=/data (repeatable)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="a run another process is running now (e.g. the child of a killed harness): wait for it to end, then "
        "go on (default: leave it alone and say so; exit code 3)",
    )
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="retrain runs whose stored definition differs from the plan (old run moved to <dir>.stale-<time>)",
    )
    p.add_argument(
        "--per-process",
        type=int,
        default=1,
        metavar="N",
        help="run up to N ready jobs one after another in one Python process (one Trainer each; "
        "saves the per-run start-up and compile on fast GPU runs; default 1 = a process per run)",
    )
    p.add_argument(
        "--skip-preflight",
        action="store_true",
        help="start the runs without first checking what they share (arguments, data, teachers) in one process; "
        "e.g. when the data exists only on the compute nodes",
    )
    p.add_argument(
        "--target-halfwidth",
        type=float,
        default=None,
        metavar="W",
        help="factorial designs: after the file's seeds, add whole replicates (one seed each) until every main "
        "effect's 95%% half-width is <= W (metric units: 0.0015 = 0.15 accuracy points) or --max-runs is spent; "
        "the rule that ended the sweep goes to <runs>/<name>/stopping.json. Resumable like any sweep",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        default=None,
        metavar="N",
        help="with --target-halfwidth: at most N trained runs (design rows x replicates; the teacher and test-only "
        "evaluations not counted)",
    )
    p.add_argument(
        "--restore",
        default=None,
        metavar="RAW",
        help="first copy the finished runs of a report's raw/ folder (e.g. a committed PARTIAL report) into the "
        "runs folder, then go on: a sweep carried to another machine through the repository. Runs already here "
        "are kept; a raw run of another definition stops it before anything is copied",
    )
    p.add_argument("--launcher", choices=["local", "slurm"], default="local")
    p.add_argument("--submit", action="store_true", help="with --launcher slurm: submit with sbatch")
    p.add_argument(
        "--status",
        action="store_true",
        help="print each run's state (finished/running/pending/failed/stale); exit 1 if any failed",
    )
    p.add_argument("--task", type=int, default=None, help=argparse.SUPPRESS)  # one job by index (SLURM array)
    p.add_argument("--srun", action="store_true", help=argparse.SUPPRESS)  # inside an sbatch task
    p.add_argument("--emit-command", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    bad = [s for s in args.set if "=" not in s or s.startswith("-")]
    if bad:
        p.error(f"--set takes KEY=VALUE without leading dashes, e.g. data.init_args.data_dir=/data; got {bad}")
    if (args.target_halfwidth is None) != (args.max_runs is None):
        p.error("--target-halfwidth W and --max-runs N go together (a target and a budget)")
    if args.target_halfwidth is not None and not (args.target_halfwidth > 0 and args.max_runs > 0):
        p.error("--target-halfwidth and --max-runs must be > 0")
    if args.gpus < 0 or args.jobs < 1 or args.per_process < 1:
        p.error("--gpus must be >= 0, --jobs >= 1 and --per-process >= 1")
    return args


def main(argv: list[str] | None = None, prog: str = "trickbench ablate") -> int:
    args = parse_args(argv, prog)
    try:
        plan = load_plan(args.config, args.runs_dir, [f"--{s}" for s in args.set])
        if args.dry_run:
            print_plan(plan)
            return 0
        if args.restore:
            plan = restored(plan, args)
        if args.status:
            return sweep_status.main(plan)
        if args.task is not None:
            return run_task(plan, args.task, args.emit_command, args.srun)
        if args.target_halfwidth is not None:
            if args.launcher != "local":
                raise AblationError(
                    "--target-halfwidth decides after each replicate, so it runs the sweep here (--launcher local); "
                    "on a cluster, submit this command itself as a job"
                )

            def with_seeds(seeds: list[int]) -> Plan:
                return load_plan(args.config, args.runs_dir, [f"--{s}" for s in args.set], seeds)

            return until_sharp(plan, with_seeds, lambda p: run_local(p, args), args.target_halfwidth, args.max_runs)
        return run_local(plan, args)
    except AblationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def restored(plan: Plan, args: argparse.Namespace) -> Plan:
    """`--restore RAW`: copy RAW's finished runs into the runs folder (a factorial plan grows by the replicates
    RAW's sweep added, so they count too)."""
    raw = Path(args.restore)
    try:
        seeds = json.loads((raw / "plan.json").read_text()).get("seeds", [])
    except (OSError, ValueError) as err:
        raise AblationError(f"--restore {raw}: cannot read its plan.json ({err}); name a report raw/") from None
    own = sorted({j.seed for j in plan.jobs if not j.prerequisite})
    if plan.design and set(seeds) - set(own):  # replicates that --target-halfwidth added
        plan = load_plan(args.config, args.runs_dir, [f"--{s}" for s in args.set], sorted(set(own) | set(seeds)))
    print("\n".join(restore(plan, raw)), flush=True)
    return plan


def run_local(plan: Plan, args: argparse.Namespace) -> int:
    """Preflight, stale runs, plan record, then every job of `plan` (or its SLURM submission); the exit code."""
    if not args.skip_preflight and (args.launcher == "local" or args.submit):  # only when runs start now
        preflight(plan)
    handle_stale(plan, args.rerun_stale)
    write_plan_record(plan)
    if args.launcher == "slurm":
        return slurm.launch(plan, args.config, args.runs_dir, args.set, args.submit)
    envs = worker_envs(args.gpus, args.jobs, args.threads)
    sweep = Sweep(plan, plan.jobs, workers=len(envs), per_process=args.per_process, wait=args.wait)
    threads = [threading.Thread(target=sweep.work, args=(env,)) for env in envs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elsewhere = {k: v for k, v in sweep.outcomes.items() if ELSEWHERE in v}
    failed = {k: v for k, v in sweep.outcomes.items() if not finished(v) and k not in elsewhere}
    done = len(sweep.outcomes) - len(failed) - len(elsewhere)
    print(f"\n{plan.name}: {done}/{len(plan.jobs)} runs completed or already finished.")
    for label, why in elsewhere.items():
        print(f"  LEFT ALONE {label}: {why}")
    if elsewhere:
        print("  Runs another process is running were not touched: run the same command again later, or with --wait.")
    for label, why in failed.items():
        print(f"  FAILED {label}: {why}")
    return 1 if failed else 3 if elsewhere else 0
