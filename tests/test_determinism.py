"""Same seed -> bitwise the same run on CPU; each DDP rank (and each batch) draws its own random stream.

TensorLoader has no dataloader workers (batches are index_selects in the main process), so the
per-worker case reduces to per-rank streams, tested here on the two places randomness comes from:
the DataModule's augmentation generator and the global RNG used by drop-path and mixup/CutMix.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tiny_net import tiny_airbench_yaml

from trickbench.datamodules import CIFAR10DataModule
from trickbench.lightning_cli import main
from trickbench.run.exact_resume import ExactResume

TINY = """
seed_everything: {seed}
trainer:
  accelerator: cpu
  devices: 1
  max_steps: 4
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  limit_val_batches: 0
model:
  class_path: lightning_modules.Classifier
  init_args:
    net: {net}
    optimizer: {{class_path: torch.optim.SGD, init_args: {{lr: 0.1, momentum: 0.9}}}}
    batch_mix:
      class_path: lightning_modules.ops.mixup.MixupCutmix
      init_args: {{num_classes: 10, mixup_alpha: 0.4, cutmix_alpha: 1.0}}
data:
  class_path: datamodules.CIFAR10DataModule
  init_args: {{data_dir: {data}, val_size: 64, accept_nonoriginal: true, batch_size: 32, cutout: 4}}
"""


def fit_weights(tmp_path, data, seed: int, name: str) -> dict[str, torch.Tensor]:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(TINY.format(seed=seed, data=data, net=tiny_airbench_yaml()))
    run = tmp_path / name
    main(["fit", "--config", str(cfg), "--run_dir", str(run), "--test_after_fit", "false"])
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_same_seed_same_weights_bitwise_and_another_seed_differs(tmp_path, fake_cifar):
    a = fit_weights(tmp_path, fake_cifar, 0, "a")
    b = fit_weights(tmp_path, fake_cifar, 0, "b")
    c = fit_weights(tmp_path, fake_cifar, 1, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["net.head.2.weight"], c["net.head.2.weight"])


def fake_trainer(rank: int, batch_no: int) -> SimpleNamespace:
    """What trickbench.compat.batch_index reads: the batches finished before the current one."""
    progress = SimpleNamespace(total=SimpleNamespace(completed=batch_no))
    loop = SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress))
    return SimpleNamespace(training=True, global_rank=rank, fit_loop=loop)


def augmented(dm: CIFAR10DataModule, x: torch.Tensor, rank: int, batch_no: int) -> torch.Tensor:
    dm.trainer = fake_trainer(rank, batch_no)
    return dm.on_after_batch_transfer((x, torch.zeros(len(x))), 0)[0]


def test_augmentation_stream_depends_on_rank_and_batch_only():
    dm = CIFAR10DataModule(seed=0, cutout=8)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    first = augmented(dm, x, rank=0, batch_no=5)
    assert torch.equal(first, augmented(dm, x, rank=0, batch_no=5))  # a resumed batch 5 sees the same crops
    assert not torch.equal(first, augmented(dm, x, rank=1, batch_no=5))  # rank 1 draws its own
    assert not torch.equal(first, augmented(dm, x, rank=0, batch_no=6))  # and so does the next batch
    dm.seed = 1
    assert not torch.equal(first, augmented(dm, x, rank=0, batch_no=5))


@pytest.mark.parametrize("other", [(1, 5), (0, 6)], ids=["other-rank", "next-batch"])
def test_global_rng_is_reseeded_per_rank_and_batch(other):
    def draws(rank: int, batch_no: int) -> torch.Tensor:
        torch.manual_seed(1234)  # whatever came before must not matter
        ExactResume(seed=0).on_train_batch_start(fake_trainer(rank, batch_no), None, None, 0)
        return torch.rand(8)

    assert torch.equal(draws(0, 5), draws(0, 5))
    assert not torch.equal(draws(0, 5), draws(*other))
