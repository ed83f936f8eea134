"""Self-supervised generation: a DCGAN-style GAN (Goodfellow et al. 2014; Radford et al. 2016).

The discriminator D is trained with binary cross-entropy to tell real from generated images;
the generator G with the *non-saturating* loss -log D(G(z)), which has the same fixed point as
the minimax game (where D's optimal loss measures the Jensen-Shannon divergence between the real
and generated distributions) but does not vanish while D is winning. Two optimizers, stepped
by hand each batch (Lightning manual optimisation). Pixels in [0, 1] from the DataModule
(`normalize: false`) are mapped to [-1, 1] to match G's tanh output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import nn


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], averaged over the batch, in nats."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class GAN(LightningModule):
    """Logs `train/loss_d`, `train/loss_g`, `train/d_real`, `train/d_fake` (mean D probabilities) and
    `{val,test}/loss_d`, `{val,test}/d_acc` (D's real-vs-fake accuracy: ~0.5 when G fools D).

    Hooks: `sample(n) -> images in [0, 1]`; `image_grids(x)` for `callbacks.samples.SampleGrids`.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int = 100,
        num_classes: int = 0,
        optimizer_g: OptimizerCallable = torch.optim.Adam,
        optimizer_d: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer_g", "optimizer_d"])
        self.generator, self.discriminator = generator, discriminator
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.automatic_optimization = False
        self.register_buffer("fixed_z", torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(0)),
                             persistent=False)  # fmt: skip

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if getattr(dm, "mean", None) is not None:
            raise ValueError(
                f"GAN compares generated images with pixel intensities in [0, 1], but {type(dm).__name__} "
                "normalises them. Set `data.init_args.normalize: false`."
            )

    def _onehot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        k = self.hparams.num_classes
        return None if k == 0 or y is None else F.one_hot(y.long(), k).float()

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Generated images in [-1, 1]; `y` (class ids) only for a conditional GAN."""
        code = self._onehot(y)
        return torch.tanh(self.generator(z if code is None else torch.cat([z, code], 1)))

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        code = self._onehot(y)
        if code is not None:
            x = torch.cat([x, code[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.discriminator(x)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hparams.latent_dim, device=self.device)

    def labels(self, n: int) -> torch.Tensor | None:
        """Classes 0, 1, ..., K-1, 0, 1, ... for a conditional GAN (balanced by construction), else None."""
        k = self.hparams.num_classes
        return torch.arange(n, device=self.device) % k if k else None

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n generated images in [0, 1]."""
        return (self(self.noise(n), self.labels(n)) + 1) / 2

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real, y = batch[0] * 2 - 1, (batch[1] if self.hparams.num_classes else None)
        fake = self(self.noise(len(real)), y)  # conditional: fakes of the same classes as the real batch

        # D step: G's output is detached, so no generator gradients are computed.
        self.toggle_optimizer(opt_d)
        real_logits, fake_logits = self.discriminate(real, y), self.discriminate(fake.detach(), y)
        loss_d = discriminator_loss(real_logits, fake_logits)
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

        self.log_dict({"train/loss_d": loss_d, "train/loss_g": loss_g}, prog_bar=True)
        self.log_dict({"train/d_real": torch.sigmoid(real_logits).mean(), "train/d_fake": torch.sigmoid(fake_logits).mean()})

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        real, y = batch[0] * 2 - 1, (batch[1] if self.hparams.num_classes else None)
        real_logits, fake_logits = self.discriminate(real, y), self.discriminate(self(self.noise(len(real)), y), y)
        acc = torch.cat([real_logits > 0, fake_logits <= 0]).float().mean()
        self.log_dict({f"{stage}/loss_d": discriminator_loss(real_logits, fake_logits), f"{stage}/d_acc": acc},
                      sync_dist=True)  # fmt: skip

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @torch.no_grad()
    def image_grids(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated images from a fixed set of latent points, so grids are comparable across epochs."""
        z = self.fixed_z.to(x.dtype)
        return {"samples": (self(z, self.labels(len(z))) + 1) / 2}

    def configure_optimizers(self):
        return [self.optimizer_g(self.generator.parameters()), self.optimizer_d(self.discriminator.parameters())]
