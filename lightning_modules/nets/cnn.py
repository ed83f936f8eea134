"""A small CNN for 28x28 MNIST: two 3x3 convs, max-pool, dropout, two linear layers."""

from __future__ import annotations

import torch
from torch import nn

from trickbench.checks import check_range


class SmallCNN(nn.Module):
    """Two 3x3 convs, max-pool, two linear layers: the classic MNIST CNN.

    Args:
        in_channels: image channels
        num_classes: number of classes (output units)
        width: channels of the first conv (the second has twice as many)
        hidden: width of the hidden linear layer
        dropout: dropout after the pool (twice this after the hidden layer)
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, width: int = 32, hidden: int = 128, dropout: float = 0.25
    ) -> None:
        super().__init__()
        check_range("SmallCNN", "dropout", dropout, 0.0, 0.5, high_open=True)  # the head drops 2 * dropout
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * width * 12 * 12, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(2 * dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
