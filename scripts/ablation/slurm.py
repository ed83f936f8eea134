"""`trickbench.scripts.ablate --launcher slurm`: the same plan as SLURM job arrays, one (arm, seed) per array task.

Each array task runs `trickbench.scripts.ablate CONFIG --task $SLURM_ARRAY_TASK_ID --srun`, i.e. the local launcher's
rules (skip finished, resume from last.ckpt, generated distillation fragment, stdout.log/stderr.log in the
run folder, a failed prerequisite marks its dependants failed) with the training started under `srun`, which
starts one process per task of the allocation for multi-GPU DDP (Lightning reads the ranks from SLURM).

Arrays: the prerequisites; the arms that need none (they start at once); the arms that distil from a
prerequisite (`--dependency=afterany:` the prerequisites' array, so they always start and fail fast, with a
record, when their teacher failed, instead of pending forever on `afterok`). Time limits: `--signal=USR1@S`
makes the run checkpoint and `scontrol requeue` the task (`trickbench.run.agreed_signals`); the requeued task resumes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from trickbench.io import atomic_write_text
from trickbench.scripts.ablation.plan import AblationError, Plan

SLURM_KEYS = {"time", "cpus_per_task", "gpus_per_task", "gpus_per_node", "signal_seconds", "extra"}
JOBS_FILE = "jobs.tsv"  # <array job id> TAB <indices> TAB <what>, one line per submitted array


def trainer_setting(plan: Plan, key: str) -> Any:
    """`trainer.<key>` after stacking the base configs and the `--trainer.<key>=` overrides."""
    value = None
    for path in plan.base:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        value = (cfg.get("trainer") or {}).get(key, value)
    for arg in plan.overrides:
        if arg.startswith(f"--trainer.{key}="):
            value = yaml.safe_load(arg.split("=", 1)[1])
    return value


def options(plan: Plan) -> dict[str, Any]:
    unknown = sorted(set(plan.slurm) - SLURM_KEYS)
    if unknown:
        raise AblationError(f"ablation '{plan.name}': unknown slurm key(s) {unknown}; allowed: {sorted(SLURM_KEYS)}")
    return plan.slurm


def resources(plan: Plan) -> tuple[int, int]:
    """(processes per task, GPUs per task). GPUs only when asked for: `slurm: {gpus_per_task: N}`, or a base
    config with `accelerator: gpu|cuda` (never guessed from `auto`: a CPU partition rejects any --gres).
    DDP with N devices -> N processes (`slurm: {gpus_per_node: N}` overrides the device count)."""
    opts = options(plan)
    accelerator = str(trainer_setting(plan, "accelerator") or "auto")
    devices = opts.get("gpus_per_node") or trainer_setting(plan, "devices") or 1
    ddp = "ddp" in str(trainer_setting(plan, "strategy") or "")
    if ddp and not (isinstance(devices, int) and devices > 0):
        raise AblationError(
            f"ablation '{plan.name}' uses DDP with trainer.devices={devices!r}; SLURM needs a "
            "count: set `slurm: {gpus_per_node: N}` in the ablation file"
        )
    procs = devices if ddp else 1
    if opts.get("gpus_per_task") is not None:
        gpus = int(opts["gpus_per_task"])
    else:
        gpus = procs if accelerator in ("gpu", "cuda") else 0
    return procs, gpus


def nodes_needed(plan: Plan) -> int:
    """Nodes per run: the config's `trainer.num_nodes` (Lightning checks that num_nodes x devices equals the tasks
    SLURM starts, so the script asks for exactly that). More than one needs DDP."""
    count = trainer_setting(plan, "num_nodes") or 1
    if not isinstance(count, int) or count < 1:
        raise AblationError(f"ablation '{plan.name}': trainer.num_nodes must be a positive integer, got {count!r}")
    if count > 1 and "ddp" not in str(trainer_setting(plan, "strategy") or ""):
        raise AblationError(
            f"ablation '{plan.name}' asks for trainer.num_nodes={count} without a DDP strategy: stack "
            "configs/trainer/ddp_multinode.yaml (or set trainer.strategy: ddp)"
        )
    return count


def cpus_per_task(plan: Plan) -> int:
    """What each run needs: the ablation's `slurm.cpus_per_task`, else 1 (one torch thread per process, as the
    CPU presets run); the script exports it as OMP_NUM_THREADS."""
    return int(options(plan).get("cpus_per_task") or 1)


def script_text(plan: Plan, config: str, runs_dir: str, sets: list[str]) -> str:
    """The sbatch script (every path absolute, so it works from any directory); submit.sh sets --array."""
    opts = options(plan)
    procs, gpus = resources(plan)
    task = [
        sys.executable,
        "-m",
        "trickbench",
        "ablate",
        str(Path(config).resolve()),
        "--runs-dir",
        str(Path(runs_dir).resolve()),
    ]
    task += [f"--set={s}" for s in sets]
    signal = int(opts.get("signal_seconds", 90))
    lines = [
        "#!/bin/bash",
        f"# trickbench ablation '{plan.name}' from {config}: one run per array task (index: run).",
        *[f"#   {i:3d}: {job.label}" for i, job in enumerate(plan.jobs)],
        f"#SBATCH --job-name=tb-{plan.name}",
        f"#SBATCH --output={plan.root.resolve() / 'slurm' / '%A_%a.out'}",
        "#SBATCH --open-mode=append",  # a requeued task appends to its .out
        f"#SBATCH --chdir={Path.cwd()}",
        f"#SBATCH --nodes={nodes_needed(plan)}",
        f"#SBATCH --ntasks-per-node={procs}",
        *([f"#SBATCH --gres=gpu:{gpus}"] if gpus else []),
        f"#SBATCH --cpus-per-task={cpus_per_task(plan)}",
        f"#SBATCH --time={opts.get('time', '04:00:00')}",
        f"#SBATCH --signal=USR1@{signal}",  # Lightning checkpoints and requeues the task before the time limit
        "#SBATCH --requeue",
        *[f"#SBATCH {arg}" for arg in opts.get("extra", [])],
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}" MKL_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        f'exec {shlex.join(task)} --task "$SLURM_ARRAY_TASK_ID" --srun',
    ]
    return "\n".join(lines) + "\n"


def warning_time(plan: Plan) -> float | None:
    """Epoch time at which a task should have had its USR1: half of `signal_seconds` before the job's end.
    Backs up `--signal`: SLURM 22.05 sends it only once per job, so after a requeue the next time limit would
    arrive with no warning (seen on the test cluster); the harness sends it itself if it is still needed."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or shutil.which("squeue") is None:
        return None
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True, text=True, check=False)
    try:
        end = datetime.fromisoformat(out.stdout.strip()).timestamp()  # local time, as squeue prints it
    except ValueError:
        return None  # no limit (UNLIMITED) or squeue failed
    return end - int(options(plan).get("signal_seconds", 90)) / 2


