"""Run directories you can trust: one run per directory, one writer at a time, provenance recorded.

- `holds_run(d)`: whether `d` already holds a run's record (config, metrics, checkpoints, logs).
- `RunLock(d)`: an exclusive lock file `<d>/.lock` held by the writing process (rank 0) for the run's
  lifetime. `fcntl.flock` is released by the kernel when its holder dies, so a lock file whose flock is
  free but which still names a PID was left by a dead process: it is taken over with a warning.
  (Hand-written: the `filelock` package gives the flock but neither the holder's PID in the error nor
  the stale-holder warning, and fcntl is a few lines.)
- `provenance()`: git commit (+ dirty flag), package versions, host, CPU, threads, Python: what W&B and
  `metrics.json` record next to the config.
"""

from __future__ import annotations

import fcntl
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

LOCK_NAME = ".lock"
CHILD_NAME = ".child"  # "<pid> <host>" of the process a harness started for the run, while that harness waits on it
# What a run leaves in its directory; the harness's stdout.log/stderr.log/generated_*.yaml do not count.
RUN_FILES = ("metrics.json", "config.yaml", "checkpoints", "csv", "wandb", "wandb_run_id")
ROOT = Path(__file__).resolve().parents[1]


class RunDirError(RuntimeError):
    """A run directory cannot be used as asked; the message says what to do instead."""


def default_run_dir(root: str | Path = "runs") -> Path:
    """`runs/<YYYYmmdd-HHMMSS>-<6 hex>`: unique even for runs started in the same second. In a SLURM job step of
    several tasks (multi-node or `srun` DDP) every rank must name the same folder without talking to the others:
    `runs/slurm-<job id>` (`-<array job id>_<task id>` for an array task)."""
    env = os.environ
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        job = env["SLURM_JOB_ID"]
        if env.get("SLURM_ARRAY_JOB_ID"):
            job = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '0')}"
        return Path(root) / f"slurm-{job}"
    return Path(root) / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def eval_dir(run_dir: str | Path, subcommand: str) -> Path:
    """Where `test`/`validate` of an existing run writes: `<run>/eval/<subcommand>-<time>-<4 hex>/`."""
    return Path(run_dir) / "eval" / f"{subcommand}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def holds_run(run_dir: str | Path) -> bool:
    d = Path(run_dir)
    if not d.is_dir():
        return False
    for name in RUN_FILES:
        p = d / name
        if p.is_file() or (p.is_dir() and any(p.iterdir())):
            return True
    return False


def empty_dir(run_dir: str | Path) -> None:
    """Delete everything in `run_dir` except the lock file (`--overwrite true`)."""
    for p in Path(run_dir).iterdir():
        if p.name == LOCK_NAME:
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive, advisory lock on a run directory (see module docstring)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").split()
            os.close(fd)
            pid = holder[0] if holder else "unknown"
            host = holder[1] if len(holder) > 1 else "unknown host"
            raise RunDirError(
                f"run directory {self.path.parent} is in use by PID {pid} on {host} (lock file {self.path}). "
                "Wait for that process to finish or stop it, or choose another --run_dir."
            ) from None
        old = os.read(fd, 4096).decode(errors="replace").split()
        if old and old[0].isdigit():
            same_host = len(old) < 2 or old[1] == socket.gethostname()
            state = "no longer running" if same_host and not _pid_alive(int(old[0])) else "lock released"
            warnings.warn(
                f"taking over the stale lock {self.path} of PID {old[0]} ({state}); that process ended "
                "without releasing it (killed?)",
                stacklevel=2,
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {datetime.now().isoformat(timespec='seconds')}\n".encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)  # an empty lock file = released normally, not stale
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Where and with what a run ran: code version, packages, machine."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse", "wandb", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    commit = _git("rev-parse", "HEAD")
    import torch

    versions["torch"] = torch.__version__  # with the build tag (+cpu, +cu130)
    return {
        "git_commit": commit or None,
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None,
        "versions": {"python": platform.python_version(), **versions},
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        # The kernels torch picks (AVX2, AVX512, ...): two CPUs of one name can differ here, and runs are bitwise
        # reproducible only on the same kind.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "argv": sys.argv,
    }


def process_start_time() -> float:
    """Wall-clock (epoch) time at which this process started (Linux: its start tick in /proc against the
    boot clock, 10 ms resolution); elsewhere the time this module was imported."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def child_environ(**extra: str) -> dict[str, str]:
    """os.environ for a training subprocess, without `WANDB_SERVICE`: wandb puts its service address there once
    this process has started a W&B run, and a child that inherits it registers its run with *our* service; if
    that child is killed, the service keeps its run id "in use" and the resumed run fails to start."""
    return {**{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}, **extra}


def lock_holder(run_dir: str | Path) -> str | None:
    """'<pid> <host>' of the process holding the run directory's lock, or None when nobody holds it."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace").split()
        return " ".join(holder[:2]) or "unknown"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def live_holder(run_dir: str | Path) -> str | None:
    """'<pid> <host>' of a live process running this run: the lock's holder, or, while it starts up and has not
    taken the lock yet, the process a harness started for it (`.child`, if alive on this host and still a
    trickbench process or one naming this run directory). None when nobody is running it."""
    holder = lock_holder(run_dir)
    if holder:
        return holder
    try:
        pid, host = (Path(run_dir) / CHILD_NAME).read_text().split()[:2]
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes() if host == socket.gethostname() else b""
    except (OSError, ValueError):
        return None
    return f"{pid} {host}" if any(s.encode() in cmdline for s in ("trickbench", str(run_dir))) else None
