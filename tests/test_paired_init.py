"""Paired means paired: for one seed, every training arm of each shipped CIFAR-10 ablation file starts from the
baseline's initial weights and sees the baseline's first batch. Only an arm that changes the architecture itself
(GroupNorm + weight standardisation: other layers, other parameters) starts from other weights, and the report says
so. Before this held, building the KD teacher drew from the global RNG ahead of the student, so `kd` and `all`
students started from other weights than the baseline of the same seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trickbench.cli import resolve_args
from trickbench.lightning_cli import TrickbenchCLI
from trickbench.scripts.ablation.plan import command, load_plan, prefix_length

ROOT = Path(__file__).resolve().parents[1]
ABLATIONS = ["cifar10_cpu_fast.yaml", "cifar10_gpu_fast.yaml", "cifar10_cpu.yaml", "cifar10_gpu.yaml"]
ARCHITECTURE_ARMS = {"gn_ws"}  # the arm is another architecture: its initial weights cannot be the baseline's


def built(args: list[str]) -> TrickbenchCLI:
    return TrickbenchCLI(args=resolve_args(args), run=False)  # classes built, nothing run or written


@pytest.mark.slow
@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_training_arm_starts_from_the_baselines_weights_and_first_batch(
    ablation, fake_cifar, tmp_path, monkeypatch
):
    monkeypatch.chdir(ROOT)  # the files name configs relative to the clone
    cpu = ["--trainer.accelerator=cpu", "--trainer.devices=1", f"--data.init_args.data_dir={fake_cifar}"]
    cpu += ["--data.init_args.accept_nonoriginal=true", "--data.init_args.val_size=64", "--trainer.logger=false"]
    cpu += ["--data.init_args.batch_size=32"]  # the generated data set is small: a first batch for every preset
    plan = load_plan(ROOT / "configs" / "ablations" / ablation, tmp_path / "runs", cpu)
    jobs = {j.arm: j for j in plan.jobs if not j.prerequisite and not j.evaluates and j.seed == plan.jobs[-1].seed}
    starts = {}
    for arm, job in jobs.items():
        cli = built(command(plan, job)[prefix_length(job) :])
        cli.datamodule.setup("fit")
        x, y = next(iter(cli.datamodule.train_dataloader()))
        starts[arm] = ({k: v.clone() for k, v in cli.model.net.state_dict().items()}, x, y)
    base_w, base_x, base_y = starts.pop("baseline")
    assert {"kd", "all"} <= set(starts)  # the arms with a teacher are among those checked
    for arm, (weights, x, y) in starts.items():
        assert torch.equal(x, base_x) and torch.equal(y, base_y), f"{ablation} {arm}: another first batch"
        if arm in ARCHITECTURE_ARMS:
            assert weights.keys() != base_w.keys()  # other layers: excepted, and the report says so
            continue
        assert weights.keys() == base_w.keys(), arm
        differ = [k for k in base_w if not torch.equal(weights[k], base_w[k])]
        assert differ == [], f"{ablation} {arm}: initial weights differ from the baseline's in {differ[:3]}"
