"""Layers without loops: every `trickbench.*` import (module level or inside a function) points down or sideways in
the layer order below, never up, and no two modules import each other, directly or round a cycle. Benchmarks sit
on top and import only public names.

Allowed direction, bottom to top:
  0 core        trickbench.io, .compat, .signals, .checks, .seeding, .configs, and the run record's schema
                trickbench.run.record (shared by everything)
  1 pure torch  trickbench.lightning_modules.ops, .lightning_modules.nets (tricks as functions, plain nn.Modules)
  2 components  trickbench.lightning_modules (the LightningModules), trickbench.datamodules
  3 loop        trickbench.callbacks (tricks that act on the loop) beside trickbench.run (run plumbing: run dir,
                record writer, resume, guards, checkpoints, signals, progress); neither imports the other
  4 training    trickbench.aliases, .config_files, .cli_errors, .trainer_defaults, .lightning_cli
  5 tools       trickbench.cli, trickbench.__main__, trickbench.scripts (the subcommands)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {  # folder of the clone -> its name once installed (pyproject.toml's package-dir)
    "trickbench": "trickbench",
    "callbacks": "trickbench.callbacks",
    "configs": "trickbench.configs",
    "datamodules": "trickbench.datamodules",
    "lightning_modules": "trickbench.lightning_modules",
    "scripts": "trickbench.scripts",
}
LAYERS = [  # (prefix, layer); the longest matching prefix decides
    ("trickbench.io", 0),
    ("trickbench.compat", 0),
    ("trickbench.signals", 0),
    ("trickbench.checks", 0),
    ("trickbench.seeding", 0),
    ("trickbench.configs", 0),
    ("trickbench.run.record", 0),
    ("trickbench.lightning_modules.ops", 1),
    ("trickbench.lightning_modules.nets", 1),
    ("trickbench.lightning_modules", 2),
    ("trickbench.datamodules", 2),
    ("trickbench.callbacks", 3),
    ("trickbench.run", 3),
    ("trickbench.cli_errors", 4),
    ("trickbench.trainer_defaults", 4),
    ("trickbench.aliases", 4),
    ("trickbench.config_files", 4),
    ("trickbench.lightning_cli", 4),
    ("trickbench.cli", 5),
    ("trickbench.__main__", 5),
    ("trickbench.scripts", 5),
]


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The trickbench modules `path` imports anywhere in it (`from X import name` counts X.name when a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trickbench"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trickbench")}
    return {m for m in out if m in known}


def layer(module: str) -> int:
    if module == "trickbench":  # the package's own __init__: its version only
        return 0
    matches = [(len(prefix), lay) for prefix, lay in LAYERS if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} has no layer: add it to LAYERS"
    return max(matches)[1]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def test_every_module_has_a_layer_and_no_import_points_up() -> None:
    upward = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, deps in graph().items()
        for b in deps
        if layer(b) > layer(a) and not b.startswith(a + ".")  # a package may import its own submodules
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if nxt.startswith(node + "."):  # a package importing its submodules is not a cycle
                continue
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_benchmarks_use_only_public_names() -> None:
    private = []
    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trickbench"):
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []


def test_the_layer_rules_catch_an_upward_import() -> None:
    """The check itself: a datamodule importing the training CLI would be reported."""
    assert layer("trickbench.datamodules.cifar10") < layer("trickbench.lightning_cli")
    assert layer("trickbench.lightning_modules.ops.mixup") < layer("trickbench.lightning_modules.classifier")


def test_trick_callbacks_and_run_plumbing_stay_apart() -> None:
    """callbacks/ holds the tricks, trickbench/run/ the plumbing: no module of one imports the other."""
    crossing = [
        f"{a} imports {b}"
        for a, deps in graph().items()
        for b in deps
        if {(a + ".").split(".")[1], (b + ".").split(".")[1]} == {"callbacks", "run"}
    ]
    assert crossing == []
    assert sorted(p.stem for p in (ROOT / "callbacks").glob("*.py")) == [
        "__init__",
        "averaging",
        "distillation",
        "samples",
        "stochastic_depth",
        "warmup",
        "whitening",
    ]


def test_every_package_folder_is_installed() -> None:
    """A subpackage missing from pyproject.toml's `packages` imports from a clone but not from an install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join((package, *init.parent.relative_to(ROOT / folder).parts))
        for folder, package in FOLDERS.items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - listed == set()
