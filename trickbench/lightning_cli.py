"""The training CLI behind `trickbench fit|validate|test|predict` (trickbench/cli.py is the entry point).

LightningCLI with three additions: every run gets a run directory (resolved config,
checkpoints, CSV + W&B logs, metrics.json), `fit` is followed by `test` on the final weights
(`--test_after_fit false` to skip), and W&B falls back to offline mode when no API key is set.
Reliability defaults (docs/guarantees.md): checkpoints are written atomically, global RNGs are
reseeded per batch from (seed, rank, batch) so a resumed run is bitwise the uninterrupted one, a
NaN/inf loss stops the run naming the step, and `fit --ckpt_path` resumes the same W&B run.
"""

from __future__ import annotations

import importlib
import inspect
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor as LRMonitorBase
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from trickbench import compat
from trickbench.callbacks.progress import SizedForGPUNote
from trickbench.callbacks.run_dir import (
    RunDirError,
    RunLock,
    default_run_dir,
    empty_dir,
    eval_dir,
    holds_run,
    process_start_time,
    provenance,
)
from trickbench.callbacks.run_record import RunRecord, RunRecordError, load_record
from trickbench.callbacks.signal_gate import SignalGate
from trickbench.config_files import configs_dir, resolve_args
from trickbench.csv_log import ResumableCSVLogger
from trickbench.datamodules.integrity import DatasetError
from trickbench.io import atomic_write_json, atomic_write_text, error_text

DEFAULTS_YAML = configs_dir() / "trainer" / "default.yaml"  # applied before every config
RUN_DIR_ENV = "TRICKBENCH_RUN_DIR"  # rank 0's resolved run dir, inherited by the DDP ranks it launches
EVAL_SUBCOMMANDS = ("test", "validate", "predict")
_first_main = True  # the first main() of a process measures wall time from the process start


def wandb_mode() -> str:
    """WANDB_MODE if set; else online only when credentials exist (no key -> offline, never a login prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "api.wandb.ai" in netrc.read_text())
    return "online" if has_key else "offline"


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
            record = next(c for c in trainer.callbacks if isinstance(c, RunRecord))  # provenance computed once
            params["provenance"] = {
                **record.record["provenance"],
                "data_fingerprint": getattr(dm, "fingerprint", "") if dm else "",
            }
            for logger in trainer.loggers:
                logger.log_hyperparams(params)
        self.already_saved = True


class TrickbenchParser(LightningArgumentParser):
    """LightningCLI's parser, with argument errors that end the output: no usage dump above them (a misspelt key
    was followed by ~60 lines of usage), and jsonargparse's union report cut to the reason (e.g. "Option
    'label_smoothin' is not accepted"), printed last after the `--help` tip."""

    def print_usage(self, file: Any = None) -> None:  # argparse calls this only when reporting an error
        pass

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        reason = union_reason(message)
        super().error(f"{message.splitlines()[0].rstrip(':')}: {reason}" if reason else message, ex)


