"""DataModules sharing one batch contract `(x, y)`; see `trickbench.datamodules.base`."""

from trickbench.datamodules.base import TensorDataModule, TensorLoader
from trickbench.datamodules.cifar10 import CIFAR10DataModule
from trickbench.datamodules.integrity import DatasetError
from trickbench.datamodules.mnist import MNISTDataModule
from trickbench.datamodules.rollouts import RolloutDataModule
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
