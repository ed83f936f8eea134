"""GAN: loss values at known points, both optimizers stepping, and the classifier-based score."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules import GAN
from lightning_modules.gan import discriminator_loss, generator_loss
from lightning_modules.nets import ConvDecoder, ConvEncoder
from scripts.score_gan import classifier_score


def test_losses_at_known_points():
    zero = torch.zeros(8, 1)
    # D undecided (p = 1/2 everywhere): log 2 for each of the real and fake halves.
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert generator_loss(zero).item() == pytest.approx(math.log(2), rel=1e-6)
    # A confident, correct D costs ~0; the non-saturating G loss is then large (strong gradient), not ~0.
    assert discriminator_loss(torch.full((8, 1), 20.0), torch.full((8, 1), -20.0)).item() < 1e-6
    assert generator_loss(torch.full((8, 1), -20.0)).item() == pytest.approx(20.0, rel=1e-3)


def _tiny_gan() -> GAN:
    torch.manual_seed(0)
    return GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8)


def test_one_training_step_moves_both_networks():
    gan = _tiny_gan()
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    loader = DataLoader(TensorDataset(torch.rand(32, 1, 28, 28), torch.zeros(32)), batch_size=16)
    trainer = Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(gan, train_dataloaders=loader)
    after = gan.state_dict()
    for net in ("generator", "discriminator"):
        moved = [k for k in before if k.startswith(net) and k.endswith("weight") and not torch.equal(before[k], after[k])]
        assert moved, f"{net} did not change"
    opt_g, opt_d = trainer.optimizers
    assert all(opt.state_dict()["state"][0]["step"].item() == 1 for opt in (opt_g, opt_d))
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"} <= set(trainer.callback_metrics)


def test_samples_are_images_in_unit_range():
    gan = _tiny_gan().eval()
    images = gan.sample(5)
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert gan.image_grids(torch.rand(2, 1, 28, 28))["samples"].shape == (64, 1, 28, 28)


def test_classifier_score_extremes():
    eye = torch.eye(10)
    perfect = classifier_score(eye.repeat(100, 1))  # confident and uniform over 10 classes
    assert perfect["score"] == pytest.approx(10.0, rel=1e-6) and perfect["coverage"] == 10
    collapsed = classifier_score(eye[3].repeat(1000, 1))  # confident but one digit only
    assert collapsed["score"] == pytest.approx(1.0, rel=1e-6) and collapsed["coverage"] == 1
    unsure = classifier_score(torch.full((1000, 10), 0.1))  # diverse argmax? no: every sample ambiguous
    assert unsure["score"] == pytest.approx(1.0, rel=1e-6)
    half = classifier_score(eye[:5].repeat(20, 1))  # five digits, confidently
    assert half["score"] == pytest.approx(5.0, rel=1e-6) and half["coverage"] == 5


def test_conditional_gan_trains_and_samples_every_class_equally():
    torch.manual_seed(0)
    gan = GAN(ConvDecoder(8 + 10, 1, 28, 8), ConvEncoder(1 + 10, 28, 8, 1), latent_dim=8, num_classes=10)
    loader = DataLoader(TensorDataset(torch.rand(16, 1, 28, 28), torch.arange(16) % 10), batch_size=16)
    trainer = Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(gan, train_dataloaders=loader)
    assert torch.isfinite(trainer.callback_metrics["train/loss_d"])
    assert torch.bincount(gan.labels(30), minlength=10).tolist() == [3] * 10
    assert gan.eval().sample(20).shape == (20, 1, 28, 28)
