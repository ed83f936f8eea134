"""Shared bits of the `bench_*` scripts: machine description, robust statistics, result files.

Every benchmark writes `<out>/<name>.json` (raw numbers + machine + command) and `<out>/<name>.md`
(a short table with the same machine + command), so a committed result says how it was made.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from callbacks.run_dir import cpu_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "bench"


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPU/GPU, threads, versions, and how busy the machine was."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    try:
        import lightning

        info["lightning"] = lightning.__version__
    except ImportError:
        pass
    return info


def command() -> str:
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "WANDB_MODE") if k in os.environ)
    return f"{env} python -m scripts.{Path(sys.argv[0]).stem} {shlex.join(sys.argv[1:])}".strip()


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def mean_std(xs: list[float]) -> tuple[float, float]:
    return float(statistics.fmean(xs)), float(statistics.stdev(xs)) if len(xs) > 1 else 0.0


def table(header: list[str], rows: list[list[Any]]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(out_dir: str | Path, name: str, payload: dict[str, Any], title: str, body_md: str) -> Path:
    """Write `<name>.json` (payload + machine + command) and `<name>.md`; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "command": command(), **payload}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    where = f"{m['cpu']} ({m['cpu_count']} cores), torch threads {m['torch_threads']}, load avg {m['loadavg_1_5_15']}"
    if "gpu" in m:
        where = f"{m['gpu']}; " + where
    md = f"# {title}\n\n{body_md}\n\n- machine: {where}\n- versions: torch {m['torch']}, lightning {m.get('lightning')}\n"
    md += f"- date: {m['date_utc']} UTC\n- command: `{payload['command']}`\n- raw: `{name}.json`\n"
    (out / f"{name}.md").write_text(md)
    return out / f"{name}.json"
