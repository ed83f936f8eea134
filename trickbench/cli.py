"""The `trickbench` console command (and `python -m scripts.train`): LightningCLI's subcommands, with shipped
configs found by name from any directory.

    trickbench                                   # an overview: subcommands, shipped configs and fragments
    trickbench fit --config cifar10_fast --config tricks/ema --trainer.max_epochs 2
    trickbench fit --config configs/cifar10_fast.yaml ...                  # a path works as before
    trickbench fit --help                        # every argument of fit (imports Lightning: ~10 s)

The overview imports neither torch nor Lightning (it reads the YAML files' first comment lines), so it prints
in well under a second; everything else is `trickbench.lightning_cli.cli_main`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SUBCOMMANDS = {
    "fit": "train, then test the final weights (--test_after_fit false to skip)",
    "validate": "evaluate a checkpoint on the validation split (writes R/eval/validate-<time>/)",
    "test": "evaluate a checkpoint on the test split (writes R/eval/test-<time>/)",
    "predict": "run a checkpoint on the test split's inputs",
}
GROUPS = {"": "experiments", "tricks": "trick fragments (stack after a CIFAR-10 recipe)",
          "trainer": "trainer fragments", "variants": "variants of an experiment (stack after it)",
          "ablations": "ablation presets (python -m scripts.ablate)"}  # fmt: skip


def configs_dir() -> Path:
    """The shipped configs: the package `configs` (installed as package data; in a clone, the repo's folder)."""
    import importlib.util

    spec = importlib.util.find_spec("configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "configs"


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
    """A `--config` value: an existing file as given; else a shipped config's name (with or without `.yaml`,
    with or without a leading `configs/`); else unchanged, so LightningCLI reports the missing file."""
    if Path(value).exists():
        return value
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


def overview(prog: str = "trickbench") -> str:
    configs = shipped()
    lines = [f"usage: {prog} {{{','.join(SUBCOMMANDS)}}} --config NAME|FILE [--config ...] [--key value ...]", "",
             "subcommands (each takes --help for its arguments):"]  # fmt: skip
    lines += [f"  {name:<10}{text}" for name, text in SUBCOMMANDS.items()]
    for group, title in GROUPS.items():
        names = [n for n in configs if (n.split("/")[0] if "/" in n else "") == group]
        if names:
            width = max(len(n) for n in names) + 2
            lines += ["", f"{title}:"] + [f"  {n:<{width}}{describe(configs[n], 110 - width)}" for n in names]
    lines += ["", "Configs stack left to right; a name is a file under configs/ (e.g. --config tricks/ema).",
              "README.md: tricks table, ablations, results, guarantees."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "trickbench") -> None:
    from trickbench import signals

    signals.hold()  # first: a SLURM time-limit warning during start-up waits for the Trainer's handler
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv in (["-h"], ["--help"]):
        print(overview(prog))
        return
    sys.argv[1:] = resolve_args(argv)  # a DDP rank re-runs sys.argv: the resolved paths
    from trickbench.lightning_cli import cli_main

    cli_main()


if __name__ == "__main__":
    main()
