"""A normal run's output holds what it says about the run and nothing else: the noise once seen in every run is gone
(test on captured output), the notes that stay say something once, and guard rails speak up."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from lightning.pytorch import Trainer

from tests.conftest import subprocess_env
from tests.tricks_util import tiny_classifier, tiny_loader
from trickbench.callbacks import EMA, Lookahead
from trickbench.lightning_cli import main
from trickbench.run import PlainProgress

NOISE = [
    "The anonymous setting has no effect",  # wandb, every run
    "Total length of `list` across ranks is zero",  # Lightning, a config without validation data
    "is not supported by the model summary",  # Lightning, bf16-mixed
    "LightningCLI's args parameter",  # Lightning, main(args=[...]) in a notebook
    "Traceback",
]


def test_a_normal_gpu_recipe_run_on_the_cpu_prints_no_noise_and_says_it_is_meant_for_a_gpu(fake_cifar, tmp_path):
    cmd = [sys.executable, "-m", "trickbench", "fit", "--config", "cifar10_resnet18", "--config", "trainer/cpu_smoke"]
    cmd += [f"--data.init_args.data_dir={fake_cifar}", "--data.init_args.accept_nonoriginal=true"]
    cmd += ["--data.init_args.val_size=0", "--data.init_args.batch_size=32", "--trainer.accelerator=cpu"]
    cmd += [f"--run_dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env("offline"), capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert [n for n in NOISE if n in text] == [], text
    (note,) = [ln for ln in text.splitlines() if "not the original release" in ln]  # once, on one line
    assert note.startswith("note: CIFAR-10: 6 of 6 files") and "fingerprint" in note
    assert "note: cifar10_resnet18 is sized for a GPU" in text
    assert "note: cifar10_resnet18 on this CPU:" in text and "s per step, so its 2 steps take about" in text


def test_main_with_args_in_a_notebook_kernel_prints_no_argv_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])  # a Jupyter kernel's
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        main(["fit", "--config", "synthetic_mlp", "--trainer.max_epochs=1", f"--run_dir={tmp_path / 'r'}"])
    assert [str(w.message) for w in seen if "args parameter" in str(w.message)] == []


def test_a_long_test_pass_prints_progress_lines(capsys):
    bar = PlainProgress(every_minutes=1e-9)  # every batch counts as "long" here
    trainer = Trainer(
        callbacks=[bar], logger=False, enable_checkpointing=False, enable_progress_bar=False, max_epochs=1
    )
    trainer.test(tiny_classifier(), dataloaders=tiny_loader(n=64, batch_size=16), verbose=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("test  batch")]
    assert [ln.split()[2] for ln in lines] == ["1/4", "2/4", "3/4", "4/4"] and "ETA" in lines[0]


def test_ema_stacked_on_lookahead_warns_that_it_averages_twice():
    trainer = Trainer(callbacks=[EMA(), Lookahead()], logger=False, enable_checkpointing=False, max_steps=1)
    with pytest.warns(UserWarning, match="averages the weights twice"):
        EMA().on_fit_start(trainer, tiny_classifier())
    alone = Trainer(callbacks=[EMA()], logger=False, enable_checkpointing=False, max_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EMA().on_fit_start(alone, tiny_classifier())  # EMA alone: no warning
