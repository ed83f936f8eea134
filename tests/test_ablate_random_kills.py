"""A sweep survives random kills: the harness, its training children, or both are SIGKILLed at random moments
(seeded, a bounded number of times), each time followed by the same command, until the sweep completes. Every run
completes exactly once, no run folder is lost or duplicated, and the final weights and metrics equal those of an
uninterrupted sweep bit for bit (CPU, real `trickbench fit` runs of a tiny MNIST MLP)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import make_fake_mnist, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261206  # the kill schedule
KILLS = 6  # rounds with a random kill (after one round that kills once a checkpoint exists)
LABELS = ["prerequisites/teacher/seed5", "baseline/seed0", "baseline/seed1", "kd/seed0", "kd/seed1"]


def write_ablation(tmp: Path) -> Path:
    data = make_fake_mnist(tmp / "data", n_train=512, n_test=64)
    spec = {
        "name": "kills",
        "base": [str(ROOT / "configs" / "mnist_mlp.yaml")],
        "overrides": [
            f"--data.init_args.data_dir={data}",
            "--data.init_args.accept_nonoriginal=true",
            "--data.init_args.download=false",
            "--data.init_args.val_size=64",
            "--data.init_args.batch_size=32",
            "--trainer.max_epochs=4",
            "--trainer.logger=false",
            "--trainer.callbacks+=killswitch.SlowSteps",  # 0.1 s a step: kills land in training, not only start-up
            "--trainer.callbacks.seconds=0.1",
        ],
        "seeds": [0, 1],
        "seed_keys": ["seed_everything", "data.init_args.seed"],
        "prerequisites": {"teacher": {"seed": 5}},
        "arms": {
            "baseline": [],
            "kd": {"fragments": [str(ROOT / "configs" / "tricks" / "kd.yaml")], "teacher": "teacher"},
        },
    }
    path = tmp / "kills.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def command(ablation: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "trickbench", "ablate", str(ablation), "--runs-dir", str(runs)]


def group_members(pgid: int) -> list[int]:
    """PIDs of the process group `pgid` (the harness's session: the harness and the runs it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def kill(proc: subprocess.Popen, mode: str) -> None:
    """SIGKILL the harness alone, its children alone, or the whole group."""
    targets = {"harness": [proc.pid], "children": [p for p in group_members(proc.pid) if p != proc.pid]}
    targets["all"] = group_members(proc.pid)
    for pid in targets[mode]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def wait_for_orphans(pgids: list[int], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while any(group_members(g) for g in pgids):
        assert time.time() < deadline, "children of killed harnesses still running"
        time.sleep(0.5)


def outcome(runs: Path, label: str) -> tuple[dict, dict[str, torch.Tensor]]:
    run = runs / "kills" / label
    record = json.loads((run / "metrics.json").read_text())
    weights = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return record, weights


@pytest.mark.slow
def test_a_sweep_killed_at_random_moments_completes_each_run_once_bit_for_bit(tmp_path: Path) -> None:
    ablation = write_ablation(tmp_path)
    env = subprocess_env()
    reference = subprocess.run(command(ablation, tmp_path / "reference"), env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]

    rng, log, pgids = random.Random(SEED), [], []
    # the first three rounds kill each way once, in a random order (a sweep that completes early must still have met
    # every kind of kill); later rounds draw the way at random
    modes = rng.sample(["harness", "children", "all"], 3) + [
        rng.choice(["harness", "children", "all"]) for _ in range(KILLS - 3)
    ]
    runs = tmp_path / "runs"
    # round 0: the children killed once a run has checkpointed, so some run surely resumes from a checkpoint
    proc = subprocess.Popen(
        command(ablation, runs), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    pgids.append(proc.pid)
    started, deadline = time.time(), time.time() + 300
    while not list(runs.glob("kills/**/checkpoints/last.ckpt")) and proc.poll() is None:
        assert time.time() < deadline, "no run checkpointed within 300 s"
        time.sleep(0.1)
    time.sleep(rng.uniform(0.0, 1.0))
    kill(proc, "children")
    log.append(f"killed children after a checkpoint at {time.time() - started:.1f} s")
    for mode in modes:  # each round: the same command, killed after a random delay
        proc = subprocess.Popen(
            command(ablation, runs), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        pgids.append(proc.pid)
        delay = rng.uniform(3.0, 25.0)
        try:
            proc.wait(timeout=delay)
            log.append(f"finished before the kill ({proc.returncode})")
        except subprocess.TimeoutExpired:
            kill(proc, mode)
            log.append(f"killed {mode} at {delay:.1f} s")
    for _attempt in range(20):  # then the same command until it completes (3: a killed harness's run still going)
        done = subprocess.run(command(ablation, runs), env=env, capture_output=True, text=True)
        if done.returncode == 0:
            break
        assert done.returncode == 3, (log, done.stdout[-3000:], done.stderr[-3000:])
        time.sleep(2)
    assert done.returncode == 0, log
    wait_for_orphans(pgids)

    root = runs / "kills"
    folders = sorted(str(p.relative_to(root)) for p in root.glob("**/seed*") if "attempts" not in p.parts)
    assert folders == sorted(LABELS), (folders, log)  # nothing lost, nothing duplicated, no .stale copy
    for label in LABELS:
        record, weights = outcome(runs, label)
        ref_record, ref_weights = outcome(tmp_path / "reference", label)
        exits = [s.get("exit") for s in record["segments"]]
        assert record["status"] == "completed" and exits.count("completed") == 1, (label, exits, log)
        assert record["test"] == ref_record["test"] and record["val"] == ref_record["val"], (label, log)
        assert record["global_step"] == ref_record["global_step"]
        assert weights.keys() == ref_weights.keys() and all(torch.equal(weights[k], ref_weights[k]) for k in weights)
    killed = {line.split()[1] for line in log if line.startswith("killed")}
    assert killed == {"harness", "children", "all"}, log  # the schedule killed each way
    segments = {label: len(outcome(runs, label)[0]["segments"]) for label in LABELS}
    assert max(segments.values()) > 1, (segments, log)  # some run was resumed from its checkpoint
    print("kill schedule:", log, "segments per run:", segments)
