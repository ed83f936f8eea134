"""Every configs/tricks/*.yaml fragment stacks on the CIFAR configs and changes what it claims.

For each fragment: its claim is False on the base config and True once the fragment is stacked
(so no flag can silently do nothing), on ResNet-18 (instantiate only: slow on CPU) and on the
airbench net, where a 2-step CPU fit also runs and the fit-time claim (LR at each step, rates,
loss terms, averaging) is checked, and for every fragment a training-time claim: what the step trained on (the
smoothed loss, the mixed images and soft targets, GroupNorm and standardized weights in use) or what the test scored
(the mean logits over the mirror views).
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
from trickbench.lightning_modules.ops.weight_std import WSConv2d, standardize_weight

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
    "mixup_cutmix": lambda c: (m := mix(c)) is not None and m.mixup_alpha > 0 and m.cutmix_alpha > 0 and m.prob == 1.0,
    "gn_ws": lambda c: (
        not any(isinstance(m, nn.BatchNorm2d) for m in c.model.net.modules())
        and all(isinstance(m, WSConv2d) for m in c.model.net.modules() if isinstance(m, nn.Conv2d))
        and c.model.hparams.norm_lr_scale == 1.0  # GroupNorm at the plain lr (the fast recipes set 64x)
    ),
    "kd": lambda c: len(callbacks_of(c, KnowledgeDistillation)) == 1,
    "ema": lambda c: len(callbacks_of(c, EMA)) == 1,
    "lookahead": lambda c: len(callbacks_of(c, Lookahead)) == 1,
    "tta_flip": lambda c: c.model.hparams.tta_flip is True,
    "cosine": lambda c: scheduler_class(c)[0] is not None and scheduler_class(c)[0].__name__ == "CosineAnnealingLR",
    "onecycle": lambda c: scheduler_class(c)[1].get("anneal_strategy") == "linear",
    "random_erasing": lambda c: c.datamodule.random_erasing == 0.5,
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
    """Per training step: the LR of group 0 before it, the batch it got, what the net was called with and returned
    (a forward hook on the student net), the loss it trained on, and the metrics after it; per test batch the same."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.metrics: list[dict[str, float]] = []
        self.steps: list[dict[str, Any]] = []
        self.tests: list[dict[str, Any]] = []
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.norm_calls = 0

    def setup(self, trainer, pl_module, stage) -> None:
        if not hasattr(self, "_hook"):
            self._hook = pl_module.net.register_forward_hook(
                lambda m, i, o: self.calls.append((i[0].detach().clone(), o.detach().clone()))
            )
            for m in pl_module.net.modules():
                if isinstance(m, nn.GroupNorm):
                    m.register_forward_hook(lambda *a: setattr(self, "norm_calls", self.norm_calls + 1))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.calls.clear()
        self.batch = [t.detach().clone() for t in batch]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.metrics.append({k: float(v) for k, v in trainer.callback_metrics.items()})
        self.steps.append({"batch": self.batch, "calls": list(self.calls), "loss": float(outputs["loss"])})

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.calls.clear()
        self.tests.append({"batch": [t.detach().clone() for t in batch]})

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.tests[-1]["calls"] = list(self.calls)


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
    elif fragment in ("mixup", "cutmix", "mixup_cutmix"):  # the net trained on mixed images, mixed (soft) targets
        assert model.batch_mix.calls == 2
        for step, targets in zip(rec.steps, model.batch_mix.targets):
            (x, y), (net_in, logits) = step["batch"], step["calls"][-1]
            assert not torch.equal(net_in, x) and (targets.max(1).values < 1).any()
            assert targets.shape == (len(y), 10)
            smooth = model.hparams.label_smoothing
            trained_on = nn.functional.cross_entropy(logits, targets, label_smoothing=smooth)
            assert step["loss"] == pytest.approx(float(trained_on), rel=1e-5)
    elif fragment == "label_smoothing":  # the loss the step trained on is CE with eps = 0.1, not plain CE
        (_, y), (_, logits) = rec.steps[0]["batch"], rec.steps[0]["calls"][-1]
        smoothed = float(nn.functional.cross_entropy(logits, y, label_smoothing=0.1))
        others = [float(nn.functional.cross_entropy(logits, y, label_smoothing=e)) for e in (0.0, 0.2)]
        assert rec.steps[0]["loss"] == pytest.approx(smoothed, abs=1e-6)
        assert all(abs(o - smoothed) > 1e-4 for o in others)  # eps 0 and the base config's 0.2 are told apart
    elif fragment == "gn_ws":  # the step ran the GroupNorm layers and convolved with standardized weights
        assert rec.norm_calls >= 2 * sum(isinstance(m, nn.GroupNorm) for m in model.net.modules()) > 0
        conv = next(m for m in model.net.modules() if isinstance(m, WSConv2d))
        probe = torch.randn(2, conv.in_channels, 8, 8)
        want = nn.functional.conv2d(probe, standardize_weight(conv.weight), conv.bias, conv.stride, conv.padding)
        assert torch.allclose(conv(probe), want, atol=1e-5)
        assert not torch.allclose(conv(probe), conv._conv_forward(probe, conv.weight, conv.bias), atol=1e-3)
    elif fragment == "random_erasing":  # the images a step trained on hold boxes at the mean colour (exactly 0)
        erased = [(s["calls"][-1][0] == 0).all(1).flatten(1).sum(1) for s in rec.steps]  # per image: pixels
        assert all(int((n > 0).sum()) > 0 for n in erased)  # every step erased some of its 8 images
        assert all(int(n.max()) <= 0.33 * 32 * 32 + 32 for n in erased)
    elif fragment == "tta_flip":  # test logits are the mean over the image and its mirror
        cli.trainer.test(model, datamodule=cli.datamodule)
        (x, y), logits = rec.tests[0]["batch"], scored_logits(rec.tests[0])
        model.eval()
        with torch.no_grad():
            plain, mirrored = model.net(x), model.net(x.flip(3))
        assert torch.allclose(logits, (plain + mirrored) / 2, atol=1e-6)
        assert (logits - plain).abs().max() > 1e-5  # the mirror view counted
        loss = float(cli.trainer.callback_metrics["test/loss"])
        assert loss == pytest.approx(float(nn.functional.cross_entropy((plain + mirrored) / 2, y)), abs=1e-6)
    assert all(math.isfinite(m["train/loss"]) for m in rec.metrics)


