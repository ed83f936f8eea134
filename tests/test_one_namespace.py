"""One installed name: the required top-level folders are the subpackages `trickbench.callbacks`, ... and nothing
imports them by their bare folder names, so a foreign `configs/` or `scripts/` package (an LHT-style project, a
notebook folder) cannot shadow them, and no module is loaded twice under two names. Configs saved before the
rename (`callbacks.EMA`, ...) still load and rerun (trickbench/aliases.py)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import subprocess_env
from trickbench.aliases import upgrade_class_path, upgrade_config_text
from trickbench.datamodules.fake import make_fake_mnist

ROOT = Path(__file__).resolve().parents[1]
BARE = ("callbacks", "configs", "datamodules", "lightning_modules", "scripts")  # folders installed under trickbench.
SOURCES = sorted(
    p
    for folder in ("trickbench", *BARE, "benchmarks", "tests", "notebooks")
    for p in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.ipynb")]
    if "ddp_scripts" not in p.parts and p.name != "test_one_namespace.py"  # this file spells the bare forms
)
COMMITTED_CONFIGS = sorted(
    p for p in (ROOT / "results").rglob("*.yaml") if "class_path:" in p.read_text() and "trainer:" in p.read_text()
)


def python_text(path: Path) -> str:
    """A .py file's text, or a notebook's code cells (shell and magic lines left out)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    lines = [ln for c in cells for ln in "".join(c["source"]).splitlines() if not ln.lstrip().startswith(("!", "%"))]
    return "\n".join(lines)


def bare_imports(path: Path) -> list[str]:
    """`import callbacks...` / `from configs... import` statements, and string literals naming a bare module
    (`"lightning_modules.nets.MLP"`, as in a class path or an `import_module` argument)."""
    found = []
    for node in ast.walk(ast.parse(python_text(path), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if re.match(rf"^({'|'.join(BARE)})\.[A-Za-z_][\w.]*$", node.value) else []
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            head = str(node.values[0].value)
            names = [head] if re.match(rf"^({'|'.join(BARE)})\.", head) else []
        found += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] in BARE]
    return found


def test_no_source_file_imports_a_bare_folder_name() -> None:
    assert len(SOURCES) > 100
    found = [hit for p in SOURCES for hit in bare_imports(p)]
    assert found == [], "import these as trickbench.<name>:\n" + "\n".join(found)


def test_the_check_catches_each_bare_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import callbacks\nfrom datamodules.base import X\nP = 'lightning_modules.nets.MLP'\n"
        "M = f'scripts.{name}'\nfrom trickbench.callbacks import EMA\nQ = 'callbacks'\n"
    )
    assert [hit.rsplit(": ", 1)[1] for hit in bare_imports(bad)] == [
        "callbacks",
        "datamodules.base",
        "lightning_modules.nets.MLP",
        "scripts.",
    ]


def test_shipped_configs_name_classes_under_trickbench() -> None:
    old = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for p in (ROOT / "configs").rglob("*.yaml")
        for line in p.read_text().splitlines()
        if not line.lstrip().startswith("#")
        and upgrade_class_path(line.split(":", 1)[-1].strip()) != line.split(":", 1)[-1].strip()
    ]
    assert old == []


