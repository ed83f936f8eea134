"""Seeded synthetic regression: y = f(x) + noise. Nothing to download."""

from __future__ import annotations

import math
from typing import Literal

import torch

from trickbench.checks import check_range
from trickbench.datamodules.base import TensorDataModule


def make_regression(
    n: int, input_dim: int, function: str, noise: float, generator: torch.Generator, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ U(-1, 1)^d; f is fixed by `weights` (d,), so train/val/test share one ground truth."""
    x = torch.rand(n, input_dim, generator=generator) * 2 - 1
    z = x @ weights
    if function == "linear":
        f = z
    elif function == "sine":
        f = torch.sin(math.pi * z)
    elif function == "quadratic":
        f = z**2
    else:
        raise ValueError(f"unknown function '{function}'; choose linear, sine or quadratic")
    y = f + noise * torch.randn(n, generator=generator)
    return x, y.unsqueeze(1)


class SyntheticRegressionDataModule(TensorDataModule):
    """`dims = (input_dim,)`, `num_classes = None`; targets have shape (N, 1).

    Args:
        input_dim: features per example
        function: target function of the inputs: linear, sine or quadratic
        noise: std of the Gaussian noise added to the targets
        n_train: training examples
        n_val: validation examples
        n_test: test examples
        batch_size: training batch size (per device)
        eval_batch_size: validation/test batch size
        seed: seed of the data and the shuffling; null (default): the run's `seed_everything`
        device_resident: keep every split on the training device, so batches never cross the host-device bus
    """

    def __init__(
        self,
        input_dim: int = 8,
        function: Literal["linear", "sine", "quadratic"] = "sine",
        noise: float = 0.05,
        n_train: int = 4096,
        n_val: int = 512,
        n_test: int = 1024,
        batch_size: int = 128,
        eval_batch_size: int = 1024,
        seed: int | None = None,
        device_resident: bool = False,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, seed, device_resident)
        check_range("SyntheticRegressionDataModule", "noise", noise, 0.0, float("inf"))
        self.save_hyperparameters()
        self.input_dim, self.function, self.noise = input_dim, function, noise
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.dims = (input_dim,)
        self.num_classes = None

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        weights = torch.randn(self.input_dim, generator=gen) / math.sqrt(self.input_dim)
        splits = {
            name: make_regression(n, self.input_dim, self.function, self.noise, gen, weights)
            for name, n in self.sizes.items()
        }
        self.fingerprint = f"synthetic-{self.function}-d{self.input_dim}-seed{self.seed}"
        return splits
