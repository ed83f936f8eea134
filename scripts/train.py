"""Training entry point: `python -m scripts.train fit --config configs/cifar10_resnet18.yaml`.

LightningCLI with three additions: every run gets a run directory (resolved config,
checkpoints, CSV + W&B logs, metrics.json), `fit` is followed by `test` on the final weights
(`--test_after_fit false` to skip), and W&B falls back to offline mode when no API key is set.
Reliability defaults (README, "Guarantees"): checkpoints are written atomically, global RNGs are
reseeded per batch from (seed, rank, batch) so a resumed run is bitwise the uninterrupted one, a
NaN/inf loss stops the run naming the step, and `fit --ckpt_path` resumes the same W&B run.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from callbacks.atomic_checkpoint import AtomicCheckpointIO
from callbacks.exact_resume import ExactResume
from callbacks.finite_guard import FiniteLossGuard
from callbacks.run_record import RunRecord, atomic_write_text

STARTED_AT = time.perf_counter()


def wandb_mode() -> str:
    """WANDB_MODE if set; else online only when credentials exist (no key -> offline, never a login prompt)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "api.wandb.ai" in netrc.read_text())
    return "online" if has_key else "offline"


class RunDirConfig(SaveConfigCallback):
    """Save the resolved config as `<run_dir>/config.yaml` (not inside a logger's version folder)."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / self.config_filename
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=False)
        self.already_saved = True


class TrickbenchCLI(LightningCLI):
    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        super().__init__(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=RunDirConfig,
            auto_configure_optimizers=False,  # modules own configure_optimizers (param groups, schedules)
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--run_dir", type=str | None, default=None, help="Run directory (default runs/<time>)")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the final weights after fit")
        parser.add_argument("--wandb.project", type=str, default="trickbench")
        parser.add_argument("--wandb.group", type=str | None, default=None, help="W&B group (ablation name)")
        parser.add_argument("--wandb.tags", type=list[str], default=[], help="W&B tags (ablation arm)")
        parser.add_argument("--wandb.name", type=str | None, default=None)

    def _cfg(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Any:
        cfg = self._cfg()
        run_dir = Path(cfg.run_dir or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")).resolve()
        cfg.run_dir = str(run_dir)
        config["default_root_dir"] = str(run_dir)
        if config.get("logger") in (None, True):
            wb = cfg.wandb
            config["logger"] = [CSVLogger(str(run_dir), name="csv", version="")]
            # WANDB_MODE=disabled: no WandbLogger at all. A disabled one still imports wandb and starts a dummy
            # run (~0.5 s CPU per process, measured on this 2-core Xeon) and logs nowhere.
            if wandb_mode() != "disabled":
                config["logger"].append(WandbLogger(
                    project=wb.project, group=wb.group, tags=list(wb.tags) or None, name=wb.name or run_dir.name,
                    save_dir=str(run_dir), mode=wandb_mode(), id=self._wandb_run_id(run_dir), resume="allow",
                ))  # fmt: skip
        own = list(config.get("callbacks") or [])
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config["plugins"] = plugins + [AtomicCheckpointIO()]
        for default in (ExactResume, FiniteLossGuard):  # exact resume + per-rank streams; stop at a NaN loss
            if not any(isinstance(c, default) for c in own):
                callbacks.append(default())
        if not any(isinstance(c, ModelCheckpoint) for c in own):
            callbacks.append(ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), save_last=True))
        for c in own:  # a configured ModelCheckpoint without a dirpath saves into the run directory too
            if isinstance(c, ModelCheckpoint) and c.dirpath is None:
                c.dirpath = str(run_dir / "checkpoints")
        bar = config.get("enable_progress_bar")
        if bar is None and not sys.stdout.isatty() and not any(isinstance(c, ProgressBar) for c in own):
            # Left unset while stdout is a file or pipe (SLURM log, subprocess): a bar there prints only its
            # final state, yet reads and formats the metrics every batch (~0.3 ms, from a cProfile of the MNIST
            # MLP run). `--trainer.enable_progress_bar true` keeps it.
            config["enable_progress_bar"] = bar = False
        if not any(isinstance(c, ProgressBar) for c in own) and bar is not False:
            callbacks.append(RichProgressBar())
        callbacks.append(RunRecord(str(run_dir), started_at=STARTED_AT))
        return super()._instantiate_trainer(config, callbacks)

    def _wandb_run_id(self, run_dir: Path) -> str:
        """The W&B run id resumes with the checkpoint: `fit --ckpt_path X` reuses the id stored in X's run
        directory (`<run_dir>/wandb_run_id`); a fresh fit gets a new id. Written by rank 0 only."""
        ckpt = self._cfg().get("ckpt_path") if self.subcommand == "fit" else None
        src = run_dir if ckpt in ("last", "best", "hpc", "registry") else Path(str(ckpt)).resolve().parent.parent
        stored = src / "wandb_run_id"
        run_id = stored.read_text().strip() if ckpt and stored.is_file() else secrets.token_hex(4)
        if self.subcommand == "fit" and rank_zero_only.rank == 0:
            atomic_write_text(run_dir / "wandb_run_id", run_id + "\n")
        return run_id

    def after_fit(self) -> None:
        if self._cfg().test_after_fit and not self.trainer.interrupted:
            self.trainer.test(self.model, datamodule=self.datamodule)





def finish_wandb_run() -> None:
    """End this invocation's W&B run: Lightning's WandbLogger leaves it open, and the next `main()` in the same
    Python process (tests, notebooks) would otherwise log into it instead of starting (or resuming) its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def main(args: Any = None) -> TrickbenchCLI:
    try:
        return TrickbenchCLI(args=args)
    finally:
        finish_wandb_run()


if __name__ == "__main__":
    main()
