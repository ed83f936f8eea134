"""Class paths from before trickbench installed one name (`callbacks.EMA`, `lightning_modules.Classifier`,
`datamodules.CIFAR10DataModule`, ...) and their names now (`trickbench.callbacks.EMA`, ...), so a `config.yaml`
saved by an earlier version (every run directory holds one; `results/` keeps many) still loads and reruns.

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


def upgrade_class_path(value: str) -> str:
    """`callbacks.EMA` -> `trickbench.callbacks.EMA`; any other string unchanged."""
    return f"trickbench.{value}" if _OLD_PATH.match(value) else value


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
        f"note: {path} names classes by their paths before trickbench 0.2 (e.g. callbacks.EMA); "
        "read as trickbench.* (trickbench/aliases.py)",
        file=sys.stderr,
    )
    return new
