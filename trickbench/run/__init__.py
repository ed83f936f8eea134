"""Run plumbing: everything a run needs that is not a trick. The run directory and its lock (`run_dir`), the
run-dir policy of the training CLI (`policy`), the run record `metrics.json` (`record`: schema and status
vocabulary; `recorder`: the callback that writes it), exact resume, the NaN/inf guard, atomic checkpoints, the
SLURM signal gate, signals acted on by all ranks at once, the plain progress line, the model summary, the
learning-rate monitor and the resumable CSV log.

The callbacks and the checkpoint plugin are importable from here (`trickbench.run.ExactResume`, as
configs/trainer/default.yaml names them); they load lazily, so `trickbench.run.record` stays free of Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "AgreedSignals": "agreed_signals",
    "AtomicCheckpointIO": "atomic_checkpoint",
    "LastCheckpoint": "atomic_checkpoint",
    "ExactResume": "exact_resume",
    "FiniteLossGuard": "finite_guard",
    "LearningRateMonitor": "lr_monitor",
    "PlainProgress": "progress",
    "SizedForGPUNote": "progress",
    "RunRecord": "recorder",
    "SignalGate": "signal_gate",
    "ModelSummary": "summary",
    "ResumableCSVLogger": "csv_log",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trickbench.run' has no attribute {name!r}")
    return getattr(importlib.import_module(f"trickbench.run.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