def union_reason(text: str) -> str | None:
    """The reasons inside jsonargparse's "Does not validate against any of the Union subtypes" report (what a
    class rejected, one line each, the NoneType alternative left out), or None for other messages."""
    if "Does not validate against any of the Union subtypes" not in text:
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    reasons, keep, given = [], False, ""
    for ln in lines:
        if ln.startswith("Given value:") and len(ln) <= 80 and "NestedArg" not in ln and "amespace(" not in ln:
            given = f" ({ln.lower()})"
        if ln.startswith("- "):
            keep = "Expected a <class 'NoneType'>" not in ln
            if keep:
                reasons.append(ln[2:])
        elif keep and ln and not ln.startswith(("Given value", "Subtypes:", "Errors:")):
            reasons[-1] += " " + ln
    return "; ".join(reasons) + given if reasons else None


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
                    raise RunDirError(self._occupied_message(run_dir))
            load_record(run_dir / "metrics.json")  # a damaged record: one clear error before any work
        except BaseException:
            lock.release()
            raise
        self.run_lock = lock  # from here on this process owns the run directory
        cfg.run_dir = str(run_dir)
        os.environ[RUN_DIR_ENV] = str(run_dir)
        if isinstance(cfg.ckpt_path, str) and Path(cfg.ckpt_path).is_file():
            report_hparam_differences(cfg.ckpt_path, cfg.model)

    def _resolve_run_dir(self, cfg: Any) -> Path:
        """fit: --run_dir or a new unique name. test/validate: a new `eval/` folder inside the run they
        evaluate (given by --run_dir or found from a `<run>/checkpoints/*.ckpt` path), never the run itself."""
        sub, ckpt = self.subcommand, cfg.get("ckpt_path")
        if sub not in EVAL_SUBCOMMANDS:
            return Path(cfg.run_dir or default_run_dir()).resolve()
        target = Path(cfg.run_dir).resolve() if cfg.run_dir else None
        if ckpt in ("last", "best", "hpc", "registry"):
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

    @staticmethod
    def _occupied_message(run_dir: Path) -> str:
        try:
            status = load_record(run_dir / "metrics.json").get("status", "no metrics.json")
        except RunRecordError:
            status = "damaged metrics.json"
        return (
            f"run directory {run_dir} already holds a run (status: {status}). To continue it: fit --config "
            f"{run_dir}/config.yaml --run_dir {run_dir} --ckpt_path last. To start over in it (its contents "
            "are deleted): add --overwrite true. Or choose another --run_dir. Nothing was changed."
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The configured Trainer (config.yaml lists its callbacks and plugins, `resolve_trainer_defaults`), plus
        what derives from --run_dir: default_root_dir, a ModelCheckpoint's missing dirpath, the loggers of
        `trainer.logger: null` and the run record; and `SignalGate` (lets through a SLURM warning held since
        process start, `trickbench.signals`)."""
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
        """The W&B run id resumes with the run: `fit --ckpt_path X` with X in this run directory (a resume)
        reuses the id stored in `<run_dir>/wandb_run_id`; a fresh fit, or one that starts from another run's
        checkpoint into a new directory (fine-tuning), gets a new id. Written by rank 0 only."""
        ckpt = self._cfg().get("ckpt_path") if self.subcommand == "fit" else None
        src = run_dir if ckpt in ("last", "best", "hpc", "registry") else Path(str(ckpt)).resolve().parent.parent
        stored = run_dir / "wandb_run_id"
        resume = ckpt is not None and src.resolve() == run_dir.resolve() and stored.is_file()
        run_id = stored.read_text().strip() if resume else secrets.token_hex(4)
        if self.subcommand == "fit" and rank_zero_only.rank == 0:
            atomic_write_text(run_dir / "wandb_run_id", run_id + "\n")
        return run_id

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        drop_hpc_checkpoints(self.trainer)
        if self._cfg().test_after_fit:
            self.trainer.test(self.model, datamodule=self.datamodule)


def drop_hpc_checkpoints(trainer: Any) -> None:
    """Delete the `hpc_ckpt_<n>.ckpt` files Lightning's SLURM plugin wrote at each time-limit requeue, once the fit
    they resumed has completed. `last.ckpt` supersedes them (the SIGTERM that follows a requeue saves it, and the
    harness resumes from it); left in place, Lightning would load the newest of them, not the final weights, for
    every later `test` or `validate` of this Trainer under SLURM (a requeued run reported the test metrics of an
    earlier requeue's weights)."""
    if trainer.is_global_zero:
        for path in Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"):
            path.unlink(missing_ok=True)
    trainer.strategy.barrier("trickbench_hpc_checkpoints_dropped")  # no rank looks for them before they are gone


def follow_run_seed(cfg: Namespace) -> None:
    """A DataModule `seed` left at null (the default) takes the run's `seed_everything`, so another run seed also
    means another split, data order and augmentation stream; config.yaml records the value used."""
    init = cfg.get("data", Namespace()).get("init_args") if isinstance(cfg.get("data"), Namespace) else None
    if isinstance(init, Namespace) and "seed" in init and init.seed is None:
        run_seed = cfg.get("seed_everything")
        init.seed = run_seed if isinstance(run_seed, int) and not isinstance(run_seed, bool) else 0


def build_datamodule(data_cfg: Any) -> LightningDataModule | None:
    """The DataModule a parsed `data:` entry configures, built on its own (nothing else is instantiated)."""
    if not isinstance(data_cfg, Namespace) or not data_cfg.get("class_path"):
        return None
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data")
    return parser.instantiate_classes(Namespace(data=data_cfg)).data


def preflight_data(dm: Any) -> None:
    """Run a DataModule's `preflight()` when it has one (trickbench's released datasets: files present, downloaded
    when allowed, checksums), so a missing or damaged dataset stops a run before it starts."""
    if dm is not None and callable(getattr(dm, "preflight", None)):
        dm.preflight()


def _class_of(entry: Any) -> type | None:
    """The class a parsed `class_path` entry names (None for a plain string such as a precision plugin name)."""
    path = entry.get("class_path") if hasattr(entry, "get") else None
    if not isinstance(path, str) or "." not in path:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name, None)


def _spec(cls: type) -> Namespace:
    """A `class_path` entry with the class's default arguments written out (as the parser writes a parsed one), so
    config.yaml reads the same after a re-run; a class with non-scalar defaults (RichProgressBar's theme) gets none."""
    params = [p for p in inspect.signature(cls).parameters.values() if p.default is not inspect.Parameter.empty]
    scalar = all(isinstance(p.default, (bool, int, float, str, type(None))) for p in params)
    args = Namespace(**{p.name: p.default for p in params}) if scalar else Namespace()
    parts = cls.__module__.split(".")
    home = next(
        m
        for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        if getattr(importlib.import_module(m), cls.__name__, None) is cls
    )  # shortest public path
    return Namespace(class_path=f"{home}.{cls.__name__}", init_args=args)


def resolve_trainer_defaults(trainer: Namespace) -> list[str]:
    """Complete a parsed `trainer` section in place with trickbench's defaults (configs/trainer/default.yaml) that a
    config's own `callbacks:` / `plugins:` list replaced, and resolve the progress-bar rule, so the saved
    config.yaml names every callback and plugin of the run. Returns the names of the defaults added back."""
    from trickbench.callbacks import (
        AtomicCheckpointIO,
        ExactResume,
        FiniteLossGuard,
        LastCheckpoint,
        LearningRateMonitor,
        PlainProgress,
    )

    cbs = trainer.get("callbacks") or []
    cbs = list(cbs) if isinstance(cbs, list) else [cbs]

    def has(kind: type | tuple[type, ...], but: type | None = None) -> bool:
        return any(
            (k := _class_of(c)) is not None and issubclass(k, kind) and not (but and issubclass(k, but)) for c in cbs
        )

    missing = [cls for cls in (ExactResume, FiniteLossGuard) if not has(cls)]  # in configs/trainer/default.yaml's order
    added = [cls.__name__ for cls in missing]
    cbs += [_spec(cls) for cls in missing]
    if has(ModelCheckpoint, but=LastCheckpoint):  # the config chose its checkpoints: no second writer of last.ckpt
        cbs = [c for c in cbs if not ((k := _class_of(c)) is not None and issubclass(k, LastCheckpoint))]
    elif not has(LastCheckpoint):
        cbs.append(_spec(LastCheckpoint))
        added.append("LastCheckpoint")
    if not has(LRMonitorBase):  # Lightning's own LearningRateMonitor counts as one
        cbs.append(_spec(LearningRateMonitor))
        added.append("LearningRateMonitor")
    bar = trainer.get("enable_progress_bar")
    if bar is None and not sys.stdout.isatty() and not has(ProgressBar):
        # Left unset while stdout is a file or pipe (SLURM log, subprocess): a bar there prints only its final
        # state, yet reads and formats the metrics every batch.
        trainer.enable_progress_bar = bar = False
    if not has(ProgressBar) and bar is not False:
        cbs.append(_spec(RichProgressBar))
    elif not has((ProgressBar, PlainProgress)):
        cbs.append(_spec(PlainProgress))  # no bar (a file, SLURM log, pipe): one plain line per epoch
    trainer.callbacks = cbs
    plugins = trainer.get("plugins")
    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, list) else [plugins]
    if not any((k := _class_of(p)) is not None and issubclass(k, CheckpointIO) for p in plugins):
        plugins.append(_spec(AtomicCheckpointIO))
        added.append("AtomicCheckpointIO")
    trainer.plugins = plugins
    return added