def test_importing_every_module_from_the_clone_loads_no_bare_name() -> None:
    """From the clone's root the bare folders are importable (the working directory is on sys.path): importing
    every trickbench module and building a model by its lazy name must still load none of them."""
    code = (
        "import importlib, pkgutil, sys, trickbench\n"
        "names = [m.name for m in pkgutil.walk_packages(trickbench.__path__, 'trickbench.')]\n"
        "for sub in ('callbacks', 'datamodules', 'lightning_modules', 'scripts'):\n"
        "    pkg = importlib.import_module('trickbench.' + sub)\n"
        "    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "from trickbench.lightning_modules import Classifier, GAN\n"
        "assert Classifier.__module__ == 'trickbench.lightning_modules.classifier', Classifier.__module__\n"
        f"bare = sorted(m for m in sys.modules if m.split('.')[0] in {BARE!r})\n"
        "print(len(names), bare)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    count, bare = out.stdout.split(" ", 1)
    assert int(count) > 60 and bare.strip() == "[]"


@pytest.fixture
def foreign_project(tmp_path: Path) -> Path:
    """A working directory with another project's `configs/`, `scripts/` and `callbacks/` packages."""
    for pkg in ("configs", "scripts", "callbacks"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("FOREIGN = True\n")
        (tmp_path / pkg / "train.yaml").write_text("foreign: true\n")
    return tmp_path


def test_a_foreign_configs_package_does_not_shadow_the_shipped_configs(foreign_project: Path) -> None:
    code = (
        "import sys; from trickbench.cli import configs_dir, shipped\n"
        "import configs; assert configs.FOREIGN  # the foreign package is importable here\n"
        "print(configs_dir(), len(shipped()), 'tricks/ema' in shipped())\n"
    )
    env = subprocess_env()
    env["PYTHONPATH"] = ""  # as a user's shell: only the working directory (python -c puts it first)
    out = subprocess.run([sys.executable, "-c", code], cwd=foreign_project, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    where, count, ema = out.stdout.split()
    assert Path(where) == ROOT / "configs" and int(count) >= 40 and ema == "True"
    # through `python -m` (the working directory is on sys.path too): the overview lists the shipped configs,
    # and a fit's trainer defaults (configs/trainer/default.yaml) are found
    overview = subprocess.run(
        [sys.executable, "-m", "trickbench"], cwd=foreign_project, env=env, capture_output=True, text=True
    )
    assert overview.returncode == 0 and "tricks/ema" in overview.stdout and "cifar10_fast" in overview.stdout
    printed = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", "synthetic_mlp", "--print_config"],
        cwd=foreign_project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert printed.returncode == 0, printed.stderr[-2000:]
    cfg = yaml.safe_load(printed.stdout)
    paths = [c["class_path"] for c in cfg["trainer"]["callbacks"]]
    assert (
        "trickbench.run.ExactResume" in paths and cfg["model"]["class_path"] == "trickbench.lightning_modules.Regressor"
    )


def test_the_distribution_installs_one_top_level_name() -> None:
    dist = importlib.metadata.distribution("trickbench")
    assert (dist.read_text("top_level.txt") or "").split() == ["trickbench"]
    scripts = [ep.name for ep in dist.entry_points if ep.group == "console_scripts"]
    assert scripts == ["trickbench"]


def test_old_class_paths_are_upgraded_and_nothing_else() -> None:
    assert upgrade_class_path("callbacks.EMA") == "trickbench.callbacks.EMA"
    assert upgrade_class_path("lightning_modules.nets.AirbenchNet") == "trickbench.lightning_modules.nets.AirbenchNet"
    for same in ("torch.optim.SGD", "trickbench.callbacks.EMA", "callbacks", "my.callbacks.X", "callbacks.EMA extra"):
        assert upgrade_class_path(same) == same
    text = "# callbacks.EMA in a comment\nmodel:\n  class_path: lightning_modules.Classifier\n  name: datamodules\n"
    assert yaml.safe_load(upgrade_config_text(text)) == {
        "model": {"class_path": "trickbench.lightning_modules.Classifier", "name": "datamodules"}
    }
    assert upgrade_config_text("model:\n  class_path: trickbench.lightning_modules.Classifier\n") is None


def test_resolving_an_already_resolved_command_line_changes_nothing() -> None:
    """A DDP rank re-runs the command line rank 0 resolved, where an old config is now its upgraded YAML text:
    resolving it again keeps it (it stopped with "File name too long" before)."""
    from trickbench.cli import resolve_args

    once = resolve_args(["fit", "--config", str(ROOT / "results" / "foundation" / "mnist_mlp" / "config.yaml")])
    assert "\n" in once[2] and resolve_args(once) == once


@pytest.mark.parametrize("config", COMMITTED_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "results")))
def test_every_committed_config_still_parses(config: Path) -> None:
    """Old files (bare class paths) are read through the alias table; files written by this package pass as they are."""
    from trickbench.cli import resolve_args
    from trickbench.lightning_cli import TrickbenchCLI

    args = resolve_args(["--config", str(config)])
    upgraded = upgrade_config_text(config.read_text())
    if upgraded is None:
        assert args[1] == str(config)
        saved = yaml.safe_load(config.read_text())
    else:
        assert args[1] == upgraded
        saved = yaml.safe_load(args[1])
    for key in ("ckpt_path", "weights_only"):  # the `fit` subcommand's own arguments; this parser has none
        saved.pop(key, None)
    cli = TrickbenchCLI(args=["--config", str(ROOT / "configs" / "synthetic_mlp.yaml")], run=False)
    cfg = cli.parser.parse_args(["--config", yaml.safe_dump(saved)])  # checks every class path and argument
    assert str(cfg.model.class_path).startswith("trickbench.lightning_modules.")


def test_a_committed_config_reruns(tmp_path: Path) -> None:
    """The committed MNIST-MLP run's config.yaml (old class paths) trains again: a few steps on generated MNIST."""
    from trickbench.lightning_cli import main

    config = ROOT / "results" / "foundation" / "mnist_mlp" / "config.yaml"
    assert "class_path: lightning_modules." in config.read_text()
    data = make_fake_mnist(tmp_path / "data")
    cli = main(
        args=[
            "fit",
            "--config",
            str(config),
            "--config",
            str(ROOT / "configs/trainer/cpu_smoke.yaml"),
            "--data.init_args.data_dir",
            str(data),
            "--data.init_args.val_size",
            "32",
            "--data.init_args.accept_nonoriginal",
            "true",
            "--trainer.logger",
            "false",
            "--run_dir",
            str(tmp_path / "run"),
        ]
    )
    assert type(cli.model).__module__ == "trickbench.lightning_modules.classifier"
    record = yaml.safe_load((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed" and 0.0 <= record["test"]["acc"] <= 1.0
