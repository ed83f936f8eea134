"""The one `trickbench` command (also `python -m trickbench`): LightningCLI's subcommands with shipped configs
found by name from any directory, and the tools (ablate, report, ensemble, data, score-gan) as subcommands.

    trickbench                                   # an overview: subcommands, shipped configs and fragments
    trickbench fit --config cifar10_fast --config tricks/ema --trainer.max_epochs 2
    trickbench fit --config configs/cifar10_fast.yaml ...                  # a path works too
    trickbench fit --help                        # every argument of fit (imports Lightning)
    trickbench ablate configs/ablations/cifar10_cpu_fast.yaml --dry-run

The overview imports neither torch nor Lightning (it reads the YAML files' first comment lines), so it prints
at once; training is `trickbench.lightning_cli.cli_main`, each tool its module's `main(argv)`.
"""

from __future__ import annotations

import sys

from trickbench.config_files import configs_dir, describe, resolve_args, resolve_config, shipped

SUBCOMMANDS = {
    "fit": "train, then test the final weights (--test_after_fit false to skip)",
    "validate": "evaluate a checkpoint on the validation split (writes R/eval/validate-<time>/)",
    "test": "evaluate a checkpoint on the test split (writes R/eval/test-<time>/)",
    "predict": "run a checkpoint on the test split's inputs",
}
TOOLS = {  # subcommand -> (module with main(argv, prog), what it does)
    "ablate": ("trickbench.scripts.ablate", "run an ablation file (arms x seeds), locally or as a SLURM array"),
    "report": ("trickbench.scripts.report", "the paired trick table of an ablation's runs (Markdown, CSV, plots)"),
    "ensemble": ("trickbench.scripts.ensemble", "combine several runs' test predictions; defer where they disagree"),
    "data": ("trickbench.scripts.cifar_folder", "build or verify cifar-10-batches-py/ from a folder of images"),
    "score-gan": ("trickbench.scripts.score_gan", "score a GAN run's samples with a trained classifier run"),
}
__all__ = ["configs_dir", "describe", "main", "overview", "resolve_args", "resolve_config", "shipped"]
GROUPS = {
    "": "experiments",
    "tricks": "trick fragments (stack after a CIFAR-10 recipe)",
    "trainer": "trainer fragments",
    "variants": "variants of an experiment (stack after it)",
    "ablations": "ablation presets (trickbench ablate)",
}


def overview(prog: str = "trickbench") -> str:
    configs = shipped()
    lines = [
        f"usage: {prog} {{{','.join(SUBCOMMANDS)}}} --config NAME|FILE [--config ...] [--key value ...]",
        f"       {prog} {{{','.join(TOOLS)}}} ... (each with --help)",
        "",
        "subcommands (each takes --help for its arguments):",
    ]
    lines += [f"  {name:<10}{text}" for name, text in SUBCOMMANDS.items()]
    lines += [f"  {name:<10}{text}" for name, (_, text) in TOOLS.items()]
    for group, title in GROUPS.items():
        names = [n for n in configs if (n.split("/")[0] if "/" in n else "") == group]
        if names:
            width = max(len(n) for n in names) + 2
            lines += ["", f"{title}:"] + [f"  {n:<{width}}{describe(configs[n], 110 - width)}" for n in names]
    lines += [
        "",
        "Configs stack left to right; a name is a file under configs/ (e.g. --config tricks/ema).",
        "Docs: docs/ in the repository (running, tricks, ablations, results, guarantees).",
    ]
    return "\n".join(lines)


def run_tool(name: str, argv: list[str], prog: str) -> int:
    import importlib

    result = importlib.import_module(TOOLS[name][0]).main(argv, prog=f"{prog} {name}")
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None, prog: str = "trickbench") -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv in (["-h"], ["--help"]):
        print(overview(prog))
        return
    if argv[0] in TOOLS:
        sys.exit(run_tool(argv[0], argv[1:], prog))
    from trickbench import signals

    signals.hold()  # first: a SLURM time-limit warning during start-up waits for the Trainer's handler
    sys.argv[1:] = resolve_args(argv)  # a DDP rank re-runs sys.argv: the resolved paths
    from trickbench.lightning_cli import cli_main

    cli_main()
