"""Run an ablation: every (arm, seed) of an ablation file as its own `trickbench fit` process.

    trickbench ablate configs/ablations/cifar10_cpu.yaml [--runs-dir runs] [--dry-run]
        [--jobs N [--threads T] | --gpus N] [--set data.init_args.data_dir=/data]
        [--rerun-stale] [--launcher local|slurm [--submit]] [--status] [--per-process N]

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
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from trickbench.callbacks.run_dir import CHILD_NAME, RUN_FILES, child_environ, live_holder
from trickbench.io import atomic_write_json, atomic_write_text
from trickbench.scripts.ablation import plan as ablation_file
from trickbench.scripts.ablation import slurm
from trickbench.scripts.ablation import status as sweep_status
from trickbench.scripts.ablation.plan import AblationError, Job, Plan, command, load_plan
from trickbench.scripts.ablation.state import (  # noqa: F401  (definition, same_definition: the harness's API)
    DEFINITION,
    SPELLED_PATHS,
    definition,
    run_state,
    same_definition,
    stored_definition,
)

OK = ("completed", "finished")
ELSEWHERE = "running elsewhere"  # outcome of a run another process is running now: left alone, not a failure
WAIT_POLL_S = 5.0  # --wait: how often a run held by another process is looked at again


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def set_aside_damaged(job: Job) -> Path:
    """Move an unreadable metrics.json to `metrics.json.damaged-<time>` (never deleted)."""
    target = job.run_dir / f"metrics.json.damaged-{_stamp()}"
    os.replace(job.run_dir / "metrics.json", target)
    return target


def set_aside_attempt(job: Job) -> Path | None:
    """A run that died before its first checkpoint leaves a record that a fresh `fit` would refuse to reuse:
    move it into `attempts/<time>/` (logs stay where they are, appended)."""
    present = [job.run_dir / n for n in RUN_FILES if (job.run_dir / n).exists()]
    if not present:
        return None
    folder = job.run_dir / "attempts" / _stamp()
    folder.mkdir(parents=True, exist_ok=True)
    for p in present:
        os.replace(p, folder / p.name)
    return folder


def set_aside_stale(job: Job) -> Path:
    """`--rerun-stale`: move the whole run directory to `<seed dir>.stale-<time>` (the report ignores it)."""
    target = job.run_dir.with_name(f"{job.run_dir.name}.stale-{_stamp()}")
    os.replace(job.run_dir, target)
    return target


def fill_teacher(node: Any, ckpt: str, net: Any) -> bool:
    """Set every `teacher_checkpoint` (and a sibling `teacher` net) in a YAML tree; True if any was set."""
    hit = False
    if isinstance(node, dict):
        if "teacher_checkpoint" in node:
            node["teacher_checkpoint"] = ckpt
            if "teacher" in node and net is not None:
                node["teacher"] = net  # the architecture the checkpoint was trained with
            hit = True
        for value in node.values():
            hit = fill_teacher(value, ckpt, net) or hit
    elif isinstance(node, list):
        for value in node:
            hit = fill_teacher(value, ckpt, net) or hit
    return hit


def materialise(plan: Plan, job: Job, write: bool = True) -> list[str]:
    """The job's fragments, with distillation fragments replaced by generated copies in its run dir."""
    if job.teacher is None:
        return list(job.fragments)
    teacher_dir = plan.prerequisite(job.teacher).run_dir.resolve()
    ckpt = str(teacher_dir / "checkpoints" / "last.ckpt")
    net = None
    if (teacher_dir / "config.yaml").is_file():
        net = (
            (yaml.safe_load((teacher_dir / "config.yaml").read_text()).get("model") or {})
            .get("init_args", {})
            .get("net")
        )
    out = []
    for frag in job.fragments:
        tree = yaml.safe_load(Path(frag).read_text())
        if not fill_teacher(tree, ckpt, net):
            out.append(frag)
            continue
        generated = job.run_dir / f"generated_{Path(frag).stem}.yaml"
        if write:
            head = f"# Generated by scripts.ablate from {frag}: teacher = prerequisite '{job.teacher}'.\n"
            atomic_write_text(generated, head + yaml.safe_dump(tree, sort_keys=False))
        out.append(str(generated))
    return out


def job_command(plan: Plan, job: Job, ckpt: str | None, write: bool = True) -> list[str]:
    """The job's command with its generated fragments (and, test-only, those of the run it evaluates, which that
    run wrote when it trained)."""
    source = plan.evaluated(job) if job.evaluates else None
    evaluated = materialise(plan, source, write=False) if source is not None else None
    return command(plan, job, materialise(plan, job, write), ckpt, evaluated)


