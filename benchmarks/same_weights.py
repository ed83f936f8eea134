"""Whether two checkpoints hold the same weights, bit for bit (keys present in both; the rest listed).

python -m benchmarks.same_weights A.ckpt B.ckpt
"""

from __future__ import annotations

import sys

import torch


def compare(a_path: str, b_path: str) -> dict:
    a, b = (torch.load(p, map_location="cpu", weights_only=False)["state_dict"] for p in (a_path, b_path))
    shared = [k for k in a if k in b]
    diff = max(((a[k].double() - b[k].double()).abs().max().item() for k in shared if a[k].numel()), default=0.0)
    return {
        "shared_tensors": len(shared),
        "bit_identical": all(torch.equal(a[k], b[k]) for k in shared),
        "max_abs_diff": diff,
        "only_in_a": sorted(set(a) - set(b)),
        "only_in_b": sorted(set(b) - set(a)),
    }


if __name__ == "__main__":
    print(compare(*sys.argv[1:3]))
