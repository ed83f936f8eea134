"""AutoEncoder / VAE: loss pieces against closed forms, and a few real training steps on fake MNIST."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import fit_smoke
from torch.distributions import Normal, kl_divergence

from trickbench.lightning_modules import VAE, AutoEncoder
from trickbench.lightning_modules.autoencoder import kl_to_standard_normal, reconstruction_loss, reparameterize
from trickbench.lightning_modules.nets import MLP, ConvDecoder, ConvEncoder


def test_kl_matches_closed_form_on_fixed_input():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), math.log(0.25)]])
    # Row 0 is the prior itself; row 1: 0.5 * sum(mu^2 + var - 1 - log var), by hand.
    by_hand = 0.5 * ((1 + 4 - 1 - math.log(4)) + (4 + 0.25 - 1 - math.log(0.25)))
    kl = kl_to_standard_normal(mu, logvar)
    assert kl[0].item() == pytest.approx(0.0, abs=1e-7)
    assert kl[1].item() == pytest.approx(by_hand, rel=1e-6)
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, reference)


def test_reconstruction_loss_is_summed_over_pixels_in_nats():
    x = torch.tensor([[[[1.0, 0.0], [0.5, 1.0]]]])
    logits = torch.zeros_like(x)  # p = 0.5 everywhere: each pixel costs log 2 nats whatever x is
    assert reconstruction_loss(logits, x, "bce").item() == pytest.approx(4 * math.log(2), rel=1e-6)
    assert reconstruction_loss(logits, x, "mse").item() == pytest.approx(0.25 + 0.25 + 0.0 + 0.25, rel=1e-6)


def test_reparameterize_moves_samples_with_mean_and_scale():
    torch.manual_seed(0)
    mu, logvar = torch.full((20000, 1), 3.0), torch.full((20000, 1), math.log(4.0))
    z = reparameterize(mu.requires_grad_(), logvar)
    assert z.mean().item() == pytest.approx(3.0, abs=0.05)
    assert z.std().item() == pytest.approx(2.0, abs=0.05)
    z.sum().backward()
    assert mu.grad is not None and torch.all(mu.grad == 1)


def test_vae_loss_is_recon_plus_beta_kl_and_rejects_wrong_encoder():
    torch.manual_seed(0)
    vae = VAE(MLP(784, [32], 8), MLP(4, [32], 784), latent_dim=4, beta=3.0)
    out = vae.losses(torch.rand(5, 1, 28, 28))
    assert out["loss"].item() == pytest.approx((out["recon"] + 3.0 * out["kl"]).item(), rel=1e-6)
    assert out["nelbo"].item() == pytest.approx((out["recon"] + out["kl"]).item(), rel=1e-6)
    with pytest.raises(ValueError, match="output_dim 8"):
        VAE(MLP(784, [32], 6), MLP(4, [32], 784), latent_dim=4).losses(torch.rand(2, 1, 28, 28))


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
def test_conv_encoder_decoder_shapes(size, channels):
    enc, dec = ConvEncoder(channels, size, 8, 10), ConvDecoder(5, channels, size, 8)
    assert enc(torch.rand(2, channels, size, size)).shape == (2, 10)
    assert dec(torch.randn(2, 5)).shape == (2, channels, size, size)
    with pytest.raises(ValueError, match="multiple of 4"):
        ConvEncoder(1, 30)


def test_vae_trains_on_fake_mnist_logs_nelbo_and_saves_grids(fake_mnist, tmp_path):
    cli = fit_smoke(
        "configs/mnist_vae.yaml",
        fake_mnist,
        tmp_path / "run",
        "--trainer.limit_train_batches",
        "3",
        "--data.init_args.batch_size",
        "32",
    )
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["global_step"] == 3
    # Untrained Bernoulli decoder: about 784 * log 2 = 543 nats per image, finite and positive.
    assert 100 < record["test"]["nelbo"] < 2000
    assert record["test"]["kl"] >= 0
    assert (tmp_path / "run" / "samples" / "reconstructions.png").is_file()
    assert (tmp_path / "run" / "samples" / "samples.png").is_file()
    assert isinstance(cli.model, VAE)


def test_autoencoder_refuses_normalised_pixels(fake_mnist, tmp_path):
    with pytest.raises(ValueError, match="normalize: false"):
        fit_smoke("configs/mnist_ae.yaml", fake_mnist, tmp_path / "run", "--data.init_args.normalize", "true")


def test_autoencoder_step_reduces_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    ae = AutoEncoder(MLP(784, [64], 8), MLP(8, [64], 784))
    x = (torch.rand(16, 1, 28, 28) > 0.7).float()
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = ae.losses(x)["loss"].item()
    for _ in range(20):
        opt.zero_grad()
        ae.losses(x)["loss"].backward()
        opt.step()
    assert ae.losses(x)["loss"].item() < 0.8 * first
    assert F.mse_loss(ae(x), x).item() < 0.25
