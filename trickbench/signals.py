"""SLURM's time-limit warning (SIGUSR1, `--signal=USR1@S`) held back until the run can act on it.

sbatch(1): "the signal may be sent up to 60 seconds earlier than specified". The requeue handler
(`trickbench.run.AgreedSignals`: checkpoint, then `scontrol requeue`) exists only once the Trainer sets up,
seconds to minutes after the process started; SIGUSR1's default action ends the process, so a warning that came
while the run was importing torch, reading data or restoring a checkpoint killed it with no record and no requeue.

The entry points (`trickbench.cli.main`, `trickbench.scripts.ablation.batch`) call `hold()` first: a blocked signal
stays
pending, neither lost nor fatal. `trickbench.run.SignalGate`, which the CLI adds to every Trainer, calls
`release()`
from the hooks that run after the Trainer registered its handlers, and the pending warning is handled then.
The hold lasts for the rest of the process (these are process entry points): code that calls `trickbench.cli.main`
in-process, rather than `trickbench.main`, keeps USR1 blocked afterwards unless it calls `release()`.
Standard library only (it runs before torch is imported); a no-op where there is no SIGUSR1 (Windows).
"""

from __future__ import annotations

import signal

REQUEUE = getattr(signal, "SIGUSR1", None)  # Lightning's SLURMEnvironment.requeue_signal default


def _supported() -> bool:
    return REQUEUE is not None and hasattr(signal, "pthread_sigmask")


def hold() -> None:
    """Block SIGUSR1 in this thread (threads and processes started from it inherit the mask)."""
    if _supported():
        signal.pthread_sigmask(signal.SIG_BLOCK, {REQUEUE})


def release() -> None:
    """Unblock SIGUSR1; one that arrived while held is delivered now, to whatever handler is installed."""
    if _supported():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {REQUEUE})


def held() -> bool:
    return _supported() and REQUEUE in signal.pthread_sigmask(signal.SIG_BLOCK, [])
