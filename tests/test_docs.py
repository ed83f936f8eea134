"""The README and docs/ work as written: every relative link resolves (with its #anchor), and every shell command in
their code blocks parses: bash syntax for each block, and each `trickbench ...` command through the parser that
would run it (LightningCLI's for fit/validate/test/predict, argparse's for the tools, the ablation file's loader
for `ablate`), without training anything."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    return [a or b for a, b in LINK.findall(text)]


def commands(page: Path) -> list[str]:
    """Each command line of the page's bash blocks, continuation lines joined, comments dropped."""
    out = []
    for lang, block in FENCE.findall(page.read_text()):
        if lang not in ("bash", "sh"):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "../shared" not in text and "/work/" not in text
    assert len(PAGES) >= 9  # the README and the docs/ pages it links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_every_relative_link_resolves(page: Path) -> None:
    bad = []
    for target in links(page):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor}")
    assert bad == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_docs_name_no_machine_paths_and_no_diary(page: Path) -> None:
    text = page.read_text()
    for word in ("/work/", "/tmp/", "this session", "python -m scripts."):
        assert word not in text, f"{page.name}: {word!r}"


def test_bash_blocks_parse() -> None:
    for page in PAGES:
        for lang, block in FENCE.findall(page.read_text()):
            if lang in ("bash", "sh"):
                out = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
                assert out.returncode == 0, f"{page.name}:\n{block}\n{out.stderr}"


def lightning_args(argv: list[str], cwd: Path) -> list[str]:
    """A documented fit/test command's arguments, with any `runs/...` config it reads (the output of an earlier
    command on the page) stood in by a shipped config, as that run would have written it."""
    out, take = [], False
    for arg in argv:
        if take and arg.startswith("runs/") and not (cwd / arg).exists():
            (cwd / arg).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "configs" / "mnist_mlp.yaml", cwd / arg)
        take = arg in ("--config", "-c")
        out.append(arg)
    return out


def check_tool(name: str, argv: list[str]) -> None:
    from trickbench.cli import TOOLS

    module = importlib.import_module(TOOLS[name][0])
    if name == "ablate":
        args = module.parse_args(argv)
        from trickbench.scripts.ablation.plan import load_plan

        load_plan(args.config, args.runs_dir, [f"--{s}" for s in args.set])  # every fragment named exists
    else:
        module.parser().parse_args(argv)


DOC_COMMANDS = sorted({(p.name, c) for p in PAGES for c in commands(p) if c.startswith("trickbench")})


def test_the_pages_document_each_subcommand() -> None:
    from trickbench.cli import SUBCOMMANDS, TOOLS

    used = {shlex.split(c)[1] for _, c in DOC_COMMANDS if len(shlex.split(c)) > 1}
    assert used >= {"fit", "test", "ablate", "report", "ensemble", "data", "score-gan"}
    assert used <= set(SUBCOMMANDS) | set(TOOLS)


def write_page_files(page: Path, folder: Path) -> list[Path]:
    """The files a page tells users to write: code blocks whose first line is a comment naming a relative path
    (`# configs/ablations/x.yaml`, `# my_project/nets.py`), written under `folder` (packages get an __init__.py)."""
    written = []
    for lang, block in FENCE.findall(page.read_text()):
        first = block.splitlines()[0] if block else ""
        if lang in ("yaml", "python") and (m := re.match(r"^# ((?:configs|my_project)/\S+\.(?:yaml|py))$", first)):
            path = folder / m.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
            if path.suffix == ".py":
                (path.parent / "__init__.py").touch()
            written.append(path)
    return written


def test_the_cluster_page_shows_the_sbatch_the_launcher_writes(tmp_path: Path, monkeypatch, capsys) -> None:
    """docs/cluster.md's 4-node x 8-GPU ablation file, through the SLURM launcher in a clone at tmp_path: the script
    it writes is the page's, once the clone and the interpreter are spelled as the page spells them."""
    from trickbench.scripts import ablate

    page = (ROOT / "docs" / "cluster.md").read_text()
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (path,) = [p for p in write_page_files(ROOT / "docs" / "cluster.md", tmp_path) if p.suffix == ".yaml"]
    monkeypatch.chdir(tmp_path)
    assert ablate.main([str(path.relative_to(tmp_path)), "--launcher", "slurm"]) == 0
    written = (tmp_path / "runs" / "resnet18_4x8" / "slurm" / "ablation.sbatch").read_text()
    written = written.replace(sys.executable, "/home/me/venv/bin/python").replace(str(tmp_path), "/home/me/trickbench")
    shown = next(block for lang, block in FENCE.findall(page) if lang == "text" and block.startswith("#!/bin/bash"))
    assert written == shown


def test_the_extending_page_trains_as_written(tmp_path: Path, monkeypatch) -> None:
    """docs/extending.md's own net, dataset and config, copied out of the page: they train, and learn the blobs."""
    from trickbench.lightning_cli import main

    files = write_page_files(ROOT / "docs" / "extending.md", tmp_path)
    assert {p.name for p in files} >= {"nets.py", "data.py", "blobs.yaml", "label_smoothing_sweep.yaml"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cli = main(["fit", "--config", "my_project/blobs.yaml", "--config", "tricks/label_smoothing", "--run_dir=r"])
    assert type(cli.model.net).__name__ == "TwoLayerNet" and cli.model.hparams.label_smoothing == 0.1
    assert cli.trainer.callback_metrics["test/acc"] > 0.95, cli.trainer.callback_metrics


@pytest.mark.parametrize("page,command", DOC_COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in DOC_COMMANDS])
def test_each_trickbench_command_parses(page: str, command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from trickbench.cli import SUBCOMMANDS, TOOLS, resolve_args

    argv = shlex.split(command)[1:]
    if not argv:
        return  # the overview; tests/test_console.py runs it
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")  # documented paths are relative to the clone
    write_page_files(ROOT / "docs" / page if page != "README.md" else ROOT / page, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a package the page writes (docs/extending.md: my_project)
    sub, rest = argv[0], argv[1:]
    assert sub in SUBCOMMANDS or sub in TOOLS, f"{page}: unknown subcommand {sub!r}"
    if sub in TOOLS:
        check_tool(sub, rest)
        return
    from trickbench.lightning_cli import TrickbenchCLI

    rest = [a for a in lightning_args(rest, tmp_path) if a != "--print_config"]
    with pytest.raises(SystemExit) as done:
        TrickbenchCLI(args=resolve_args([sub, *rest, "--print_config"]))
    assert done.value.code in (0, None), capsys.readouterr().err[-2000:]
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"].startswith("trickbench.lightning_modules.")


def test_results_hold_data_and_how_it_was_made_not_code() -> None:
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert len(tracked) > 100  # the committed measurements
    code = [p for p in tracked if Path(p).suffix in (".py", ".sh", ".ipynb")]
    assert code == [], "move these to benchmarks/ or scripts/"
