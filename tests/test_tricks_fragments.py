"""Every configs/tricks/*.yaml fragment stacks on the CIFAR configs and changes what it claims.

For each fragment: its claim is False on the base config and True once the fragment is stacked
(so no flag can silently do nothing), on ResNet-18 (instantiate only: slow on CPU) and on the
airbench net, where a 2-step CPU fit also runs and the fit-time claim (LR at each step, rates,
loss terms, averaging) is checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback
from torch import nn

from trickbench.callbacks import EMA, KnowledgeDistillation, Lookahead, LRWarmup, StochasticDepthScheduler, WarmupLR
from trickbench.lightning_cli import TrickbenchCLI
from trickbench.lightning_modules.nets import AirbenchNet
from trickbench.lightning_modules.ops.drop_path import DropPath
from trickbench.lightning_modules.ops.mixup import MixupCutmix
from trickbench.lightning_modules.ops.weight_std import WSConv2d

REPO = Path(__file__).resolve().parents[1]
FRAGMENTS = sorted(p.stem for p in (REPO / "configs" / "tricks").glob("*.yaml"))
BASES = {"resnet18": REPO / "configs/cifar10_resnet18.yaml", "airbench": REPO / "configs/cifar10_airbench.yaml"}
SMALL_TEACHER = {"class_path": "trickbench.lightning_modules.nets.AirbenchNet", "init_args": {"widths": [16, 32, 32]}}


def build(base: str, fragment: str | None, data_dir: Path, run_dir: Path, extra: tuple[str, ...] = ()) -> TrickbenchCLI:
    args = ["--config", str(BASES[base])]
    args += ["--config", str(REPO / "configs/tricks" / f"{fragment}.yaml")] if fragment else []
    args += list(extra) + [
        "--config",
        str(REPO / "configs/trainer/cpu_smoke.yaml"),
        "--run_dir",
        str(run_dir),
        "--data.init_args.data_dir",
        str(data_dir),
        "--data.init_args.accept_nonoriginal",
        "true",
        "--data.init_args.batch_size",
        "8",
        "--data.init_args.val_size",
        "32",
        "--trainer.logger",
        "false",
        "--trainer.log_every_n_steps",
        "1",
        "--test_after_fit",
        "false",
    ]
    return TrickbenchCLI(args=args, run=False)


def callbacks_of(cli: TrickbenchCLI, cls: type) -> list[Any]:
    return [c for c in cli.trainer.callbacks if isinstance(c, cls)]


def scheduler_class(cli: TrickbenchCLI) -> tuple[type | None, dict[str, Any]]:
    f = cli.model.lr_scheduler
    cls = next((a for a in getattr(f, "args", ()) if isinstance(a, type)), None)
    return cls, dict(getattr(f, "keywords", {}))


def mix(cli: TrickbenchCLI) -> MixupCutmix | None:
    return cli.model.batch_mix if isinstance(cli.model.batch_mix, MixupCutmix) else None


# Static claims: what the instantiated run holds. Each must be False on both base configs.
CLAIMS: dict[str, Callable[[TrickbenchCLI], bool]] = {
    "warmup": lambda c: len(callbacks_of(c, LRWarmup)) == 1,
    "stochastic_depth": lambda c: any(cb.base_rate > 0 for cb in callbacks_of(c, StochasticDepthScheduler)),
    "label_smoothing": lambda c: c.model.hparams.label_smoothing == 0.1,
    "no_bias_decay": lambda c: c.model.hparams.no_decay_1d is True,
    "mixup": lambda c: (m := mix(c)) is not None and m.mixup_alpha > 0 and m.cutmix_alpha == 0,
    "cutmix": lambda c: (m := mix(c)) is not None and m.cutmix_alpha > 0 and m.mixup_alpha == 0,
    "gn_ws": lambda c: (
        not any(isinstance(m, nn.BatchNorm2d) for m in c.model.net.modules())
        and all(isinstance(m, WSConv2d) for m in c.model.net.modules() if isinstance(m, nn.Conv2d))
    ),
    "kd": lambda c: len(callbacks_of(c, KnowledgeDistillation)) == 1,
    "ema": lambda c: len(callbacks_of(c, EMA)) == 1,
    "lookahead": lambda c: len(callbacks_of(c, Lookahead)) == 1,
    "tta_flip": lambda c: c.model.hparams.tta_flip is True,
    "cosine": lambda c: scheduler_class(c)[0] is not None and scheduler_class(c)[0].__name__ == "CosineAnnealingLR",
    "onecycle": lambda c: scheduler_class(c)[1].get("anneal_strategy") == "linear",
}


def test_every_fragment_has_a_claim():
    assert set(FRAGMENTS) == set(CLAIMS), "add a claim for each new configs/tricks fragment"


@pytest.fixture(scope="module")
def base_clis(tmp_path_factory) -> dict[str, TrickbenchCLI]:
    tmp = tmp_path_factory.mktemp("base")
    return {b: build(b, None, tmp / "data", tmp / b) for b in BASES}


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_fragment_changes_resnet18(fragment, base_clis, tmp_path):
    assert not CLAIMS[fragment](base_clis["resnet18"])
    assert CLAIMS[fragment](build("resnet18", fragment, tmp_path / "data", tmp_path / "run"))


class StepRecorder(Callback):
    """LR of group 0 before each step, the number of batch_mix calls, and the metrics after each step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.metrics: list[dict[str, float]] = []

    def on_train_batch_start(self, trainer, *args) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer, *args) -> None:
        self.metrics.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def reference_lrs(make: Callable[[torch.optim.Optimizer], Any], lr: float, steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched, out = make(opt), []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def one_cycle(**kw: Any) -> Callable:
    return lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=2, **kw)


