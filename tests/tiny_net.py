"""The tiny AirbenchNet that the end-to-end tests train through the CLI, defined once (YAML flow form)."""

from __future__ import annotations

import json


def tiny_airbench_yaml(**init_args: object) -> str:
    """`net:` value for a test config: AirbenchNet(widths [8, 16, 16], stem 8, drop-path 0.3) plus `init_args`."""
    args = {"widths": [8, 16, 16], "stem_width": 8, "drop_path_rate": 0.3, **init_args}
    return "{class_path: lightning_modules.nets.AirbenchNet, init_args: " + json.dumps(args) + "}"
