"""Image/vector classification with cross-entropy; the CIFAR-10 tricks plug in here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from trickbench.checks import check_range
from trickbench.lightning_modules import optim
from trickbench.lightning_modules.ops.tta import tta_logits
from trickbench.lightning_modules.step_logging import log_step_now, with_bar

# (x, logits, targets) -> scalar. targets are class ids, or soft targets (N, C) under mixup.
LossTerm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
BatchMix = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Classifier(LightningModule):
    """Cross-entropy classifier. Logs `train/loss`, `train/acc`, `val/...`, `test/...`.

    Extension hook for callbacks (e.g. distillation): `register_loss_term(name, fn, base_weight)`.
    The training loss is `prod(base_weights) * CE + sum(fn(x, logits, targets))`; each term is
    logged as `train/<name>`. Terms live in a plain dict, so nothing they hold (a teacher net)
    is ever saved in this module's checkpoint.

    Args:
        net: the network, logits out: a project net (trickbench.lightning_modules.nets.MLP, SmallCNN, ResNet18,
            PreActResNet18, ResNet20, AirbenchNet) or any nn.Module class path
        num_classes: number of classes (output units), for the accuracy metrics
        optimizer: optimizer factory (a torch optimizer class path with its init_args; the module passes its parameter
            groups)
        lr_scheduler: LR scheduler factory, or null for a constant LR (with `scheduler_interval`)
        scheduler_interval: "step": the scheduler steps after every optimizer step; "epoch": once per epoch
        no_decay_1d: no weight decay on 1-d parameters (biases, norm scales): the no-bias-decay trick
        label_smoothing: label-smoothing epsilon in [0, 1): targets become (1 - eps) * target + eps / num_classes
        batch_mix: mixup / CutMix applied to each training batch
            (trickbench.lightning_modules.ops.mixup.MixupCutmix), or null
        tta_flip: evaluate on the mean logits of each image and its mirror
        tta_translate: with tta_flip: also one-pixel translations (airbench's multi-crop TTA)
        norm_lr_scale: lr multiplier for normalisation parameters (weight decay divided by it): airbench's 64x BN-bias
            lr
        channels_last: channels-last memory format for the net and its inputs (faster convolutions on GPUs)
        compile: torch.compile the net: true, false, or "auto" (on CUDA only)
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int = 10,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
        no_decay_1d: bool = False,
        label_smoothing: float = 0.0,
        batch_mix: BatchMix | None = None,
        tta_flip: bool = False,
        tta_translate: bool = False,
        norm_lr_scale: float = 1.0,
        channels_last: bool = False,
        compile: bool | Literal["auto"] = False,  # "auto": compile only on CUDA (CPU compiles are slow to pay off)
    ) -> None:
        super().__init__()
        check_range("Classifier", "label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
        if not norm_lr_scale > 0:
            raise ValueError(
                f"Classifier norm_lr_scale multiplies the norm layers' lr and must be > 0, got {norm_lr_scale}"
            )
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_scheduler", "batch_mix"])
        self.net = net
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.batch_mix = batch_mix
        self.loss_terms: dict[str, tuple[LossTerm, float]] = {}
        self.metrics = nn.ModuleDict({s: MulticlassAccuracy(num_classes, average="micro") for s in ("val_", "test_")})
        # The epoch's running train accuracy: two counters on the training device, added to every step with no host
        # sync and a fraction of a torchmetrics update's cost (results/bench/step_overhead/). They are buffers, so a
        # checkpoint holds them and an epoch resumed mid-way reports the same train/acc.
        self.register_buffer("train_hits", torch.zeros((), dtype=torch.long))
        self.register_buffer("train_seen", torch.zeros((), dtype=torch.long))
        self.register_load_state_dict_pre_hook(_upgrade_train_metric_state)
        # Set past nn.Module.__setattr__ so it stays out of the module tree: registered, it would duplicate
        # every weight in state_dict as "_fwd.*" (or "_fwd._orig_mod.*" once compiled).
        object.__setattr__(self, "_fwd", net)

    # --- extension hook ------------------------------------------------------------------------
    def register_loss_term(self, name: str, fn: LossTerm, base_weight: float = 1.0) -> None:
        self.loss_terms[name] = (fn, base_weight)

    def unregister_loss_term(self, name: str) -> None:
        self.loss_terms.pop(name, None)

    # --- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        n = getattr(dm, "num_classes", self.hparams.num_classes)
        if dm is not None and n != self.hparams.num_classes:
            what = "regression targets (num_classes=None)" if n is None else f"{n} classes"
            raise ValueError(
                f"Classifier(num_classes={self.hparams.num_classes}) cannot train on {type(dm).__name__}, which "
                f"has {what}. Use a classification DataModule, or the Regressor for regression data."
            )

    def configure_model(self) -> None:
        if self.hparams.channels_last:
            self.net.to(memory_format=torch.channels_last)
        mode = self.hparams.compile
        on_cuda = self._trainer is not None and self._trainer.strategy.root_device.type == "cuda"
        if mode is True or (mode == "auto" and on_cuda):
            object.__setattr__(self, "_fwd", torch.compile(self.net))  # state_dict keys stay "net.*"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._fwd(x)

    # --- steps ---------------------------------------------------------------------------------
    def on_train_batch_start(self, batch: object, batch_idx: int) -> None:
        # Each epoch's train/acc starts from zero, also when a run resumes from a checkpoint taken at the last
        # batch of the previous epoch (Lightning skips on_train_epoch_start then); mid-epoch resumes keep the
        # checkpointed running counts.
        if batch_idx == 0:
            self.train_hits.zero_()
            self.train_seen.zero_()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        targets = y
        if self.batch_mix is not None:
            x, targets = self.batch_mix(x, y)
        logits = self(x)
        base = 1.0
        extra = []
        log_now = log_step_now(self, batch_idx)
        for name, (fn, weight) in self.loss_terms.items():
            term = fn(x, logits, targets)
            if log_now:
                self.log(f"train/{name}", term, on_step=True, on_epoch=False)
            extra.append(term)
            base *= weight
        ce = F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)
        loss = base * ce + sum(extra)
        truth = y if targets.dim() == 1 else targets.argmax(1)
        self.train_hits += (logits.detach().argmax(1) == truth).sum()
        self.train_seen += truth.numel()
        if log_now:
            self.log("train/loss", loss, prog_bar=with_bar(self))
        return loss

    def on_train_epoch_end(self) -> None:
        # Logged once per epoch from the step counters, summed over ranks, not via self.log every step.
        counts = self.all_gather(torch.stack([self.train_hits, self.train_seen])).reshape(-1, 2).sum(0)  # all ranks
        if int(counts[1]):  # an epoch-end sync, outside the steps
            self.log("train/acc", counts[0].float() / counts[1].float())
        self.train_hits.zero_()
        self.train_seen.zero_()

    def on_train_start(self) -> None:
        if getattr(self.net, "whiten_stem", False) and not bool(self.net.stem_whitened):
            raise ValueError(
                f"{type(self.net).__name__}(whiten_stem=True) has a frozen stem that nothing initialised: add the "
                "trickbench.callbacks.PatchWhitening callback (as configs/cifar10_fast.yaml does), "
                "or set whiten_stem: false"
            )

    def eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits with the configured test-time augmentation (images only): what val/test/ensembles score."""
        if x.dim() != 4:
            return self(x)
        return tta_logits(self, x, flip=self.hparams.tta_flip, translate=self.hparams.tta_translate)

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self.eval_logits(x)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), sync_dist=True, prog_bar=stage == "val")
        self.metrics[f"{stage}_"](logits, y)
        self.log(f"{stage}/acc", self.metrics[f"{stage}_"], prog_bar=stage == "val")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(1)

    def configure_optimizers(self):
        return optim.configure(
            self,
            self.net,
            self.optimizer,
            self.lr_scheduler,
            self.hparams.scheduler_interval,
            self.hparams.no_decay_1d,
            self.hparams.norm_lr_scale,
        )


def _upgrade_train_metric_state(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
    """A checkpoint from before the train counters held torchmetrics' micro-accuracy states
    (`metrics.train_.tp/fp/tn/fn`): hits = tp, seen = tp + fn."""
    old = f"{prefix}metrics.train_."
    if f"{old}tp" in state:
        tp, fn = state[f"{old}tp"].sum(), state[f"{old}fn"].sum()
        state.setdefault(f"{prefix}train_hits", tp.long())
        state.setdefault(f"{prefix}train_seen", (tp + fn).long())
        for key in ("tp", "fp", "tn", "fn"):
            state.pop(f"{old}{key}", None)
