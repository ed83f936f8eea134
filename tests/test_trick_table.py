"""docs/tricks.md's table against the fragments: one row per configs/tricks/*.yaml, the trick named as the
fragment's header names it, a pure function in lightning_modules/ops/ (or the torch function it is), and every
file, function, class and argument the row names exists."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRAGMENTS = sorted(p.stem for p in (REPO / "configs" / "tricks").glob("*.yaml"))
APPLIER_CLASSES = {
    "Classifier": "trickbench.lightning_modules.Classifier",
    "CIFAR10DataModule": "trickbench.datamodules.CIFAR10DataModule",
    "AirbenchNet": "trickbench.lightning_modules.nets.AirbenchNet",
}


def rows() -> dict[str, list[str]]:
    """fragment name -> [trick, fragment, pure function, applier, tests] cells of the main table."""
    text = (REPO / "docs" / "tricks.md").read_text()
    table = text[text.index("| trick | fragment |") :].split("\n\n")[0].splitlines()[2:]
    out = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[re.fullmatch(r"`(\w+)\.yaml`", cells[1]).group(1)] = cells
    return out


def header_name(fragment: str) -> str:
    first = (REPO / "configs" / "tricks" / f"{fragment}.yaml").read_text().splitlines()[0].removeprefix("# ")
    return re.split(r" \(|:", first)[0]


def defined_in(path: Path, name: str) -> bool:
    return re.search(rf"^(def|class) {name}\b|^{name} = ", path.read_text(), re.M) is not None


def test_one_row_per_fragment():
    assert sorted(rows()) == FRAGMENTS


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_the_row_names_what_exists(fragment):
    trick, _, function, applier, tests = rows()[fragment]
    assert trick.startswith(header_name(fragment)), f"name the trick as {fragment}.yaml's header does"
    assert function.startswith(("`ops/", "torch `")), "a trick's pure function lives in lightning_modules/ops/"
    for cell in (function, applier):
        for path, names in re.findall(r"`([\w/]+\.py)`((?: `\w+`,?)+)", cell):
            file = REPO / ("lightning_modules/" + path if path.startswith("ops/") else path)
            assert file.is_file(), path
            for name in re.findall(r"`(\w+)`", names):
                assert defined_in(file, name), f"{name} is not defined in {path}"
        for cls, args in re.findall(r"`(\w+)\(([\w=, ]+)\)`", cell):
            module, _, attr = APPLIER_CLASSES[cls].rpartition(".")
            params = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
            assert all(a.strip().rstrip("=") in params for a in args.split(",")), (cls, args)
    for name in re.findall(r"`(test_\w+\.py)`", tests):
        assert (REPO / "tests" / name).is_file(), name
