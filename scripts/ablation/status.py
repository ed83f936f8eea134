"""`trickbench ablate FILE --status`: where each run of a sweep stands (local or SLURM).

    finished   metrics.json says completed and the run's definition matches the plan
    running    a process holds the run directory's lock (PID shown), or SLURM says RUNNING
    pending    queued in SLURM (reason shown), or not started yet
    failed     the run ended without completing: the recorded error, signal, or "process died"
    stale      it holds results of another definition (rerun with --rerun-stale)

Exit code 1 if any run failed, else 0. SLURM state comes from `squeue` for the job ids that `submit.sh`
recorded in `<runs>/<ablation>/slurm/jobs.tsv`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

from trickbench.run import record as run_record
from trickbench.run.record import RunRecordError, RunState, Status
from trickbench.run.run_dir import lock_holder
from trickbench.scripts.ablation.plan import Job, Plan
from trickbench.scripts.ablation.state import run_state

SHOWN = (RunState.FINISHED, RunState.RUNNING, RunState.PENDING, RunState.FAILED, RunState.STALE)


def slurm_queue(root: Path) -> dict[int, tuple[str, str]]:
    """plan index -> (SLURM state, reason) for the array tasks still in the queue; later submissions win."""
    jobs = root / "slurm" / "jobs.tsv"
    if not jobs.is_file() or shutil.which("squeue") is None:
        return {}
    ids = [line.split("\t")[0] for line in jobs.read_text().splitlines() if line.strip()]
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(ids)], capture_output=True, text=True, check=False
    )
    order = {job_id: n for n, job_id in enumerate(ids)}
    best: dict[int, tuple[int, str, str]] = {}
    for line in out.stdout.splitlines():
        task, state, reason = line.split("|")
        job_id, _, index = task.partition("_")
        if index.isdigit():
            n = order.get(job_id, -1)
            if int(index) not in best or n >= best[int(index)][0]:
                best[int(index)] = (n, state, reason)
    return {i: (s, r) for i, (_, s, r) in best.items()}


def job_state(plan: Plan, index: int, job: Job, queue: dict[int, tuple[str, str]]) -> tuple[RunState, str]:
    state = run_state(job, plan)[0]
    if state is RunState.STALE:
        return RunState.STALE, "holds results of another definition; rerun with --rerun-stale"
    if state is RunState.FINISHED:
        return RunState.FINISHED, ""
    holder = lock_holder(job.run_dir)
    slurm_state, reason = queue.get(index, ("", ""))
    if holder:
        return RunState.RUNNING, f"PID {holder}" + (f", SLURM {slurm_state}" if slurm_state else "")
    if slurm_state in ("RUNNING", "COMPLETING", "CONFIGURING"):
        return RunState.RUNNING, f"SLURM {slurm_state}"
    if slurm_state:
        return RunState.PENDING, f"SLURM {slurm_state} ({reason})"
    try:
        record = run_record.load(job.run_dir)
    except RunRecordError:
        return RunState.FAILED, "metrics.json is damaged (the next sweep moves it aside and resumes)"
    if record is None:
        return _without_record(job)
    if record.status is Status.FAILED:
        return RunState.FAILED, " ".join(str(record.error or "no error recorded").split())[:400]
    if record.status is Status.INTERRUPTED:
        return RunState.FAILED, f"interrupted by {record.signal or 'a signal'}; rerun the sweep to resume"
    if record.status in (Status.RUNNING, Status.FIT_COMPLETED, Status.FIT_INTERRUPTED):
        return RunState.FAILED, f"process died while {record.status} (killed?); rerun the sweep to resume"
    return RunState.FAILED, f"status {record.status}"


def _without_record(job: Job) -> tuple[RunState, str]:
    """No metrics.json: never started, or the process stopped before it had one (e.g. a bad argument is
    rejected while the classes are built): then the last line of stderr.log is the reason."""
    log = job.run_dir / "stderr.log"
    lines = (
        [
            ln
            for ln in log.read_text(errors="replace").splitlines()
            if ln.strip() and not ln.startswith(("srun:", "slurmstepd"))
        ]
        if log.is_file()
        else []
    )
    if not any(ln.startswith("# 20") for ln in lines):
        return RunState.PENDING, "not started"
    return RunState.FAILED, f"exited without a record: {lines[-1][:300]}"


def main(plan: Plan) -> int:
    queue = slurm_queue(plan.root)
    rows = [(job.label, *job_state(plan, i, job, queue)) for i, job in enumerate(plan.jobs)]
    width = max(len(label) for label, _, _ in rows)
    for label, state, detail in rows:
        print(f"{label:{width}s}  {state.value:8s}  {detail}".rstrip())
    counts = Counter(state for _, state, _ in rows)
    print(f"\n{plan.name}: " + ", ".join(f"{counts[s]} {s}" for s in SHOWN if counts[s]))
    return 1 if counts[RunState.FAILED] else 0
