"""airbench94's own training code and trickbench's fast preset, side by side on the same machine and data.

    python -m benchmarks.airbench_side_by_side --data_dir DATA [--runs N] [--accept_nonoriginal]

Each run pairs one airbench94 training (the `airbench` package's `train94`, unchanged) with one
`trickbench fit --config configs/cifar10_fast.yaml`, both as child processes started
together (on a CPU with one thread each, so both see the same machine; the pair order alternates
between runs). Each side's CPU seconds (user + sys of its whole process, from `os.wait4`) and wall
seconds are recorded with its test accuracy, and the ratios trickbench / airbench.

On a GPU machine without network install airbench from the wheel shipped here:
`pip install benchmarks/wheels/airbench-0.1.8-py3-none-any.whl`.

On a CPU airbench is patched only to run there: fp32 instead of `.half().cuda()` (the patch maps
`.half()`/`.cuda()` to no-ops while its net and loaders are built, and loads the data onto the CPU),
and wall-clock timers instead of CUDA events. On a GPU it runs unpatched. Both read the same images:
the DataModule's CIFAR-10 batches are written in airbench's `cifar10/{train,test}.pt` format.

Output: `<out>/side_by_side.json` and `.md` (command, machine, versions, git commit, both sides, and over the
pairs the mean ratio and accuracies with their spread). Resumable: each finished pair is written at once to
`<out>/pairs/pair<k>.json`, the report is rewritten after every pair (headed PARTIAL until all `--runs` are done),
and the same command skips the pairs already there. A folder holding pairs of another commit is refused, and so
is a dirty tree (the record names one commit), unless `--allow_dirty` (smoke tests).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.airbench_child import airbench_child, write_airbench_data
from trickbench.io import atomic_write_json
from trickbench.run import record as run_record

REPO = Path(__file__).resolve().parents[1]


OUT = REPO / "results" / "bench" / "airbench_side_by_side"


class PairsError(SystemExit):
    """A pairs folder that cannot be resumed by this checkout."""


def load_pairs(folder: Path, commit: str | None) -> dict[int, dict[str, Any]]:
    """The finished pairs in `folder` (`pair<k>.json`), by run index; all must come from `commit`."""
    done = {}
    for path in sorted(folder.glob("pair*.json")):
        pair = json.loads(path.read_text())
        if pair.get("git_commit") != commit:
            raise PairsError(
                f"error: {path} was measured at commit {pair.get('git_commit')}, this checkout is {commit}: "
                "pairs of two commits do not make one record; pass another --out (or check out that commit)"
            )
        done[int(pair["run"])] = pair
    return done


def spread(xs: list[float]) -> str:
    """`mean (sd s, range lo-hi)`; sd only from two values on."""
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return f"{mean:.4g} (one pair)"
    return f"{mean:.4g} (sd {statistics.stdev(xs):.2g}, range {min(xs):.4g}-{max(xs):.4g})"


# --- the driver -----------------------------------------------------------------------------------
def run_child(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)


def reap(procs: dict[int, tuple[str, subprocess.Popen, float]]) -> dict[str, dict[str, float]]:
    """Wait for the children in the order they finish; each one's CPU seconds (user + sys) and wall seconds."""
    done = {}
    while len(done) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        if pid not in procs:
            continue
        name, proc, started = procs[pid]
        proc.returncode = os.waitstatus_to_exitcode(status)
        done[name] = {
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime,
            "wall_s": time.perf_counter() - started,
            "exit": proc.returncode,
        }
    return done


