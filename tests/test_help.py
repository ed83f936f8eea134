"""`--help` describes every argument a config can set: each configurable class's init arguments have a one-line
description in the `Args:` docstring form that jsonargparse reads (what `--model.help CLASS` prints)."""

from __future__ import annotations

import inspect

import docstring_parser
import pytest

from trickbench import callbacks, datamodules, lightning_modules
from trickbench.lightning_modules import nets, optim
from trickbench.lightning_modules.ops.mixup import MixupCutmix


def configurable_classes() -> list[type]:
    found = []
    for package in (lightning_modules, nets, callbacks, datamodules):
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) and obj.__module__.split(".")[0] == package.__name__.split(".")[0]:
                found.append(obj)
    return list(dict.fromkeys(found + [MixupCutmix, optim.DecoupledSGD, optim.TriangleLR]))


def described(cls: type) -> dict[str, str]:
    docs: dict[str, str] = {}
    for owner in (cls, cls.__init__):
        for param in docstring_parser.parse(owner.__doc__ or "").params:
            docs[param.arg_name] = (param.description or "").strip()
    return docs


def test_the_list_covers_the_project_classes():
    names = {c.__name__ for c in configurable_classes()}
    assert {"Classifier", "AirbenchNet", "CIFAR10DataModule", "EMA", "LRWarmup", "MixupCutmix"} <= names
    assert len(names) >= 30


@pytest.mark.parametrize("cls", configurable_classes(), ids=lambda c: c.__name__)
def test_every_init_argument_has_a_description(cls):
    params = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    docs = described(cls)
    assert [p for p in params if not docs.get(p)] == [], f"{cls.__name__}: add these to its Args: docstring"
