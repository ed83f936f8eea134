"""Where a run's files go and what may happen to a folder that holds a run (the training CLI's run-dir policy):
`fit` writes into `--run_dir` or a new unique folder and never into one that holds a run unless told to resume
(`--ckpt_path last`) or start over (`--overwrite true`); `test`/`validate` of a run write into a new
`<run>/eval/<subcommand>-<time>/` folder, never into the run itself; the W&B run id resumes with the run; a run
that fails before its Trainer exists still records the failure; the resolved config is saved as config.yaml."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.cli import SaveConfigCallback

from trickbench.io import atomic_write_text, error_text
from trickbench.run import record as run_record
from trickbench.run.record import Record, RunRecordError, Status
from trickbench.run.recorder import RunRecord
from trickbench.run.run_dir import RunDirError, default_run_dir, eval_dir, holds_run

EVAL_SUBCOMMANDS = ("test", "validate", "predict")
RESOLVED_CKPT = ("last", "best", "hpc", "registry")  # --ckpt_path words Lightning resolves itself


class RunDirConfig(SaveConfigCallback):
    """Save the resolved config as `<run_dir>/config.yaml` (not inside a logger's version folder) and give
    every logger the whole resolved config, nested as in config.yaml, plus provenance (git commit, versions,
    host, data fingerprint): W&B's group-by/filter then works on any key (optimizer LR, callbacks' args)."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / self.config_filename
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=False)
            params = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
            dm = trainer.datamodule
            recorder = next(c for c in trainer.callbacks if isinstance(c, RunRecord))  # provenance computed once
            params["provenance"] = {
                **recorder.record.provenance,
                "data_fingerprint": getattr(dm, "fingerprint", "") if dm else "",
            }
            for logger in trainer.loggers:
                logger.log_hyperparams(params)
        self.already_saved = True


def resolve_run_dir(subcommand: str | None, cfg: Any) -> Path:
    """fit: --run_dir or a new unique name. test/validate: a new `eval/` folder inside the run they evaluate
    (given by --run_dir or found from a `<run>/checkpoints/*.ckpt` path), never the run itself. Sets
    `cfg.ckpt_path` to the file that `--ckpt_path last` names."""
    sub, ckpt = subcommand, cfg.get("ckpt_path")
    if sub not in EVAL_SUBCOMMANDS:
        return Path(cfg.run_dir or default_run_dir()).resolve()
    target = Path(cfg.run_dir).resolve() if cfg.run_dir else None
    if ckpt in RESOLVED_CKPT:
        found = target / "checkpoints" / "last.ckpt" if target is not None and ckpt == "last" else None
        if found is None or not found.is_file():
            where = f"{target}/checkpoints/last.ckpt does not exist" if found else "no checkpoint file was named"
            raise RunDirError(
                f"{sub} --ckpt_path {ckpt}: {where}, so this would evaluate untrained weights. Pass the "
                "checkpoint file (--ckpt_path RUN/checkpoints/last.ckpt), or --run_dir RUN --ckpt_path last "
                "for a run that has one."
            )
        cfg.ckpt_path = str(found)
    elif ckpt is not None and not Path(ckpt).is_file():
        raise RunDirError(f"{sub} --ckpt_path {ckpt}: no such file")
    if target is None and ckpt is not None and Path(ckpt).resolve().parent.name == "checkpoints":
        target = Path(ckpt).resolve().parent.parent
    if target is not None and holds_run(target):
        return eval_dir(target, sub)
    return target or default_run_dir().resolve()


def occupied_message(run_dir: Path) -> str:
    try:
        record = run_record.load(run_dir)
        status = "no metrics.json" if record is None else str(record.status)
    except RunRecordError:
        status = "damaged metrics.json"
    return (
        f"run directory {run_dir} already holds a run (status: {status}). To continue it: fit --config "
        f"{run_dir}/config.yaml --run_dir {run_dir} --ckpt_path last. To start over in it (its contents "
        "are deleted): add --overwrite true. Or choose another --run_dir. Nothing was changed."
    )


def wandb_run_id(run_dir: Path, subcommand: str | None, ckpt: Any, write: bool) -> str:
    """The W&B run id resumes with the run: `fit --ckpt_path X` with X in this run directory (a resume) reuses the
    id stored in `<run_dir>/wandb_run_id`; a fresh fit, or one that starts from another run's checkpoint into a
    new directory (fine-tuning), gets a new id. `write`: store it (rank 0 of a fit)."""
    ckpt = ckpt if subcommand == "fit" else None
    src = run_dir if ckpt in RESOLVED_CKPT else Path(str(ckpt)).resolve().parent.parent
    stored = run_dir / "wandb_run_id"
    resume = ckpt is not None and src.resolve() == run_dir.resolve() and stored.is_file()
    run_id = stored.read_text().strip() if resume else secrets.token_hex(4)
    if write:
        atomic_write_text(run_dir / "wandb_run_id", run_id + "\n")
    return run_id


def record_early_failure(run_dir: Path, err: BaseException) -> None:
    """An error before the Trainer exists (a bad argument rejected while the classes are built), and so before
    `RunRecord` can record anything, still leaves `status: failed` with the error in the run directory."""
    try:
        record = run_record.load(run_dir) or Record()
    except RunRecordError:
        return
    record.status, record.error = Status.FAILED, error_text(err)
    record.segments.append(
        {"pid": os.getpid(), "exit": f"failed: {record.error[:200]}", "fit_seconds": 0.0, "wall_seconds": 0.0}
    )
    run_record.save(run_dir, record)