def last_json(log: Path) -> dict[str, Any]:
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result line in {log}; see the log")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--accept_nonoriginal", action="store_true")
    ap.add_argument("--runs", type=int, default=1, help="pairs in all (pairs already in <out>/pairs are kept)")
    ap.add_argument("--allow_dirty", action="store_true", help="run on a tree with uncommitted changes (smoke)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per side on a CPU")
    ap.add_argument("--sequential", action="store_true", help="one side at a time instead of both together")
    ap.add_argument("--work", default="/tmp/airbench_side_by_side")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--trickbench_args", default="", help="extra arguments for scripts.train fit")
    ap.add_argument("--airbench_child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="shorten airbench's schedule (smoke tests; pass the matching --trainer.max_steps in --trickbench_args)",
    )
    args = ap.parse_args()
    if args.airbench_child is not None:
        return airbench_child(args.airbench_child, args.epochs)

    import torch

    from trickbench.run.run_dir import provenance

    started_with = provenance()  # the code as it was when the runs started (the tree may change while they run)
    if started_with["git_dirty"] and not args.allow_dirty:
        raise PairsError("error: the tree has uncommitted changes; commit them (the record names one commit)")

    work, out = Path(args.work), Path(args.out)
    done = load_pairs(out / "pairs", started_with["git_commit"])
    if not done:  # a report without pairs of its own (an older record): kept, never rewritten
        from benchmarks.common import refuse_existing

        refuse_existing(out, "side_by_side")
    work.mkdir(parents=True, exist_ok=True)
    write_airbench_data(Path(args.data_dir), args.accept_nonoriginal, work)
    gpu = torch.cuda.is_available()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO)}
    precision = [] if gpu else ["--trainer.precision", "32-true"]  # airbench runs fp32 on a CPU too
    runs = []
    for k in range(args.runs):
        if k in done:
            runs.append(done[k])
            print(f"pair {k}: kept from {out / 'pairs'}", flush=True)
            continue
        run_dir = work / f"trickbench_run{k}"
        tb_cmd = [
            sys.executable,
            "-m",
            "trickbench",
            "fit",
            "--config",
            str(REPO / "configs/cifar10_fast.yaml"),
            "--data.init_args.data_dir",
            args.data_dir,
            "--seed_everything",
            str(k),
            "--run_dir",
            str(run_dir),
            "--overwrite",
            "true",
            *precision,
            *(["--data.init_args.accept_nonoriginal", "true"] if args.accept_nonoriginal else []),
            *shlex.split(args.trickbench_args),
        ]
        ab_cmd = [
            sys.executable,
            "-m",
            "benchmarks.airbench_side_by_side",
            "--data_dir",
            args.data_dir,
            "--airbench_child",
            str(k),
            *(["--epochs", str(args.epochs)] if args.epochs else []),
        ]
        sides = [("airbench", ab_cmd, work), ("trickbench", tb_cmd, REPO)]
        if k % 2:
            sides.reverse()
        result: dict[str, Any] = {
            "run": k,
            "git_commit": started_with["git_commit"],
            "order": [s[0] for s in sides],
            "machine": pair_machine(),  # each pair's own: a resumed folder may hold pairs of several machines
        }
        procs: dict[int, tuple[str, subprocess.Popen, float]] = {}
        for name, cmd, cwd in sides:
            proc = run_child(cmd, cwd, env, work / f"{name}_run{k}.log")
            procs[proc.pid] = (name, proc, time.perf_counter())
            if args.sequential:
                result.update(reap(procs))
                procs = {}
        result.update(reap(procs))
        result["machine"]["loadavg_end"] = list(os.getloadavg())
        for name, cmd, _ in sides:
            result[name]["command"] = shlex.join(cmd)
            if result[name]["exit"] != 0:
                raise SystemExit(
                    f"{name} run {k} failed (exit {result[name]['exit']}); see {work / f'{name}_run{k}.log'}"
                )
        result["airbench"].update(last_json(work / f"airbench_run{k}.log"))
        result["airbench"]["cpu_s"] -= result["airbench"]["untimed_no_tta_eval_cpu_s"]
        record = run_record.load(run_dir).to_dict()
        result["trickbench"]["test_acc_tta"] = record["test"]["acc"]
        result["trickbench"]["fit_seconds"] = record.get("fit_seconds")
        result["ratio_cpu"] = result["trickbench"]["cpu_s"] / result["airbench"]["cpu_s"]
        result["ratio_wall"] = result["trickbench"]["wall_s"] / result["airbench"]["wall_s"]
        runs.append(result)
        atomic_write_json(out / "pairs" / f"pair{k}.json", result)
        print(json.dumps({k2: result[k2] for k2 in ("run", "ratio_cpu", "ratio_wall")}), flush=True)
        write_record(out, args, started_with, gpu, runs)
    write_record(out, args, started_with, gpu, runs)


