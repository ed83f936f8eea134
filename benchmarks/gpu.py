"""Benchmark 4: one script for a short GPU session (< 8 min including compilation).

Part A, fast preset time to accuracy: `configs/cifar10_fast.yaml` trained `--runs` times (seeds 0..n-1),
each in its own `trickbench` process; reports test accuracy and fit seconds as mean ± std (the
first run also pays torch.compile; later runs reuse Inductor's on-disk cache). Stops starting runs once
`--fast_budget_s` is spent. Part B, ResNet-18 training throughput (images/s) through the template
(Classifier + device-resident random CIFAR-shaped data) under 32-true, bf16-mixed, bf16-mixed+compile.
Prints one summary table last and writes `<out>/gpu.json` + `<out>/gpu.md`.

    python -m benchmarks.gpu --data_dir /path/with/cifar-10-batches-py --out results/bench/gpu
    python -m benchmarks.gpu --tiny --out /tmp/x   # CPU plumbing check (tests)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

from benchmarks.common import refuse_existing, save_with_machine, table
from trickbench.datamodules.augment import to_float
from trickbench.datamodules.base import TensorDataModule
from trickbench.datamodules.cifar10 import CIFAR10_MEAN, CIFAR10_STD
from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import ResNet18
from trickbench.run import record as run_record
from trickbench.scripts.ablation.stats import mean_std

ROOT = Path(__file__).resolve().parents[1]
MODES = {"32-true": ("32-true", False), "bf16-mixed": ("bf16-mixed", False), "bf16+compile": ("bf16-mixed", "auto")}
TINY_FAST = [
    "--trainer.accelerator",
    "cpu",
    "--trainer.precision",
    "32-true",
    "--trainer.max_epochs",
    "1",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.limit_test_batches",
    "1",
    "--data.init_args.batch_size",
    "16",
    "--data.init_args.eval_batch_size",
    "32",
    "--model.init_args.net.init_args.widths",
    "[8, 16, 16]",
]


def fast_runs(args: argparse.Namespace) -> list[dict]:
    runs, t_start = [], time.perf_counter()
    for seed in range(args.runs):
        if runs and time.perf_counter() - t_start > args.fast_budget_s:
            print(f"fast preset: budget of {args.fast_budget_s} s spent after {len(runs)} runs", flush=True)
            break
        run_dir = Path(args.out) / f"fast_seed{seed}"
        cmd = [
            sys.executable,
            "-m",
            "trickbench",
            "fit",
            "--config",
            "configs/cifar10_fast.yaml",
            "--data.init_args.data_dir",
            args.data_dir,
            "--data.init_args.accept_nonoriginal",
            "true",
            "--seed_everything",
            str(seed),
            "--run_dir",
            str(run_dir),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
            *(TINY_FAST if args.tiny else []),
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"}
        )
        if proc.returncode:
            raise RuntimeError(f"fast preset run failed:\n{proc.stderr[-3000:]}")
        rec = run_record.load(run_dir).to_dict()
        runs.append(
            {
                "seed": seed,
                "test_acc": rec["test"]["acc"],
                "fit_seconds": rec["fit_seconds"],
                "process_seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"fast preset seed {seed}: test acc {runs[-1]['test_acc']:.4f}, fit {rec['fit_seconds']:.1f} s", flush=True
        )
    return runs


class RandomCifar(TensorDataModule):
    """Random uint8 CIFAR-shaped images; throughput does not depend on pixel values."""

    dims, num_classes = (3, 32, 32), 10

    def __init__(self, n: int, batch_size: int) -> None:
        super().__init__(batch_size=batch_size, device_resident=True)
        self.n = n

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        x = torch.randint(0, 256, (self.n, 3, 32, 32), dtype=torch.uint8)
        return {"train": (x, torch.randint(0, 10, (self.n,)))}

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return to_float(x, CIFAR10_MEAN, CIFAR10_STD)


class Throughput(Callback):
    """Images/s between the end of step `warmup` and the end of the last step (device synchronised)."""

    def __init__(self, warmup: int, batch_size: int) -> None:
        self.warmup, self.batch_size, self.t0, self.steps = warmup, batch_size, 0.0, 0

    def _now(self, device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.warmup:
            self.t0 = self._now(pl_module.device)
        elif trainer.global_step > self.warmup:
            self.steps, self.t1 = trainer.global_step - self.warmup, self._now(pl_module.device)

    def images_per_s(self) -> float:
        return self.steps * self.batch_size / (self.t1 - self.t0) if self.steps else float("nan")


def resnet_throughput(mode: str, args: argparse.Namespace) -> dict:
    precision, compile_ = MODES[mode]
    seed_everything(0, verbose=False)
    model = Classifier(
        ResNet18(num_classes=10),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        channels_last=True,
        compile=compile_,
    )
    timer = Throughput(args.warmup, args.batch_size)
    trainer = Trainer(
        accelerator="auto",
        devices=1,
        precision=precision,
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        benchmark=True,
        callbacks=[timer],
    )
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=RandomCifar(args.batch_size * 8, args.batch_size))
    compiled = model._fwd is not model.net
    out = {"images_per_s": timer.images_per_s(), "compiled": compiled, "wall_seconds": time.perf_counter() - t0}
    print(f"ResNet-18 {mode}: {out['images_per_s']:.0f} img/s (compiled={compiled})", flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data_dir", default="data")
    ap.add_argument("--out", default="results/bench/gpu")
    ap.add_argument("--runs", type=int, default=5, help="fast preset runs (seeds 0..runs-1)")
    ap.add_argument("--fast_budget_s", type=float, default=240, help="start no fast run after this many seconds")
    ap.add_argument("--batch_size", type=int, default=256, help="ResNet-18 throughput batch")
    ap.add_argument("--warmup", type=int, default=15, help="ResNet-18 steps before timing (compile happens here)")
    ap.add_argument("--steps", type=int, default=60, help="ResNet-18 timed steps per mode")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES), help="ResNet-18 precision modes")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes on CPU: checks the plumbing only")
    args = ap.parse_args(argv)
    refuse_existing(args.out, "gpu")
    if args.tiny:
        args.batch_size, args.warmup, args.steps = 4, 1, 2
    t_start = time.perf_counter()
    runs = fast_runs(args)
    resnet = {mode: resnet_throughput(mode, args) for mode in args.modes}
    acc, fit = mean_std([r["test_acc"] for r in runs]), mean_std([r["fit_seconds"] for r in runs])
    rows = [
        [
            f"fast preset, {len(runs)} runs",
            f"test acc {acc[0]:.4f} ± {acc[1]:.4f}",
            f"fit {fit[0]:.1f} ± {fit[1]:.1f} s",
        ]
    ]
    rows += [
        [
            f"ResNet-18 {m}, batch {args.batch_size}",
            f"{r['images_per_s']:.0f} img/s",
            "compiled" if r["compiled"] else "eager",
        ]
        for m, r in resnet.items()
    ]
    md = table(["benchmark", "result", "note"], rows)
    md += f"\n\nTotal script time {time.perf_counter() - t_start:.0f} s (includes compilation)."
    save_with_machine(
        args.out,
        "gpu",
        {"args": vars(args), "fast_runs": runs, "resnet18": resnet, "tiny": args.tiny},
        "GPU session: fast preset time to accuracy + ResNet-18 throughput",
        md,
    )
    print(md)  # the summary table, last
    return {"fast_runs": runs, "resnet18": resnet}


if __name__ == "__main__":
    main()
