"""The seed trap of an ablation file: a data seed fixed by a config or an override while `seed_keys` does not vary
it gives every seed the same split, data order and augmentation draws. `trickbench.scripts.ablation.plan` refuses
such a file with this check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DataSeedError(ValueError):
    """The data seed is fixed across the seeds of an ablation (an `AblationError`)."""


DATA_SEED = "data.init_args.seed"


def fixes_data_seed(path: str) -> bool:
    """Whether a config file sets the DataModule's `seed` (data: init_args: seed: ...) to a value."""
    try:
        tree = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    init = ((tree.get("data") or {}) if isinstance(tree, dict) else {}).get("init_args") or {}
    return isinstance(init, dict) and init.get("seed") is not None


def check_data_seed(
    name: str,
    seed_keys: list[str],
    base: list[str],
    overrides: list[str],
    jobs: list[Any],
    fragment_lists: dict[str, list[str]],
) -> None:
    """A data seed fixed by a config or an override, while `seed_keys` does not vary it, gives every seed the same
    split, data order and augmentation draws: refused, with the two ways out. (Left unset, the data seed follows
    the run seed: trickbench.lightning_cli.follow_run_seed.)"""
    if DATA_SEED in seed_keys:
        return
    where = [f for f in base if fixes_data_seed(f)]
    where += [f"{owner}: {f}" for owner, frags in fragment_lists.items() for f in frags if fixes_data_seed(f)]
    where += [a for a in overrides if a.startswith(f"--{DATA_SEED}=")]
    where += [a for job in jobs for a in job.overrides if a.startswith(f"--{DATA_SEED}=")]
    if where:
        raise DataSeedError(
            f"ablation '{name}': the data seed is fixed ({', '.join(dict.fromkeys(where))}) and seed_keys "
            f"{seed_keys} does not vary it, so every seed would see the same split, data order and augmentation. "
            f"Add {DATA_SEED} to seed_keys, or drop the fixed value (the data seed then follows seed_everything)."
        )
