"""CPU seconds per training step of the CPU trick-table net, channels_last vs contiguous, alternating.

    OMP_NUM_THREADS=1 python -m benchmarks.channels_last [--steps 4] [--rounds 2] [--out results/bench/channels_last]

The net and batch of `configs/cifar10_cpu_fast.yaml` (AirbenchNet [32, 128, 128], residual, batch 512): forward,
cross-entropy, backward and an SGD step on random data, timed with `time.process_time` after one warm-up step;
the two layouts alternate `--rounds` times in one process, so they share the machine's state. The ratio matters,
not the seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from benchmarks.common import RESULTS, refuse_existing, save_with_machine, table
from trickbench.lightning_modules.nets import AirbenchNet

# Read from the preset itself, so the benchmark measures the net and batch the preset trains.
PRESET = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/cifar10_cpu_fast.yaml").read_text())
NET = PRESET["model"]["init_args"]["net"]["init_args"]
BATCH = PRESET["data"]["init_args"]["batch_size"]


def step_seconds(channels_last: bool, steps: int, batch: int = BATCH) -> float:
    torch.manual_seed(0)
    net, x = AirbenchNet(**NET), torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for i in range(steps + 1):
        if i == 1:
            t0 = time.process_time()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.process_time() - t0) / steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.channels_last", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "channels_last"))
    args = p.parse_args(argv)
    refuse_existing(args.out, "channels_last")
    rows, raw = [], []
    for r in range(args.rounds):
        cl, plain = step_seconds(True, args.steps), step_seconds(False, args.steps)
        raw.append({"round": r, "channels_last_s": cl, "contiguous_s": plain})
        rows.append([r, cl, plain, plain / cl])
    body = table(["round", "channels_last CPU-s/step", "contiguous CPU-s/step", "contiguous / channels_last"], rows)
    save_with_machine(
        args.out,
        "channels_last",
        {"rounds": raw, "steps": args.steps, "net": NET},
        f"channels_last vs contiguous, CPU trick-table net (batch {BATCH})",
        body,
    )
    print(body)


if __name__ == "__main__":
    main()
