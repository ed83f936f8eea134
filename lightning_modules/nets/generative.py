"""DCGAN-style convolutional encoder/decoder, shared by the autoencoders and the GAN.

`ConvEncoder` maps an image to a vector (VAE: 2 x latent for mean and log-variance; GAN
discriminator: 1 logit). `ConvDecoder` maps a vector to image *logits* (VAE: Bernoulli logits or
a sigmoid mean; GAN generator: squashed with tanh by the GAN). Both halve / double the spatial
size with stride-2 4x4 convolutions until the feature map is <= 7x7 (28 -> 14 -> 7, 32 -> 16 -> 8 -> 4),
as in Radford et al. 2016. The MLP encoder/decoder is `trickbench.lightning_modules.nets.MLP`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


def downsample_plan(image_size: int) -> tuple[int, int]:
    """(number of stride-2 stages, final side length) for a square image."""
    if image_size < 8 or image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 and >= 8 (e.g. 28 or 32), got {image_size}")
    stages, side = 0, image_size
    while side % 2 == 0 and side > 7:
        stages, side = stages + 1, side // 2
    return stages, side


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "bn" else nn.Identity()


def _spectral(layer: nn.Module, kind: str) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if kind == "spectral" else layer


class ConvEncoder(nn.Module):
    """(N, C, S, S) -> (N, output_dim). Width doubles at every stage: width, 2*width, ...

    `norm`: "bn" (DCGAN), "none", or "spectral": every conv and the head divided by its largest singular
    value (Miyato et al. 2018, torch's `spectral_norm` parametrisation), the usual GAN-discriminator choice:
    it bounds D's Lipschitz constant without coupling the samples of a batch as BatchNorm does.

    Args:
        in_channels: image channels
        image_size: image side (a multiple of 4, >= 8)
        width: channels of the first stage (doubling per stage)
        output_dim: outputs (a code, 2 x latent for a VAE, 1 for a discriminator)
        norm: "bn", "none" or "spectral" (spectral normalisation)
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 32,
        output_dim: int = 40,
        norm: Literal["bn", "none", "spectral"] = "bn",
    ) -> None:
        super().__init__()
        stages, side = downsample_plan(image_size)
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(stages):
            c_out = width * 2**i
            layers += [_spectral(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0 or norm != "bn"), norm)]
            # DCGAN: no normalisation on the first layer, which sees raw pixels.
            layers += [nn.Identity() if i == 0 else _norm(norm, c_out), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = _spectral(nn.Linear(c_in * side * side, output_dim), norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """(N, input_dim) -> (N, out_channels, S, S) logits. Mirror image of `ConvEncoder`.

    Args:
        input_dim: size of the code (or latent + one-hot class)
        out_channels: image channels
        image_size: image side (a multiple of 4, >= 8)
        width: channels of the last stage (doubling towards the input)
        norm: "bn" or "none"
    """

    def __init__(
        self,
        input_dim: int = 20,
        out_channels: int = 1,
        image_size: int = 28,
        width: int = 32,
        norm: Literal["bn", "none"] = "bn",
    ) -> None:
        super().__init__()
        stages, side = downsample_plan(image_size)
        c_in = width * 2 ** (stages - 1)
        self.side, self.c_in = side, c_in
        self.project = nn.Sequential(
            nn.Linear(input_dim, c_in * side * side, bias=norm == "none"),
            nn.Unflatten(1, (c_in, side, side)),
            _norm(norm, c_in),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for i in reversed(range(stages)):
            last = i == 0
            c_out = out_channels if last else width * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last or norm == "none"))
            if not last:
                layers += [_norm(norm, c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(z))
