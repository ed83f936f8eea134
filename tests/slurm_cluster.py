"""A real single-node SLURM cluster on this machine for the launcher tests (Debian's slurm-wlm + munge).

    python tests/slurm_cluster.py up DIR      # install if absent, write DIR/slurm.conf, start the daemons
    python tests/slurm_cluster.py down DIR    # stop exactly the daemons `up` started (PIDs in DIR/pids)

From Python (the pytest fixture): `cluster = start(dir)`, `cluster.env` (SLURM_CONF for the clients),
`cluster.stop()`. The node has this machine's CPUs (`nproc`) and memory, loopback addresses only,
`proctrack/linuxproc` and `task/none` (no cgroups needed), `select/cons_tres` (per-CPU allocation), and `cred_expire=5`
with a 2-second scheduler interval: SLURM holds a requeued job for cred_expire + 1
seconds before it may start again (121 s by default), and its main and backfill schedulers run every 60 / 30 s by
default: both would make the
time-limit test take many minutes.
Nothing outside DIR is written except what apt installs and munge's socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


class ClusterUnavailable(RuntimeError):
    """The daemons could not be installed or started here (the reason is in the message)."""


def ensure_installed() -> None:
    if all(shutil.which(d) or Path(f"/usr/sbin/{d}").exists() for d in DAEMONS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterUnavailable("slurm-wlm is not installed and cannot be installed (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise ClusterUnavailable(f"apt-get install slurm-wlm failed: {out.stderr[-500:]}")


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 1024


def write_conf(root: Path, cpus: int) -> Path:
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=trickbench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
KillWait=5
InactiveLimit=0
OverTimeLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=20
JobRequeue=1
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    return conf


@dataclass
class Cluster:
    root: Path
    conf: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True) -> str:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def stop(self) -> None:
        """Stop the daemons this object started, by PID (slurmd, slurmctld, then munged)."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        (self.root / "pids").unlink(missing_ok=True)


def _wait_node_idle(cluster: Cluster, timeout: float = 60) -> None:
    t0 = time.time()
    state = ""
    while time.time() - t0 < timeout:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                log = cluster.root / "log" / f"{name}.log"
                tail = log.read_text()[-1500:] if log.is_file() else ""
                raise ClusterUnavailable(f"{name} exited with {proc.returncode}: {tail}")
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=cluster.env, capture_output=True, text=True, check=False)
        state = out.stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return
        time.sleep(0.5)
    raise ClusterUnavailable(f"the node did not come up within {timeout:.0f} s (sinfo state {state!r})")


def start(root: str | Path) -> Cluster:
    """Install (if needed), configure and start munged + slurmctld + slurmd; wait until the node is idle."""
    ensure_installed()
    root = Path(root).resolve()
    conf = write_conf(root, os.cpu_count() or 1)
    cluster = Cluster(root, conf)
    sbin = Path("/usr/sbin")
    try:
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        cluster.procs["munged"] = subprocess.Popen(
            ["runuser", "-u", "munge", "--", str(sbin / "munged"), "-F", "--force"],
            stdout=subprocess.DEVNULL,
            stderr=open(root / "log" / "munged.log", "w"),
        )
        time.sleep(0.5)
        for name in ("slurmctld", "slurmd"):
            cluster.procs[name] = subprocess.Popen(
                [str(sbin / name), "-D", "-f", str(conf)],
                env=cluster.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        (root / "pids").write_text("".join(f"{n} {p.pid}\n" for n, p in cluster.procs.items()))
        _wait_node_idle(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _stop_from_pids(root: Path) -> None:
    pids = root / "pids"
    if not pids.is_file():
        return
    for line in reversed(pids.read_text().splitlines()):
        _, pid = line.split()
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    pids.unlink()


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    if action == "up":
        c = start(folder)
        print(f"SLURM up: export SLURM_CONF={c.conf}; daemons {[p.pid for p in c.procs.values()]}")
        # Keep the daemons after this process exits: they are not our children's children to reap here.
        os._exit(0)
    elif action == "down":
        _stop_from_pids(folder.resolve())
    else:
        sys.exit("usage: slurm_cluster.py up|down DIR")
