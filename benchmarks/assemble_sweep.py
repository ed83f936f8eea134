"""Assemble a sweep's run folder from a committed report's raw/ copy plus a later machine's runs, when a sweep
ran in several parts on machines whose run folders did not all survive (results/cifar10_cpu_fast/COMMAND.md).

    python -m benchmarks.assemble_sweep --raw results/cifar10_cpu_fast/raw --runs runs \
        --out assembled --set data.init_args.data_dir=data
    trickbench report assembled/cifar10_cpu_fast --out results/cifar10_cpu_fast --power

Each planned run is taken from the new run folder when it finished there, else from raw/. A run in both (one rerun to
rebuild a
checkpoint that later runs need: the baseline for the TTA arm, the KD teacher) must have the same test metrics
in both records, bit for bit, or nothing is written. raw/ copies made before the report kept definition.json get
it recomputed from the plan; that is allowed only when no config file the run names changed between the run's
git commit (its provenance) and this checkout (`git diff`), since a definition is the run's arguments plus the
hashes of those files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from trickbench.io import atomic_write_json
from trickbench.run import record as run_record
from trickbench.run.record import RunRecordError
from trickbench.scripts.ablate import definition, job_command, write_plan_record
from trickbench.scripts.ablation.plan import Job, Plan, load_plan

ROOT = Path(__file__).resolve().parents[1]

ABLATION = "configs/ablations/cifar10_cpu_fast.yaml"


def finished(folder: Path) -> dict | None:
    try:
        record = run_record.load(folder)
    except RunRecordError:
        return None
    return record.to_dict() if record is not None and record.completed else None


def configs_unchanged(plan: Plan, job: Job, commit: str) -> bool:
    files = plan.base + list(job.fragments)
    diff = subprocess.run(["git", "diff", "--quiet", commit, "HEAD", "--", *files], cwd=ROOT, check=False)
    return diff.returncode == 0


def take(plan: Plan, job: Job, raw: Path, out: Path) -> str:
    """Copy one run's record, definition and CSV log into `out`; returns where it came from."""
    new, old = job.run_dir, raw / job.label
    new_rec, old_rec = finished(new), finished(old)
    copied = (
        new_rec is not None
        and old_rec is not None
        and (new / "metrics.json").read_bytes() == (old / "metrics.json").read_bytes()
    )
    if copied:  # the raw/ record placed in the runs folder so the sweep skips it: not a rerun
        new_rec = None
    target = out / plan.name / job.label
    target.mkdir(parents=True)
    if new_rec is not None:
        if old_rec is not None and old_rec.get("test") != new_rec.get("test"):
            raise SystemExit(
                f"{job.label}: rerun test metrics {new_rec.get('test')} differ from the earlier "
                f"record's {old_rec.get('test')}; nothing assembled"
            )
        shutil.copy(new / "metrics.json", target / "metrics.json")
        shutil.copy(new / "definition.json", target / "definition.json")
        if (new / "csv" / "metrics.csv").is_file():
            shutil.copy(new / "csv" / "metrics.csv", target / "metrics.csv")
        return "rerun, identical test metrics" if old_rec is not None else "new run"
    if old_rec is None:
        return "missing"
    shutil.copy(old / "metrics.json", target / "metrics.json")
    if (old / "metrics.csv").is_file():
        shutil.copy(old / "metrics.csv", target / "metrics.csv")
    if (old / "definition.json").is_file():
        shutil.copy(old / "definition.json", target / "definition.json")
        return "raw/"
    commit = old_rec["provenance"]["git_commit"].removesuffix("-dirty")
    if not configs_unchanged(plan, job, commit):
        raise SystemExit(f"{job.label}: a config file changed since {commit}; cannot recompute its definition")
    argv = old_rec["provenance"]["argv"]  # the run's process's arguments (a resume adds --ckpt_path)
    ran = [a for a in argv[argv.index("fit") + 1 :] if not a.startswith("--ckpt_path")]
    planned = job_command(plan, job, None, write=False)
    if ran != planned[planned.index("fit") + 1 :]:
        raise SystemExit(f"{job.label}: the plan's command differs from the recorded argv {argv}")
    atomic_write_json(target / "definition.json", definition(plan, job))
    return f"raw/, definition recomputed (configs unchanged since {commit[:10]}, arguments = recorded argv)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raw", type=Path, required=True, help="the committed report's raw/ folder")
    p.add_argument("--runs", type=Path, required=True, help="the new runs' --runs-dir (absolute, as swept)")
    p.add_argument("--out", type=Path, required=True, help="a new folder")
    p.add_argument("--set", action="append", default=[], help="the sweep's --set values")
    args = p.parse_args()
    os.chdir(ROOT)  # the sweep ran from the repository root with relative config paths, as definitions record
    # Planned with the sweep's runs folder, so definitions (they name generated fragments there) come out as stored.
    plan = load_plan(ABLATION, str(args.runs), [f"--{s}" for s in args.set])
    if (args.out / plan.name).exists():
        raise SystemExit(f"{args.out / plan.name} exists; assemble into a new folder")
    sources = {job.label: take(plan, job, args.raw.resolve(), args.out.resolve()) for job in plan.jobs}
    plan.root = args.out / plan.name
    write_plan_record(plan)
    for label, source in sources.items():
        print(f"{label:32s} {source}")
    missing = [label for label, source in sources.items() if source == "missing"]
    print(f"\n{len(sources) - len(missing)} of {len(sources)} planned runs assembled in {args.out / plan.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