def write_record(out: Path, args: argparse.Namespace, started_with: dict, gpu: bool, runs: list[dict]) -> None:
    from benchmarks.common import save

    payload = {
        "provenance": started_with,
        "threads_per_side": args.threads,
        "concurrent": not args.sequential,
        "device": "cuda" if gpu else "cpu",
        "command": "python -m benchmarks.airbench_side_by_side " + shlex.join(sys.argv[1:]),
        "pairs_planned": args.runs,
        "runs": runs,
    }
    save(out, "side_by_side", payload, report(payload), replace=True)  # rewritten after each pair of this folder


def pair_machine() -> dict[str, Any]:
    """Where a pair ran: CPU model, host, cores and the load average when it started."""
    import torch

    from trickbench.run.run_dir import cpu_model

    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...: same name, other kernels
        "host": os.uname().nodename,
        "cores": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
    }


def machines_of(runs: list[dict[str, Any]]) -> str:
    """The machines of the pairs: `run k: CPU (n cores), load a -> b`, or how an older pair recorded none."""
    lines = []
    for r in runs:
        m = r.get("machine")
        if m is None:
            lines.append(f"- run {r['run']}: machine not recorded per pair (the folder's machine line below)")
            continue
        load = f"load {m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [float('nan')])[0]:.2f} at end"
        cap = f", {m['cpu_capability']}" if m.get("cpu_capability") else ""
        lines.append(f"- run {r['run']}: {m['cpu']}{cap} ({m['cores']} cores), host {m['host']}; {load}")
    return "\n".join(lines)


def report(p: dict[str, Any]) -> str:
    from benchmarks.common import provenance_lines  # not at import: the airbench child imports this module

    prov = p["provenance"]
    rows = ["| run | side | test acc (TTA) | test acc (no TTA) | CPU s | wall s |", "|---|---|---|---|---|---|"]
    for r in p["runs"]:
        for side in ("airbench", "trickbench"):
            s = r[side]
            no_tta = s.get("test_acc_no_tta")
            rows.append(
                f"| {r['run']} | {side} | {100 * s['test_acc_tta']:.2f}% | "
                f"{'' if no_tta is None else f'{100 * no_tta:.2f}%'} | {s['cpu_s']:.0f} | {s['wall_s']:.0f} |"
            )
    ratios = "\n".join(
        f"- run {r['run']}: CPU seconds trickbench / airbench = {r['ratio_cpu']:.3f}, wall = {r['ratio_wall']:.3f}"
        for r in p["runs"]
    )
    n, planned = len(p["runs"]), p.get("pairs_planned", len(p["runs"]))
    acc = {side: [100 * r[side]["test_acc_tta"] for r in p["runs"]] for side in ("airbench", "trickbench")}
    summary = (
        f"Over {n} pair(s): CPU seconds trickbench / airbench {spread([r['ratio_cpu'] for r in p['runs']])}; "
        f"wall {spread([r['ratio_wall'] for r in p['runs']])}. Test accuracy with TTA (%): airbench "
        f"{spread(acc['airbench'])}, trickbench {spread(acc['trickbench'])}.\n\n"
    )
    partial = f"**PARTIAL: {n} of {planned} pairs** (rerun the command to continue).\n\n" if n < planned else ""
    return (
        "# airbench94 (its own code) vs trickbench's fast preset, side by side\n\n"
        + partial
        + summary
        + "\n".join(rows)
        + "\n\n"
        + ratios
        + "\n\n"
        + machines_of(p["runs"])
        + "\n\n"
        f"- device: {p['device']}; {p['threads_per_side']} torch thread(s) per side; "
        f"{'both sides at once' if p['concurrent'] else 'one side at a time'}\n"
        f"- CPU s / wall s: the whole child process (start-up, data, training, test with TTA)\n"
        f"- machine of the last call: {prov['cpu']} ({os.cpu_count()} cores), host {prov['host']}\n"
        + provenance_lines(prov)
        + f"- command: `{p['command']}`\n- per side: the `command` fields in side_by_side.json\n"
    )


if __name__ == "__main__":
    main()
