"""Two short trainings through the CLI, run under 2-process DDP (gloo, CPU) or in one process.

  python tests/ddp_scripts/ddp_arms.py OUT MNIST_ROOT CIFAR_ROOT TEACHER_PT ddp|single

With `ddp`, Lightning re-launches this script for rank 1; both fits then run in the same two
processes (the second fit finds LOCAL_RANK set and the process group up, so it launches nothing).
The per-process batch is 16 under DDP and 32 in one process: the same global batch.

- arm "kd": MLP on MNIST-format data, knowledge distillation from a fixed MLP teacher, label
  smoothing. No randomness inside a step, so DDP must match one process up to float rounding.
- arm "tricks": AirbenchNet with GroupNorm (per sample, so no cross-rank statistics; SyncBatchNorm is GPU-only),
crop/flip/cutout, mixup/CutMix, step-scheduled
  stochastic depth and warmup: randomness differs per rank by design, schedules must not.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # killswitch callbacks, also for the re-launched rank
sys.path.insert(0, str(HERE.parent))  # tests/tiny_net.py

from tiny_net import tiny_airbench_yaml  # noqa: E402

COMMON = """
seed_everything: 0
trainer:
  accelerator: cpu
  precision: 32-true
  max_steps: 6
  max_epochs: 100
  log_every_n_steps: 1
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  limit_val_batches: 0
  callbacks:
    - class_path: killswitch.LossTrace
      init_args: {{path: {out}/loss.jsonl}}
    - class_path: killswitch.RecordBatches
      init_args: {{path: {out}/batches}}
"""
KD = """
    - class_path: callbacks.KnowledgeDistillation
      init_args:
        teacher: {{class_path: lightning_modules.nets.MLP, init_args: {{input_dim: 784, hidden_dims: [16]}}}}
        teacher_checkpoint: {teacher}
        alpha: 0.5
        temperature: 2.0
model:
  class_path: lightning_modules.Classifier
  init_args:
    net: {{class_path: lightning_modules.nets.MLP, init_args: {{input_dim: 784, hidden_dims: [32]}}}}
    optimizer: {{class_path: torch.optim.SGD, init_args: {{lr: 0.1, momentum: 0.9}}}}
    label_smoothing: 0.1
data:
  class_path: datamodules.MNISTDataModule
  init_args: {{data_dir: {mnist}, val_size: 32, accept_nonoriginal: true, batch_size: {batch}}}
"""
TRICKS = """
    - class_path: callbacks.LRWarmup
      init_args: {{warmup_steps: 3}}
    - class_path: callbacks.StochasticDepthScheduler
      init_args: {{base_rate: 0.3, schedule: linear_up, interval: step}}
model:
  class_path: lightning_modules.Classifier
  init_args:
    net: {net}
    optimizer: {{class_path: torch.optim.SGD, init_args: {{lr: 0.05, momentum: 0.9}}}}
    batch_mix:
      class_path: lightning_modules.ops.mixup.MixupCutmix
      init_args: {{num_classes: 10, mixup_alpha: 0.4, cutmix_alpha: 1.0, prob: 1.0}}
data:
  class_path: datamodules.CIFAR10DataModule
  init_args: {{data_dir: {cifar}, val_size: 64, accept_nonoriginal: true, batch_size: {batch}, cutout: 4}}
"""


def run_arms(out: Path, mnist: Path, cifar: Path, teacher: Path, ddp: bool) -> None:
    from trickbench.lightning_cli import main

    batch = 16 if ddp else 32
    placement = ["--trainer.strategy", "ddp", "--trainer.devices", "2"] if ddp else ["--trainer.devices", "1"]
    for name, body in (("kd", KD), ("tricks", TRICKS)):
        run = out / name
        run.mkdir(parents=True, exist_ok=True)
        cfg = run.parent / f"{name}.yaml"
        fill = {
            "out": run,
            "teacher": teacher,
            "mnist": mnist,
            "cifar": cifar,
            "batch": batch,
            "net": tiny_airbench_yaml(norm="gn"),
        }
        cfg.write_text(COMMON.format(**fill) + body.format(**fill))
        main(["fit", "--config", str(cfg), "--run_dir", str(run), "--test_after_fit", "false", *placement])


if __name__ == "__main__":
    out, mnist, cifar, teacher, mode = sys.argv[1:6]
    run_arms(Path(out), Path(mnist), Path(cifar), Path(teacher), ddp=mode == "ddp")
