"""Carry a sweep between machines that share only the repository: `trickbench ablate FILE --restore RAW` copies the
finished runs of a committed report's `raw/` copy into the runs folder, so the same command goes on where that
report stopped (a long factorial table made over several sittings, each ending with a PARTIAL report).

What a run folder needs for the harness to count it finished is its record (metrics.json, status completed) and
its definition.json; the report keeps both, with the CSV log, and for a prerequisite that teaches (KD) also its
final checkpoint and config.yaml, so the students of a later sitting distil from the very same weights. A raw run
is restored only when its definition is the plan's (else: one error, nothing copied), only into a folder that
does not exist yet (a run already here is kept as it is), and a trained run only together with its test-only
evaluations (they need its final weights, which raw/ does not keep: without them it trains again).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trickbench.run import record as run_record
from trickbench.scripts.ablation.collect import TEACHER_FILES, copy_file
from trickbench.scripts.ablation.plan import AblationError, Job, Plan
from trickbench.scripts.ablation.state import DEFINITION, definition, read_definition, same_definition

LOG = ("metrics.csv", "csv/metrics.csv")  # (name in raw/, path in a run folder)


def restore(plan: Plan, raw: Path) -> list[str]:
    """Copy raw/'s finished runs of `plan` into its run folders; the lines saying what was done."""
    if not (raw / "plan.json").is_file():
        raise AblationError(f"--restore {raw}: no plan.json there; give the raw/ folder of a report")
    found = {j.label: j for j in plan.jobs if run_record.is_completed(raw / j.label)}
    stale = [
        f"{label} (raw hash {_stored_hash(raw / label)}, the plan's {definition(plan, job)['hash']})"
        for label, job in found.items()
        if not same_definition(read_definition(raw / label), plan, job)
    ]
    if stale:
        raise AblationError(
            f"--restore {raw}: {len(stale)} run(s) there have another definition than this plan (another "
            f"--set, data path or config file content): {', '.join(stale[:3])}. Run with the --set and files that "
            "made them; nothing was copied"
        )
    taught = {j.teacher for j in plan.jobs if j.teacher}
    lines, copied = [], 0
    for label, job in found.items():
        why = _not_restored(plan, job, raw, found, taught)
        if why:
            lines.append(f"  not restored {label}: {why}")
            continue
        _copy_run(raw / label, job, job.prerequisite and job.arm in taught)
        copied += 1
    lines.insert(0, f"restored {copied} finished run(s) from {raw} into {plan.root}")
    return lines


def _stored_hash(folder: Path) -> str:
    return str((read_definition(folder) or {}).get("hash"))


def _not_restored(plan: Plan, job: Job, raw: Path, found: dict[str, Job], taught: set[str]) -> str | None:
    if job.run_dir.exists():
        return "its folder exists here (kept as it is)"
    if job.prerequisite and job.arm in taught and not all((raw / job.label / f).is_file() for f in TEACHER_FILES):
        return "a teacher without its checkpoint and config.yaml in raw/ (it trains again)"
    missing = [j.label for j in plan.jobs if j.evaluates == job.arm and j.seed == job.seed and j.label not in found]
    if missing:
        return f"its test-only evaluation {missing[0]} is not in raw/ and needs its final weights (it trains again)"
    return None


def _copy_run(src: Path, job: Job, teacher: bool) -> None:
    dest = job.run_dir
    pairs = [(DEFINITION, DEFINITION), LOG] + ([(f, f) for f in TEACHER_FILES] if teacher else [])
    try:
        for name, target in pairs:
            if (src / name).is_file():
                copy_file(src / name, dest / target)
        copy_file(src / run_record.FILENAME, dest / run_record.FILENAME)  # last: the folder counts once whole
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # the folder did not exist before: no half-restored run
        raise
