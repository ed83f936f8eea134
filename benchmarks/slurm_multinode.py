"""Two-node DDP under a real SLURM, measured: equivalence with one process, and a time-limit requeue cycle.

    python -m benchmarks.slurm_multinode [--out results/slurm_multinode]      # root; about 5 minutes on 2 cores

Builds the two-node cluster of tests/slurm_cluster.py (each node's slurmd in its own network namespace on a private
bridge; removed again at the end), then through `trickbench ablate --launcher slurm --submit`:
1. `twonode`: a synthetic-regression MLP, DDP over 2 nodes x 1 process, batch 16 per process, 2 epochs; against the
   same training in one process with batch 32 (`trickbench fit`, this process): max |weight difference| and the test
   metrics of both.
2. `requeue`: 18 epochs at 0.1 s a step (72 s of training) under a 1-minute limit with USR1 20 s before it, against
   the same two-node job without limit or sleeps: segments, requeues, and whether weights and test metrics are
   bit-identical.
Writes `<out>/slurm_multinode.json` and `.md` (with the machine, versions, commit and this command).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.common import refuse_existing, save_with_machine
from trickbench.lightning_cli import main as train_main
from trickbench.run import record as run_record

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import slurm_cluster  # noqa: E402  (tests/slurm_cluster.py: the cluster the tests use)

BASE = [str(ROOT / "configs" / "synthetic_mlp.yaml"), str(ROOT / "configs" / "trainer" / "ddp_multinode.yaml")]
TRAIN = ["--trainer.accelerator=cpu", "--trainer.enable_model_summary=false", "--data.init_args.n_train=1280"]
SLOW = ["--trainer.callbacks+=killswitch.SlowSteps", "--trainer.callbacks.seconds=0.1"]


def submit(cluster: Any, work: Path, name: str, overrides: list[str], slurm: dict) -> Path:
    spec = {"name": name, "base": BASE, "overrides": TRAIN + overrides, "seeds": [0], "arms": {"baseline": []}}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**spec, "slurm": slurm}))
    env = {**cluster.env, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = f"{ROOT / 'tests' / 'ddp_scripts'}:{ROOT}"
    cmd = [sys.executable, "-m", "trickbench", "ablate", str(path), "--runs-dir", "runs", "--launcher", "slurm"]
    subprocess.run([*cmd, "--submit"], cwd=work, env=env, check=True, capture_output=True)
    return work / "runs" / name / "baseline" / "seed0"


def wait(cluster: Any, name: str, timeout: float = 900) -> float:
    """Seconds until no job of `name` is queued or running."""
    t0 = time.time()
    cluster.wait_idle(name, timeout)
    return time.time() - t0


def outcome(run: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    record = run_record.load(run).to_dict()
    return record, torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "slurm_multinode"))
    args = p.parse_args(argv)
    refuse_existing(args.out, "slurm_multinode")
    with tempfile.TemporaryDirectory(prefix="tb-multinode-") as tmp:
        work = Path(tmp)
        cluster = slurm_cluster.start_two_nodes(work / "cluster")
        try:
            two = submit(cluster, work, "twonode", ["--trainer.max_epochs=2", "--data.init_args.batch_size=16"], {})
            t_two = wait(cluster, "twonode")
            overrides = ["--trainer.max_epochs=18", "--data.init_args.batch_size=16", "--trainer.logger=false"]
            ref = submit(cluster, work, "uninterrupted", overrides, {})
            limited = submit(cluster, work, "requeue", overrides + SLOW, {"time": "00:01:00", "signal_seconds": 20})
            wait(cluster, "uninterrupted")
            t_limited = wait(cluster, "requeue")
        finally:
            cluster.stop()
        single = work / "single"
        one = ["fit", "--config", BASE[0], *TRAIN, "--trainer.max_epochs=2", "--data.init_args.batch_size=32"]
        train_main([*one, "--trainer.logger=false", "--seed_everything=0", f"--run_dir={single}"])
        (rec_two, w_two), (rec_one, w_one) = outcome(two), outcome(single)
        (rec_lim, w_lim), (rec_ref, w_ref) = outcome(limited), outcome(ref)
        outs = "".join(f.read_text() for f in (limited.parents[1] / "slurm").glob("*.out"))
        payload = {
            "equivalence": {
                "steps": rec_two["global_step"],
                "max_abs_weight_diff_vs_one_process": max_diff(w_two, w_one),
                "test_two_nodes": rec_two["test"],
                "test_one_process": rec_one["test"],
                "wandb_runs": len(list((two / "wandb").glob("offline-run-*"))),
                "queue_to_done_s": round(t_two, 1),
            },
            "requeue": {
                "steps": rec_lim["global_step"],
                "segments": [s["exit"] for s in rec_lim["segments"]],
                "requeues": outs.count("DUE TO JOB REQUEUE"),
                "fit_seconds": rec_lim["fit_seconds"],
                "queue_to_done_s": round(t_limited, 1),
                "weights_bit_identical_to_uninterrupted": all(torch.equal(w_lim[k], w_ref[k]) for k in w_ref),
                "test_requeued": rec_lim["test"],
                "test_uninterrupted": rec_ref["test"],
                "hpc_checkpoints_left": len(list(limited.glob("hpc_ckpt_*.ckpt"))),
            },
        }
    eq, rq = payload["equivalence"], payload["requeue"]
    body = (
        "Two SLURM 22.05 nodes on one machine (each slurmd in its own network namespace, gloo over a virtual "
        "bridge), jobs submitted by `trickbench ablate --launcher slurm --submit`.\n\n"
        f"1. DDP over 2 nodes x 1 process, batch 16 each, {eq['steps']} steps, vs 1 process with batch 32: max "
        f"|weight difference| {eq['max_abs_weight_diff_vs_one_process']:.3g}; test loss "
        f"{eq['test_two_nodes']['loss']!r} vs {eq['test_one_process']['loss']!r}; {eq['wandb_runs']} W&B run for the "
        "job.\n"
        f"2. Time limit 1 min, USR1 20 s before it, 72 s of training: {rq['requeues']} requeue(s), segments "
        f"{rq['segments']}, {rq['steps']} steps; weights bit-identical to the uninterrupted job: "
        f"{rq['weights_bit_identical_to_uninterrupted']}; test loss {rq['test_requeued']['loss']!r} vs "
        f"{rq['test_uninterrupted']['loss']!r}; requeue checkpoints left: {rq['hpc_checkpoints_left']}."
    )
    print(save_with_machine(args.out, "slurm_multinode", payload, "Two-node DDP under SLURM", body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
