"""Ablation files -> a plan of training runs (pure: reads YAML, touches no run directory).

An ablation file (configs/ablations/*.yaml):

    name: cifar10_cpu                       # runs go to <runs_dir>/<name>/<arm>/seed<k>/
    base: [configs/cifar10_resnet20.yaml]   # --config files shared by every run, in order
    overrides: [--trainer.max_epochs=4]     # CLI-style arguments after all --config files
    seeds: [0, 1, 2]
    seed_keys: [seed_everything]            # config keys that receive the seed (default shown)
    prerequisites:                          # runs every arm may depend on, trained first
      teacher: {fragments: [], overrides: [--trainer.max_epochs=8], seed: 0}
    arms:
      baseline: []                          # a list of trick fragments ...
      kd: {fragments: [configs/tricks/kd.yaml], overrides: [], teacher: teacher}  # ... or a mapping
      tta: {fragments: [configs/tricks/tta_flip.yaml], evaluate: baseline}  # test-only, see below
    slurm: {time: "04:00:00", cpus_per_task: 8, gpus_per_node: null, extra: [--partition=gpu]}

`teacher: P` means: in the arm's fragments, every `teacher_checkpoint:` value is replaced by the
prerequisite P's `checkpoints/last.ckpt` (and a `teacher:` net next to it by P's resolved net), in a
generated copy written into the run directory (see `trickbench.scripts.ablate.materialise`).

`evaluate: A` makes an arm that trains nothing: each of its seeds runs `trickbench test` on the final
checkpoint of arm A's run of the same seed, with A's configs plus the arm's fragments (a test-time trick, e.g.
TTA). Its paired Δ against A is then the trick's effect on the very same weights.

`design: factorial` files list `factors:` instead of `arms:`; each design row becomes an arm (see factorial.py).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trickbench.scripts.ablation import factorial
from trickbench.scripts.ablation.data_seed import DataSeedError, check_data_seed
from trickbench.scripts.ablation.fields import string_list

TOP_KEYS = {"name", "base", "overrides", "seeds", "seed_keys", "prerequisites", "arms", "slurm"}
ARM_KEYS = {"fragments", "overrides", "teacher", "evaluate"}
PREREQ_KEYS = {"fragments", "overrides", "seed"}
PREREQ_DIR = "prerequisites"  # <runs>/<name>/prerequisites/<prereq>/seed<k>; never an arm name
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
TRAIN_CMD = [sys.executable, "-m", "trickbench", "fit"]  # tests swap this for a fake trainer
TEST_CMD = [sys.executable, "-m", "trickbench", "test"]  # a test-only arm (`evaluate:`); swapped likewise
BATCH_CMD = [sys.executable, "-m", "trickbench.scripts.ablation.batch"]
PREFLIGHT_CMD = [sys.executable, "-m", "trickbench.scripts.ablation.preflight"]  # shared checks, before any run


class AblationError(ValueError):
    """A bad ablation file; the message says what to change."""


@dataclass(frozen=True)
class Job:
    """One training process: an (arm, seed) pair, or a prerequisite run."""

    arm: str
    seed: int
    run_dir: Path
    fragments: tuple[str, ...]
    overrides: tuple[str, ...]
    prerequisite: bool = False
    teacher: str | None = None  # name of the prerequisite whose checkpoint this run distils from
    evaluates: str | None = None  # test-only: the arm whose same-seed final checkpoint this run tests

    @property
    def label(self) -> str:
        return f"{PREREQ_DIR}/{self.arm}/seed{self.seed}" if self.prerequisite else f"{self.arm}/seed{self.seed}"


@dataclass
class Plan:
    name: str
    source: str  # the ablation file, as given
    base: list[str]
    overrides: list[str]
    seed_keys: list[str]
    root: Path  # <runs_dir>/<name>
    jobs: list[Job] = field(default_factory=list)  # prerequisites first, then arms x seeds
    slurm: dict[str, Any] = field(default_factory=dict)
    design: dict[str, Any] | None = None  # `design: factorial` files: the design (scripts/ablation/factorial.py)

    def prerequisite(self, name: str) -> Job:
        return next(j for j in self.jobs if j.prerequisite and j.arm == name)

    def evaluated(self, job: Job) -> Job:
        """The trained run a test-only job (`evaluate:`) tests."""
        return next(j for j in self.jobs if not j.prerequisite and j.arm == job.evaluates and j.seed == job.seed)

    def dependency(self, job: Job) -> Job | None:
        """The run that must complete before `job` starts: its teacher, or the run it evaluates."""
        if job.teacher:
            return self.prerequisite(job.teacher)
        return self.evaluated(job) if job.evaluates else None

    def arms(self) -> list[str]:
        return list(dict.fromkeys(j.arm for j in self.jobs if not j.prerequisite))


def _check_keys(where: str, got: dict, allowed: set[str]) -> None:
    unknown = sorted(set(got) - allowed)
    if unknown:
        raise AblationError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _str_list(where: str, value: Any) -> list[str]:
    return string_list(where, value, AblationError)


def _arm_spec(arm: str, spec: Any) -> dict[str, Any]:
    if spec is None or isinstance(spec, list):
        spec = {"fragments": spec or []}
    if not isinstance(spec, dict):
        raise AblationError(f"arm '{arm}': give a list of fragments or a mapping with keys {sorted(ARM_KEYS)}")
    _check_keys(f"arm '{arm}'", spec, ARM_KEYS)
    return spec


def mentions_key(path: str | Path, key: str) -> bool:
    """Whether a YAML file has `key` anywhere in its tree."""

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return key in node or any(walk(v) for v in node.values())
        return isinstance(node, list) and any(walk(v) for v in node)

    return walk(yaml.safe_load(Path(path).read_text()))


def _check_files(raw: dict, base: list[str], fragment_lists: dict[str, list[str]]) -> None:
    """Every config file must exist (relative to the working directory): one error listing all that don't."""
    missing = [f"  base: {p}" for p in base if not Path(p).is_file()]
    missing += [f"  {who}: {p}" for who, frags in fragment_lists.items() for p in frags if not Path(p).is_file()]
    if missing:
        raise AblationError(
            f"ablation '{raw.get('name')}': {len(missing)} config file(s) not found (paths are relative to "
            f"the working directory {Path.cwd()}):\n"
            + "\n".join(missing)
            + "\nCreate them, fix the paths, or run from the repository root. Nothing was run."
        )


