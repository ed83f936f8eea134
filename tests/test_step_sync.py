"""A training step with every trainer default on makes no host-device synchronisation (a GPU step can run ahead):
no `.item()`, `float(t)`, `bool(t)`, `int(t)` or `.tolist()` of a tensor between two steps that do not log.
Counted on CPU through patched tensor methods during steps of a real `trickbench fit` (the Classifier's MNIST MLP
recipe and the Regressor's synthetic one, with the defaults of configs/trainer/default.yaml plus the run record,
CSV logging and progress lines); the optimizer's own read of its CPU step counter, which a hand-written loop makes
too, is not counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.tricks_util import SYNC_WINDOW as WINDOW
from tests.tricks_util import SyncCounter
from trickbench.datamodules.fake import make_fake_mnist
from trickbench.lightning_cli import main

ROOT = Path(__file__).resolve().parents[1]
SYNCS = ("item", "__float__", "__bool__", "__int__", "tolist")


def sync_site() -> str | None:
    """Where a sync was made (the innermost frame outside torch's tensor code), or None for the optimizer's own:
    torch.optim reads its CPU step counter with `.item()` on CPU and on GPU alike, and a hand-written loop makes
    the same call. Every other sync counts, also one made inside Lightning because of how the module logs."""
    import traceback

    stack = traceback.extract_stack()[:-2]  # without the wrapper and this function
    frame = next(f for f in reversed(stack) if not f.filename.endswith("torch/_tensor.py"))
    return None if "/torch/optim/" in frame.filename else f"{Path(frame.filename).name}:{frame.lineno}"


@pytest.fixture
def counted(monkeypatch) -> Counter:
    calls: Counter = Counter()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, __name=name, __original=original, **kwargs):  # noqa: ANN001, ANN202
            if SyncCounter.counting and (where := sync_site()):
                calls[f"{__name} at {where}"] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    SyncCounter.counting = False
    return calls


def fit(tmp_path: Path, config: str = "mnist_mlp", *extra: str) -> None:
    if config == "mnist_mlp":
        data = make_fake_mnist(tmp_path / "data", n_train=512)
        data_args = [
            "--data.init_args.data_dir",
            str(data),
            "--data.init_args.accept_nonoriginal",
            "true",
            "--data.init_args.val_size",
            "32",
        ]
    else:  # synthetic_mlp: the Regressor on generated data
        data_args = ["--data.init_args.n_train", "512"]
    main(
        args=[
            "fit",
            "--config",
            str(ROOT / "configs" / f"{config}.yaml"),
            *extra,
            "--trainer.accelerator",
            "cpu",
            *data_args,
            "--data.init_args.batch_size",
            "16",
            "--trainer.max_steps",
            "14",
            "--trainer.log_every_n_steps",
            "1000",
            "--trainer.limit_val_batches",
            "0",
            "--test_after_fit",
            "false",
            "--trainer.callbacks+",
            "tests.tricks_util.SyncCounter",
            "--run_dir",
            str(tmp_path / "run"),
            "--trainer.logger",
            "null",
        ]
    )


@pytest.mark.parametrize("config", ["mnist_mlp", "synthetic_mlp"])
def test_no_default_callback_syncs_the_host_in_a_training_step(tmp_path: Path, counted: Counter, config: str) -> None:
    fit(tmp_path, config)
    assert dict(counted) == {}


def test_the_count_sees_a_sync_when_one_is_asked_for(tmp_path: Path, counted: Counter) -> None:
    """The finite-loss check every step (`check_every_n_steps: 1`) syncs once a step, and the counter sees it."""
    every_step = tmp_path / "every_step.yaml"
    every_step.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: trickbench.run.FiniteLossGuard\n      init_args: {check_every_n_steps: 1}\n"
    )
    fit(tmp_path, "mnist_mlp", "--config", str(every_step))
    assert sum(counted.values()) == WINDOW[1] - WINDOW[0], dict(counted)
