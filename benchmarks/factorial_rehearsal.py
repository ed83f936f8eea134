"""Rehearse the GPU factorial preset on a CPU at tiny scale: the real trainer runs every design row of
configs/ablations/cifar10_gpu_factorial.yaml (each row's tricks composed, the KD teacher, TTA tested both ways) for
2 optimizer steps on generated CIFAR-10 files, through the harness with --per-process, --target-halfwidth and
--max-runs (an unreachable target, so the budget rule ends it), then the factorial report. Checks the wiring a
GPU session depends on, not accuracy.

    python -m benchmarks.factorial_rehearsal --work /tmp/rehearsal --out results/cifar10_gpu_factorial/rehearsal

The preset is used as is except: seeds [0, 1] (2 replicates, 64 runs), and CPU overrides (below) given with --set.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

import yaml

from benchmarks.common import command, machine
from trickbench.datamodules.fake import make_fake_cifar
from trickbench.io import atomic_write_text
from trickbench.scripts import ablate, report

PRESET = Path("configs/ablations/cifar10_gpu_factorial.yaml")
CPU = [  # the GPU recipe on a CPU, tiny: fp32, host-resident data, no compile, 2 steps, a narrow net, small batches
    "trainer.accelerator=cpu",
    "model.init_args.net.init_args.widths=[16, 32, 32]",
    "trainer.precision=32-true",
    "trainer.max_steps=2",
    "model.init_args.compile=false",
    "data.init_args.device_resident=false",
    "data.init_args.batch_size=64",
    "data.init_args.eval_batch_size=100",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="scratch folder: generated data, the scheduling copy, the runs")
    p.add_argument("--out", required=True, help="where the report goes")
    args = p.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")  # no W&B folders for a wiring check
    m = machine()  # before anything is written: the commit and whether the tree was clean when it started
    work = Path(args.work)
    data = make_fake_cifar(work / "data", per_batch=64, n_test=200)
    spec = yaml.safe_load(PRESET.read_text())
    spec["seeds"] = [0, 1]
    copy = work / "cifar10_gpu_factorial.yaml"
    copy.write_text(yaml.safe_dump(spec, sort_keys=False))
    sets = [f"data.init_args.data_dir={data}", *CPU]
    argv_ablate = [str(copy), "--runs-dir", str(work / "runs"), "--per-process", "40"]
    argv_ablate += ["--target-halfwidth", "1e-9", "--max-runs", "64"] + [a for s in sets for a in ("--set", s)]
    rc = ablate.main(argv_ablate)
    if rc != 0:
        return rc
    out = Path(args.out)
    report.main([str(work / "runs" / spec["name"]), "--out", str(out)])
    atomic_write_text(
        out / "COMMAND.md",
        "# Rehearsal of the GPU factorial preset on a CPU (tiny scale)\n\n"
        f"{__doc__.split(chr(10) + chr(10))[0]}\n\n"
        f"- command: `{command()}`\n"
        f"- harness: `trickbench ablate {shlex.join(argv_ablate)}` (paths of the scratch folder as given)\n"
        f"- machine: {m['cpu']} ({m['cpu_count']} cores), torch threads {m['torch_threads']}; torch {m['torch']}, "
        f"lightning {m.get('lightning')}\n- git commit: {m['git_commit']} (dirty: {m['git_dirty']})\n"
        f"- date: {m['date_utc']} UTC\n\n"
        "Accuracies are of 2-step runs on generated images: they test that every row trains, tests and is analysed, "
        "nothing about the tricks.\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
