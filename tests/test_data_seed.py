"""The data seed follows the run seed by default (split, data order and augmentation change with seed_everything),
and an ablation file cannot silently give every seed the same data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from trickbench.lightning_cli import main
from trickbench.scripts.ablation.plan import AblationError, load_plan

ROOT = Path(__file__).resolve().parents[1]
SYNTH = str(ROOT / "configs" / "synthetic_mlp.yaml")


def first_batch(tmp_path: Path, name: str, *extra: str) -> tuple[int, torch.Tensor]:
    cli = main(
        [
            "fit",
            "--config",
            SYNTH,
            "--trainer.max_steps=1",
            "--trainer.logger=false",
            *extra,
            f"--run_dir={tmp_path / name}",
            "--test_after_fit=false",
        ]
    )
    saved = yaml.safe_load((tmp_path / name / "config.yaml").read_text())["data"]["init_args"]["seed"]
    assert saved == cli.datamodule.seed  # config.yaml records the seed used: a rerun from it is the same run
    return cli.datamodule.seed, next(iter(cli.datamodule.train_dataloader()))[0]


def test_the_data_seed_follows_seed_everything_unless_set(tmp_path: Path) -> None:
    seed3, batch3 = first_batch(tmp_path, "a", "--seed_everything=3")
    seed4, batch4 = first_batch(tmp_path, "b", "--seed_everything=4")
    assert (seed3, seed4) == (3, 4) and not torch.equal(batch3, batch4)
    pinned, batch = first_batch(tmp_path, "c", "--seed_everything=4", "--data.init_args.seed=3")
    assert pinned == 3 and torch.equal(batch, batch3)  # an explicit data seed is kept


def write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_an_ablation_that_fixes_the_data_seed_without_varying_it_is_refused(tmp_path: Path) -> None:
    pinned = write(tmp_path / "pinned.yaml", {"data": {"init_args": {"seed": 0}}})
    spec = {"name": "x", "base": [SYNTH], "seeds": [0, 1], "arms": {"baseline": [], "other": [pinned]}}
    with pytest.raises(
        AblationError, match=r"data seed is fixed \(arm other: .*pinned.yaml\).*Add data.init_args.seed"
    ):
        load_plan(write(tmp_path / "a.yaml", spec), tmp_path / "runs")
    with pytest.raises(AblationError, match=r"--data.init_args.seed=5"):
        load_plan(
            write(tmp_path / "b.yaml", {**spec, "arms": {"baseline": []}}),
            tmp_path / "runs",
            ["--data.init_args.seed=5"],
        )
    varied = {**spec, "seed_keys": ["seed_everything", "data.init_args.seed"]}
    assert len(load_plan(write(tmp_path / "c.yaml", varied), tmp_path / "runs").jobs) == 4  # varied: fine
    assert len(load_plan(write(tmp_path / "d.yaml", {**spec, "arms": {"baseline": []}}), tmp_path).jobs) == 2