def _warn(proc: subprocess.Popen, job: Job) -> None:
    if proc.poll() is None:
        print(f"{job.label}: time limit near and no SIGUSR1 from SLURM yet: sending it", flush=True)
        proc.send_signal(signal.SIGUSR1)  # srun forwards it to the training processes


def record_not_run(job: Job, why: str) -> None:
    """A run the harness decided not to start (its prerequisite failed) says so in its own metrics.json, so
    `--status` and the report see it; a later sweep moves this record into `attempts/` and runs it."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    record = {"status": "failed", "error": f"not run: {why}", "segments": []}
    atomic_write_json(job.run_dir / "metrics.json", record)


def wait_or_skip(job: Job, wait: bool) -> str | None:
    """A run a live process is running now (its lock holder, or the child an earlier harness started, which
    outlives that harness) is never moved, resumed or restarted: with `wait`, wait until that process ends;
    else the outcome 'running elsewhere (PID ...)'. None when nobody is running it."""
    holder = live_holder(job.run_dir)
    if holder and wait:
        print(f"{job.label}: running elsewhere (PID {holder}); waiting for it", flush=True)
        while holder := live_holder(job.run_dir):
            time.sleep(WAIT_POLL_S)
    return f"{ELSEWHERE} (PID {holder}): left alone" if holder else None


def prepare_job(plan: Plan, job: Job, wait: bool = False) -> tuple[list[str] | None, str]:
    """Make a job ready to start: (its command, ""), its header already appended to both logs, or (None, outcome)
    when it must not run ('finished', 'running elsewhere ...' or 'failed: <why>'). Sets aside a damaged record or
    a checkpoint-less attempt first, never while a live process is running the run."""
    if (elsewhere := wait_or_skip(job, wait)) is not None:
        return None, elsewhere
    state, ckpt = run_state(job, plan)
    notes = []
    if state == "finished":
        return None, "finished"
    if state == "stale":
        return None, "failed: stale (its definition differs from the plan; rerun with --rerun-stale)"
    if state == "damaged":
        notes.append(f"# damaged metrics.json moved to {set_aside_damaged(job).name}")
        state, ckpt = run_state(job, plan)
    if state == "new" and (moved := set_aside_attempt(job)) is not None:
        notes.append(f"# earlier attempt without a checkpoint moved to {moved.relative_to(job.run_dir)}")
    job.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        cmd = job_command(plan, job, ckpt)
        atomic_write_json(job.run_dir / DEFINITION, definition(plan, job))
    except (OSError, yaml.YAMLError) as err:
        return None, f"failed: could not prepare the run ({err})"
    header = "".join(f"\n{n}" for n in notes) + f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {state}: {shlex.join(cmd)}\n"
    for log in ("stdout.log", "stderr.log"):
        with open(job.run_dir / log, "a") as fh:
            fh.write(header)
    return cmd, ""


def last_error(log: Path, limit: int = 300) -> str:
    """The last line of a run's stderr.log that says what went wrong (`error: ...`, or an exception's last line),
    so the sweep's own output shows why a run failed; "" when there is none."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 65536))  # the tail is enough
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("error:") or (": " in text and text.split(":")[0].endswith(("Error", "Exception"))):
            return text[:limit]
    return ""


def job_outcome(job: Job, rc: int) -> str:
    if rc != 0:
        why = last_error(job.run_dir / "stderr.log")
        return f"failed: exit code {rc}{': ' + why if why else ''} (see {job.run_dir / 'stderr.log'})"
    if run_state(job)[0] != "finished":
        return "failed: exited 0 but metrics.json does not say 'completed'"
    return "completed"


def run_job(
    plan: Plan,
    job: Job,
    env: dict[str, str],
    prefix: list[str] | None = None,
    warn_at: float | None = None,
    wait: bool = False,
) -> str:
    """Run one job to the end; returns 'finished' (skipped), 'completed', 'running elsewhere ...' or 'failed:
    <why>'. `prefix` goes before the training command (`srun ...` inside a SLURM allocation); at epoch time
    `warn_at` the training gets SIGUSR1 (time-limit checkpoint + requeue) if it is still running."""
    cmd, outcome = prepare_job(plan, job, wait)
    if cmd is None:
        return outcome
    with open(job.run_dir / "stdout.log", "a") as out, open(job.run_dir / "stderr.log", "a") as err:
        proc = subprocess.Popen([*(prefix or []), *cmd], stdout=out, stderr=err, env=env)
        mark_child(job, proc.pid)
        timer = None
        if warn_at is not None:
            timer = threading.Timer(max(0.0, warn_at - time.time()), _warn, args=(proc, job))
            timer.daemon = True
            timer.start()
        rc = proc.wait()
        if timer is not None:
            timer.cancel()
    clear_child(job)
    return job_outcome(job, rc)


