"""Self-supervised x_hat = f(x): a deterministic AutoEncoder and a VAE (Kingma & Welling 2014).

Pixels must be intensities in [0, 1] (image DataModules with `normalize: false`): the decoder
emits logits, read as Bernoulli logits (`recon: bce`) or squashed by a sigmoid into a mean image
(`recon: mse`). Losses are *sums over pixels, means over images*, so the VAE's `nelbo` is in
nats per image and comparable with published MNIST numbers for the same (continuous) data.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from trickbench.checks import check_range, require_unnormalized
from trickbench.lightning_modules import optim
from trickbench.lightning_modules.step_logging import log_step_now, with_bar


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image loss (N,), summed over all pixels. bce: -log p(x|z) of a Bernoulli decoder, in nats."""
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per_pixel = F.mse_loss(torch.sigmoid(logits), x, reduction="none")
    return per_pixel.flatten(1).sum(1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample (N,), in nats, closed form summed over latent dims."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, so gradients flow through the sample into mu and logvar."""
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


class AutoEncoder(LightningModule):
    """x -> encoder -> code -> decoder -> logits. Logs `{stage}/loss` (= `recon`, per image).

    Image-grid hook used by `trickbench.callbacks.samples.SampleGrids`: `image_grids(x) -> {name: images in [0, 1]}`.

    Args:
        encoder: image -> code (e.g. lightning_modules.nets.ConvEncoder or MLP)
        decoder: code -> pixel logits (e.g. lightning_modules.nets.ConvDecoder or MLP)
        recon: "bce" (Bernoulli pixels, intensities in [0, 1]) or "mse" reconstruction loss, summed per image
        optimizer: optimizer factory (a torch optimizer class path with its init_args; the module passes its parameter
            groups)
        lr_scheduler: LR scheduler factory, or null for a constant LR (with `scheduler_interval`)
        scheduler_interval: "step": the scheduler steps after every optimizer step; "epoch": once per epoch
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        recon: Literal["bce", "mse"] = "bce",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer", "lr_scheduler"])
        self.encoder, self.decoder = encoder, decoder
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler

    def setup(self, stage: str) -> None:
        require_unnormalized(type(self).__name__, getattr(self.trainer, "datamodule", None), "reconstructs")

    def decode(self, code: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return self.decoder(code).view(shape)  # an MLP decoder emits flat pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction in [0, 1]."""
        return torch.sigmoid(self.decode(self.encoder(x), x.shape))

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch means of the per-image losses; `loss` is what is minimised."""
        recon = reconstruction_loss(self.decode(self.encoder(x), x.shape), x, self.hparams.recon).mean()
        return {"loss": recon, "recon": recon}

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, log: bool = True) -> torch.Tensor:
        out = self.losses(batch[0])
        if log:  # a training step logs on Lightning's logging steps only (lightning_modules/step_logging.py)
            bar = stage != "train" or with_bar(self)
            for name, value in out.items():
                self.log(f"{stage}/{name}", value, prog_bar=name == "loss" and bar, sync_dist=stage != "train")
        return out["loss"]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", log_step_now(self, batch_idx))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    @torch.no_grad()
    def image_grids(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Originals in the first half of the grid, their reconstructions in the second."""
        return {"reconstructions": torch.cat([x, self(x)])}

    def configure_optimizers(self):
        return optim.configure(self, self, self.optimizer, self.lr_scheduler, self.hparams.scheduler_interval, False)


class VAE(AutoEncoder):
    """The encoder emits 2 * latent_dim numbers (mean, log-variance) per image.

    loss = recon + beta * KL (beta = 1: the negative ELBO; beta > 1: beta-VAE). Logs `{stage}/recon`,
    `{stage}/kl` and, for the Bernoulli decoder, `{stage}/nelbo` (beta = 1, nats per image).

    Args:
        encoder: image -> 2 * latent_dim numbers (mean and log-variance)
        decoder: latent -> pixel logits
        latent_dim: size of the latent code
        beta: weight of the KL term (1: the ELBO; > 1: beta-VAE)
        recon: "bce" or "mse" reconstruction loss, summed per image
        optimizer: optimizer factory (a torch optimizer class path with its init_args; the module passes its parameter
            groups)
        lr_scheduler: LR scheduler factory, or null for a constant LR (with `scheduler_interval`)
        scheduler_interval: "step": the scheduler steps after every optimizer step; "epoch": once per epoch
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int = 20,
        beta: float = 1.0,
        recon: Literal["bce", "mse"] = "bce",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        check_range("VAE", "beta", beta, 0.0, float("inf"))
        super().__init__(encoder, decoder, recon, optimizer, lr_scheduler, scheduler_interval)
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer", "lr_scheduler"])
        # Fixed latent points for sample grids; a buffer so it follows the module's device.
        self.register_buffer(
            "fixed_z", torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(0)), persistent=False
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.encoder(x)
        if stats.shape[1] != 2 * self.hparams.latent_dim:
            raise ValueError(
                f"VAE(latent_dim={self.hparams.latent_dim}) needs an encoder with output_dim "
                f"{2 * self.hparams.latent_dim} (mean and log-variance); it gave {stats.shape[1]}."
            )
        return stats.chunk(2, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the posterior mean (no sampling noise), in [0, 1]."""
        return torch.sigmoid(self.decode(self.encode(x)[0], x.shape))

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        logits = self.decode(reparameterize(mu, logvar), x.shape)
        recon = reconstruction_loss(logits, x, self.hparams.recon).mean()
        kl = kl_to_standard_normal(mu, logvar).mean()
        out = {"loss": recon + self.hparams.beta * kl, "recon": recon, "kl": kl}
        if self.hparams.recon == "bce":
            out["nelbo"] = recon + kl  # single-sample estimate of -ELBO, nats per image
        return out

    @torch.no_grad()
    def sample(self, n: int, image_shape: tuple[int, ...]) -> torch.Tensor:
        """Decoder means for z ~ N(0, I), shape (n, *image_shape), in [0, 1]."""
        z = torch.randn(n, self.hparams.latent_dim, device=self.device)
        return torch.sigmoid(self.decoder(z)).view(n, *image_shape)

    @torch.no_grad()
    def image_grids(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        grids = super().image_grids(x)
        samples = torch.sigmoid(self.decoder(self.fixed_z.to(x.dtype))).view(-1, *x.shape[1:])
        return {**grids, "samples": samples}
