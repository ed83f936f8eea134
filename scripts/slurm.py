"""`scripts.ablate --launcher slurm`: the same plan as a SLURM job array, one (arm, seed) per array task.

Each array task calls `scripts.ablate --task $SLURM_ARRAY_TASK_ID --emit-command`, which applies the
local launcher's rules (skip finished, resume from last.ckpt, generate the distillation fragment) and
prints the training command; the task then runs it under `srun`, which starts one process per GPU
when the base config asks for multi-GPU DDP (Lightning reads the rank from SLURM's environment).
Prerequisites are a first array; the arms wait for it with `--dependency=afterok`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from callbacks.run_record import atomic_write_text
from scripts.ablation import AblationError, Plan


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


def resources(plan: Plan) -> tuple[int, int]:
    """(processes per task, GPUs per task): DDP with N devices -> N and N; else 1 and 1 (0 on CPU)."""
    opts = plan.slurm
    accelerator = trainer_setting(plan, "accelerator")
    devices = opts.get("gpus_per_node") or trainer_setting(plan, "devices") or 1
    ddp = "ddp" in str(trainer_setting(plan, "strategy") or "")
    if ddp and not (isinstance(devices, int) and devices > 0):
        raise AblationError(f"ablation '{plan.name}' uses DDP with trainer.devices={devices!r}; SLURM needs a "
                            "count: set `slurm: {gpus_per_node: N}` in the ablation file")  # fmt: skip
    procs = devices if ddp else 1
    return procs, 0 if accelerator == "cpu" else procs


def script_text(plan: Plan, config: str, runs_dir: str, sets: list[str]) -> str:
    """The sbatch script; the array range in it covers every job (launch() narrows it per phase)."""
    opts = plan.slurm
    procs, gpus = resources(plan)
    rerun = [sys.executable, "-m", "scripts.ablate", config, "--runs-dir", runs_dir]
    rerun += [f"--set={s}" for s in sets]
    lines = [
        "#!/bin/bash",
        f"# trickbench ablation '{plan.name}' from {config}: one run per array task (index: run).",
        *[f"#   {i:3d}: {job.label}" for i, job in enumerate(plan.jobs)],
        f"#SBATCH --job-name=tb-{plan.name}",
        f"#SBATCH --array=0-{len(plan.jobs) - 1}",
        f"#SBATCH --output={plan.root.resolve() / 'slurm' / '%A_%a.out'}",
        "#SBATCH --nodes=1",
        f"#SBATCH --ntasks-per-node={procs}",
        *([f"#SBATCH --gres=gpu:{gpus}"] if gpus else []),
        f"#SBATCH --cpus-per-task={int(opts.get('cpus_per_task', 8))}",
        f"#SBATCH --time={opts.get('time', '04:00:00')}",
        *[f"#SBATCH {arg}" for arg in opts.get("extra", [])],
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd()))}",
        f'cmd=$({shlex.join(rerun)} --task "$SLURM_ARRAY_TASK_ID" --emit-command)',
        'if [ -z "$cmd" ]; then echo "task $SLURM_ARRAY_TASK_ID: run already finished"; exit 0; fi',
        'eval "srun $cmd"',
    ]
    return "\n".join(lines) + "\n"


def submit_text(plan: Plan, script: Path) -> str:
    """Shell commands that submit the prerequisites' array, then the arms' array after it succeeds."""
    n_pre = sum(j.prerequisite for j in plan.jobs)
    n = len(plan.jobs)
    s = shlex.quote(str(script))
    if n_pre == 0:
        return f"#!/bin/bash\nset -euo pipefail\nsbatch --array=0-{n - 1} {s}\n"
    return (
        "#!/bin/bash\nset -euo pipefail\n"
        f"pre=$(sbatch --parsable --array=0-{n_pre - 1} {s})\n"
        f'sbatch --dependency="afterok:${{pre%%;*}}" --array={n_pre}-{n - 1} {s}\n'
    )


def launch(plan: Plan, config: str, runs_dir: str, sets: list[str], submit: bool) -> int:
    """Write `<root>/slurm/{ablation.sbatch,submit.sh}`; with `submit`, run submit.sh (needs sbatch)."""
    folder = plan.root / "slurm"
    script, submitter = folder / "ablation.sbatch", folder / "submit.sh"
    atomic_write_text(script, script_text(plan, config, runs_dir, sets), mode=0o777)
    atomic_write_text(submitter, submit_text(plan, script), mode=0o777)  # executable
    print(f"wrote {script}\nwrote {submitter}")
    if not submit:
        print(f"submit with: bash {submitter}")
        return 0
    try:
        return subprocess.run(["bash", str(submitter)], check=False).returncode
    except FileNotFoundError as err:
        raise AblationError(f"cannot run bash to submit ({err})") from err