def load_plan(
    path: str | Path,
    runs_dir: str | Path = "runs",
    extra_overrides: list[str] | None = None,
    seeds: list[int] | None = None,
) -> Plan:
    """Parse and validate an ablation file and expand it into jobs (`seeds` replaces the file's: the replicates
    `--target-halfwidth` adds). Raises AblationError before any run."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise AblationError(f"cannot read ablation file {path}: {err}") from err
    if not isinstance(raw, dict):
        raise AblationError(f"{path}: expected a mapping with keys {sorted(TOP_KEYS)}")
    design = None
    if "design" in raw:  # a factorial file: its design rows become the arms
        try:
            arms, design = factorial.expand(raw)
        except factorial.FactorialError as err:
            raise AblationError(f"{path}: {err}") from None
        raw = {k: v for k, v in raw.items() if k not in factorial.KEYS} | {"arms": arms}
    _check_keys(str(path), raw, TOP_KEYS)
    name = raw.get("name") or Path(path).stem
    seeds = raw.get("seeds", [0]) if seeds is None else seeds
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise AblationError(f"{path}: name must match {NAME_RE.pattern}, got {name!r}")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise AblationError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    arms_raw, prereq_raw = raw.get("arms") or {}, raw.get("prerequisites") or {}
    if not isinstance(arms_raw, dict) or not arms_raw:
        raise AblationError(f"{path}: 'arms' must map arm names to fragment lists (baseline: [])")
    root = Path(runs_dir) / name
    plan = Plan(
        name,
        str(path),
        _str_list("base", raw.get("base")),
        _str_list("overrides", raw.get("overrides")) + list(extra_overrides or []),
        _str_list("seed_keys", raw.get("seed_keys", ["seed_everything"])),
        root,
        slurm=dict(raw.get("slurm") or {}),
        design=design,
    )
    fragment_lists: dict[str, list[str]] = {}
    for pname, spec in prereq_raw.items():
        spec = _arm_spec(pname, spec) if not isinstance(spec, dict) else spec
        _check_keys(f"prerequisite '{pname}'", spec, PREREQ_KEYS)
        frags = _str_list(f"prerequisite '{pname}' fragments", spec.get("fragments"))
        seed = int(spec.get("seed", seeds[0]))
        fragment_lists[f"prerequisite {pname}"] = frags
        plan.jobs.append(
            Job(
                pname,
                seed,
                root / PREREQ_DIR / pname / f"seed{seed}",
                tuple(frags),
                tuple(_str_list(f"prerequisite '{pname}' overrides", spec.get("overrides"))),
                prerequisite=True,
            )
        )
    for arm, spec in arms_raw.items():
        if not isinstance(arm, str) or not NAME_RE.match(arm) or arm == PREREQ_DIR:
            raise AblationError(f"arm name {arm!r} must match {NAME_RE.pattern} and not be '{PREREQ_DIR}'")
        spec = _arm_spec(arm, spec)
        frags = _str_list(f"arm '{arm}' fragments", spec.get("fragments"))
        teacher = spec.get("teacher")
        if teacher is not None and teacher not in prereq_raw:
            raise AblationError(
                f"arm '{arm}': teacher '{teacher}' is not a prerequisite; define it under "
                f"'prerequisites' (have: {sorted(prereq_raw)})"
            )
        evaluates = spec.get("evaluate")
        if evaluates is not None:
            target = arms_raw.get(evaluates) if isinstance(evaluates, str) else None
            if target is None or evaluates == arm or isinstance(target, dict) and target.get("evaluate"):
                raise AblationError(
                    f"arm '{arm}': evaluate: {evaluates!r} must name another arm that trains "
                    f"(have: {sorted(a for a in arms_raw if a != arm)})"
                )
            if teacher is not None:
                raise AblationError(
                    f"arm '{arm}': a test-only arm (evaluate:) trains nothing, so it takes no "
                    "teacher; put the teacher on the arm it evaluates"
                )
        fragment_lists[f"arm {arm}"] = frags
        for seed in seeds:
            plan.jobs.append(
                Job(
                    arm,
                    seed,
                    root / arm / f"seed{seed}",
                    tuple(frags),
                    tuple(_str_list(f"arm '{arm}' overrides", spec.get("overrides"))),
                    teacher=teacher,
                    evaluates=evaluates,
                )
            )
    if design:  # replicate by replicate (a seed is a block): each finished block can be analysed on its own
        order = {a: i for i, a in enumerate(arms_raw)}
        plan.jobs.sort(key=lambda j: (not j.prerequisite, j.seed if not j.prerequisite else 0, order.get(j.arm, -1)))
    _check_files(raw, plan.base, fragment_lists)
    for arm, spec in arms_raw.items():
        spec = _arm_spec(arm, spec)
        if spec.get("teacher") and not any(mentions_key(f, "teacher_checkpoint") for f in spec.get("fragments") or []):
            raise AblationError(
                f"arm '{arm}' names teacher '{spec['teacher']}', but none of its fragments "
                "sets `teacher_checkpoint:`; add the distillation fragment (configs/tricks/kd.yaml)"
            )
    try:
        check_data_seed(plan.name, plan.seed_keys, plan.base, plan.overrides, plan.jobs, fragment_lists)
    except DataSeedError as err:
        raise AblationError(str(err)) from None
    return plan


def prefix_length(job: Job) -> int:
    """How many leading items of `command(...)` are the interpreter and entry point (not the run's arguments)."""
    return len(TEST_CMD if job.evaluates else TRAIN_CMD)


def command(
    plan: Plan,
    job: Job,
    fragments: list[str] | None = None,
    resume: str | None = None,
    evaluated_fragments: list[str] | None = None,
) -> list[str]:
    """The `trickbench fit` command line of one job (`fragments` replaces the job's, e.g. generated ones).
    A test-only job (`evaluate:`): `trickbench test` of the evaluated run's final checkpoint, with that run's
    configs (`evaluated_fragments` replaces its fragments, e.g. generated ones) and then its own fragments."""
    cmd = list(TEST_CMD if job.evaluates else TRAIN_CMD)
    configs = list(job.fragments if fragments is None else fragments)
    if job.evaluates:
        source = plan.evaluated(job)
        configs = list(source.fragments if evaluated_fragments is None else evaluated_fragments) + configs
        resume = str(source.run_dir / "checkpoints" / "last.ckpt")
    for cfg in plan.base + configs:
        cmd += ["--config", cfg]
    cmd += plan.overrides + list(job.overrides)
    cmd += [f"--{key}={job.seed}" for key in plan.seed_keys]
    tag = f"{PREREQ_DIR}/{job.arm}" if job.prerequisite else job.arm
    cmd += [
        f"--run_dir={job.run_dir}",
        f"--wandb.group={plan.name}",
        f"--wandb.tags=[{tag}]",
        f"--wandb.name={plan.name}/{job.label}",
    ]
    if resume:
        cmd.append(f"--ckpt_path={resume}")
    return cmd
