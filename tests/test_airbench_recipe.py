"""The fast preset's pieces against airbench94's own code (the `airbench` package, run on the CPU in fp32).

Each piece is compared numerically with the reference: the net (layers, creation order, initialisation,
outputs), the whitening filters, the multi-crop TTA, the optimizer in decoupled units with the 64x
BatchNorm-bias lr, the LR shape and Lookahead.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

airbench_utils = pytest.importorskip("airbench.utils")  # a dev dependency: installed by `pip install -e .[dev]`
from airbench import lib_airbench94  # noqa: E402

from benchmarks.airbench_child import cpu_fp32  # noqa: E402
from trickbench.callbacks.averaging import Lookahead  # noqa: E402
from trickbench.lightning_modules.nets import AirbenchNet  # noqa: E402
from trickbench.lightning_modules.ops.param_groups import param_groups  # noqa: E402
from trickbench.lightning_modules.ops.tta import tta_logits  # noqa: E402
from trickbench.lightning_modules.ops.whitening import whitening_filters  # noqa: E402
from trickbench.lightning_modules.optim import DecoupledSGD, TriangleLR, scale_group_lrs  # noqa: E402

FAST = yaml.safe_load(open("configs/cifar10_fast.yaml"))
NET_ARGS = FAST["model"]["init_args"]["net"]["init_args"]


def reference_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    with cpu_fp32():
        net = lib_airbench94.make_net94()
    return net.to(memory_format=torch.contiguous_format)


def our_net(seed: int) -> AirbenchNet:
    torch.manual_seed(seed)
    return AirbenchNet(**NET_ARGS)


def float_tensors(net: nn.Module) -> list[torch.Tensor]:
    return [t for t in list(net.parameters()) + list(net.buffers()) if t.is_floating_point()]


def test_fast_preset_net_is_airbench94_layer_for_layer_with_the_same_initialisation():
    ref, ours = reference_net(3), our_net(3)
    ref_kinds = [type(m).__name__ for m in ref.modules() if not list(m.children())]
    our_kinds = [type(m).__name__ for m in ours.modules() if not list(m.children())]
    rename = {"Conv": "Conv2d", "BatchNorm": "BatchNorm2d", "Mul": None, "Flatten": "Flatten"}
    assert [rename.get(k, k) for k in ref_kinds if rename.get(k, k)] == our_kinds
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    # The same seed gives the same weights: same creation order, dirac + zero-bias init.
    assert len(float_tensors(ref)) == len(float_tensors(ours))
    for a, b in zip(float_tensors(ref), float_tensors(ours)):
        assert torch.equal(a, b)
    # Frozen like airbench: stem weight and BatchNorm scales.
    assert [p.requires_grad for p in ref.parameters()] == [p.requires_grad for p in ours.parameters()]
    bn = [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-12 and m.momentum == pytest.approx(0.4) for m in bn)


@pytest.mark.parametrize("train", [False, True])
def test_fast_preset_net_gives_airbench94_outputs_for_the_same_weights(train):
    ref, ours = reference_net(0), our_net(1)  # different seeds, then airbench's weights loaded into ours
    with torch.no_grad():
        for a, b in zip(float_tensors(ref), float_tensors(ours)):
            b.copy_(a)
    ref.train(train), ours.train(train)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
    if train:  # the BatchNorm running statistics moved the same way (momentum 0.4)
        for a, b in zip(float_tensors(ref), float_tensors(ours)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_whitening_filters_equal_airbench_init_whitening_conv():
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.1
    layer = nn.Conv2d(3, 24, 2, padding=0, bias=True)
    airbench_utils.init_whitening_conv(layer, images)
    ours = whitening_filters(images, 2, 5e-4)
    # Eigenvectors are defined up to sign; airbench and we take the same ones from the same eigh call.
    torch.testing.assert_close(ours, layer.weight.data, rtol=1e-4, atol=1e-5)
    # And they whiten: the stem's outputs on these patches are decorrelated with ~unit variance.
    out = torch.nn.functional.conv2d(images, ours[:12]).permute(1, 0, 2, 3).reshape(12, -1)
    cov = out @ out.T / out.shape[1]
    assert torch.allclose(cov, torch.eye(12), atol=0.05)


def test_multicrop_tta_equals_airbench_tta_level_2():
    net = reference_net(0).eval()
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    loader = SimpleNamespace(images=x, normalize=lambda t: t)
    expected = airbench_utils.infer(net, loader, tta_level=2)
    with torch.no_grad():
        torch.testing.assert_close(tta_logits(net, x, flip=True, translate=True), expected, rtol=1e-5, atol=1e-6)
        mirror = airbench_utils.infer(net, loader, tta_level=1)
        torch.testing.assert_close(tta_logits(net, x, flip=True), mirror, rtol=1e-5, atol=1e-6)
        # The augmented views differ from the plain logits (the test could not pass with TTA ignored).
        assert not torch.allclose(tta_logits(net, x, flip=True, translate=True), net(x), atol=1e-4)


def airbench_optimizer(
    net: nn.Module, batch: int, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """airbench94's optimizer and schedule, set up as its `train()` does (summed loss)."""
    hyp = lib_airbench94.hyp["opt"]
    kilostep = 1024 * (1 + 1 / (1 - hyp["momentum"]))
    lr, wd = hyp["lr"] / kilostep, hyp["weight_decay"] * batch / kilostep
    biases = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    others = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    opt = torch.optim.SGD(
        [
            dict(params=biases, lr=lr * hyp["bias_scaler"], weight_decay=wd / (lr * hyp["bias_scaler"])),
            dict(params=others, lr=lr, weight_decay=wd / lr),
        ],
        momentum=hyp["momentum"],
        nesterov=True,
    )
    shape = np.interp(np.arange(steps + 1), [0, int(0.23 * steps), steps], [0.2, 1.0, 0.07])
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda i: float(shape[i]))


