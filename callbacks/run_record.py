"""What every run leaves behind: `metrics.json` (final metrics, times, data fingerprint), written atomically."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from trickbench.io import atomic_write_json, error_text


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class RunRecordError(RuntimeError):
    """A run's `metrics.json` exists but cannot be read; the message names the file and the remedy."""


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """A run's metrics.json as a dict ({} when absent); a damaged file is one clear `RunRecordError`."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RunRecordError(
            f"{path} is damaged ({type(err).__name__}: {err}). Move it aside (e.g. to "
            f"{path.name}.damaged) and resume with --ckpt_path last; `trickbench.scripts.ablate` does this itself."
        ) from err
    if not isinstance(record, dict):
        raise RunRecordError(f"{path} does not hold a JSON object; move it aside and resume with --ckpt_path last")
    return record


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
        self.path = Path(run_dir) / "metrics.json"
        self.started_at = started_at if started_at is not None else time.time()  # epoch seconds
        self._t0: dict[str, float] = {}
        self.record: dict[str, Any] = load_record(self.path)
        for seg in self.record.get("segments", []):
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
        self.record.setdefault("segments", []).append(self.segment)
        if provenance is not None:
            self.segment["host"] = provenance.get("host")
            self.record["provenance"] = provenance

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
        segments = self.record["segments"]
        dm = trainer.datamodule
        self.record.update(
            fit_seconds=round(sum(s.get("fit_seconds") or 0 for s in segments), 3),
            wall_seconds=round(sum(s.get("wall_seconds") or 0 for s in segments), 3),
            data_fingerprint=getattr(dm, "fingerprint", "") if dm is not None else "",
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
        )
        atomic_write_json(self.path, self.record)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["fit"] = time.perf_counter()
        for key in ("error", "signal"):  # a resumed run starts clean
            self.record.pop(key, None)
        self.record["status"] = "running"
        self._write(trainer)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.record.get("status") == "running":  # times and val so far count even if this process dies later
            self._keep_val(trainer)
            self._write(trainer)

    def _keep_val(self, trainer: Trainer) -> None:
        val = self._stage_metrics(trainer, "val")
        if val or "val" not in self.record:  # a resumed process that ran no validation keeps the last one
            self.record["val"] = val

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._keep_val(trainer)
        self.record["status"] = "fit_interrupted" if trainer.interrupted else "fit_completed"
        self._write(trainer, self.record["status"])
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
            self.record.update(status="interrupted", signal="SIGTERM")
            self._write(trainer, "interrupted: SIGTERM")
            return
        self.record["status"] = "failed"
        self.record["error"] = error_text(exception)
        self._write(trainer, f"failed: {self.record['error'][:200]}")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["test"] = time.perf_counter()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record["test"] = self._stage_metrics(trainer, "test")
        self.record["test_seconds"] = round(time.perf_counter() - self._t0["test"], 3)
        self.record["status"] = "completed"
        self._write(trainer, "completed")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # `validate` subcommand: its own record
            self.record["val"] = self._stage_metrics(trainer, "val")
            self.record["status"] = "completed"
            self._write(trainer, "completed")
