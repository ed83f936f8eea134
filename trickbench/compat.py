"""Every Lightning internal trickbench relies on, in one place.

Tested with the Lightning range pinned in pyproject.toml. Each entry below is a workaround for something
Lightning has no public API for; `check(trainer)` runs at the start of every fit (`ExactResume.setup`) and in
an unmarked test (tests/test_compat.py), so a Lightning release that renames or removes one of them stops a
run with an error naming it instead of silently changing what a run does.

Internal -> what it is used for -> public equivalent:

- `fit_loop.epoch_loop.batch_progress.total.completed`, `.current.ready` -> the batch number for per-batch RNG
  streams and the mid-epoch loader position (`batch_index`, `epoch_batches_taken`) -> none: `global_step` counts
  optimizer steps (differs under accumulation, GANs).
- `fit_loop._combined_loader_states_to_load`, `_combined_loader`, `_load_combined_loader_states`,
  `_data_fetcher` -> apply the checkpoint's train-loader state that Lightning leaves unapplied when the loader
  was built early (`restore_pending_loader_state`) -> none (Lightning issue #20550; PR #21765).
- `fit_loop.setup_data()` -> the train-loader length inside `on_fit_start` (`train_batches`) ->
  `num_training_batches` is set only later.
- `strategy.lr_scheduler_configs` (mutated) -> LRWarmup wraps the configured schedulers -> none.
- logger `lightning.pytorch.utilities.rank_zero` -> `quiet_lightning`: drop the "Tip:" adverts (litlogger /
  litmodels) from every run -> none (no option).
- CSV `ExperimentWriter.metrics_keys`, `.metrics_file_path` (checked where used) -> `ResumableCSVLogger` writes
  back a resumed run's earlier rows and their header (csv_log.py) -> none (the writer deletes the file).

Replaced by public API (kept here as the record): `LightningCLI._instantiate_trainer` (now the public
`instantiate_trainer`), `trainer._logger_connector.should_update_logs` (now `trainer.global_step` and
`log_every_n_steps`, `trickbench.lightning_modules.classifier.Classifier._log_step_now`). Not Lightning:
`object.__setattr__(module, "_fwd", net)` keeps a compiled net out of `nn.Module`'s child registry
(`Classifier`), so `state_dict` keys stay `net.*`.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"  # where Lightning's rank_zero_info records go (2.6)

# (object path from the Trainer, attribute) pairs that must exist on a Trainer about to fit.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("fit_loop.epoch_loop.batch_progress.total", "completed"),
    ("fit_loop.epoch_loop.batch_progress.current", "ready"),
    ("fit_loop", "_combined_loader_states_to_load"),
    ("fit_loop", "_combined_loader"),
    ("fit_loop", "_load_combined_loader_states"),
    ("fit_loop", "_data_fetcher"),
    ("fit_loop", "setup_data"),
    ("strategy", "lr_scheduler_configs"),
)


class LightningCompatError(RuntimeError):
    """A Lightning internal that trickbench relies on is missing (a Lightning version outside the tested range)."""


def _resolve(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def check(trainer: Any) -> None:
    """Raise LightningCompatError naming every internal in `REQUIRED` that this Trainer lacks."""
    missing = []
    for path, attr in REQUIRED:
        try:
            owner = _resolve(trainer, path)
        except AttributeError:
            missing.append(path)
            continue
        if not hasattr(owner, attr):
            missing.append(f"{path}.{attr}")
    if missing:
        import lightning

        raise LightningCompatError(
            f"Lightning {lightning.__version__} lacks {', '.join('trainer.' + m for m in missing)}, which trickbench "
            "relies on (trickbench/compat.py lists why). Install the Lightning range pinned in pyproject.toml "
            "(pip install -e .), or update trickbench/compat.py for this version."
        )


def batch_index(trainer: Any) -> int:
    """Training batches finished before the current one, over all epochs and restored on resume: the current
    batch's 0-based number from `on_after_batch_transfer` through `on_train_batch_end`."""
    return trainer.fit_loop.epoch_loop.batch_progress.total.completed


def epoch_batches_taken(trainer: Any) -> int:
    """Training batches of the current epoch the loop has taken, the one in progress included: what a checkpoint
    written now has consumed of the epoch (a resumed epoch's loader skips them). Lightning's fetcher pre-fetches
    one batch ahead, so the loader's own count overshoots by one."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.ready


def restore_pending_loader_state(trainer: Any) -> bool:
    """Apply checkpointed train-loader state that Lightning left unapplied (issue #20550); True if there was any."""
    loop = trainer.fit_loop
    if not loop._combined_loader_states_to_load or loop._combined_loader is None:
        return False
    loop._load_combined_loader_states()
    iter(loop._data_fetcher)  # the old iterator was built (and pre-fetched from) before the restore
    return True


def train_batches(trainer: Any) -> float:
    """Train-loader batches per epoch, also before Lightning has set up the loader (e.g. in `on_fit_start`)."""
    trainer.fit_loop.setup_data()  # no-op when the train loader is already set up
    return trainer.num_training_batches


def scheduler_configs(trainer: Any) -> list[Any]:
    """The strategy's LR scheduler configs, as the list Lightning steps (callers may replace entries)."""
    return trainer.strategy.lr_scheduler_configs


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def quiet_lightning() -> None:
    """Remove what a normal run prints that says nothing about the run (idempotent; called by the CLI):
    - Lightning's product adverts ("💡 Tip: ... litlogger", "... litmodels"), info records on `RANK_ZERO_LOGGER`;
    - torch's FutureWarning about `LeafSpec`, raised inside Lightning's own `_pytree` helper on every fit/test
      (Lightning's code, not ours; newer torch than this Lightning was written against);
    - ModelCheckpoint's "The dirpath has changed" when `test`/`validate`/a resume reads a run's checkpoint from
      another run directory (the eval folder of a run, by design; the one checkpoint per run is still reloaded);
    - the `srun` hint that Lightning gives on any machine with SLURM installed, outside a SLURM job (inside an
      allocation it can point at a real mistake, so it stays there)."""
    logger = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, _DropTips) for f in logger.filters):
        logger.addFilter(_DropTips())
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    warnings.filterwarnings("ignore", message="The dirpath has changed from")
    # `main(args=[...])` is trickbench's documented in-process entry (notebooks, the batch runner): the process's
    # own argv belongs to its host (a Jupyter kernel's `-f file.json`) and is never parsed.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")
    # Our DataModules return no validation loader (an empty list) when val_size is 0, on purpose.
    warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")
    # Under "*-mixed" precision the weights are stored in float32, so the 32 bits the summary falls back to are right.
    warnings.filterwarnings("ignore", message=r"Precision \S+-mixed is not supported by the model summary")
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")


def drop_wandb_anonymous(logger: Any) -> Any:
    """Lightning's WandbLogger always passes `anonymous` to `wandb.init` (None unless asked for), and wandb >= 0.19
    prints "The anonymous setting has no effect" for every run; leave the key out when it was not asked for.
    Reads Lightning's private `_wandb_init`: fails loudly if it changes."""
    init = getattr(logger, "_wandb_init", None)
    if not isinstance(init, dict) or "anonymous" not in init:
        raise RuntimeError(
            "lightning's WandbLogger no longer keeps `_wandb_init` with an `anonymous` key; update "
            "trickbench.compat.drop_wandb_anonymous"
        )
    if init["anonymous"] is None:
        del init["anonymous"]
    return logger
