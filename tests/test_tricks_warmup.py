"""Warmup: the LR at every step equals inner_lr(s) * warmup_factor(s), with and without a scheduler."""

from __future__ import annotations

import math

import pytest
import torch
from tricks_util import LRRecorder, cpu_trainer, tiny_classifier, tiny_loader

from trickbench.callbacks.warmup import LRWarmup, WarmupLR
from trickbench.lightning_modules.ops.schedules import warmup_factor

LR, N = 0.5, 3  # base LR, warmup steps


def test_warmup_factor_closed_form():
    assert [warmup_factor(s, 4, "linear", 0.2) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert [warmup_factor(s, 2, "exponential", 0.01) for s in range(3)] == pytest.approx([0.01, 0.1, 1.0])
    with pytest.raises(ValueError, match="linear"):
        warmup_factor(0, 2, "cubic")  # type: ignore[arg-type]


def run_lrs(scheduler, steps: int, warmup: LRWarmup | None, interval: str = "step", **fit_kwargs) -> list[float]:
    rec = LRRecorder()
    model = tiny_classifier(LR, scheduler, scheduler_interval=interval)
    callbacks = [warmup, rec] if warmup is not None else [rec]
    cpu_trainer(callbacks, max_steps=steps, **fit_kwargs).fit(model, tiny_loader(n=32, batch_size=8))  # 4 steps/epoch
    return rec.lrs


@pytest.mark.parametrize("mode", ["linear", "exponential"])
def test_warmup_without_scheduler(mode):
    lrs = run_lrs(None, 6, LRWarmup(warmup_steps=N, mode=mode, start_factor=0.1))
    assert lrs == pytest.approx([LR * warmup_factor(s, N, mode, 0.1) for s in range(6)])


def test_warmup_fraction_of_training():
    lrs = run_lrs(None, 8, LRWarmup(warmup_fraction=0.5, start_factor=0.2))  # 8 steps -> 4 warmup steps
    assert lrs == pytest.approx([LR * f for f in (0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1)])


def test_warmup_times_cosine():
    # CosineAnnealingLR is recursive (reads group["lr"]): the wrapper must not let it compound the factor.
    lrs = run_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8), 8, LRWarmup(warmup_steps=N))
    expect = [LR * (1 + math.cos(math.pi * s / 8)) / 2 * warmup_factor(s, N) for s in range(8)]
    assert lrs == pytest.approx(expect, rel=1e-6)
    assert run_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8), 8, None) == pytest.approx(
        [LR * (1 + math.cos(math.pi * s / 8)) / 2 for s in range(8)], rel=1e-6
    )


def test_warmup_times_onecycle():
    def one_cycle(o):
        return torch.optim.lr_scheduler.OneCycleLR(o, max_lr=LR, total_steps=8, pct_start=0.25)

    ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    ref, sched = [], one_cycle(ref_opt)
    for _ in range(8):
        ref.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        sched.step()
    lrs = run_lrs(one_cycle, 8, LRWarmup(warmup_steps=N, mode="exponential", start_factor=0.01))
    assert lrs == pytest.approx([r * warmup_factor(s, N, "exponential", 0.01) for s, r in enumerate(ref)], rel=1e-6)


def test_warmup_times_epoch_steplr():
    # StepLR stepped per epoch (4 optimizer steps): halves the LR after every epoch; warmup is per step.
    lrs = run_lrs(
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
        12,
        LRWarmup(warmup_steps=6),
        interval="epoch",
    )
    assert lrs == pytest.approx([LR * 0.5 ** (s // 4) * warmup_factor(s, 6) for s in range(12)], rel=1e-6)


def test_resume_matches_uninterrupted(tmp_path):
    def cosine(o):
        return torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)

    full = run_lrs(cosine, 10, LRWarmup(warmup_steps=5))
    model, rec = tiny_classifier(LR, cosine), LRRecorder()
    trainer = cpu_trainer([LRWarmup(warmup_steps=5), rec], max_steps=3)
    trainer.fit(model, tiny_loader())
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    state = torch.load(tmp_path / "mid.ckpt", weights_only=True)["lr_schedulers"][0]
    assert state["warmup_n"] == 3 and state["inner"]["last_epoch"] == 3
    resumed = LRRecorder()
    cpu_trainer([LRWarmup(warmup_steps=5), resumed], max_steps=10).fit(
        tiny_classifier(LR, cosine), tiny_loader(), ckpt_path=tmp_path / "mid.ckpt"
    )
    assert rec.lrs + resumed.lrs == pytest.approx(full, rel=1e-6)


def test_wrapper_is_the_only_writer():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    w = WarmupLR(opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), warmup_steps=2, start_factor=0.5)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(3):
        opt.step()
        w.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == pytest.approx([0.5, 0.5 * 0.75, 0.25, 0.125])  # StepLR's own 1, .5, .25, .125 times .5, .75, 1, 1
    with pytest.raises(ValueError, match="without the LRWarmup"):
        w.load_state_dict(torch.optim.lr_scheduler.StepLR(opt, 1).state_dict())
