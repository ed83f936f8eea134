"""How much weight standardization changes a whitened stem: cosine between each stored whitening filter and
its standardized version, from a run's checkpoint.

    python -m benchmarks.stem_check RUN_DIR/checkpoints/last.ckpt
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from trickbench.lightning_modules.ops.weight_std import standardize_weight


def main(ckpt_path: str) -> None:
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["state_dict"]
    (weight,) = [v for k, v in state.items() if k.endswith("stem.0.weight")]
    raw, std = weight.flatten(1), standardize_weight(weight).flatten(1)
    cos = F.cosine_similarity(raw, std, dim=1)
    print(f"checkpoint: {ckpt_path}")
    print("| filter | norm | mean / std of its entries | cosine(raw, standardized) |")
    print("|--:|--:|--:|--:|")
    for i in range(raw.shape[0] // 2):  # the second half holds the negated filters
        print(f"| {i} | {raw[i].norm():.3f} | {raw[i].mean() / raw[i].std():.3g} | {cos[i]:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1])
