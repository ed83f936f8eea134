"""Every shipped CIFAR-10 config, and every trick fragment on the CPU ablation base, trained at length once.

    python -m benchmarks.at_length --data_dir DATA [--accept_nonoriginal] [--budget 600] [--jobs 2]

Each entry trains for about the same CPU budget (`--budget` CPU-seconds at one torch thread): a
10-step probe of the entry measures its seconds per step, and the real run gets
`max_steps = budget / step_seconds` (its LR schedule and averages then span exactly those steps). For
classifiers the table gives the test accuracy of the **final** weights (what the run reports: the EMA /
Lookahead average where the config has one) and of the **live** weights (the optimizer's own, from the
checkpoint), both with the config's TTA, so a trick that breaks the model shows up as a number. GAN and
VAE configs report their test metrics. Resumable: an entry whose run completed is not run again.

Output: `<out>/at_length.{json,md}` (command, machine, versions, git commit, per-entry command).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trickbench.run import record as run_record

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "at_length"
ABLATION_BASE = ["configs/cifar10_resnet20.yaml", "configs/tricks/cosine.yaml"]  # configs/ablations/cifar10_cpu.yaml's
BASE_STEPS_PER_EPOCH = 50_000 // 128  # the ablation base: CIFAR-10's 50k training images, batches of 128, drop_last
BASE_OVERRIDES = [
    "--data.init_args.batch_size=128",
    "--data.init_args.eval_batch_size=256",
    "--trainer.limit_val_batches=0",
]


def entries() -> dict[str, list[str]]:
    """name -> config files, in run order (the KD teacher before `trick:kd`)."""
    out = {f"config:{p.stem}": [str(p.relative_to(REPO))] for p in sorted((REPO / "configs").glob("cifar10_*.yaml"))}
    out["trick:none (base)"] = list(ABLATION_BASE)
    for frag in sorted((REPO / "configs" / "tricks").glob("*.yaml")):
        if frag.stem != "cosine":  # part of the base
            out[f"trick:{frag.stem}"] = ABLATION_BASE + [str(frag.relative_to(REPO))]
    return out


def slug(name: str) -> str:
    return name.replace(":", "_").replace(" ", "_").replace("(", "").replace(")", "")


def fit_cmd(files: list[str], run_dir: Path, data_dir: str, nonorig: bool, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "trickbench", "fit"]
    for f in files:
        cmd += ["--config", f]
    cmd += [
        "--data.init_args.data_dir",
        data_dir,
        "--run_dir",
        str(run_dir),
        "--trainer.precision",
        "32-true",
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
    ]
    if nonorig:
        cmd += ["--data.init_args.accept_nonoriginal", "true"]
    if files[0] in ABLATION_BASE:
        # max_steps ends the run; max_epochs covers exactly those steps, so an epoch-interval schedule (the
        # stochastic-depth fragment's) spans the run too (with max_epochs -1 it refused to start: first pass).
        steps = int(extra[extra.index("--trainer.max_steps") + 1]) if "--trainer.max_steps" in extra else 0
        cmd += BASE_OVERRIDES + ["--trainer.max_epochs", str(max(1, -(-steps // BASE_STEPS_PER_EPOCH)))]
    return cmd + extra


def record(run_dir: Path) -> dict[str, Any] | None:
    found = run_record.load(run_dir)
    return None if found is None else found.to_dict()


def run(cmd: list[str], log: Path, env: dict[str, str]) -> None:
    with log.open("a") as handle:
        handle.write(f"$ {shlex.join(cmd)}\n")
        handle.flush()
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"exit {code}: {shlex.join(cmd)} (log {log})")


def live_vs_final(run_dir: Path, data_dir: str) -> dict[str, float] | None:
    """Test accuracy (config's TTA) of the final and the live weights of a classifier run."""
    import torch

    from trickbench.lightning_modules.ops.averaging import live_weights
    from trickbench.scripts.score_gan import load_run

    model, dm = load_run(run_dir, data_dir=data_dir)
    if not hasattr(model, "eval_logits"):
        return None
    dm.setup("test")
    x, y = dm.splits["test"]

    @torch.no_grad()
    def accuracy() -> float:
        model.eval()
        hits = sum(
            int((model.eval_logits(dm.eval_transform(xb)).argmax(1) == yb).sum())
            for xb, yb in zip(x.split(500), y.split(500))
        )
        return hits / len(y)

    final = accuracy()
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    live = live_weights(ckpt)
    if live is None:
        return {"final": final, "live": final, "averaged": False}
    model.net.load_state_dict(live, strict=False)
    return {"final": final, "live": accuracy(), "averaged": True}


def run_entry(name: str, files: list[str], args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    run_dir, probe_dir, log = work / slug(name), work / (slug(name) + ".probe"), work / (slug(name) + ".log")
    extra: list[str] = []
    if name == "trick:onecycle":  # the fragment's own note: a base without OneCycleLR (cosine here) names max_lr
        extra = ["--model.init_args.lr_scheduler.init_args.max_lr", "0.1"]  # the base's SGD lr
    if name == "trick:kd":  # the fragment with the teacher's checkpoint and net filled in (as scripts.ablate does)
        import yaml

        from trickbench.io import atomic_write_text
        from trickbench.scripts.ablate import fill_teacher

        teacher = work / "kd_teacher"
        if not (record(teacher) or {}).get("status") == "completed":  # the base at twice the budget, first
            steps = int(
                2 * args.budget / 0.6
            )  # ~0.6 CPU-s per ResNet-20 step of 128 (configs/ablations/cifar10_cpu.yaml)
            resume = (
                ["--ckpt_path", "last"]
                if (teacher / "checkpoints" / "last.ckpt").is_file()
                else ["--overwrite", "true"]
            )
            run(
                fit_cmd(
                    ABLATION_BASE,
                    teacher,
                    args.data_dir,
                    args.accept_nonoriginal,
                    ["--trainer.max_steps", str(steps)] + resume,
                ),
                work / "kd_teacher.log",
                env,
            )
        tree = yaml.safe_load((REPO / files[-1]).read_text())
        net = yaml.safe_load((teacher / "config.yaml").read_text())["model"]["init_args"]["net"]
        fill_teacher(tree, str(teacher / "checkpoints" / "last.ckpt"), net)
        generated = work / "kd_with_teacher.yaml"
        atomic_write_text(generated, yaml.safe_dump(tree, sort_keys=False))
        files = files[:-1] + [str(generated)]
    done = record(run_dir)
    if not (done and done.get("status") == "completed"):
        if not record(probe_dir):
            run(
                fit_cmd(
                    files,
                    probe_dir,
                    args.data_dir,
                    args.accept_nonoriginal,
                    extra + ["--trainer.max_steps", "10", "--trainer.limit_test_batches", "0"],
                ),
                log,
                env,
            )
    step_s = record(probe_dir)["fit_seconds"] / 10
    steps = max(10, int(args.budget / step_s))
    if not (done and done.get("status") == "completed"):
        resume = (
            ["--ckpt_path", "last"] if (run_dir / "checkpoints" / "last.ckpt").is_file() else ["--overwrite", "true"]
        )
        run(
            fit_cmd(
                files,
                run_dir,
                args.data_dir,
                args.accept_nonoriginal,
                extra + ["--trainer.max_steps", str(steps)] + resume,
            ),
            log,
            env,
        )
    rec = record(run_dir)
    return {
        "name": name,
        "configs": files,
        "max_steps": steps,
        "probe_step_s": step_s,
        "fit_seconds": rec.get("fit_seconds"),
        "test": rec.get("test"),
        "weights": live_vs_final(run_dir, args.data_dir),
        "command": shlex.join(
            fit_cmd(files, run_dir, args.data_dir, args.accept_nonoriginal, extra + ["--trainer.max_steps", str(steps)])
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--accept_nonoriginal", action="store_true")
    ap.add_argument("--budget", type=float, default=600.0, help="CPU-seconds of training per entry (1 thread)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated entry names (default: all)")
    ap.add_argument("--work", default="runs/at_length")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    from benchmarks.common import refuse_existing

    refuse_existing(args.out, "at_length")

    from benchmarks.common import save
    from trickbench.run.run_dir import provenance

    started_with = provenance()  # the code as it was when the runs started (the tree may change while they run)

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    todo = entries()
    todo = {"trick:kd": todo.pop("trick:kd"), **todo} if "trick:kd" in todo else todo  # teacher starts first
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only.split(",")}
    started = time.perf_counter()
    results, failures = [], {}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {name: pool.submit(run_entry, name, files, args, work, env) for name, files in todo.items()}
        for name, fut in futures.items():
            try:
                results.append(fut.result())
                print(json.dumps({"done": name, "weights": results[-1]["weights"]}), flush=True)
            except Exception as err:  # one broken entry is a row in the table, not a lost sweep
                failures[name] = str(err)
    payload = {
        "provenance": started_with,
        "budget_cpu_s": args.budget,
        "jobs": args.jobs,
        "wall_s": time.perf_counter() - started,
        "command": "python -m benchmarks.at_length " + shlex.join(sys.argv[1:]),
        "entries": results,
        "failures": failures,
    }
    save(args.out, "at_length", payload, report(payload))


def report(p: dict[str, Any]) -> str:
    from benchmarks.common import provenance_lines

    rows = [
        "| entry | steps | final weights, test acc | live weights, test acc | final - live | other test metrics |",
        "|---|---|---|---|---|---|",
    ]
    for e in p["entries"]:
        w = e["weights"]
        if w:
            rows.append(
                f"| {e['name']} | {e['max_steps']} | {100 * w['final']:.2f}% | {100 * w['live']:.2f}% | "
                f"{100 * (w['final'] - w['live']):+.2f} | |"
            )
        else:
            other = ", ".join(f"{k} {v:.4g}" for k, v in (e["test"] or {}).items())
            rows.append(f"| {e['name']} | {e['max_steps']} | | | | {other} |")
    for name, err in p["failures"].items():
        rows.append(f"| {name} | FAILED | | | | {err[:120]} |")
    prov = p["provenance"]
    return (
        f"# Every CIFAR-10 config and trick fragment at a fixed CPU budget ({p['budget_cpu_s']:.0f} CPU-s each)\n\n"
        + "\n".join(rows)
        + "\n\n"
        "- final: the weights the run reports (its EMA / Lookahead average if it has one); live: the optimizer's "
        "own weights from the same checkpoint; both with the config's TTA, on the full 10k test set\n"
        f"- machine: {prov['cpu']}, 1 torch thread per run, {p['jobs']} runs at once; wall {p['wall_s'] / 3600:.1f} h\n"
        + provenance_lines(prov)
        + f"- command: `{p['command']}`; per entry: `command` in at_length.json\n"
    )


if __name__ == "__main__":
    main()
