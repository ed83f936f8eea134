"""Self-supervised generation: a DCGAN-style GAN (Goodfellow et al. 2014; Radford et al. 2016).

The discriminator D is trained with binary cross-entropy to tell real from generated images;
the generator G with the *non-saturating* loss -log D(G(z)), which has the same fixed point as
the minimax game (where D's optimal loss measures the Jensen-Shannon divergence between the real
and generated distributions) but does not vanish while D is winning. Two optimizers, stepped
by hand each batch (Lightning manual optimisation). Pixels in [0, 1] from the DataModule
(`normalize: false`) are mapped to [-1, 1] to match G's tanh output.

Three standard stabilisers, all off by default: one-sided label smoothing (`real_label: 0.9`, Salimans
et al. 2016: D's target for real images only, so D cannot grow arbitrarily confident on them and G's
gradient stays informative) and an exponential moving average of G's weights (`ema_decay`, as in
Karras et al. 2018 / Brock et al. 2019), used for `sample()` and the image grids: the live G oscillates
around the game's equilibrium, and the average of its recent weights draws cleaner digits. Third, the R1
gradient penalty on D at real images (`r1_gamma`, Mescheder et al. 2018), which makes the game converge
locally instead of circling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from trickbench.checks import require_unnormalized
from trickbench.lightning_modules import optim


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], averaged over the batch, in nats. `real_label` < 1 is one-sided
    label smoothing: the real term becomes BCE against target `real_label` (fakes keep target 0)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 over real images (Mescheder et al. 2018): penalising D's slope on the data keeps
    the non-saturating game from oscillating around its equilibrium. `real` must require grad and
    `real_logits` be computed from it; the graph is kept so the penalty itself can be backpropagated."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class GAN(LightningModule):
    """Logs `train/loss_d`, `train/loss_g`, `train/d_real`, `train/d_fake` (mean D probabilities) and
    `{val,test}/loss_d` (without label smoothing), `{val,test}/d_acc` (D's real-vs-fake accuracy: ~0.5
    when G fools D); both play D against the live G, not its EMA.

    Hooks: `sample(n) -> images in [0, 1]`; `image_grids(x)` for `trickbench.callbacks.samples.SampleGrids`.
    Both draw from `sampler`: the EMA copy of G (`generator_ema`) when `ema_decay > 0`, else G itself.

    Args:
        generator: latent (+ one-hot class) -> image logits (e.g. lightning_modules.nets.ConvDecoder)
        discriminator: image (+ class) -> one real/fake logit (e.g. lightning_modules.nets.ConvEncoder with output_dim
            1)
        latent_dim: size of G's noise input
        num_classes: > 0: class-conditional GAN (G and D get the one-hot label)
        optimizer_g: optimizer factory for the generator
        optimizer_d: optimizer factory for the discriminator
        lr_scheduler: LR scheduler factory applied to both optimizers, or null
        real_label: target for real images in D's loss (< 1: one-sided label smoothing)
        ema_decay: > 0: keep an EMA copy of G (decay per step) that samples and checkpoints use
        r1_gamma: > 0: R1 gradient penalty on real images with this weight
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int = 100,
        num_classes: int = 0,
        optimizer_g: OptimizerCallable = torch.optim.Adam,
        optimizer_d: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        real_label: float = 1.0,
        ema_decay: float = 0.0,
        r1_gamma: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.5 <= real_label <= 1.0:
            raise ValueError(f"real_label is D's target for reals: 1.0 (off) or e.g. 0.9, got {real_label}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 = no EMA of G; e.g. 0.999), got {ema_decay}")
        if r1_gamma < 0:
            raise ValueError(f"r1_gamma weighs D's gradient penalty on reals: 0 (off) or e.g. 10, got {r1_gamma}")
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "lr_scheduler"])
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d, self.lr_scheduler = optimizer_g, optimizer_d, lr_scheduler
        self.automatic_optimization = False
        # Lightning's EMAWeightAveraging callback averages the whole module (D too) and swaps weights around
        # validation; here only G is averaged, every step, and the average is a submodule so it is saved in
        # checkpoints. torch's AveragedModel does the update (its first update copies G: EMA_1 = G_1). Only
        # weights are averaged: BatchNorm statistics are recomputed for the averaged weights (refresh_ema_bn).
        self.generator_ema = None
        if ema_decay > 0:
            ema = get_ema_multi_avg_fn(ema_decay)
            self.generator_ema = AveragedModel(generator, multi_avg_fn=ema, use_buffers=False)
            self.generator_ema.requires_grad_(False)  # never optimised, only averaged
        self.register_buffer(
            "fixed_z", torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(0)), persistent=False
        )

    def setup(self, stage: str) -> None:
        require_unnormalized("GAN", getattr(self.trainer, "datamodule", None), "compares generated images with")

    def _onehot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        k = self.hparams.num_classes
        return None if k == 0 or y is None else F.one_hot(y.long(), k).float()

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Generated images in [-1, 1]; `y` (class ids) only for a conditional GAN."""
        return self._generate(self.generator, z, y)

    def _generate(self, net: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        code = self._onehot(y)
        return torch.tanh(net(z if code is None else torch.cat([z, code], 1)))

    @property
    def sampler(self) -> nn.Module:
        """The generator that `sample` and `image_grids` use: the EMA of G if there is one."""
        return self.generator if self.generator_ema is None else self.generator_ema

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        code = self._onehot(y)
        if code is not None:
            x = torch.cat([x, code[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.discriminator(x)

    def on_validation_epoch_start(self) -> None:
        # Before the grids and the checkpoint of every validation, so a saved EMA G samples consistently.
        if self.generator_ema is not None:
            self.refresh_ema_bn()

    @torch.no_grad()
    def refresh_ema_bn(self, batches: int = 10, batch_size: int = 256) -> None:
        """Recompute the EMA G's BatchNorm running statistics for its own averaged weights, as SWA does
        (torch's `update_bn`): averaging the live G's running statistics does not match the averaged
        weights (MNIST, epoch 2: classifier score 4.0 with averaged statistics, 4.6 with batch statistics).
        Fixed noise from its own seeded generator, so the training RNG stream is untouched."""
        rng = torch.Generator(device=self.device).manual_seed(0)
        inputs = []
        for _ in range(batches):
            z = torch.randn(batch_size, self.hparams.latent_dim, generator=rng, device=self.device)
            code = self._onehot(self.labels(batch_size))
            inputs.append(z if code is None else torch.cat([z, code], 1))
        update_bn(inputs, self.generator_ema)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hparams.latent_dim, device=self.device)

    def labels(self, n: int) -> torch.Tensor | None:
        """Classes 0, 1, ..., K-1, 0, 1, ... for a conditional GAN (balanced by construction), else None."""
        k = self.hparams.num_classes
        return torch.arange(n, device=self.device) % k if k else None

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n generated images in [0, 1] (from `sampler`)."""
        return (self._generate(self.sampler, self.noise(n), self.labels(n)) + 1) / 2

    def _real_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Real images mapped from [0, 1] to G's tanh range [-1, 1], and their labels for a conditional GAN."""
        return batch[0] * 2 - 1, (batch[1] if self.hparams.num_classes else None)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real, y = self._real_batch(batch)
        fake = self(self.noise(len(real)), y)  # conditional: fakes of the same classes as the real batch

        # D step: G's output is detached, so no generator gradients are computed.
        self.toggle_optimizer(opt_d)
        r1 = self.hparams.r1_gamma > 0
        real_logits, fake_logits = self.discriminate(real.requires_grad_(r1), y), self.discriminate(fake.detach(), y)
        loss_d = discriminator_loss(real_logits, fake_logits, self.hparams.real_label)
        if r1:
            penalty = r1_penalty(real_logits, real)
            loss_d = loss_d + self.hparams.r1_gamma / 2 * penalty
            self.log("train/r1", penalty)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        # G step on the same fakes; toggling freezes D's parameters, so only G receives gradients.
        self.toggle_optimizer(opt_g)
        loss_g = generator_loss(self.discriminate(fake, y))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        for scheduler in self.lr_schedulers() or []:  # manual optimisation: Lightning leaves stepping to us
            scheduler.step()

        self.log_dict({"train/loss_d": loss_d, "train/loss_g": loss_g}, prog_bar=True)
        self.log_dict(
            {"train/d_real": torch.sigmoid(real_logits).mean(), "train/d_fake": torch.sigmoid(fake_logits).mean()}
        )

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        real, y = self._real_batch(batch)
        real_logits, fake_logits = self.discriminate(real, y), self.discriminate(self(self.noise(len(real)), y), y)
        acc = torch.cat([real_logits > 0, fake_logits <= 0]).float().mean()
        self.log_dict(
            {f"{stage}/loss_d": discriminator_loss(real_logits, fake_logits), f"{stage}/d_acc": acc}, sync_dist=True
        )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @torch.no_grad()
    def image_grids(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated images from a fixed set of latent points, so grids are comparable across epochs."""
        z = self.fixed_z.to(x.dtype)
        return {"samples": (self._generate(self.sampler, z, self.labels(len(z))) + 1) / 2}

    def configure_optimizers(self):
        """Adam for G and for D; `lr_scheduler` (e.g. `trickbench.lightning_modules.optim.CosineAnnealingLR`, its
        length filled from the Trainer) is built once per optimizer and stepped every batch."""
        opts = [self.optimizer_g(self.generator.parameters()), self.optimizer_d(self.discriminator.parameters())]
        if self.lr_scheduler is None:
            return opts
        length = optim.schedule_length_kwargs(self.trainer, self.lr_scheduler)
        return opts, [{"scheduler": self.lr_scheduler(opt, **length), "interval": "step"} for opt in opts]
