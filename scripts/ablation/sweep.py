"""Many runs of a sweep: the workers that take jobs in plan order (a job waits for its prerequisite and fails when
that failed), several runs in one process (`--per-process`), one job by index (a SLURM array task), the shared
preflight, stale runs, and the plan record the report reads."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from trickbench.io import atomic_write_json
from trickbench.run.record import RunState
from trickbench.run.run_dir import child_environ, live_holder
from trickbench.scripts.ablation import factorial, slurm
from trickbench.scripts.ablation import plan as ablation_file
from trickbench.scripts.ablation.jobs import (
    ELSEWHERE,
    TRAINED,
    clear_child,
    finished,
    job_command,
    job_outcome,
    mark_child,
    prepare_job,
    record_not_run,
    run_job,
    set_aside_stale,
)
from trickbench.scripts.ablation.plan import AblationError, Job, Plan, command
from trickbench.scripts.ablation.state import run_state


def run_batch(plan: Plan, jobs: list[Job], env: dict[str, str], wait: bool = False) -> dict[str, str]:
    """Run several jobs in one process (`trickbench.scripts.ablation.batch`), one Trainer each, in order; outcome
    per label.
    The batch's own output goes to `<root>/batches/<first job>.log`."""
    entries, outcomes = [], {}
    for job in jobs:
        cmd, outcome = prepare_job(plan, job, wait)
        if cmd is None:
            outcomes[job.label] = outcome
        else:
            entries.append((job, ["test" if job.evaluates else "fit", *cmd[ablation_file.prefix_length(job) :]]))
    if not entries:
        return outcomes
    folder = plan.root / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    stem = entries[0][0].label.replace("/", "_")
    manifest = folder / f"{stem}.json"
    atomic_write_json(manifest, [{"run_dir": str(job.run_dir), "args": args} for job, args in entries])
    with open(folder / f"{stem}.log", "a") as log:
        proc = subprocess.Popen(
            [*ablation_file.BATCH_CMD, str(manifest)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        for job, _ in entries:
            mark_child(job, proc.pid)
        rc = proc.wait()
    for job, _ in entries:  # each run's own record decides; a non-zero batch exit only explains a missing one
        clear_child(job)
        outcomes[job.label] = job_outcome(job, 0 if run_state(job)[0] == RunState.FINISHED else (rc or 1))
    return outcomes


class Sweep:
    """Hands jobs to workers in plan order; a job waits for its prerequisite and fails if that failed."""

    def __init__(self, plan: Plan, jobs: list[Job], workers: int = 1, per_process: int = 1, wait: bool = False) -> None:
        self.plan, self.pending, self.total, self.per_process = plan, list(jobs), len(jobs), per_process
        self.wait = wait
        self.outcomes: dict[str, str] = {}
        self.cond = threading.Condition()
        self.workers, self.started, self.durations = workers, 0, []
        self.t0 = time.perf_counter()

    def eta(self) -> str:
        """Remaining runs x mean duration of the runs this sweep trained, shared by the workers."""
        if not self.durations:
            return "ETA ?"
        # Runs not finished (running ones included) in rounds of `workers`, at the mean duration so far.
        left = math.ceil((self.total - len(self.outcomes)) / self.workers) * sum(self.durations) / len(self.durations)
        hours, rest = divmod(round(left), 3600)  # hours not wrapped at 24 (strftime's %H would)
        return f"sweep ETA {hours:02d}:{rest // 60:02d}:{rest % 60:02d}"

    def _dep(self, job: Job) -> str | None:
        dep = self.plan.dependency(job)
        return dep.label if dep is not None else None

    def take(self, most: int = 1) -> list[Job]:
        """Up to `most` jobs ready to start (prerequisites completed), waiting for the first; [] when none left."""
        with self.cond:
            while self.pending:
                ready = []
                for job in list(self.pending):
                    dep = self._dep(job)
                    status = RunState.FINISHED.value if dep is None else self.outcomes.get(dep)
                    if status is None:
                        continue  # prerequisite still running or queued
                    if status.startswith(ELSEWHERE):  # not failed: a later sweep (or --wait) runs this one
                        self.pending.remove(job)
                        self._record(job, f"{RunState.PENDING}: prerequisite {dep} is running elsewhere")
                        continue
                    if not finished(status):
                        self.pending.remove(job)
                        record_not_run(job, f"prerequisite {dep} did not complete")
                        self._record(job, f"failed: prerequisite {dep} did not complete")
                        continue
                    if len(ready) < most:
                        self.pending.remove(job)
                        ready.append(job)
                if ready:
                    return ready
                if self.pending:
                    self.cond.wait()
            return []

    def _record(self, job: Job, outcome: str, note: str | Callable[[], str] = "") -> None:
        self.outcomes[job.label] = outcome
        note = note() if callable(note) else note  # after the outcome counts (the ETA excludes this run)
        print(f"[{len(self.outcomes)}/{self.total}] {job.label}: {outcome}{note}", flush=True)
        self.cond.notify_all()

    def work(self, env: dict[str, str]) -> None:
        while jobs := self.take(self.per_process):
            t0 = time.perf_counter()
            for job in jobs:
                state = run_state(job, self.plan)[0]
                if state != RunState.FINISHED and not live_holder(job.run_dir):
                    with self.cond:
                        self.started += 1
                        print(
                            f"[start {self.started}] {job.label}: {state}, in {job.run_dir}; {self.eta()}", flush=True
                        )
            if self.per_process > 1:
                outcomes = run_batch(self.plan, jobs, env, self.wait)
            else:
                outcomes = {jobs[0].label: run_job(self.plan, jobs[0], env, wait=self.wait)}
            with self.cond:
                took = (time.perf_counter() - t0) / len(jobs)  # a batch: its mean time per run
                for job in jobs:
                    outcome = outcomes[job.label]
                    if outcome == TRAINED:
                        self.durations.append(took)
                    self._record(
                        job,
                        outcome,
                        (lambda took=took: f" ({took:.0f} s; {self.eta()})")
                        if outcome != RunState.FINISHED and ELSEWHERE not in outcome
                        else "",
                    )


def worker_envs(gpus: int, jobs: int, threads: int | None) -> list[dict[str, str]]:
    """One environment per concurrent worker: a GPU each, or an equal share of the CPU cores."""
    base = child_environ()
    if gpus > 0:
        return [{**base, "CUDA_VISIBLE_DEVICES": str(i)} for i in range(gpus)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = str(threads or max(1, cores // jobs))
    return [{**base, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "CUDA_VISIBLE_DEVICES": ""} for _ in range(jobs)]


def write_plan_record(plan: Plan) -> None:
    """`<root>/plan.json`: what the report needs (arm order, prerequisites); no times, so it is reproducible."""
    record = {
        "name": plan.name,
        "source": plan.source,
        "base": plan.base,
        "overrides": plan.overrides,
        "arms": plan.arms(),
        "seeds": sorted({j.seed for j in plan.jobs if not j.prerequisite}),
        "prerequisites": sorted({j.arm for j in plan.jobs if j.prerequisite}),
        **({"design": plan.design} if plan.design else {}),
        "runs": {
            j.label: {
                "arm": j.arm,
                "seed": j.seed,
                "fragments": list(j.fragments),
                "teacher": j.teacher,
                **({"evaluates": j.evaluates} if j.evaluates else {}),
            }
            for j in plan.jobs
        },
    }
    atomic_write_json(plan.root / "plan.json", record)


def print_plan(plan: Plan) -> None:
    if plan.design:
        print(factorial.describe(factorial.design_from_record(plan.design), plan.design["test_factors"]) + "\n")
    for i, job in enumerate(plan.jobs):
        state, ckpt = run_state(job, plan)
        print(f"{i:3d}  {job.label:40s} {state}\n     {shlex.join(job_command(plan, job, ckpt, False))}")


def run_task(plan: Plan, index: int, emit: bool, srun: bool = False) -> int:
    """One job by plan index (a SLURM array task). `emit`: print its command instead of running it.
    `srun`: start the training under `srun` (one process per task of the allocation, for DDP) and, when the
    prerequisite failed, record this run as failed without running it, as the local launcher does."""
    if not 0 <= index < len(plan.jobs):
        raise AblationError(
            f"--task {index} is out of range: the plan has {len(plan.jobs)} jobs (0..{len(plan.jobs) - 1})"
        )
    job = plan.jobs[index]
    if srun:
        print(
            f"# task {index}: {job.label} -> {job.run_dir} (state {run_state(job, plan)[0]}) on "
            f"{os.environ.get('SLURM_JOB_NODELIST', '?')}; its output goes to {job.run_dir}/stdout.log and stderr.log",
            flush=True,
        )
    needed = plan.dependency(job)
    if needed is not None and run_state(needed, plan)[0] != RunState.FINISHED:
        dep = needed.label
        print(f"{job.label}: prerequisite '{dep}' has not completed; run it first", file=sys.stderr)
        if srun:
            record_not_run(job, f"prerequisite {dep} did not complete")
            print(f"{job.label}: failed: prerequisite {dep} did not complete", flush=True)
            return 1
        return 2
    state, ckpt = run_state(job, plan)
    if not emit:
        prefix = ["srun", "--kill-on-bad-exit=1", f"--cpus-per-task={os.environ.get('SLURM_CPUS_PER_TASK', '1')}"]
        warn_at = slurm.warning_time(plan) if srun else None
        outcome = run_job(plan, job, child_environ(), prefix if srun else None, warn_at)
        print(f"{job.label}: {outcome}", flush=True)
        return 0 if finished(outcome) or outcome.startswith(ELSEWHERE) else 1
    if state != RunState.FINISHED:  # nothing printed = nothing to do
        job.run_dir.mkdir(parents=True, exist_ok=True)
        print(shlex.join(job_command(plan, job, ckpt)))
    return 0


def preflight(plan: Plan) -> None:
    """Check once what the runs still to do share (their arguments parse, the data is present and intact, teachers
    load; `trickbench.scripts.ablation.preflight`), in one process, before anything is started or written: a
    shared error stops the sweep with that one error instead of failing every run."""
    todo = {}
    for job in plan.jobs:  # one run per arm: the others differ only by seed
        if (job.prerequisite, job.arm) not in todo and run_state(job, plan)[0] != RunState.FINISHED:
            todo[(job.prerequisite, job.arm)] = job
    if not todo or ablation_file.PREFLIGHT_CMD is None:
        return
    entries = []
    for job in todo.values():
        teacher = plan.prerequisite(job.teacher).run_dir / "checkpoints" / "last.ckpt" if job.teacher else None
        entries.append(
            {
                "label": job.label,
                "args": command(plan, job)[ablation_file.prefix_length(job) :],
                "teacher": str(teacher) if teacher is not None and teacher.is_file() else None,
            }
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="trickbench-preflight-") as fh:
        json.dump(entries, fh)
        fh.flush()
        proc = subprocess.run(
            [*ablation_file.PREFLIGHT_CMD, fh.name], capture_output=True, text=True, env=child_environ()
        )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1].removeprefix("error: ") if lines else f"exit code {proc.returncode}"
        raise AblationError(f"preflight: {why}\nNothing was started (--skip-preflight skips this check).")
    print(proc.stdout.strip(), flush=True)


def handle_stale(plan: Plan, rerun: bool) -> None:
    """Stale runs stop the sweep before anything runs, unless `--rerun-stale` moves them aside."""
    stale = [job for job in plan.jobs if run_state(job, plan)[0] == RunState.STALE]
    if not stale:
        return
    if not rerun:
        raise AblationError(
            f"{len(stale)} run(s) hold results of another definition (other command, --set values or config file "
            "contents) than this plan:\n"
            + "\n".join(f"  {j.label}: {j.run_dir}" for j in stale)
            + "\nSee them with --dry-run. Rerun them with --rerun-stale (the old runs are moved to "
            "<dir>.stale-<time>, never deleted), or restore the plan they ran with. Nothing was run."
        )
    for job in stale:
        if holder := live_holder(job.run_dir):  # never move a live run's folder
            print(f"stale {job.label}: {ELSEWHERE} (PID {holder}), left alone", flush=True)
            continue
        print(f"stale {job.label}: moved to {set_aside_stale(job)}", flush=True)
