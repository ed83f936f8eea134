"""DataModules sharing one batch contract `(x, y)`; see `datamodules.base`."""

from datamodules.base import TensorDataModule, TensorLoader
from datamodules.cifar10 import CIFAR10DataModule
from datamodules.integrity import DatasetError
from datamodules.mnist import MNISTDataModule
from datamodules.rollouts import RolloutDataModule
from datamodules.synthetic import SyntheticRegressionDataModule

__all__ = [
    "CIFAR10DataModule",
    "DatasetError",
    "MNISTDataModule",
    "RolloutDataModule",
    "SyntheticRegressionDataModule",
    "TensorDataModule",
    "TensorLoader",
]