def index_ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (sbatch --array syntax)."""
    parts, start = [], None
    for i, x in enumerate(indices):
        if start is None:
            start = x
        if i + 1 == len(indices) or indices[i + 1] != x + 1:
            parts.append(f"{start}" if start == x else f"{start}-{x}")
            start = None
    return ",".join(parts)


def arrays(plan: Plan) -> list[tuple[str, list[int]]]:
    """(what, plan indices) of each array to submit, in order: prerequisites, independent arms, dependants."""
    pre = [i for i, j in enumerate(plan.jobs) if j.prerequisite]
    free = [i for i, j in enumerate(plan.jobs) if not j.prerequisite and not j.teacher and not j.evaluates]
    dep = [i for i, j in enumerate(plan.jobs) if not j.prerequisite and j.teacher]
    ev = [i for i, j in enumerate(plan.jobs) if j.evaluates]  # test-only: after the runs they test
    return [
        (w, idx) for w, idx in (("prerequisites", pre), ("arms", free), ("dependants", dep), ("evaluations", ev)) if idx
    ]


def submit_text(plan: Plan, script: Path) -> str:
    """Shell commands that submit the arrays and append each array's job id to slurm/jobs.tsv."""
    s, jobs = shlex.quote(str(script.resolve())), shlex.quote(str((script.parent / JOBS_FILE).resolve()))
    lines = ["#!/bin/bash", "set -euo pipefail"]
    submitted = []
    for what, idx in arrays(plan):
        dep = '--dependency="afterany:${prerequisites%%;*}" ' if what == "dependants" else ""
        if what == "evaluations":  # after every array that trains an arm
            dep = (
                '--dependency="afterany:' + ":".join(f"${{{w}%%;*}}" for w in submitted if w != "prerequisites") + '" '
            )
        submitted.append(what)
        lines.append(f"{what}=$(sbatch --parsable {dep}--array={index_ranges(idx)} {s})")
        lines.append(f'printf "%s\\t%s\\t%s\\n" "${{{what}%%;*}}" {index_ranges(idx)} {what} >> {jobs}')
        lines.append(f'echo "submitted {what} (plan indices {index_ranges(idx)}) as job ${{{what}%%;*}}"')
    return "\n".join(lines) + "\n"


