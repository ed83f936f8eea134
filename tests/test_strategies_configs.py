"""Every strategy config instantiates through the CLI, and its module accepts a batch of its own (fake) data."""

from __future__ import annotations

import pytest
import torch

from trickbench.lightning_cli import TrickbenchCLI
from trickbench.lightning_modules import GAN, VAE, Actor, AutoEncoder

IMAGE_CONFIGS = {
    "configs/mnist_vae.yaml": ("fake_mnist", VAE),
    "configs/mnist_ae.yaml": ("fake_mnist", AutoEncoder),
    "configs/mnist_gan.yaml": ("fake_mnist", GAN),
    "configs/mnist_gan.yaml+configs/variants/mnist_cgan.yaml": ("fake_mnist", GAN),
    "configs/cifar10_vae.yaml": ("fake_cifar", VAE),
    "configs/cifar10_gan.yaml": ("fake_cifar", GAN),
}


def _instantiate(config: str, tmp_path, *extra: str) -> TrickbenchCLI:
    configs = [a for c in config.split("+") for a in ("--config", c)]  # "a.yaml+b.yaml": b stacked on a
    args = [*configs, "--trainer.logger", "false", "--run_dir", str(tmp_path / "run"), *extra]
    return TrickbenchCLI(args=args, run=False)


@pytest.mark.parametrize("config", sorted(IMAGE_CONFIGS))
def test_image_config_instantiates_and_runs_a_batch(config, tmp_path, request):
    fixture, module_type = IMAGE_CONFIGS[config]
    data_dir = request.getfixturevalue(fixture)
    cli = _instantiate(
        config,
        tmp_path,
        "--data.init_args.data_dir",
        str(data_dir),
        "--data.init_args.accept_nonoriginal",
        "true",
        "--data.init_args.val_size",
        "32",
    )
    model, dm = cli.model, cli.datamodule
    assert isinstance(model, module_type)
    assert dm.mean is None  # generative modules read [0, 1] pixels
    dm.setup("fit")
    x = dm.eval_transform(dm.splits["val"][0][:4])
    grids = model.eval().image_grids(x)
    for images in grids.values():
        assert images.shape[1:] == x.shape[1:] and 0 <= images.min() and images.max() <= 1
    if isinstance(model, AutoEncoder):
        assert torch.isfinite(model.losses(x)["loss"])


def test_actor_config_instantiates(tmp_path):
    cli = _instantiate("configs/cartpole_actor.yaml", tmp_path)
    assert isinstance(cli.model, Actor)
    assert cli.datamodule.dims == (4,) and cli.datamodule.num_actions == 2
    dist = cli.model(torch.zeros(3, 4))
    assert dist.probs.shape == (3, 2)
