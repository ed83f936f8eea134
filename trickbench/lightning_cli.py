"""The training CLI behind `trickbench fit|validate|test|predict` (trickbench/cli.py is the entry point).

LightningCLI with three additions: every run gets a run directory (resolved config,
checkpoints, CSV + W&B logs, metrics.json), `fit` is followed by `test` on the final weights
(`--test_after_fit false` to skip), and W&B falls back to offline mode when no API key is set.
Reliability defaults (docs/guarantees.md): checkpoints are written atomically, global RNGs are
reseeded per batch from (seed, rank, batch) so a resumed run is bitwise the uninterrupted one, a
NaN/inf loss stops the run naming the step, and `fit --ckpt_path` resumes the same W&B run.
The pieces live beside it: argument errors in trickbench/cli_errors.py, the defaults added to a parsed config in
trickbench/trainer_defaults.py, the run-dir policy in trickbench/run/policy.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from trickbench import compat
from trickbench.cli_errors import DEBUG_ENV, TrickbenchParser, construction_error, fail
from trickbench.config_files import resolve_args
from trickbench.datamodules.integrity import DatasetError
from trickbench.run import record as run_record
from trickbench.run.agreed_signals import AgreedSignals
from trickbench.run.csv_log import ResumableCSVLogger
from trickbench.run.policy import (
    RunDirConfig,
    occupied_message,
    record_early_failure,
    resolve_run_dir,
    wandb_run_id,
)
from trickbench.run.progress import SizedForGPUNote
from trickbench.run.record import RunRecordError
from trickbench.run.recorder import RunRecord
from trickbench.run.run_dir import (
    RunDirError,
    RunLock,
    default_run_dir,
    empty_dir,
    holds_run,
    process_start_time,
    provenance,
)
from trickbench.run.signal_gate import SignalGate
from trickbench.trainer_defaults import (
    DEFAULTS_YAML,
    build_datamodule,
    drop_hpc_checkpoints,
    finish_wandb_run,
    follow_run_seed,
    plain_summary,
    preflight_data,
    report_hparam_differences,
    resolve_trainer_defaults,
    wandb_mode,
)

RUN_DIR_ENV = "TRICKBENCH_RUN_DIR"  # rank 0's resolved run dir, inherited by the DDP ranks it launches
_first_main = True  # the first main() of a process measures wall time from the process start
__all__ = ["DEBUG_ENV", "TrickbenchCLI", "build_datamodule", "cli_main", "main", "plain_summary", "preflight_data"]


class TrickbenchCLI(LightningCLI):
    current: TrickbenchCLI | None = None  # the instance being built or run (main() releases its lock)

    def __init__(self, args: Any = None, run: bool = True, started_at: float | None = None, **kwargs: Any) -> None:
        TrickbenchCLI.current = self
        compat.quiet_lightning()
        self.run_lock: RunLock | None = None
        self.started_at = started_at if started_at is not None else time.time()
        super().__init__(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=RunDirConfig,
            parser_class=TrickbenchParser,
            parser_kwargs=(
                {sub: {"default_config_files": [str(DEFAULTS_YAML)]} for sub in ("fit", "validate", "test", "predict")}
                if run
                else {"default_config_files": [str(DEFAULTS_YAML)]}
            ),
            auto_configure_optimizers=False,  # modules own configure_optimizers (param groups, schedules)
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Run directory (default runs/<time>-<random>); test/validate of an existing run "
            "write into <run_dir>/eval/<subcommand>-<time>/",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="fit into a run directory that holds a run: delete its contents first",
        )
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the final weights after fit")
        parser.add_argument(
            "--sized_for",
            type=Literal["any", "gpu"],
            default="any",
            help="the hardware a recipe is sized for; `gpu`: a start on a CPU says so, with the expected time",
        )
        parser.add_argument("--wandb.project", type=str, default="trickbench")
        parser.add_argument("--wandb.group", type=str | None, default=None, help="W&B group (ablation name)")
        parser.add_argument("--wandb.tags", type=list[str], default=[], help="W&B tags (ablation arm)")
        parser.add_argument("--wandb.name", type=str | None, default=None)

    def _cfg(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then hide `ckpt_path` until `before_instantiate_classes`: LightningCLI would otherwise
        overwrite the model's configured arguments with the checkpoint's saved hyperparameters, silently
        beating explicit ones (`test --ckpt_path F --model.init_args.tta_flip true` ran without TTA). Here
        the config as given is what runs and what config.yaml records; differences are printed."""
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub and self.config[sub].get("ckpt_path") is not None:
            self._ckpt_path = self.config[sub].ckpt_path
            self.config[sub].ckpt_path = None

    def before_instantiate_classes(self) -> None:
        cfg = self._cfg()
        follow_run_seed(cfg)
        added = resolve_trainer_defaults(cfg.trainer)
        if added and rank_zero_only.rank == 0:
            print(
                f"note: trainer.callbacks/plugins replaced the defaults of configs/trainer/default.yaml; added "
                f"back (config.yaml lists them): {', '.join(added)}",
                file=sys.stderr,
            )
        if getattr(self, "_ckpt_path", None) is not None:
            cfg.ckpt_path = self._ckpt_path
        if self.subcommand is None:  # run=False: classes are built, nothing runs or writes; no lock
            cfg.run_dir = str(Path(cfg.run_dir or default_run_dir()).resolve())
            return
        if rank_zero_only.rank != 0:
            # A DDP rank: rank 0 owns the run directory (lock, records). Lightning's launcher passes rank 0's choice
            # down; ranks started side by side (`srun` on one or several nodes) resolve the same --run_dir (or the
            # same SLURM-derived default) themselves.
            cfg.run_dir = os.environ.get(RUN_DIR_ENV) or str(self._resolve_run_dir(cfg))
            return
        run_dir = self._resolve_run_dir(cfg)
        self._created = next((p for p in (*reversed(run_dir.parents), run_dir) if not p.exists()), None)
        lock = RunLock(run_dir).acquire()  # before anything is written or deleted there
        try:
            if self.subcommand == "fit" and holds_run(run_dir):
                if cfg.overwrite:
                    empty_dir(run_dir)
                elif cfg.ckpt_path is None:
                    raise RunDirError(occupied_message(run_dir))
            run_record.load(run_dir)  # a damaged record: one clear error before any work
        except BaseException:
            lock.release()
            raise
        self.run_lock = lock  # from here on this process owns the run directory
        cfg.run_dir = str(run_dir)
        os.environ[RUN_DIR_ENV] = str(run_dir)
        if isinstance(cfg.ckpt_path, str) and Path(cfg.ckpt_path).is_file():
            report_hparam_differences(cfg.ckpt_path, cfg.model)

    def _resolve_run_dir(self, cfg: Any) -> Path:
        return resolve_run_dir(self.subcommand, cfg)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The configured Trainer (config.yaml lists its callbacks and plugins, `resolve_trainer_defaults`), plus
        what derives from --run_dir: default_root_dir, a ModelCheckpoint's missing dirpath, the loggers of
        `trainer.logger: null` and the run record; `AgreedSignals` (SLURM's time-limit warning and SIGTERM acted
        on by all ranks after one batch, `trickbench.run.agreed_signals`) and `SignalGate` (lets through a SLURM
        warning held since process start, `trickbench.signals`)."""
        init = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer_cfg = init.get("trainer") or {}
        run_dir = Path(self._cfg().run_dir)
        if self.run_lock is not None:
            self._check_data(run_dir)
        kwargs["default_root_dir"] = str(run_dir)
        if trainer_cfg.get("logger") in (None, True):
            wb = self._cfg().wandb
            kwargs["logger"] = [ResumableCSVLogger(str(run_dir))]  # keeps earlier segments' rows on resume
            # WANDB_MODE=disabled: no WandbLogger at all. A disabled one still imports wandb and starts a dummy
            # run and logs nowhere.
            if wandb_mode() != "disabled":
                kwargs["logger"].append(
                    compat.drop_wandb_anonymous(
                        WandbLogger(
                            project=wb.project,
                            group=wb.group,
                            tags=list(wb.tags) or None,
                            name=wb.name or run_dir.name,
                            save_dir=str(run_dir),
                            mode=wandb_mode(),
                            id=self._wandb_run_id(run_dir),
                            resume="allow",
                        )
                    )
                )
        callbacks = trainer_cfg.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        for c in callbacks:  # a ModelCheckpoint without a dirpath saves into the run directory
            if isinstance(c, ModelCheckpoint) and c.dirpath is None:
                c.dirpath = str(run_dir / "checkpoints")
        kwargs["callbacks"] = callbacks + [
            RunRecord(str(run_dir), started_at=self.started_at, provenance=provenance()),
            AgreedSignals(),  # before SignalGate: a warning held since start-up finds this handler
            SignalGate(),
        ]
        trainer = plain_summary(super().instantiate_trainer(**kwargs))
        if self._cfg().get("sized_for") == "gpu" and isinstance(trainer.accelerator, CPUAccelerator):
            trainer.callbacks.append(SizedForGPUNote(self._recipe_name()))
        return trainer

    def _recipe_name(self) -> str:
        """The first --config the run names (its recipe), for messages."""
        configs = self._cfg().get("config") or []
        first = str(configs[0]) if configs else ""
        return Path(first).stem if first and "\n" not in first else "this recipe"

    def _check_data(self, run_dir: Path) -> None:
        """The DataModule's `preflight()` (files present, checksums) before anything is written into the run
        directory: a missing or damaged dataset is one error, and the folders this process created for the run
        (still holding nothing but its lock) are removed again, so no run directory is left behind."""
        try:
            preflight_data(self.datamodule)
        except DatasetError:
            created = getattr(self, "_created", None)
            leftover = [p for p in created.rglob("*") if p.is_file() and p.name != ".lock"] if created else [None]
            if not leftover:
                self.run_lock.release()
                self.run_lock = None
                shutil.rmtree(created)
            raise

    def _wandb_run_id(self, run_dir: Path) -> str:
        write = self.subcommand == "fit" and rank_zero_only.rank == 0
        return wandb_run_id(run_dir, self.subcommand, self._cfg().get("ckpt_path"), write)

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        drop_hpc_checkpoints(self.trainer)
        if self._cfg().test_after_fit:
            self.trainer.test(self.model, datamodule=self.datamodule)


def main(args: Any = None) -> TrickbenchCLI:
    """Run one CLI invocation. Wall time counts from the process start for the first call in a process and
    from this call for later ones. A SIGTERM'd fit checkpoints, records `interrupted` and exits 143."""
    global _first_main
    if isinstance(args, list):  # as on the command line: shipped configs by name, older class paths upgraded
        args = resolve_args([str(a) for a in args])
    started_at = process_start_time() if _first_main else time.time()
    _first_main = False
    try:
        return TrickbenchCLI(args=args, started_at=started_at)
    except SIGTERMException:
        raise SystemExit(128 + signal.SIGTERM) from None
    except Exception as err:
        cli = TrickbenchCLI.current  # an error before the Trainer exists is not RunRecord's to record
        if cli is not None and cli.run_lock is not None and not hasattr(cli, "trainer"):
            record_early_failure(Path(cli._cfg().run_dir), err)
        raise
    finally:
        finish_wandb_run()
        lock = getattr(TrickbenchCLI.current, "run_lock", None)  # also when the CLI raised while being built
        TrickbenchCLI.current = None
        if lock is not None:
            lock.release()
        if rank_zero_only.rank == 0:
            os.environ.pop(RUN_DIR_ENV, None)


def cli_main() -> None:
    """Console entry point: trickbench's own errors (run dir, run record, dataset), and an argument a class rejects
    while being built, print as one line (no traceback; TRICKBENCH_DEBUG=1 shows it) and exit 2."""
    try:
        main()
    except (RunDirError, RunRecordError, DatasetError) as err:
        fail(err, str(err))
    except ValueError as err:
        if (reason := construction_error(err)) is None:
            raise
        fail(err, reason)
