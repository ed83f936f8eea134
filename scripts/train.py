"""Training entry point: `python -m scripts.train fit --config configs/cifar10_resnet18.yaml` (or, installed,
`trickbench fit --config cifar10_resnet18` from any directory).

LightningCLI with three additions: every run gets a run directory (resolved config, checkpoints, CSV + W&B
logs, metrics.json), `fit` is followed by `test` on the final weights, and W&B falls back to offline mode when
no API key is set. The implementation is `trickbench.lightning_cli`; its names (`main`, `TrickbenchCLI`, ...)
are importable from here too, loaded on first use, so `--help` prints the overview without importing torch.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:  # PEP 562: Lightning is imported only when the CLI is used
    from trickbench import lightning_cli

    return getattr(lightning_cli, name)


if __name__ == "__main__":
    from trickbench.cli import main

    main(prog="python -m scripts.train")
