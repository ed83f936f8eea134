"""When a training step's values reach a logger, one rule for every LightningModule here.

Each `self.log` call costs Lightning bookkeeping on every step it is made (a fixed cost that a small net's step
does not hide: results/bench/step_overhead/), and with a progress bar Lightning turns the value into a Python
float, a host sync. So a training step logs only when Lightning will write the value (every
`log_every_n_steps` optimizer steps, and when stopping), plus on each epoch's first batch so `callback_metrics`
has the keys from the start; in between, `callback_metrics` keeps the last logged value. With
`log_every_n_steps: 1` every step logs, as in plain Lightning.
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer


def attached_trainer(module: LightningModule) -> Trainer | None:
    """The module's Trainer, or None when it is used on its own (tests, notebooks)."""
    try:
        return module.trainer
    except RuntimeError:  # "... is not attached to a `Trainer`"
        return None


def log_step_now(module: LightningModule, batch_idx: int) -> bool:
    """Whether this training step's values reach a logger. Lightning's rule in public terms: the optimizer step
    about to be taken, `global_step + 1`, is a multiple of `log_every_n_steps`."""
    trainer = attached_trainer(module)
    if trainer is None:  # used on its own: there is no logger to reach (self.log would only warn)
        return False
    if batch_idx == 0 or trainer.fast_dev_run or trainer.should_stop:
        return True
    every = trainer.log_every_n_steps
    return every > 0 and (trainer.global_step + 1) % every == 0


def with_bar(module: LightningModule) -> bool:
    """Whether a progress bar shows the value (prog_bar=True makes Lightning sync it to the host every step)."""
    trainer = attached_trainer(module)
    return trainer is not None and trainer.progress_bar_callback is not None
