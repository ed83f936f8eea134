"""What every benchmark in this folder does at the end: the provenance lines of its report, and writing
`<out>/<name>.json` + `<name>.md` atomically (then printing the report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callbacks.run_record import atomic_write_json, atomic_write_text


def provenance_lines(prov: dict[str, Any]) -> str:
    """`- versions: ...` and `- git commit: ...` lines (newline-terminated) from `callbacks.run_dir.provenance()`."""
    return f"- versions: {json.dumps(prov['versions'])}\n- git commit: {prov['git_commit']} (dirty: {prov['git_dirty']})\n"


def save(out: str | Path, name: str, payload: dict[str, Any], markdown: str) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", payload)
    atomic_write_text(out / f"{name}.md", markdown)
    print(markdown)
