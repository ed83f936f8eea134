"""LightningModules for the three learning strategies; nets live in `lightning_modules.nets`."""

from lightning_modules.classifier import Classifier
from lightning_modules.regressor import Regressor
from lightning_modules.autoencoder import VAE, AutoEncoder
from lightning_modules.gan import GAN
from lightning_modules.actor import Actor

__all__ = ["Actor", "AutoEncoder", "Classifier", "GAN", "Regressor", "VAE"]
