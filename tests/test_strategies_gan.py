"""GAN: loss values at known points, both optimizers stepping, and the classifier-based score."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader, TensorDataset

from trickbench.lightning_modules import GAN
from trickbench.lightning_modules.gan import discriminator_loss, generator_loss, r1_penalty
from trickbench.lightning_modules.nets import ConvDecoder, ConvEncoder
from trickbench.lightning_modules.optim import CosineAnnealingLR
from trickbench.scripts.score_gan import classifier_score


def test_losses_at_known_points():
    zero = torch.zeros(8, 1)
    # D undecided (p = 1/2 everywhere): log 2 for each of the real and fake halves.
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert generator_loss(zero).item() == pytest.approx(math.log(2), rel=1e-6)
    # A confident, correct D costs ~0; the non-saturating G loss is then large (strong gradient), not ~0.
    assert discriminator_loss(torch.full((8, 1), 20.0), torch.full((8, 1), -20.0)).item() < 1e-6
    assert generator_loss(torch.full((8, 1), -20.0)).item() == pytest.approx(20.0, rel=1e-3)


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    torch.manual_seed(0)
    w = torch.randn(1, 1, 28, 28)
    real = torch.rand(5, 1, 28, 28, requires_grad=True)
    quadratic = r1_penalty((real**2 * w).flatten(1).sum(1, keepdim=True), real)  # grad = 2 w x, per sample
    linear = r1_penalty((real * w).flatten(1).sum(1, keepdim=True), real)  # grad = w for every sample
    assert linear.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    assert quadratic.item() == pytest.approx((2 * w * real).pow(2).flatten(1).sum(1).mean().item(), rel=1e-5)
    assert quadratic.requires_grad  # kept in the graph, so D's loss can be backpropagated through it


def _tiny_gan(d_norm: str = "bn", r1_gamma: float = 0.0) -> GAN:
    torch.manual_seed(0)
    return GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1, norm=d_norm), latent_dim=8, r1_gamma=r1_gamma)


@pytest.mark.parametrize(("d_norm", "r1_gamma"), [("bn", 0.0), ("spectral", 0.0), ("bn", 10.0)])
def test_one_training_step_moves_both_networks(d_norm: str, r1_gamma: float):
    gan = _tiny_gan(d_norm, r1_gamma)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    loader = DataLoader(TensorDataset(torch.rand(32, 1, 28, 28), torch.zeros(32)), batch_size=16)
    trainer = Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(gan, train_dataloaders=loader)
    after = gan.state_dict()
    for net in ("generator", "discriminator"):
        weights = [k for k in before if k.startswith(net) and k.endswith(("weight", "weight.original"))]
        moved = [k for k in weights if not torch.equal(before[k], after[k])]
        assert moved, f"{net} did not change"
    opt_g, opt_d = trainer.optimizers
    assert all(opt.state_dict()["state"][0]["step"].item() == 1 for opt in (opt_g, opt_d))
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"} <= set(trainer.callback_metrics)
    assert ("train/r1" in trainer.callback_metrics) == (r1_gamma > 0)


def test_spectral_norm_discriminator_layers_have_unit_spectral_norm():
    torch.manual_seed(0)
    plain, spectral = ConvEncoder(1, 28, 8, 1, norm="none"), ConvEncoder(1, 28, 8, 1, norm="spectral")
    for _ in range(30):  # each training-mode forward runs one power iteration per layer
        spectral(torch.randn(4, 1, 28, 28))

    def sigmas(enc: ConvEncoder) -> list[float]:
        layers = [m for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item() for m in layers]

    assert len(sigmas(spectral)) == 3 and sigmas(spectral) == pytest.approx([1.0] * 3, rel=1e-3)
    assert not any(abs(s - 1) < 0.05 for s in sigmas(plain))  # the default init is not normalised
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in spectral.modules())


def test_lr_scheduler_steps_both_optimizers_every_batch_over_the_whole_run():
    torch.manual_seed(0)
    gan = GAN(
        ConvDecoder(8, 1, 28, 8),
        ConvEncoder(1, 28, 8, 1),
        latent_dim=8,
        lr_scheduler=partial(CosineAnnealingLR),
        optimizer_g=partial(torch.optim.Adam, lr=1e-3),
        optimizer_d=partial(torch.optim.Adam, lr=4e-3),
    )
    lrs = []

    class RecordLR(Callback):
        def on_train_batch_start(self, trainer, *args) -> None:
            lrs.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])

    loader = DataLoader(TensorDataset(torch.rand(64, 1, 28, 28), torch.zeros(64)), batch_size=16)  # 4 batches
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[RecordLR()],
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(gan, train_dataloaders=loader)
    # T_max filled from the Trainer (8 batches, not 16 optimizer steps): half-cosine from each base LR to 0.
    expected = [(1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)]
    assert [g for g, _ in lrs] == pytest.approx([1e-3 * f for f in expected])
    assert [d for _, d in lrs] == pytest.approx([4e-3 * f for f in expected])
    assert [opt.param_groups[0]["lr"] for opt in trainer.optimizers] == pytest.approx([0.0, 0.0], abs=1e-12)


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
    trainer = Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(gan, train_dataloaders=loader)
    assert torch.isfinite(trainer.callback_metrics["train/loss_d"])
    assert torch.bincount(gan.labels(30), minlength=10).tolist() == [3] * 10
    assert gan.eval().sample(20).shape == (20, 1, 28, 28)


def test_one_sided_label_smoothing_moves_the_real_optimum():
    # With target 0.9 the real term -[0.9 log p + 0.1 log(1 - p)] is smallest at p = 0.9 (logit log 9),
    # where it equals the entropy H(0.9) = 0.3251 nats; fakes keep target 0, so their term is unchanged.
    fake = torch.full((4, 1), -30.0)  # fake term ~0
    best = discriminator_loss(torch.full((4, 1), math.log(9)), fake, real_label=0.9).item()
    assert best == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), rel=1e-5)
    for logit in (math.log(9) - 0.5, math.log(9) + 0.5, 20.0):
        assert discriminator_loss(torch.full((4, 1), logit), fake, real_label=0.9).item() > best
    zero = torch.zeros(4, 1)
    assert discriminator_loss(zero, zero, 0.9).item() == pytest.approx(2 * math.log(2), rel=1e-6)


class _RecordGenerator(Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append({k: v.clone() for k, v in pl_module.generator.state_dict().items()})


def test_ema_of_generator_follows_the_closed_form_and_is_what_sample_uses():
    torch.manual_seed(0)
    decay = 0.5
    gan = GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8, real_label=0.9, ema_decay=decay)
    loader = DataLoader(TensorDataset(torch.rand(48, 1, 28, 28), torch.zeros(48)), batch_size=16)
    record = _RecordGenerator()
    trainer = Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[record],
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(gan, train_dataloaders=loader)
    # EMA_1 = G_1 (first update copies), EMA_k = decay * EMA_{k-1} + (1 - decay) * G_k, for every weight.
    g1, g2, g3 = record.states
    ema = dict(gan.generator_ema.module.named_parameters())
    for key, value in ema.items():
        expected = decay * (decay * g1[key] + (1 - decay) * g2[key]) + (1 - decay) * g3[key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ema["project.0.weight"], g3["project.0.weight"])  # the average lags the live G
    # BatchNorm statistics are recomputed for the averaged weights: the first BN's running mean is the
    # per-channel mean of the averaged projection over the refresh noise (seed 0, 2 batches of 32).
    gan.refresh_ema_bn(batches=2, batch_size=32)
    rng = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(32, 8, generator=rng) for _ in range(2)])
    net = gan.generator_ema.module
    with torch.no_grad():
        torch.testing.assert_close(
            net.project[2].running_mean, net.project[:2](z).mean((0, 2, 3)), rtol=1e-4, atol=1e-5
        )
    assert not any(p.requires_grad for p in gan.generator_ema.parameters())
    gan.eval()
    torch.manual_seed(1)
    z = gan.noise(4)
    torch.manual_seed(1)
    torch.testing.assert_close(gan.sample(4), (torch.tanh(gan.generator_ema.module(z)) + 1) / 2)
    assert "generator_ema.module.project.0.weight" in gan.state_dict()  # saved with the checkpoint


def test_bad_gan_arguments_say_what_to_use():
    with pytest.raises(ValueError, match="ema_decay"):
        GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8, ema_decay=1.0)
    with pytest.raises(ValueError, match="real_label"):
        GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8, real_label=0.1)
    with pytest.raises(ValueError, match="r1_gamma"):
        GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8, r1_gamma=-1.0)


def test_gan_refuses_a_datamodule_that_normalises_pixels(fake_mnist):
    from types import SimpleNamespace

    from trickbench.datamodules import MNISTDataModule

    gan = GAN(ConvDecoder(8, 1, 28, 8), ConvEncoder(1, 28, 8, 1), latent_dim=8)
    normalised = MNISTDataModule(str(fake_mnist), val_size=0)
    gan.trainer = SimpleNamespace(datamodule=normalised)  # what setup() reads
    with pytest.raises(ValueError, match=r"GAN compares .* MNISTDataModule normalises them.*normalize: false"):
        gan.setup("fit")
    gan.trainer = SimpleNamespace(datamodule=MNISTDataModule(str(fake_mnist), val_size=0, normalize=False))
    gan.setup("fit")  # intensities in [0, 1]: accepted
