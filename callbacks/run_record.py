"""What every run leaves behind: `metrics.json` (final metrics, times, data fingerprint), written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from lightning.pytorch import Callback, LightningModule, Trainer


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """`write(fh)` into a temp file in the same directory, fsync, rename over `path`: readers (and a
    resumed run after a crash) see the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class RunRecord(Callback):
    """Writes `<run_dir>/metrics.json` on rank 0 after fit and after test.

    Keys: `val` / `test` (final `val/*`, `test/*` metrics), `fit_seconds`, `test_seconds`,
    `wall_seconds` (since the process started building the run, data loading included),
    `data_fingerprint`, `global_step`, `epoch`, `status` (`fit_completed`, `fit_interrupted`,
    `completed` after test, `failed` with `error` when an exception ended the run).
    """

    def __init__(self, run_dir: str, started_at: float | None = None) -> None:
        self.path = Path(run_dir) / "metrics.json"
        self.started_at = started_at if started_at is not None else time.perf_counter()
        self._t0: dict[str, float] = {}
        self.record: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _stage_metrics(self, trainer: Trainer, prefix: str) -> dict[str, float]:
        out = {}
        for k, v in trainer.callback_metrics.items():
            if k.startswith(prefix + "/") and (s := _scalar(v)) is not None:
                out[k.split("/", 1)[1]] = s
        return out

    def _write(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        self.record.update(
            wall_seconds=round(time.perf_counter() - self.started_at, 3),
            data_fingerprint=getattr(dm, "fingerprint", "") if dm is not None else "",
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
        )
        atomic_write_text(self.path, json.dumps(self.record, indent=2, sort_keys=True) + "\n")

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["fit"] = time.perf_counter()
        self.record.pop("error", None)  # a resumed run starts clean

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record["val"] = self._stage_metrics(trainer, "val")
        self.record["fit_seconds"] = round(time.perf_counter() - self._t0.get("fit", self.started_at), 3)
        self.record["status"] = "fit_interrupted" if trainer.interrupted else "fit_completed"
        self._write(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A crashed run says so (and why) instead of leaving a stale or missing record."""
        self.record["status"] = "failed"
        self.record["error"] = f"{type(exception).__name__}: {exception}"[:2000]
        self._write(trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0["test"] = time.perf_counter()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.record["test"] = self._stage_metrics(trainer, "test")
        self.record["test_seconds"] = round(time.perf_counter() - self._t0["test"], 3)
        self.record["status"] = "completed"
        self._write(trainer)
