"""Benchmark 1: per-step cost of the template's training step vs a hand-written PyTorch loop.

Same net, data (uint8 images in memory, normalised per batch), batch size and Adam on both sides,
in one process. The template side is `Classifier` + `TensorDataModule` driven by a Lightning
Trainer with progress bar, logger, checkpointing and model summary off; the hand side is
`for idx in batches: forward, cross-entropy, zero_grad, backward, step`. Each repeat times the
steps after a warm-up (per-epoch work such as reshuffling and epoch-level metrics included);
sides alternate and swap order every repeat; the ratio is of the medians.

    OMP_NUM_THREADS=1 python -m benchmarks.step_overhead --repeats 7
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer, seed_everything

from benchmarks.common import RESULTS, median, save_with_machine, table
from trickbench.datamodules.augment import to_float
from trickbench.datamodules.base import TensorDataModule
from trickbench.lightning_modules import Classifier
from trickbench.lightning_modules.nets import MLP

MEAN, STD = (0.1307,), (0.3081,)
NAME = "step_overhead"  # results go to results/bench/<NAME>/
NETS = {"mlp512": [512, 512], "mlp64": [64]}  # the MNIST MLP, and a tiny one that exposes fixed per-step costs


class RandomImages(TensorDataModule):
    """MNIST-shaped random uint8 images; only the cost of the data path matters here."""

    dims, num_classes = (1, 28, 28), 10

    def __init__(self, n: int = 8192, batch_size: int = 128) -> None:
        super().__init__(batch_size=batch_size)
        self.n = n

    def build_splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (self.n, 1, 28, 28), dtype=torch.uint8, generator=gen)
        return {"train": (x, torch.randint(0, 10, (self.n,), generator=gen))}

    def train_transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return to_float(x, MEAN, STD)


def clocks() -> tuple[float, float]:
    """(wall, CPU) seconds. CPU time of this (single-threaded) process is what other agents' load on a
    shared machine disturbs least, so ratios are reported on it; wall time is kept alongside."""
    return time.perf_counter(), time.process_time()


class StepTimer(Callback):
    """Wall and CPU time from the end of batch `warmup - 1` to the end of the last batch."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total, self.t0, self.t1 = warmup, total, (0.0, 0.0), (0.0, 0.0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        step = trainer.global_step  # optimizer steps done so far
        if step == self.warmup:
            self.t0 = clocks()
        elif step == self.total:
            self.t1 = clocks()


def make_net(hidden: list[int]) -> torch.nn.Module:
    seed_everything(0, verbose=False)
    return MLP(784, hidden, 10)


def time_template(hidden: list[int], dm: RandomImages, warmup: int, steps: int) -> tuple[float, float]:
    model = Classifier(make_net(hidden), num_classes=10, optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    timer = StepTimer(warmup, warmup + steps)
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=dm)
    return tuple((b - a) / steps for a, b in zip(timer.t0, timer.t1))


def time_plain(hidden: list[int], dm: RandomImages, warmup: int, steps: int) -> tuple[float, float]:
    net = make_net(hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_all, y_all = dm.splits["train"]
    per_epoch, bs, done = len(x_all) // dm.batch_size, dm.batch_size, 0
    t0 = clocks()
    while done < warmup + steps:
        order = torch.randperm(len(x_all))
        for i in range(min(per_epoch, warmup + steps - done)):
            idx = order[i * bs : (i + 1) * bs]
            loss = F.cross_entropy(net(to_float(x_all[idx], MEAN, STD)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup:
                t0 = clocks()
    return tuple((b - a) / steps for a, b in zip(t0, clocks()))


def bench(net: str, repeats: int, warmup: int, steps: int, n: int) -> dict:
    dm = RandomImages(n=n)
    dm.setup("fit")
    runs: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in ("template", "plain")}
    for rep in range(repeats):
        for side in ("template", "plain") if rep % 2 == 0 else ("plain", "template"):
            fn = time_template if side == "template" else time_plain
            wall, cpu = fn(NETS[net], dm, warmup, steps)
            runs[side]["wall"].append(wall)
            runs[side]["cpu"].append(cpu)
        t, p = runs["template"]["cpu"][-1], runs["plain"]["cpu"][-1]
        print(f"[{net}] rep {rep}: CPU ms/step template {t * 1e3:.3f}, plain {p * 1e3:.3f}", flush=True)
    out: dict = {"per_step_s": runs}
    for clock in ("cpu", "wall"):
        med = {s: median(runs[s][clock]) for s in runs}
        pairs = [a / b for a, b in zip(runs["template"][clock], runs["plain"][clock])]
        out[clock] = {
            "median_s": med,
            "ratio_of_medians": med["template"] / med["plain"],
            "median_pair_ratio": median(pairs),
            "overhead_ms_per_step": (med["template"] - med["plain"]) * 1e3,
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=16, help="steps before timing starts")
    ap.add_argument("--steps", type=int, default=64, help="timed steps per repeat")
    ap.add_argument("--n", type=int, default=8192, help="images per epoch (64 steps of 128)")
    ap.add_argument("--out", default=str(RESULTS / NAME))
    args = ap.parse_args(argv)
    results = {net: bench(net, args.repeats, args.warmup, args.steps, args.n) for net in args.nets}
    rows = [
        [
            f"MLP 784-{'-'.join(map(str, NETS[k]))}-10",
            clock,
            f"{r[clock]['median_s']['plain'] * 1e3:.3f}",
            f"{r[clock]['median_s']['template'] * 1e3:.3f}",
            f"{r[clock]['overhead_ms_per_step']:.3f}",
            f"{r[clock]['ratio_of_medians']:.3f}",
            f"{r[clock]['median_pair_ratio']:.3f}",
        ]
        for k, r in results.items()
        for clock in ("cpu", "wall")
    ]
    md = table(
        [
            "net (batch 128, Adam)",
            "clock",
            "plain ms/step",
            "template ms/step",
            "overhead ms/step",
            "ratio of medians",
            "median pair ratio",
        ],
        rows,
    )
    md += (
        f"\n\nMedians of {args.repeats} alternating repeats, {args.steps} timed steps each after {args.warmup} "
        f"warm-up steps, {args.n // 128} steps/epoch. `cpu` = process CPU time (robust to other load), "
        "`wall` = wall clock."
    )
    save_with_machine(
        args.out,
        "step_overhead",
        {"args": vars(args), "results": results},
        "Step overhead: template training step vs hand-written loop",
        md,
    )
    print(md)
    return results


if __name__ == "__main__":
    main()