BASE_LRS = reference_lrs(one_cycle(pct_start=0.25), 0.2, 2)  # airbench's one-cycle over the 2 smoke steps


def fit_claim(fragment: str, cli: TrickbenchCLI, rec: StepRecorder) -> None:
    """What the 2-step airbench fit must show for this fragment."""
    model, trainer = cli.model, cli.trainer
    if fragment == "warmup":  # 5% of 2 steps -> 1 warmup step at 1% of the LR
        assert isinstance(trainer.lr_scheduler_configs[0].scheduler, WarmupLR)
        assert rec.lrs == pytest.approx([BASE_LRS[0] * 0.01, BASE_LRS[1]])
    elif fragment == "cosine":
        assert rec.lrs == pytest.approx([0.2, 0.2 * (1 + math.cos(math.pi / 2)) / 2])
    elif fragment == "onecycle":
        ref = reference_lrs(one_cycle(pct_start=0.3, anneal_strategy="linear"), 0.2, 2)
        assert rec.lrs == pytest.approx(ref) and trainer.lr_scheduler_configs[0].scheduler._anneal_func_type == "linear"
    elif fragment == "stochastic_depth":
        rates = [(float(m.p), m.depth_scale) for m in model.modules() if isinstance(m, DropPath)]
        assert len(rates) == 3 and all(p == pytest.approx(0.1 * s) and p > 0 for p, s in rates)
    elif fragment == "no_bias_decay":
        zero = {id(p) for g in trainer.optimizers[0].param_groups if g["weight_decay"] == 0 for p in g["params"]}
        assert zero == {id(p) for p in model.parameters() if p.dim() == 1}
    elif fragment == "kd":
        assert all(m["train/kd"] > 0 for m in rec.metrics) and len(rec.metrics) == 2
    elif fragment == "ema":
        assert callbacks_of(cli, EMA)[0].updates == 2
    elif fragment == "lookahead":  # 2 steps, none a multiple of 5: the final weights are the untouched average,
        cb = callbacks_of(cli, Lookahead)[0]  # i.e. the initial weights, and the last step's live ones are kept
        assert cb.final_live is not None and all(torch.equal(v, cb.average[k]) for k, v in model.net.named_parameters())
        assert any(not torch.equal(cb.final_live[k].to(v.device), v) for k, v in model.net.named_parameters())
    elif fragment in ("mixup", "cutmix"):
        assert model.batch_mix.calls == 2
    assert all(math.isfinite(m["train/loss"]) for m in rec.metrics)


class CountingMix:
    def __init__(self, inner: MixupCutmix) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        x, t = self.inner(x, y)
        assert t.shape == (len(y), 10) and torch.allclose(t.sum(1), torch.ones(len(y)))
        return x, t


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_fragment_changes_airbench_and_fits(fragment, base_clis, fake_cifar, tmp_path):
    extra: tuple[str, ...] = ()
    if fragment == "kd":  # what the ablation harness does: point the fragment at a trained teacher
        torch.save(AirbenchNet(widths=[16, 32, 32]).state_dict(), tmp_path / "teacher.pt")
        extra = (
            "--trainer.callbacks.init_args.teacher_checkpoint",
            str(tmp_path / "teacher.pt"),
            "--trainer.callbacks.init_args.teacher",
            json.dumps(SMALL_TEACHER),
        )
    assert not CLAIMS[fragment](base_clis["airbench"])
    cli = build("airbench", fragment, fake_cifar, tmp_path / "run", extra)
    assert CLAIMS[fragment](cli)
    if isinstance(cli.model.batch_mix, MixupCutmix):
        cli.model.batch_mix = CountingMix(cli.model.batch_mix)
    rec = StepRecorder()
    cli.trainer.callbacks.append(rec)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 2
    fit_claim(fragment, cli, rec)
