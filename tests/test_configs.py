"""Every YAML under configs/ parses and instantiates (base configs alone; fragments stacked on a base)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint

from trickbench.lightning_cli import TrickbenchCLI

ROOT = Path(__file__).resolve().parents[1]
BASE = sorted(p for p in (ROOT / "configs").glob("*.yaml"))
TRAINER_FRAGMENTS = sorted((ROOT / "configs" / "trainer").glob("*.yaml"))


def instantiate(*configs: Path, extra: list[str] = ()) -> TrickbenchCLI:
    args = [a for c in configs for a in ("--config", str(c))] + list(extra)
    return TrickbenchCLI(args=args, run=False)


def instantiate_parser_only(*configs: Path):
    parser = TrickbenchCLI(args=["--config", str(configs[0])], run=False).parser
    return parser.parse_args([a for c in configs for a in ("--config", str(c))])


@pytest.mark.parametrize("config", BASE, ids=lambda p: p.name)
def test_base_config_instantiates(config, tmp_path):
    cli = instantiate(config, extra=["--run_dir", str(tmp_path)])
    assert isinstance(cli.model, LightningModule) and isinstance(cli.datamodule, LightningDataModule)
    assert cli.trainer.default_root_dir == str(tmp_path)


@pytest.mark.parametrize("fragment", TRAINER_FRAGMENTS, ids=lambda p: p.name)
def test_trainer_fragments_stack(fragment, tmp_path):
    if fragment.name in ("ddp.yaml", "ddp_multinode.yaml"):
        # Building a DDP Trainer here would launch processes; parse only (tests/test_ddp.py runs it for real).
        cfg = instantiate_parser_only(ROOT / "configs" / "synthetic_mlp.yaml", fragment)
        assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is True
        assert fragment.name == "ddp.yaml" or (cfg.trainer.num_nodes, cfg.trainer.devices) == (2, 1)
        return
    cli = instantiate(ROOT / "configs" / "synthetic_mlp.yaml", fragment, extra=["--run_dir", str(tmp_path)])
    if fragment.name == "default.yaml":  # applied first anyway: stacking it again changes nothing
        assert [type(c).__name__ for c in cli.trainer.callbacks][:4] == [
            "ExactResume",
            "FiniteLossGuard",
            "LearningRateMonitor",
            "PlainProgress",
        ]
        assert cli.trainer.checkpoint_callback.dirpath == str(tmp_path / "checkpoints")
        return
    if fragment.name == "keep_epoch_checkpoints.yaml":  # replaces the default LastCheckpoint, in the run directory
        (ckpt,) = [c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint)]
        assert ckpt.save_top_k == -1 and ckpt.save_last and ckpt.dirpath == str(tmp_path / "checkpoints")
        return
    assert cli.trainer.max_epochs == 1 and cli.trainer.limit_train_batches == 2
