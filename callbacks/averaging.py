"""Weight averaging that helps: airbench's Lookahead and an EMA whose BatchNorm statistics match it.

Written by hand because Lightning's `EMAWeightAveraging` averages BatchNorm's running statistics
together with the weights, and averaged statistics do not belong to averaged weights: such an average can
score far below the live net (results/bench/ema_variants/). Here:

- `Lookahead` (airbench94): every `every` steps the average moves toward the live weights *and the
  live weights are reset to it*, so statistics and weights never drift apart; the decay rises over
  training as `decay**every * (step / total)**power` (airbench: 0.95**5 * (step/total)**3) and the
  final weights are the average (copied into the live ones at the last step).
- `EMA`: a shadow copy (Polyak / timm ModelEma) with decay `decay` (optionally warmed up as
  min(decay, (1 + n) / (10 + n))). Its BatchNorm buffers are copied from the live net ("copy"), averaged
  ("average", Lightning's behaviour) or recomputed on `update_bn_batches` training batches before it is
  evaluated ("recompute", torch.optim.swa_utils.update_bn). Validation, test and the checkpoint's
  `state_dict` use the average; the live weights ride in the callback's state for resuming.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from trickbench.checks import check_range
from trickbench.lightning_modules.ops.averaging import ema_decay, float_state, lerp_into, lookahead_decay

Buffers = Literal["copy", "average", "recompute"]


def _net(pl_module: LightningModule) -> nn.Module:
    return getattr(pl_module, "net", pl_module)


class Lookahead(Callback):
    """airbench94's Lookahead: every `every` optimizer steps, average <- lerp(average, live, 1 - d(step)) and
    live <- average (parameters and BatchNorm statistics), d(step) = decay**every * (step / total)**power.
    At the last step of the run the live weights become the average.

    Args:
        every: optimizer steps between updates (airbench94: 5).
        decay: per-step decay at the end of training (airbench94: 0.95).
        power: exponent of the rise over training (airbench94: 3).
    """

    def __init__(self, every: int = 5, decay: float = 0.95, power: float = 3.0) -> None:
        if every < 1 or power < 0:
            raise ValueError(f"Lookahead needs every >= 1 and power >= 0, got every={every}, power={power}")
        check_range("Lookahead", "decay", decay, 0.0, 1.0)
        self.every, self.decay, self.power = every, decay, power
        self.average: dict[str, torch.Tensor] = {}
        self._loaded: dict[str, torch.Tensor] | None = None
        self.final_live: dict[str, torch.Tensor] | None = None  # the live weights the last step produced

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        live = float_state(_net(pl_module), buffers=True)
        source = self._loaded if self._loaded is not None else live
        self.average = {k: source[k].detach().clone().to(v.device) for k, v in live.items()}
        self._loaded = None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, total = trainer.global_step, int(trainer.estimated_stepping_batches)
        last = step >= total
        if step % self.every and not last:
            return
        live = float_state(_net(pl_module), buffers=True)
        if last:  # kept (and checkpointed) so the live weights can still be scored against the average
            self.final_live = {k: v.detach().cpu().clone() for k, v in live.items()}
        if step % self.every == 0:
            lerp_into(self.average, live, lookahead_decay(step, total, self.decay, self.every, self.power))
        with torch.no_grad():
            for k, a in self.average.items():
                live[k].copy_(a)  # at the last step the final weights are the average (decay 1)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"average": {k: v.detach().cpu().clone() for k, v in self.average.items()}}
        if self.final_live is not None:
            state["final_live"] = self.final_live
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._loaded = state["average"]
        self.final_live = state.get("final_live")


class EMA(Callback):
    """Exponential moving average of the weights, evaluated with BatchNorm statistics that belong to it.

    Args:
        decay: per-update decay (horizon ~ every / (1 - decay) steps).
        every: optimizer steps between updates.
        start_step: first optimizer step that updates the average (before it, the average is a copy).
        warmup: warm the decay up as min(decay, (1 + n) / (10 + n)) over the first updates (timm, TF).
        buffers: "copy" the live BatchNorm statistics, "average" them, or "recompute" them for the average.
        update_bn_batches: training batches (un-augmented) used by buffers="recompute".
    """

    def __init__(
        self,
        decay: float = 0.998,
        every: int = 1,
        start_step: int = 0,
        warmup: bool = False,
        buffers: Buffers = "copy",
        update_bn_batches: int = 10,
    ) -> None:
        check_range("EMA", "decay", decay, 0.0, 1.0)
        if every < 1 or start_step < 0 or update_bn_batches < 1:
            raise ValueError(
                f"EMA needs every >= 1, start_step >= 0, update_bn_batches >= 1; got {every}, "
                f"{start_step}, {update_bn_batches}"
            )
        if buffers not in ("copy", "average", "recompute"):
            raise ValueError(f"EMA buffers must be 'copy', 'average' or 'recompute', got {buffers!r}")
        self.decay, self.every, self.start_step, self.warmup = decay, every, start_step, warmup
        self.buffers, self.update_bn_batches = buffers, update_bn_batches
        self.average: nn.Module | None = None
        self.updates = 0
        self._swapped = False
        self._live: dict[str, torch.Tensor] | None = None  # live weights from a checkpoint, applied at fit start
        self._live_ref: nn.Module | None = None

    # --- the average ---------------------------------------------------------------------------
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if any(isinstance(cb, Lookahead) for cb in trainer.callbacks):
            rank_zero_warn(
                "EMA stacked on Lookahead averages the weights twice: Lookahead already replaces the weights by its "
                "average, EMA then averages those, and the test scores EMA's average of an average. Drop one "
                "(tricks/ema, or the preset's Lookahead) unless that is the experiment.",
                category=UserWarning,
            )
        net = _net(pl_module)
        self.average = copy.deepcopy(net).requires_grad_(False)
        if self._live is not None:  # resumed: the module holds the checkpoint's average, the live ones are here
            net.load_state_dict(self._live)
            self._live = None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step < self.start_step or step % self.every:
            return
        live = _net(pl_module)
        average = float_state(self.average, buffers=self.buffers == "average")
        lerp_into(
            average,
            float_state(live, buffers=self.buffers == "average"),
            ema_decay(self.updates, self.decay, self.warmup),
        )
        self.updates += 1

    @torch.no_grad()
    def _prepare(self, trainer: Trainer, live: nn.Module) -> None:
        """Give the average the BatchNorm statistics it is evaluated with."""
        if self.buffers == "copy":
            for a, b in zip(self.average.buffers(), live.buffers()):
                a.copy_(b)
        elif self.buffers == "recompute":
            dm = trainer.datamodule
            loader = dm.train_dataloader() if dm is not None else trainer.train_dataloader
            transform = getattr(dm, "eval_transform", None) or (lambda x: x)  # un-augmented, as at test time
            device = next(live.parameters()).device
            batches = (transform(x.to(device)) for x, _ in itertools.islice(loader, self.update_bn_batches))
            torch.optim.swa_utils.update_bn(batches, self.average)

    def _swap(self, live: nn.Module) -> None:
        with torch.no_grad():
            for a, b in zip(
                itertools.chain(self.average.parameters(), self.average.buffers()),
                itertools.chain(live.parameters(), live.buffers()),
            ):
                tmp = a.detach().clone()
                a.copy_(b)
                b.copy_(tmp)
        self._swapped = not self._swapped

    # --- evaluation uses the average -------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.average is not None and trainer.state.fn == "fit" and not self._swapped:
            self._prepare(trainer, _net(pl_module))
            self._swap(_net(pl_module))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._swapped and trainer.state.fn == "fit":
            self._swap(_net(pl_module))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The run's final weights (tested after fit) are the average.
        if self.average is not None:
            self._prepare(trainer, _net(pl_module))
            _net(pl_module).load_state_dict(self.average.state_dict())

    # --- checkpoints: state_dict holds the average, the callback state the live weights ------------
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.average is None or self._swapped:
            return
        live = _net(pl_module)
        self._prepare(trainer, live)
        prefix = next((n + "." for n, m in pl_module.named_modules() if m is live and n), "")
        for k, v in self.average.state_dict().items():
            checkpoint["state_dict"][prefix + k] = v.detach().clone()

    def state_dict(self) -> dict[str, Any]:
        live = None
        if self.average is not None and self._live_ref is not None:
            live = {k: v.detach().cpu().clone() for k, v in self._live_ref.state_dict().items()}
        return {"updates": self.updates, "live": live}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self._live = state["updates"], state["live"]

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._live_ref = _net(pl_module)