def _partition(plan: Plan) -> str | None:
    for arg in options(plan).get("extra", []):
        m = re.match(r"^(?:--partition=|-p\s*)(\S+)$", arg)
        if m:
            return m.group(1)
    return None


def check_cluster(plan: Plan) -> None:
    """Refuse a request no node can satisfy (it would stay PENDING forever, silently)."""
    if shutil.which("sinfo") is None:
        raise AblationError("--submit needs SLURM's sinfo and sbatch on PATH (run it on a login node)")
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%c|%G"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AblationError(f"sinfo failed ({out.returncode}): {out.stderr.strip()}")
    part = _partition(plan)
    nodes = []
    for line in out.stdout.splitlines():
        name, cpus, gres = line.split("|")
        if part is None or name.rstrip("*") == part:
            m = re.search(r"gpu(?::[^:(,]+)?:(\d+)", gres)
            nodes.append((int(cpus), int(m.group(1)) if m else 0))
    procs, gpus = resources(plan)
    need_cpus = procs * cpus_per_task(plan)
    where = f"partition '{part}'" if part else "the cluster"
    if not nodes:
        raise AblationError(f"sinfo lists no node in {where}; check slurm.extra (--partition=...)")
    fitting = sum(c >= need_cpus and g >= gpus for c, g in nodes)
    if fitting and fitting < nodes_needed(plan):
        raise AblationError(
            f"each run needs {nodes_needed(plan)} nodes (trainer.num_nodes) of {need_cpus} CPUs and {gpus} GPU(s), "
            f"but only {fitting} node(s) of {where} have that. Lower trainer.num_nodes or pick another partition. "
            "Nothing was submitted."
        )
    if not fitting:
        raise AblationError(
            f"no node of {where} can run one task: each needs {need_cpus} CPUs ({procs} process(es) x "
            f"cpus_per_task {cpus_per_task(plan)}) and {gpus} GPU(s); the largest node has "
            f"{max(c for c, _ in nodes)} CPUs and {max(g for _, g in nodes)} GPU(s). Lower slurm.cpus_per_task / "
            "gpus_per_task in the ablation file or pick another partition. Nothing was submitted."
        )


def launch(plan: Plan, config: str, runs_dir: str, sets: list[str], submit: bool) -> int:
    """Write `<root>/slurm/{ablation.sbatch,submit.sh}`; with `submit`, check sinfo and run submit.sh."""
    folder = plan.root / "slurm"
    script, submitter = folder / "ablation.sbatch", folder / "submit.sh"
    atomic_write_text(script, script_text(plan, config, runs_dir, sets), mode=0o777)
    atomic_write_text(submitter, submit_text(plan, script), mode=0o777)  # executable
    print(f"wrote {script}\nwrote {submitter}")
    if not submit:
        print(f"submit with: {submitter.resolve()}   (then: trickbench ablate {config} --status)")
        return 0
    check_cluster(plan)
    try:
        return subprocess.run(["bash", str(submitter.resolve())], check=False).returncode
    except FileNotFoundError as err:
        raise AblationError(f"cannot run bash to submit ({err})") from err
