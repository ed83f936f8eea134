"""LightningModules for the three learning strategies; nets live in `trickbench.lightning_modules.nets`, pure tricks in
`trickbench.lightning_modules.ops`.

Lazy (PEP 562): `import lightning_modules.nets` or `.ops` does not import Lightning, so a benchmark's plain loop
uses the same nets; `trickbench.lightning_modules.Classifier` (YAML class_path or `from lightning_modules import ...`)
imports its module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "Classifier": "classifier",
    "Regressor": "regressor",
    "AutoEncoder": "autoencoder",
    "VAE": "autoencoder",
    "GAN": "gan",
    "Actor": "actor",
}
__all__ = ["Actor", "AutoEncoder", "Classifier", "GAN", "Regressor", "VAE"]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