def scored_logits(test: dict[str, Any]) -> torch.Tensor:
    """The logits a test step scored, rebuilt from the net's calls in it (one call per view, or one call on the
    views stacked along the batch): their mean over the views."""
    outs = torch.cat([o for _, o in test["calls"]])
    n = len(test["batch"][0])
    return outs.reshape(-1, n, outs.shape[-1]).mean(0)


class CountingMix:
    def __init__(self, inner: MixupCutmix) -> None:
        self.inner, self.calls, self.targets = inner, 0, []

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        x, t = self.inner(x, y)
        assert t.shape == (len(y), 10) and torch.allclose(t.sum(1), torch.ones(len(y)))
        self.targets.append(t.detach().clone())
        return x, t


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_fragment_changes_airbench_and_fits(fragment, base_clis, fake_cifar, tmp_path):
    extra: tuple[str, ...] = ()
    if fragment == "cutmix":  # every step mixes (the fragment mixes half of the batches), so both steps show it
        extra = ("--model.init_args.batch_mix.init_args.prob", "1.0")
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


def test_gn_ws_puts_the_norm_lr_back_to_1x_on_a_recipe_that_raises_it(tmp_path, monkeypatch):
    monkeypatch.setitem(BASES, "cpu_fast", REPO / "configs/cifar10_cpu_fast.yaml")
    base = build("cpu_fast", None, tmp_path / "data", tmp_path / "base")
    gn = build("cpu_fast", "gn_ws", tmp_path / "data", tmp_path / "gn")
    assert base.model.hparams.norm_lr_scale == 64.0 and gn.model.hparams.norm_lr_scale == 1.0
    assert any(isinstance(m, nn.GroupNorm) for m in gn.model.net.modules())
