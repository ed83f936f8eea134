"""Multi-layer perceptron; flattens image inputs."""

from __future__ import annotations

import torch
from torch import nn

from trickbench.checks import check_range


class MLP(nn.Module):
    """Fully connected net: Flatten, (Linear, ReLU[, Dropout]) per hidden layer, Linear.

    Args:
        input_dim: input features (784 for MNIST)
        hidden_dims: width of each hidden layer
        output_dim: outputs (classes, targets or a latent code)
        dropout: dropout after each hidden layer (0: none)
    """

    def __init__(
        self, input_dim: int = 784, hidden_dims: list[int] = [512, 512], output_dim: int = 10, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_range("MLP", "dropout", dropout, 0.0, 1.0, high_open=True)
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
