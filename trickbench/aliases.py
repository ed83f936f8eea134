"""Class paths of earlier versions and their names now, so a `config.yaml` saved by an earlier version (every run
directory holds one; `results/` keeps many) still loads and reruns:
- before trickbench installed one name: `callbacks.EMA`, `lightning_modules.Classifier`, ... -> `trickbench.*`;
- before run plumbing left the trick callbacks: `trickbench.callbacks.ExactResume` (or `callbacks.ExactResume`,
  or a module path such as `trickbench.callbacks.exact_resume.ExactResume`) -> `trickbench.run.ExactResume`.

Only values that name a class are rewritten (a `class_path:` value, or a value that is a whole dotted path into
one of the old packages, as in `model: lightning_modules.Classifier`); comments and other strings are left alone.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml

OLD_PACKAGES = ("callbacks", "datamodules", "lightning_modules")
_OLD_PATH = re.compile(rf"^({'|'.join(OLD_PACKAGES)})(\.[A-Za-z_]\w*)+$")
MOVED_TO_RUN = (  # run plumbing that lived in trickbench.callbacks
    "AtomicCheckpointIO",
    "ExactResume",
    "FiniteLossGuard",
    "LastCheckpoint",
    "LearningRateMonitor",
    "ModelSummary",
    "PlainProgress",
    "RunRecord",
    "SignalGate",
    "SizedForGPUNote",
)
_MOVED = re.compile(rf"^trickbench\.callbacks(\.\w+)?\.({'|'.join(MOVED_TO_RUN)})$")


def upgrade_class_path(value: str) -> str:
    """`callbacks.EMA` -> `trickbench.callbacks.EMA`, `callbacks.ExactResume` -> `trickbench.run.ExactResume`; any
    other string unchanged."""
    value = f"trickbench.{value}" if _OLD_PATH.match(value) else value
    moved = _MOVED.match(value)
    return f"trickbench.run.{moved.group(2)}" if moved else value


def _upgrade(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _upgrade(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_upgrade(v) for v in node]
    return upgrade_class_path(node) if isinstance(node, str) else node


def upgrade_config_text(text: str) -> str | None:
    """The YAML `text` with old class paths renamed, or None when it names none (or is not a YAML mapping)."""
    if not any(f"{pkg}." in text for pkg in OLD_PACKAGES):  # cheap pre-check: most configs are current
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # LightningCLI reports the broken file itself
    if not isinstance(data, dict):
        return None
    new = _upgrade(data)
    return yaml.safe_dump(new, sort_keys=False) if new != data else None


def upgrade_config_file(path: str) -> str:
    """A `--config` value for `path`: the path itself, or (when the file names old class paths) its upgraded
    content as a YAML string, which LightningCLI reads like a file. Says so once on stderr."""
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError):
        return path
    new = upgrade_config_text(text)
    if new is None:
        return path
    print(
        f"note: {path} names classes by the paths of an earlier trickbench (e.g. callbacks.EMA, "
        "trickbench.callbacks.ExactResume); read by their names now (trickbench/aliases.py)",
        file=sys.stderr,
    )
    return new
