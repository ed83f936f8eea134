"""Patch-whitening filters for a net's first conv (airbench94; Coates & Ng, 2011; Page, 2018).

The stem's k x k filters are set to the eigenvectors of the (uncentred) covariance of all k x k
patches of some training images, scaled by 1 / sqrt(eigenvalue + eps): the stem's outputs are
then decorrelated with unit variance. Each filter also appears negated (so a GELU after it keeps
both signs), hence 2 * C * k * k output channels. Written by hand: no library ships it.
"""

from __future__ import annotations

import torch


def image_patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """Every `size` x `size` patch (stride 1) of (N, C, H, W) images, as (M, C, size, size) float32."""
    c = images.shape[1]
    return images.unfold(2, size, 1).unfold(3, size, 1).transpose(1, 3).reshape(-1, c, size, size).float()


def whitening_filters(images: torch.Tensor, size: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """(2 * C * size * size, C, size, size) conv weight that whitens `size`-patches of `images`.

    Filters are ordered by decreasing eigenvalue, then the same filters negated.
    """
    patches = image_patches(images, size)
    n, c = patches.shape[:2]
    flat = patches.reshape(n, -1)
    cov = flat.T @ flat / n
    eigenvalues, eigenvectors = torch.linalg.eigh(cov, UPLO="U")  # ascending
    order = torch.arange(len(eigenvalues) - 1, -1, -1)
    vals = eigenvalues[order].view(-1, 1, 1, 1)
    vecs = eigenvectors.T[order].reshape(-1, c, size, size)
    scaled = vecs / torch.sqrt(vals + eps)
    return torch.cat((scaled, -scaled))
