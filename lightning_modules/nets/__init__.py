"""Plain nn.Modules (no Lightning imports), injected into the LightningModules from YAML."""

from trickbench.lightning_modules.nets.airbench import AirbenchNet
from trickbench.lightning_modules.nets.cnn import SmallCNN
from trickbench.lightning_modules.nets.generative import ConvDecoder, ConvEncoder
from trickbench.lightning_modules.nets.mlp import MLP
from trickbench.lightning_modules.nets.resnet import CifarResNet, PreActResNet18, ResNet18, ResNet20

__all__ = [
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "AirbenchNet",
    "CifarResNet",
    "PreActResNet18",
    "ResNet18",
    "ResNet20",
    "SmallCNN",
]
