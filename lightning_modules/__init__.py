"""LightningModules for the three learning strategies; nets live in `lightning_modules.nets`."""

from lightning_modules.classifier import Classifier
from lightning_modules.regressor import Regressor

__all__ = ["Classifier", "Regressor"]
