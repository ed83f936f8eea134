"""Let a held-back SLURM time-limit warning through once the Trainer can handle it (`trickbench.signals`).

Lightning registers its signal handlers in `Trainer._run` just before the stage's loop, so every `on_*_start`
hook below runs with them in place (tests/test_slurm_signal.py fails if that order changes). Between stages
and between the runs of one process (`trickbench.scripts.ablation.batch`) the handlers are removed again, so `teardown`
holds the signal once more. A process whose entry point did not hold it (a Trainer used in-process, e.g. from
a notebook) is left exactly as it was.
"""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from trickbench import signals


class SignalGate(Callback):
    """Unblock SIGUSR1 when a loop starts, block it again at teardown, if it was held when the stage was set up.
    Added by the CLI to every Trainer (the entry point holds the signal, so the release must always come with
    it); not a config option."""

    def __init__(self) -> None:
        self.gated = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.gated = signals.held()  # setup runs before the Trainer registers its handlers

    def _open(self, *_: object) -> None:
        if self.gated:
            signals.release()

    on_sanity_check_start = on_train_start = on_validation_start = on_test_start = on_predict_start = _open

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.gated:
            signals.hold()