def test_decoupled_sgd_with_bias_scaler_and_triangle_trains_like_airbench():
    batch, steps = 16, 6
    ref, ours = reference_net(0), our_net(0)
    opt_ref, sched_ref = airbench_optimizer(ref, batch, steps)
    opt = DecoupledSGD(param_groups(ours, no_decay_1d=False, norm_lr_scale=64.0), batch_size=batch)
    scale_group_lrs(opt)
    sched = TriangleLR(opt, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = torch.randn(batch, 3, 32, 32, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
        for net, o, s, reduction in ((ref, opt_ref, sched_ref, "sum"), (ours, opt, sched, "mean")):
            loss = nn.functional.cross_entropy(net(x), y, label_smoothing=0.2, reduction=reduction)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
            s.step()
        assert [g["lr"] for g in opt.param_groups][::-1] == pytest.approx(
            [g["lr"] * batch for g in opt_ref.param_groups]
        )
    moved = 0.0
    for a, b, init in zip(ref.parameters(), ours.parameters(), our_net(0).parameters()):
        torch.testing.assert_close(b, a, rtol=2e-4, atol=2e-5)
        moved = max(moved, float((b - init).detach().abs().max()))
    assert moved > 1e-3  # the weights really trained


def test_lookahead_matches_airbench_lookahead_state():
    torch.manual_seed(0)
    ref, ours = reference_net(0), reference_net(0)
    state = airbench_utils.LookaheadState(ref)
    total, every = 12, 5
    cb = Lookahead(every=every, decay=0.95, power=3.0)
    module = SimpleNamespace(net=ours)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=total)
    cb.on_fit_start(trainer, module)
    schedule = 0.95**5 * (torch.arange(total + 1) / total) ** 3
    for step in range(1, total + 1):
        with torch.no_grad():  # the same "optimizer step" on both
            noise = [torch.randn_like(p) * 0.01 for p in ref.parameters()]
            for p, q, n in zip(ref.parameters(), ours.parameters(), noise):
                p.add_(n), q.add_(n)
        if step % every == 0:
            state.update(ref, decay=schedule[step].item())
        if step >= total:
            state.update(ref, decay=1.0)
        trainer.global_step = step
        cb.on_train_batch_end(trainer, module, None, None, step - 1)
        for a, b in zip(float_tensors(ref), float_tensors(ours)):
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
