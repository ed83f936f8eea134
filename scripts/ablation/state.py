"""A run folder's state for the harness: finished, resumable, new, damaged, or stale (holding another definition).

The definition of a run is its `fit` arguments and the content of every config file they name; comparing it with
the stored `definition.json` decides whether a finished run still counts. Used by the sweep (trickbench.scripts.ablate)
and by `--status` (trickbench.scripts.ablation.status); touches nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from trickbench.run import record as run_record
from trickbench.run.record import RunRecordError, RunState, Status
from trickbench.scripts.ablation import plan as ablation_file
from trickbench.scripts.ablation.plan import Job, Plan, command

DEFINITION = "definition.json"  # what defines a run: its command and the content of every config file
SPELLED_PATHS = ("--run_dir=", "--ckpt_path=")  # where the run is (its own folder): not what it is


def definition(plan: Plan, job: Job, legacy: bool = False) -> dict[str, Any]:
    """The run's definition and its hash: the `fit` arguments (no interpreter, no resume path) and the sha256 of
    each config file they name, so an edited fragment or another `--set` makes a finished run stale. The hash
    leaves out how the run's own folder is spelled (relative or absolute `--runs-dir`, a symlink: `ablate`,
    `submit.sh` and a SLURM task spell it differently); `legacy` gives the hash of definitions written before,
    which included it, so their finished runs still count when the folder is spelled as they recorded it."""
    args = command(plan, job)[ablation_file.prefix_length(job) :]
    files = {}
    for cfg in plan.base + list(job.fragments):
        try:
            files[cfg] = hashlib.sha256(Path(cfg).read_bytes()).hexdigest()
        except OSError:
            files[cfg] = None
    body = {
        "args": args,
        "files": files,
        "base": plan.base,
        "fragments": list(job.fragments),
        "overrides": plan.overrides + list(job.overrides),
        "teacher": job.teacher,
        "teacher_hash": definition(plan, plan.prerequisite(job.teacher), legacy)["hash"] if job.teacher else None,
    }
    if job.evaluates:  # test-only: defined by the run it tests as well (key absent otherwise: old hashes hold)
        body["evaluates"] = {"arm": job.evaluates, "hash": definition(plan, plan.evaluated(job), legacy)["hash"]}
    hashed = body if legacy else {**body, "args": [a.split("=")[0] if a.startswith(SPELLED_PATHS) else a for a in args]}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    return {"hash": digest, **body}


def same_definition(stored: dict[str, Any] | None, plan: Plan, job: Job) -> bool:
    """Whether a run folder's stored definition is the plan's for that job (today's hash, or the hash it was
    written with by an earlier version)."""
    if stored is None:
        return False
    hash_ = stored.get("hash")
    return hash_ == definition(plan, job)["hash"] or hash_ == definition(plan, job, legacy=True)["hash"]


def stored_definition(job: Job) -> dict[str, Any] | None:
    return read_definition(job.run_dir)


def read_definition(folder: Path) -> dict[str, Any] | None:
    """The definition.json in a run folder (or a report's raw/ copy of one); None when absent or unreadable."""
    try:
        return json.loads((folder / DEFINITION).read_text())
    except (OSError, ValueError):
        return None


def run_state(job: Job, plan: Plan | None = None) -> tuple[RunState, str | None]:
    """('finished' | 'resume' | 'new' | 'damaged' | 'stale', checkpoint to resume from).

    'stale': the directory holds a run (finished or resumable) whose stored definition differs from the plan's
    (or that has none); 'damaged': metrics.json cannot be read (the harness moves it aside and resumes)."""
    last = job.run_dir / "checkpoints" / "last.ckpt"
    try:
        status = run_record.status_of(job.run_dir)
    except RunRecordError:
        return RunState.DAMAGED, str(last) if last.is_file() else None
    if plan is not None and (status is Status.COMPLETED or last.is_file()):
        if not same_definition(stored_definition(job), plan, job):
            return RunState.STALE, None
    if status is Status.COMPLETED:
        return RunState.FINISHED, None
    return (RunState.RESUME, str(last)) if last.is_file() else (RunState.NEW, None)
