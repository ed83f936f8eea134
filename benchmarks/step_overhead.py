"""Benchmark 1: per-step cost of the template's training step vs a hand-written PyTorch loop.

Same net, data (uint8 images in memory, normalised per batch), batch size and optimizer on every side, in one
process. Three sides:

- `plain`: `for idx in batches: forward, cross-entropy, zero_grad, backward, step`;
- `bare`: `Classifier` + a `TensorDataModule` in a bare Lightning `Trainer` (no logger, checkpoint, progress or
  summary), what the template adds to Lightning's own loop;
- `defaults`: the same model through `trickbench fit` in-process (`trickbench.lightning_cli.main`), i.e. with
  every trainer default a user runs with (configs/trainer/default.yaml: exact resume, finite-loss guard, last
  checkpoint, atomic checkpoint writes; the run record, CSV logging, plain progress lines).

Each repeat times the steady-state steps after a warm-up (per-epoch work such as reshuffling, epoch-level
metrics and, on the `defaults` side, the epoch-end checkpoint included); sides alternate and rotate their order
every repeat; ratios are of the medians against `plain`. Nets: the MNIST MLP 784-512-512-10 and a tiny
784-64-10 (batch 128, Adam), and the CPU trick table's net (configs/cifar10_cpu_fast.yaml: AirbenchNet
[32, 128, 128] with residual groups, batch 512, SGD-Nesterov; its whitened stem off, which is set once per run).

    OMP_NUM_THREADS=1 python -m benchmarks.step_overhead --repeats 15
    OMP_NUM_THREADS=1 python -m benchmarks.step_overhead --profile mlp64   # where a `defaults` step's time goes
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import RESULTS, median, refuse_existing, save_with_machine, table
from benchmarks.step_overhead_sides import NETS, RandomImages, time_bare, time_defaults, time_plain

NAME = "step_overhead"  # results go to results/bench/<NAME>/


SIDES = ("plain", "bare", "defaults")


def bench(key: str, repeats: int, work: Path) -> dict:
    cfg = NETS[key]
    dm = RandomImages(n=cfg.n, shape=cfg.shape, batch_size=cfg.batch)
    dm.setup("fit")
    fns = {
        "plain": lambda: time_plain(cfg, dm),
        "bare": lambda: time_bare(cfg, dm),
        "defaults": lambda: time_defaults(cfg, work),
    }
    runs: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in SIDES}
    for rep in range(repeats):
        order = SIDES[rep % 3 :] + SIDES[: rep % 3]  # every side takes every position in turn
        for side in order:
            wall, cpu = fns[side]()
            runs[side]["wall"].append(wall)
            runs[side]["cpu"].append(cpu)
        ms = ", ".join(f"{s} {runs[s]['cpu'][-1] * 1e3:.3f}" for s in SIDES)
        print(f"[{key}] rep {rep}: CPU ms/step {ms}", flush=True)
    out: dict = {"per_step_s": runs}
    for clock in ("cpu", "wall"):
        med = {s: median(runs[s][clock]) for s in runs}
        out[clock] = {"median_s": med}
        for side in ("bare", "defaults"):
            pairs = [a / b for a, b in zip(runs[side][clock], runs["plain"][clock])]
            out[clock][side] = {
                "ratio_of_medians": med[side] / med["plain"],
                "median_pair_ratio": median(pairs),
                "pair_ratio_range": [min(pairs), max(pairs)],
                "overhead_ms_per_step": (med[side] - med["plain"]) * 1e3,
            }
    return out


HOOKS = ("training_step", "log", "update", "optimizer_step", "backward", "zero_grad", "step", "_step")


def profile_defaults(key: str, work: Path) -> str:
    """cProfile (the standard library's deterministic profiler: exact call counts and cumulative time per
    function, which is what a per-hook account needs) of one `defaults` run of `key`. Returns a Markdown summary:
    every callback / LightningModule hook, logging and metric call, and the optimizer and backward, with calls and
    cumulative CPU ms per optimizer step (set-up and warm-up steps included), largest first."""
    cfg = NETS[key]
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    time_defaults(cfg, work)
    prof.disable()
    steps = cfg.warmup + cfg.steps
    rows = []
    for (path, line, func), (_, calls, _own, cum, _) in pstats.Stats(prof).stats.items():
        short = "/".join(Path(path).parts[-2:])
        ours = any(d in path for d in ("/callbacks/", "/lightning_modules/", "/datamodules/", "/trickbench/"))
        lightning_hook = "/lightning/pytorch/" in path and func.startswith(("_call_", "on_"))
        if (func.startswith("on_") or func in HOOKS) and (ours or lightning_hook or "torchmetrics" in path):
            if calls >= steps:  # per-step work, not set-up
                rows.append((cum / steps * 1e3, calls, f"`{func}` ({short}:{line})"))
        elif "/torch/optim/" in path and func == "step" or func == "backward" and "/torch/" in path:
            rows.append((cum / steps * 1e3, calls, f"`{func}` ({short}:{line})"))
    rows.sort(reverse=True)
    body = [[name, calls, f"{ms:.3f}"] for ms, calls, name in rows[:30]]
    return (
        f"{cfg.label}: where a `defaults` step's CPU time goes.\n\n"
        f"cProfile of one `trickbench fit` run ({steps} optimizer steps; the profiler's own cost inflates every "
        "row alike). Cumulative time includes the time of everything a function calls, so nested rows overlap.\n\n"
        + table(["function (file:line)", "calls", "CPU ms per step"], body)
    )


def rows_of(results: dict) -> list[list[str]]:
    rows = []
    for key, r in results.items():
        med = r["cpu"]["median_s"]
        for side in ("bare", "defaults"):
            s = r["cpu"][side]
            lo, hi = s["pair_ratio_range"]
            rows.append(
                [
                    NETS[key].label,
                    side,
                    f"{med['plain'] * 1e3:.3f}",
                    f"{med[side] * 1e3:.3f}",
                    f"{s['overhead_ms_per_step']:.3f}",
                    f"{s['ratio_of_medians']:.3f}",
                    f"{s['median_pair_ratio']:.3f} [{lo:.3f}, {hi:.3f}]",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--repeats", type=int, default=15, help="repeats per net (cpu_fast uses a third, at least 3)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: per net)")
    ap.add_argument("--warmup", type=int, default=None, help="steps before timing starts (default: per net)")
    ap.add_argument("--n", type=int, default=None, help="images per epoch (default: per net)")
    ap.add_argument("--profile", choices=list(NETS), default=None, help="print a cProfile of one defaults run")
    ap.add_argument("--out", default=str(RESULTS / NAME))
    args = ap.parse_args(argv)
    refuse_existing(args.out, f"profile_{args.profile}" if args.profile else NAME)
    sizes = {k: v for k, v in (("steps", args.steps), ("warmup", args.warmup), ("n", args.n)) if v is not None}
    for key in NETS:
        NETS[key] = replace(NETS[key], **sizes)
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            text = profile_defaults(args.profile, Path(tmp))
            save_with_machine(
                args.out,
                f"profile_{args.profile}",
                {"args": vars(args), "profile": text},
                "Step overhead: profile of the defaults side",
                text,
            )
            print(text)
            return {"profile": text}
        reps = {k: args.repeats if k != "cpu_fast" else max(3, args.repeats // 3) for k in args.nets}
        results = {k: bench(k, reps[k], Path(tmp)) for k in args.nets}
    head = [
        "net",
        "template side",
        "plain ms/step",
        "template ms/step",
        "overhead ms/step",
        "ratio of medians",
        "median pair ratio [range]",
    ]
    md = table(head, rows_of(results))
    md += (
        "\n\nProcess CPU time per optimizer step (robust to other load; wall clock in the JSON). `bare`: Classifier "
        "in a bare Trainer; `defaults`: `trickbench fit` with every trainer default. Medians of "
        + ", ".join(f"{reps[k]} ({k})" for k in args.nets)
        + " repeats, sides rotating; timed steps per repeat: "
        + ", ".join(f"{NETS[k].steps} ({k})" for k in args.nets)
        + "."
    )
    save_with_machine(
        args.out,
        NAME,
        {"args": vars(args), "results": results},
        "Step overhead: template training step vs hand-written loop",
        md,
    )
    print(md)
    return results


if __name__ == "__main__":
    main()
