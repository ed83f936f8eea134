"""The shipped configs and `--config` values: a shipped name (`cifar10_fast`, `tricks/ema`) or a path, older class
paths upgraded (trickbench/aliases.py). Below both the command (trickbench/cli.py) and the training CLI
(trickbench/lightning_cli.py), which use it."""

from __future__ import annotations

import re
from pathlib import Path


def configs_dir() -> Path:
    """The shipped configs: the package `trickbench.configs` (package data; in an editable install, the clone's
    configs/). Found through the package, never through the working directory, so a foreign `configs/` there
    cannot shadow it."""
    import importlib.util

    spec = importlib.util.find_spec("trickbench.configs")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("trickbench.configs is not installed: reinstall with `pip install -e .` from the clone")
    return Path(next(iter(spec.submodule_search_locations)))


def describe(path: Path, width: int = 80) -> str:
    """A config's one-line description: its first comment line, up to its first sentence end or `width` characters."""
    first = next((ln for ln in path.read_text().splitlines() if ln.strip()), "")
    text = first.lstrip("#").strip() if first.startswith("#") else ""
    text = re.split(r"\.\s+(?=[A-Z])|\s{2,}", text)[0].rstrip(":,;. ")  # first sentence ("et al. 2016" is not an end)
    if len(text) > width:
        text = text[: width - 1].rsplit(" ", 1)[0].rstrip(":,;(") + " …"
    return text


def shipped() -> dict[str, Path]:
    """Config name (path under configs/ without .yaml, e.g. `cifar10_fast`, `tricks/ema`) -> file."""
    root = configs_dir()
    return {str(p.relative_to(root).with_suffix("")): p for p in sorted(root.rglob("*.yaml"))}


def resolve_config(value: str) -> str:
    """A `--config` value: an existing file as given (read with today's class paths if it names older ones:
    trickbench/aliases.py); else a shipped config's name (with or without `.yaml`, with or without a leading
    `configs/`); else unchanged, so LightningCLI reports the missing file. A YAML string (an upgraded old
    config, as a DDP rank re-running the resolved command line sees it) is no path and stays as it is."""
    if "\n" in value:
        return value
    if Path(value).exists():
        from trickbench.aliases import upgrade_config_file

        return upgrade_config_file(value)
    name = value.removeprefix("configs/").removesuffix(".yaml")
    found = shipped().get(name)
    return str(found) if found is not None else value


def resolve_args(argv: list[str]) -> list[str]:
    out, take = [], False
    for arg in argv:
        if take:
            arg, take = resolve_config(arg), False
        elif arg in ("--config", "-c"):
            take = True
        elif arg.startswith("--config="):
            arg = "--config=" + resolve_config(arg.split("=", 1)[1])
        out.append(arg)
    return out