def mark_child(job: Job, pid: int) -> None:
    """Name the process this harness started for the run, so that a harness started while it runs (this one
    killed, the child alive) leaves the run alone even before the child has taken the run's lock."""
    atomic_write_text(job.run_dir / CHILD_NAME, f"{pid} {socket.gethostname()}\n")


def clear_child(job: Job) -> None:
    """The process `mark_child` named has ended (this harness saw it exit)."""
    (job.run_dir / CHILD_NAME).unlink(missing_ok=True)


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
        outcomes[job.label] = job_outcome(job, 0 if run_state(job)[0] == "finished" else (rc or 1))
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
        return f"sweep ETA {time.strftime('%H:%M:%S', time.gmtime(left))}"

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
                    status = "finished" if dep is None else self.outcomes.get(dep)
                    if status is None:
                        continue  # prerequisite still running or queued
                    if status.startswith(ELSEWHERE):  # not failed: a later sweep (or --wait) runs this one
                        self.pending.remove(job)
                        self._record(job, f"not started: prerequisite {dep} is {ELSEWHERE}")
                        continue
                    if status not in OK:
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
                if state != "finished" and not live_holder(job.run_dir):
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
                    if outcome == "completed":
                        self.durations.append(took)
                    self._record(
                        job,
                        outcome,
                        (lambda took=took: f" ({took:.0f} s; {self.eta()})")
                        if outcome != "finished" and ELSEWHERE not in outcome
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
    if needed is not None and run_state(needed, plan)[0] != "finished":
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
        return 0 if outcome in OK or outcome.startswith(ELSEWHERE) else 1
    if state != "finished":  # nothing printed = nothing to do
        job.run_dir.mkdir(parents=True, exist_ok=True)
        print(shlex.join(job_command(plan, job, ckpt)))
    return 0


def preflight(plan: Plan) -> None:
    """Check once what the runs still to do share (their arguments parse, the data is present and intact, teachers
    load; `trickbench.scripts.ablation.preflight`), in one process, before anything is started or written: a
    shared error stops the sweep with that one error instead of failing every run."""
    todo = {}
    for job in plan.jobs:  # one run per arm: the others differ only by seed
        if (job.prerequisite, job.arm) not in todo and run_state(job, plan)[0] != "finished":
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
    stale = [job for job in plan.jobs if run_state(job, plan)[0] == "stale"]
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
            print(f"stale {job.label}: {ELSEWHERE} (PID {holder}): left alone", flush=True)
            continue
        print(f"stale {job.label}: moved to {set_aside_stale(job)}", flush=True)


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
        if args.status:
            return sweep_status.main(plan)
        if args.task is not None:
            return run_task(plan, args.task, args.emit_command, args.srun)
        if not args.skip_preflight and (args.launcher == "local" or args.submit):  # only when runs start now
            preflight(plan)
        handle_stale(plan, args.rerun_stale)
        write_plan_record(plan)
        if args.launcher == "slurm":
            return slurm.launch(plan, args.config, args.runs_dir, args.set, args.submit)
    except AblationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    envs = worker_envs(args.gpus, args.jobs, args.threads)
    sweep = Sweep(plan, plan.jobs, workers=len(envs), per_process=args.per_process, wait=args.wait)
    threads = [threading.Thread(target=sweep.work, args=(env,)) for env in envs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elsewhere = {k: v for k, v in sweep.outcomes.items() if ELSEWHERE in v}
    failed = {k: v for k, v in sweep.outcomes.items() if v not in OK and k not in elsewhere}
    done = len(sweep.outcomes) - len(failed) - len(elsewhere)
    print(f"\n{plan.name}: {done}/{len(plan.jobs)} runs completed or already finished.")
    for label, why in elsewhere.items():
        print(f"  LEFT ALONE {label}: {why}")
    if elsewhere:
        print("  Runs another process is running were not touched: run the same command again later, or with --wait.")
    for label, why in failed.items():
        print(f"  FAILED {label}: {why}")
    return 1 if failed else 3 if elsewhere else 0
