"""What the training CLI adds to a parsed config before anything is built: trickbench's trainer defaults
(configs/trainer/default.yaml, re-added when a config replaces the callback list), the data seed that follows the
run seed, the W&B mode, the DataModule's preflight, and the clean-ups after a fit (SLURM requeue checkpoints, the
W&B run)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import LearningRateMonitor as LRMonitorBase
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from trickbench.config_files import configs_dir

DEFAULTS_YAML = configs_dir() / "trainer" / "default.yaml"  # applied before every config


def wandb_mode() -> str:
    """WANDB_MODE if set; else online only when credentials exist (no key -> offline, never a login prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "api.wandb.ai" in netrc.read_text())
    return "online" if has_key else "offline"


def drop_hpc_checkpoints(trainer: Any) -> None:
    """Delete the `hpc_ckpt_<n>.ckpt` files written at each time-limit requeue (`trickbench.run.agreed_signals`),
    once the fit they resumed has completed. `last.ckpt` supersedes them (the SIGTERM that follows a requeue saves
    it, and the harness resumes from it); left in place, Lightning would load the newest of them, not the final
    weights, for every later `test` or `validate` of this Trainer under SLURM (a requeued run reported the test
    metrics of an earlier requeue's weights)."""
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
    from trickbench.run import (
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
    of zeros) for `trickbench.run.ModelSummary` of the same depth; a summary callback the config names stays."""
    from lightning.pytorch.callbacks import ModelSummary as LightningSummary
    from lightning.pytorch.callbacks import RichModelSummary

    from trickbench.run import ModelSummary

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
