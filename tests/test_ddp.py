"""DDP equivalence on CPU: 2 processes (gloo) x batch 16 vs 1 process x batch 32, through the CLI.

The DDP job is a subprocess (Lightning's `strategy=ddp` re-runs the launching command for rank 1,
which must not be pytest); see tests/ddp_scripts/ddp_arms.py for the two trainings compared.
Tolerances: the KD arm has no randomness inside a step, so DDP differs from one process only by
float summation order (gradient all-reduce): losses agree to 1e-5 relative, weights to 1e-6.
The tricks arm draws its augmentation, mixup and drop-path randomness per rank by design, so
only its schedules must agree exactly and its losses within 0.05 nats over 6 steps.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_fake_cifar, make_fake_mnist

from trickbench.lightning_modules.nets import MLP
from trickbench.run.run_dir import child_environ

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "tests" / "ddp_scripts"
sys.path.insert(0, str(HELPERS))
from ddp_arms import run_arms  # noqa: E402  (tests/ddp_scripts, put on sys.path above)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def arms(tmp_path_factory) -> tuple[Path, Path]:
    """(ddp_out, single_out): both arms run under DDP in a subprocess and in this process."""
    root = tmp_path_factory.mktemp("ddp")
    mnist, cifar = make_fake_mnist(root / "mnist"), make_fake_cifar(root / "cifar")
    torch.manual_seed(1)
    torch.save(MLP(784, [16], 10).state_dict(), root / "teacher.pt")
    paths = [str(p) for p in (mnist, cifar, root / "teacher.pt")]
    env = {**child_environ(), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(HELPERS / "ddp_arms.py"), str(root / "ddp"), *paths, "ddp"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    run_arms(root / "single", mnist, cifar, root / "teacher.pt", ddp=False)
    return root / "ddp", root / "single"


@pytest.mark.slow
def test_kd_arm_matches_single_process(arms):
    ddp, single = (a / "kd" for a in arms)
    losses = [(a["loss"], b["loss"]) for a, b in zip(read_jsonl(ddp / "loss.jsonl"), read_jsonl(single / "loss.jsonl"))]
    assert len(losses) == 6 and losses[-1][1] < losses[0][1]  # it trained
    for got, want in losses:
        assert got == pytest.approx(want, rel=1e-5)
    w_ddp = torch.load(ddp / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    w_one = torch.load(single / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key in (k for k in w_one if k.startswith("net.")):
        torch.testing.assert_close(w_ddp[key], w_one[key], rtol=0, atol=1e-6)
    with open(ddp / "csv" / "metrics.csv") as fh:
        kd = [float(r["train/kd"]) for r in csv.DictReader(fh) if r.get("train/kd")]
    assert len(kd) == 6 and all(math.isfinite(v) and v > 0 for v in kd)  # the KD term was active under DDP


@pytest.mark.slow
def test_ranks_split_each_global_batch_without_overlap_or_loss(arms):
    for arm in ("kd", "tricks"):
        ddp, single = (a / arm for a in arms)
        r0, r1, one = (read_jsonl(p) for p in (ddp / "batches.rank0", ddp / "batches.rank1", single / "batches.rank0"))
        assert len(r0) == len(r1) == len(one) == 6
        for a, b, s in zip(r0, r1, one):
            assert len(a["y"]) == len(b["y"]) == 16 and sorted(a["y"] + b["y"]) == sorted(s["y"])
        if arm == "kd":  # no augmentation: the two halves add up to exactly the single-process batch
            for a, b, s in zip(r0, r1, one):
                assert a["x_sum"] + b["x_sum"] == pytest.approx(s["x_sum"], rel=1e-9)


@pytest.mark.slow
def test_tricks_arm_keeps_schedules_and_draws_per_rank_randomness(arms):
    ddp, single = (a / "tricks" for a in arms)
    r0, r1, one = (read_jsonl(p) for p in (ddp / "batches.rank0", ddp / "batches.rank1", single / "batches.rank0"))
    for a, b, s in zip(r0, r1, one):
        assert a["drop"] == b["drop"] == s["drop"]  # stochastic-depth schedule: same rates everywhere
        assert a["lr"] == b["lr"] == s["lr"]  # warmup: same LR everywhere
        assert a["rng"] != b["rng"]  # but each rank drew its own drop masks / mixup lambdas
    assert r0[-1]["drop"][-1] == pytest.approx(0.3)  # the ramp reached the base rate
    losses = zip(read_jsonl(ddp / "loss.jsonl"), read_jsonl(single / "loss.jsonl"))
    for got, want in losses:
        assert abs(got["loss"] - want["loss"]) < 0.05


@pytest.mark.slow
def test_one_wandb_run_per_job(arms):
    ddp = arms[0]
    for arm in ("kd", "tricks"):
        runs = list((ddp / arm / "wandb").glob("offline-run-*"))
        run_id = (ddp / arm / "wandb_run_id").read_text().strip()
        assert len(runs) == 1 and runs[0].name.endswith(run_id)
