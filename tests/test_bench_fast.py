"""The fast preset's pieces: alternating flip, the gather crop, compile="auto", and the preset end to end on CPU."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from trickbench.datamodules import CIFAR10DataModule
from trickbench.datamodules.augment import alternating_hflip, batch_random_crop
from trickbench.lightning_cli import main as train_main
from trickbench.lightning_modules.ops.whitening import whitening_filters


def _dm(root, **kw) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(str(root), val_size=0, accept_nonoriginal=True, crop_padding=0, normalize=False, **kw)
    dm.setup("fit")
    return dm


def test_alternating_flip_stores_half_mirrored_and_mirrors_odd_epochs(fake_cifar):
    raw, alt = _dm(fake_cifar), _dm(fake_cifar, alternating_flip=True)
    x_raw, x_alt = raw.splits["train"][0], alt.splits["train"][0]
    same = (x_alt == x_raw).flatten(1).all(1)
    mirrored = (x_alt == x_raw.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())  # every stored image is the original or its mirror
    assert 0.35 < mirrored.float().mean().item() < 0.65  # about half (320 images)
    batch = x_alt[:8]
    for epoch, want in ((0, batch), (1, batch.flip(-1)), (2, batch)):
        alt.trainer = SimpleNamespace(current_epoch=epoch, training=True)
        assert torch.equal(alt.train_transform(batch, alt._aug_gen), want.float() / 255)
    assert torch.equal(alternating_hflip(batch, 3), batch.flip(-1))


def test_gather_crop_matches_per_sample_slicing():
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = batch_random_crop(x, 2, torch.Generator().manual_seed(5))
    offsets = torch.randint(0, 5, (2, 16), generator=torch.Generator().manual_seed(5))
    padded = F.pad(x, (2,) * 4)
    ref = torch.stack([padded[i, :, a : a + 8, b : b + 8] for i, (a, b) in enumerate(offsets.T.tolist())])
    assert torch.equal(out, ref) and not torch.equal(out, x)


def test_reflect_padded_crop_matches_per_sample_slicing():
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = batch_random_crop(x, 2, torch.Generator().manual_seed(5), mode="reflect")
    offsets = torch.randint(0, 5, (2, 16), generator=torch.Generator().manual_seed(5))
    padded = F.pad(x, (2,) * 4, mode="reflect")
    ref = torch.stack([padded[i, :, a : a + 8, b : b + 8] for i, (a, b) in enumerate(offsets.T.tolist())])
    assert torch.equal(out, ref) and not torch.equal(out, batch_random_crop(x, 2, torch.Generator().manual_seed(5)))


def test_fast_preset_trains_on_cpu_without_compiling(fake_cifar, tmp_path):
    run = tmp_path / "run"
    cli = train_main(
        [
            "fit",
            "--config",
            "configs/cifar10_fast.yaml",
            "--config",
            "configs/trainer/cpu_smoke.yaml",
            "--data.init_args.data_dir",
            str(fake_cifar),
            "--data.init_args.accept_nonoriginal",
            "true",
            "--data.init_args.batch_size",
            "16",
            "--data.init_args.eval_batch_size",
            "32",
            "--model.init_args.net.init_args.widths",
            "[8, 16, 16]",
            "--run_dir",
            str(run),
        ]
    )
    model, dm = cli.model, cli.datamodule
    assert model.hparams.compile == "auto" and model._fwd is model.net  # CPU: "auto" does not compile
    assert dm.alternating_flip and dm.device_resident and model.hparams.tta_flip
    kinds = [type(c).__name__ for c in cli.trainer.callbacks]
    assert "Lookahead" in kinds and "PatchWhitening" in kinds and "EMAWeightAveraging" not in kinds
    assert all(k.startswith(("net.", "metrics.", "train_")) for k in model.state_dict())  # no "_fwd.*" duplicates
    # The stem holds the whitening filters of the training images (frozen: training did not move them).
    want = whitening_filters(dm.sample_train_images(5000), 2, 5e-4)
    assert bool(model.net.stem_whitened) and torch.allclose(model.net.stem_conv.weight, want, atol=1e-5)
    assert dm.crop_pad_mode == "reflect" and model.hparams.tta_translate and model.hparams.norm_lr_scale == 64
    opt = cli.trainer.optimizers[0]
    assert type(opt).__name__ == "DecoupledSGD" and [g.get("lr_scale", 1.0) for g in opt.param_groups] == [1.0, 64.0]
    rec = json.loads((run / "metrics.json").read_text())
    assert rec["status"] == "completed" and rec["test"]["acc"] > 0.0
