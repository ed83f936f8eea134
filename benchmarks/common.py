"""What every benchmark in this folder shares: the machine description, the command line, small statistics
helpers and the result files.

Every benchmark writes `<out>/<name>.json` (raw numbers + machine + command) and `<out>/<name>.md` (a short
report with the same machine + command), atomically, so a committed result says how it was made. The default
`<out>` of a benchmark is `results/bench/<name>/`.
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

from trickbench.io import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).resolve().parents[1] / "results" / "bench"


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPU/GPU, threads, versions, and how busy the machine was."""
    import torch

    from trickbench.run.run_dir import cpu_model

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...: same name, other kernels
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
    from trickbench.run.run_dir import provenance

    prov = provenance()
    info["git_commit"], info["git_dirty"] = prov["git_commit"], prov["git_dirty"]
    return info


def command() -> str:
    """The command line that is running, as `python -m benchmarks.<name> ...` with the env vars that matter."""
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "WANDB_MODE") if k in os.environ)
    return f"{env} python -m benchmarks.{Path(sys.argv[0]).stem} {shlex.join(sys.argv[1:])}".strip()


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def table(header: list[str], rows: list[list[Any]]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance_lines(prov: dict[str, Any]) -> str:
    """`- versions: ...` and `- git commit: ...` lines (newline-terminated) from
    `trickbench.run.run_dir.provenance()`."""
    return (
        f"- versions: {json.dumps(prov['versions'])}\n- git commit: {prov['git_commit']} (dirty: {prov['git_dirty']})\n"
    )


class RecordExists(SystemExit):
    """A benchmark record is already where this run would write: records are never overwritten."""


def refuse_existing(out: str | Path, *names: str) -> None:
    """Stop, before anything is measured, when `<out>/<name>.json` or `.md` exists: a committed record is kept
    and a new measurement goes to a new folder."""
    there = [p for n in names for p in (Path(out) / f"{n}.json", Path(out) / f"{n}.md") if p.exists()]
    if there:
        raise RecordExists(
            f"error: {there[0]} exists; records are never overwritten. Give --out a new folder, e.g. "
            f"{Path(out) / 'at_COMMIT'} (the commit you measure)"
        )


def save(out: str | Path, name: str, payload: dict[str, Any], markdown: str, replace: bool = False) -> None:
    """Write `<out>/<name>.json` and `<out>/<name>.md` (a report the caller wrote in full), then print it.
    An existing record stops it (`refuse_existing`) unless `replace` (a resumable benchmark's own report)."""
    if not replace:
        refuse_existing(out, name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", payload)
    atomic_write_text(out / f"{name}.md", markdown)
    print(markdown)


def save_with_machine(out: str | Path, name: str, payload: dict[str, Any], title: str, body_md: str) -> Path:
    """`save` for the short benchmarks: adds the machine and the command to the payload and a footer with them
    to the report (`# title`, `body_md`, machine, versions, date, command); returns the JSON path. An existing
    record stops it (`refuse_existing`)."""
    refuse_existing(out, name)
    payload = {"machine": machine(), "command": command(), **payload}
    m = payload["machine"]
    where = f"{m['cpu']}, {m['cpu_capability']} ({m['cpu_count']} cores), torch threads {m['torch_threads']}"
    where += f", load avg {m['loadavg_1_5_15']}"
    if "gpu" in m:
        where = f"{m['gpu']}; " + where
    md = f"# {title}\n\n{body_md}\n\n- machine: {where}\n"
    md += f"- versions: torch {m['torch']}, lightning {m.get('lightning')}\n"
    md += f"- git commit: {m['git_commit']} (dirty: {m['git_dirty']})\n"
    md += f"- date: {m['date_utc']} UTC\n- command: `{payload['command']}`\n- raw: `{name}.json`\n"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{name}.json", payload)
    atomic_write_text(out / f"{name}.md", md)
    return out / f"{name}.json"
