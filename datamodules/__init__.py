"""DataModules sharing one batch contract `(x, y)`; see `trickbench.datamodules.base`.

`RolloutDataModule` (reinforcement learning) is imported on first use (PEP 562), so the image and regression
DataModules work where gymnasium is not installed (a bare GPU machine running the trick table).
"""

from __future__ import annotations

from typing import Any

from trickbench.datamodules.base import TensorDataModule, TensorLoader
from trickbench.datamodules.cifar10 import CIFAR10DataModule
from trickbench.datamodules.integrity import DatasetError
from trickbench.datamodules.mnist import MNISTDataModule
from trickbench.datamodules.synthetic import SyntheticRegressionDataModule

__all__ = [
    "CIFAR10DataModule",
    "DatasetError",
    "MNISTDataModule",
    "RolloutDataModule",
    "SyntheticRegressionDataModule",
    "TensorDataModule",
    "TensorLoader",
]


def __getattr__(name: str) -> Any:
    if name == "RolloutDataModule":
        from trickbench.datamodules.rollouts import RolloutDataModule

        return RolloutDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