def plain_summary(trainer: Any) -> Any:
    """Swap the model summary that `enable_model_summary` made Lightning add (its own class, with a FLOPs column
    of zeros) for `trickbench.callbacks.ModelSummary` of the same depth; a summary callback the config names stays."""
    from lightning.pytorch.callbacks import ModelSummary as LightningSummary
    from lightning.pytorch.callbacks import RichModelSummary

    from trickbench.callbacks import ModelSummary

    for i, cb in enumerate(trainer.callbacks):
        if type(cb) in (LightningSummary, RichModelSummary):
            trainer.callbacks[i] = ModelSummary()  # Lightning adds its own with the default depth (1)
    return trainer


def finish_wandb_run() -> None:
    """End this invocation's W&B run: Lightning's WandbLogger leaves it open, and the next `main()` in the same
    Python process (tests, notebooks) would otherwise log into it instead of starting (or resuming) its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def report_hparam_differences(ckpt_path: str, model_cfg: Any) -> None:
    """Print the model arguments that differ from those saved in the checkpoint (the configured ones run)."""
    import torch

    try:
        saved = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters") or {}
    except Exception:  # not a Lightning checkpoint: nothing to compare; loading it later reports the problem
        return
    given = dict((model_cfg.get("init_args") or {}).items()) if hasattr(model_cfg, "get") else {}
    diffs = [
        f"{k}: checkpoint {saved[k]!r} -> running {given[k]!r}"
        for k in sorted(saved)
        if k in given and isinstance(saved[k], (bool, int, float, str, type(None))) and saved[k] != given[k]
    ]
    if diffs and rank_zero_only.rank == 0:
        print(
            "model arguments differ from the checkpoint's (the configured values are used):\n  " + "\n  ".join(diffs),
            file=sys.stderr,
        )


def record_early_failure(cli: TrickbenchCLI | None, err: BaseException) -> None:
    """An error before the Trainer exists (a bad argument rejected while the classes are built), and so before
    `RunRecord` can record anything, still leaves `status: failed` with the error in the run directory this
    process owns (holds the lock of). Errors once the Trainer exists are RunRecord's."""
    if cli is None or cli.run_lock is None or hasattr(cli, "trainer"):
        return
    path = Path(cli._cfg().run_dir) / "metrics.json"
    try:
        record = load_record(path)
    except RunRecordError:
        return
    error = error_text(err)
    record.update(status="failed", error=error)
    record.setdefault("segments", []).append(
        {"pid": os.getpid(), "exit": f"failed: {error[:200]}", "fit_seconds": 0.0, "wall_seconds": 0.0}
    )
    atomic_write_json(path, record)


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
        record_early_failure(TrickbenchCLI.current, err)
        raise
    finally:
        finish_wandb_run()
        lock = getattr(TrickbenchCLI.current, "run_lock", None)  # also when the CLI raised while being built
        TrickbenchCLI.current = None
        if lock is not None:
            lock.release()
        if rank_zero_only.rank == 0:
            os.environ.pop(RUN_DIR_ENV, None)


def construction_error(err: BaseException) -> str | None:
    """The argument check inside jsonargparse's "Does not validate against any of the Union subtypes" error
    (raised when a class rejects a value while being built), or None for other errors."""
    return union_reason(str(err)) if isinstance(err, ValueError) else None


DEBUG_ENV = "TRICKBENCH_DEBUG"  # set to 1 to see the traceback behind a one-line error


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


def fail(err: BaseException, line: str) -> NoReturn:
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise err
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)
