"""The callback that keeps a run's record (`metrics.json`, schema in trickbench/run/record.py) up to date."""

from __future__ import annotations

import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from trickbench.io import error_text
from trickbench.run import record as run_record
from trickbench.run.record import Record, Status


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class RunRecord(Callback):
    """Writes `<run_dir>/metrics.json` on rank 0: after fit, after test, at every checkpoint and at a failure.

    Keys: `val` / `test` (final `val/*`, `test/*` metrics; `val` keeps the last validation of any
    process of the run), `fit_seconds`, `test_seconds`, `wall_seconds` (both summed over every
    process of the run; wall time from each process's start, or from `main()` for later runs in one
    process), `segments` (one per process: pid, host, start, end, exit, fit/wall seconds; a process
    that died without a word is closed as `lost`, its times counted up to its last checkpoint),
    `data_fingerprint`, `global_step`, `epoch`, `provenance`, and `status`: `running`,
    `fit_completed`, `completed` after test, `interrupted` (with `signal`) when SIGTERM stopped it,
    `failed` with `error` when an exception ended the run.

    Args:
        run_dir: the run directory (metrics.json goes there)
        started_at: process start time (epoch seconds) that wall time counts from; null is now
        provenance: versions, git commit and machine, recorded as given
    """

    def __init__(self, run_dir: str, started_at: float | None = None, provenance: dict | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = run_record.path_of(run_dir)
        self.started_at = started_at if started_at is not None else time.time()  # epoch seconds
        self._t0: dict[str, float] = {}
        self.record: Record = run_record.load(run_dir) or Record()
        for seg in self.record.segments:
            if seg.get("exit") == "running":
                seg["exit"] = "lost: the process ended without writing its record (killed?)"
        self.segment: dict[str, Any] = {
            "pid": os.getpid(),
            "start": _now(),
            "end": None,
            "exit": "running",
            "fit_seconds": 0.0,
            "wall_seconds": 0.0,
        }
        self.record.segments.append(self.segment)
        if provenance is not None:
            self.segment["host"] = provenance.get("host")
            self.record.provenance = provenance

    def _stage_metrics(self, trainer: Trainer, prefix: str) -> dict[str, float]:
        out = {}
        for k, v in trainer.callback_metrics.items():
            if k.startswith(prefix + "/") and (s := _scalar(v)) is not None:
                out[k.split("/", 1)[1]] = s
        return out

    def _write(self, trainer: Trainer, exit_reason: str | None = None) -> None:
        if not trainer.is_global_zero:
            return
        if "fit" in self._t0:
            self.segment["fit_seconds"] = round(time.perf_counter() - self._t0["fit"], 3)
        self.segment["wall_seconds"] = round(time.time() - self.started_at, 3)
        if exit_reason is not None:
            self.segment.update(exit=exit_reason, end=_now())
        rec, dm = self.record, trainer.datamodule
        rec.fit_seconds = round(sum(s.get("fit_seconds") or 0 for s in rec.segments), 3)
        rec.wall_seconds = round(sum(s.get("wall_seconds") or 0 for s in rec.segments), 3)
        rec.data_fingerprint = getattr(dm, "fingerprint", "") if dm is not None else ""
        rec.global_step, rec.epoch = trainer.global_step, trainer.current_epoch
        run_record.save(self.run_dir, rec)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["fit"] = time.perf_counter()
        self.record.error = self.record.signal = None  # a resumed run starts clean
        self.record.status = Status.RUNNING
        self._write(trainer)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.record.status is Status.RUNNING:  # times and val so far count even if this process dies later
            self._keep_val(trainer)
            self._write(trainer)

    def _keep_val(self, trainer: Trainer) -> None:
        val = self._stage_metrics(trainer, "val")
        if val or self.record.val is None:  # a resumed process that ran no validation keeps the last one
            self.record.val = val

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._keep_val(trainer)
        self.record.status = Status.FIT_INTERRUPTED if trainer.interrupted else Status.FIT_COMPLETED
        self._write(trainer, self.record.status.value)
        self._t0.pop("fit", None)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A crashed run says so (and why) instead of leaving a stale or missing record; a SIGTERM'd one
        (SLURM time limit, `kill`) says `interrupted` and keeps a checkpoint of the step it stopped at."""
        if isinstance(exception, SIGTERMException):
            self._keep_val(trainer)
            if trainer.state.fn == TrainerFn.FITTING and trainer.checkpoint_callback is not None:
                dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
                if dirpath:  # every rank takes part in the save (it is collective under DDP)
                    trainer.save_checkpoint(os.path.join(dirpath, "last.ckpt"))
            self.record.status, self.record.signal = Status.INTERRUPTED, "SIGTERM"
            self._write(trainer, "interrupted: SIGTERM")
            return
        self.record.status, self.record.error = Status.FAILED, error_text(exception)
        self._write(trainer, f"failed: {self.record.error[:200]}")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["test"] = time.perf_counter()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record.test = self._stage_metrics(trainer, "test")
        self.record.test_seconds = round(time.perf_counter() - self._t0["test"], 3)
        self.record.status = Status.COMPLETED
        self._write(trainer, "completed")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # `validate` subcommand: its own record
            self.record.val = self._stage_metrics(trainer, "val")
            self.record.status = Status.COMPLETED
            self._write(trainer, "completed")
