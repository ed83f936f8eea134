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
Nothing outside DIR is written except what apt installs, munge's socket and a lock file in the temp folder: one
test cluster at a time per machine (`hold_machine_lock`), as parallel test workers or two sessions would otherwise
start two munged on one socket.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAEMONS = ("munged", "slurmctld", "slurmd")
LOCK = Path(tempfile.gettempdir()) / "trickbench-test-slurm-cluster.lock"


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


def hold_machine_lock(timeout: float = 1800) -> int:
    """An exclusive `flock` on LOCK, waited for up to `timeout` s: the clusters share munged's socket (and the two-node
    one its network namespaces), so a second one waits for the first to stop. Returns the fd (`Cluster.stop` closes
    it; the kernel releases it when the process dies)."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() - t0 >= timeout:
                os.close(fd)
                raise TimeoutError(
                    f"another test SLURM cluster has held {LOCK} for {timeout:.0f} s; wait for its tests to end, "
                    "or stop it (`python tests/slurm_cluster.py down DIR`)"
                ) from None
            time.sleep(0.5)


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 1024


def conf_text(root: Path, name: str, controller: str, ports: tuple[int, int], nodes: dict[str, str], cpus: int) -> str:
    """slurm.conf for `nodes` (name -> address), each with `cpus` CPUs and an equal share of the memory; spool, pid
    and log files per node name (%n), so several slurmd can share this machine."""
    mem = max(512, _memory_mb() // len(nodes))
    node_lines = "".join(
        f"NodeName={n} NodeAddr={a} CPUs={cpus} RealMemory={mem} State=UNKNOWN\n" for n, a in nodes.items()
    )
    return f"""\
ClusterName={name}
SlurmctldHost={socket.gethostname().split(".")[0]}({controller})
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
AuthInfo=cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
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
{node_lines}PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def write_conf(root: Path, cpus: int, nodes: dict[str, str] | None = None, controller: str = "127.0.0.1") -> Path:
    """The one-node cluster (this machine's CPUs, loopback), or `nodes` sharing the CPUs (`start_two_nodes`)."""
    nodes = nodes or {socket.gethostname().split(".")[0]: "127.0.0.1"}
    for sub in ("state", "log", *(f"spool/{n}" for n in nodes)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ports = (16817, 16818) if len(nodes) == 1 else (16837, 16838)
    conf = root / "slurm.conf"
    conf.write_text(conf_text(root, f"trickbench{len(nodes)}", controller, ports, nodes, cpus))
    return conf


@dataclass
class Cluster:
    root: Path
    conf: Path
    nodes: tuple[str, ...] = ()  # the network-namespace nodes of `start_two_nodes` (empty: the one-node cluster)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    lock_fd: int | None = None  # `hold_machine_lock`, released by `stop`

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True) -> str:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def wait_idle(self, name: str, timeout: float = 420) -> None:
        """Until no job of the ablation `name` (job name tb-<name>) is pending or running."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if not self.run("squeue", "-h", "-n", f"tb-{name}", "-o", "%i").strip():
                return
            time.sleep(2)
        raise AssertionError(f"jobs of {name} still queued after {timeout} s:\n{self.run('squeue')}")

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
        if self.nodes:
            network_down()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _wait_node_idle(cluster: Cluster, timeout: float = 60) -> None:
    t0 = time.time()
    state = ""
    while time.time() - t0 < timeout:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                logs = sorted((cluster.root / "log").glob(f"{name}*.log"))
                tail = logs[0].read_text()[-1500:] if logs else ""
                raise ClusterUnavailable(f"{name} exited with {proc.returncode}: {tail}")
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%t"], env=cluster.env, capture_output=True, text=True, check=False
        )
        states = out.stdout.split()
        state = " ".join(states)
        if len(states) == max(1, len(cluster.nodes)) and all(s in ("idle", "mix", "alloc") for s in states):
            return
        time.sleep(0.5)
    raise ClusterUnavailable(f"the node did not come up within {timeout:.0f} s (sinfo state {state!r})")


def _start_munge(cluster: Cluster, sbin: Path) -> None:
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    cluster.procs["munged"] = subprocess.Popen(
        ["runuser", "-u", "munge", "--", str(sbin / "munged"), "-F", "--force"],
        stdout=subprocess.DEVNULL,
        stderr=open(cluster.root / "log" / "munged.log", "w"),
    )
    time.sleep(0.5)


def start(root: str | Path) -> Cluster:
    """Install (if needed), configure and start munged + slurmctld + slurmd; wait until the node is idle."""
    ensure_installed()
    root = Path(root).resolve()
    conf = write_conf(root, os.cpu_count() or 1)
    sbin = Path("/usr/sbin")
    daemons = {name: [str(sbin / name), "-D", "-f", str(conf)] for name in ("slurmctld", "slurmd")}
    return _launch(Cluster(root, conf, lock_fd=hold_machine_lock()), daemons)


def _launch(cluster: Cluster, daemons: dict[str, list[str]]) -> Cluster:
    """munged, then each daemon command (slurmctld first); the PIDs go to `<root>/pids`; waits until every node is
    idle. Anything that fails stops what was started."""
    try:
        _start_munge(cluster, Path("/usr/sbin"))
        for name, cmd in daemons.items():
            cluster.procs[name] = subprocess.Popen(
                cmd, env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(1.0)
        (cluster.root / "pids").write_text("".join(f"{n} {p.pid}\n" for n, p in cluster.procs.items()))
        _wait_node_idle(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- two compute nodes, each slurmd in its own network namespace ---------------------------------------------
SUBNET = "10.213.77"  # a private /24 that lives only on this machine: a bridge and two veth pairs the test creates
BRIDGE = "tbbr0"
NODES = ("tbnode1", "tbnode2")


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(cmd)} failed: {out.stderr.strip()}")


def network_up() -> dict[str, str]:
    """The bridge (controller address .1) and one namespace per node (.2, .3), each with a veth into the bridge
    and its own /etc/netns/<node>/hosts (node names, and this machine's hostname as the node's own address, so
    that a process in a node finds its address the way it would on a real node). Returns node -> address."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise ClusterUnavailable("two nodes need root and iproute2 (network namespaces)")
    network_down()  # what a killed earlier run left behind
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    addrs = {node: f"{SUBNET}.{i + 2}" for i, node in enumerate(NODES)}
    host = socket.gethostname()
    for i, (node, addr) in enumerate(addrs.items()):
        _ip("netns", "add", node)
        _ip("link", "add", f"tbv{i}", "type", "veth", "peer", "name", "eth0", "netns", node)
        _ip("link", "set", f"tbv{i}", "master", BRIDGE)
        _ip("link", "set", f"tbv{i}", "up")
        _ip("addr", "add", f"{addr}/24", "dev", "eth0", netns=node)
        _ip("link", "set", "eth0", "up", netns=node)
        _ip("link", "set", "lo", "up", netns=node)
        hosts = Path("/etc/netns") / node / "hosts"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", f"{SUBNET}.1 tbcontroller", *(f"{a} {n}" for n, a in addrs.items())]
        hosts.write_text("\n".join([*lines, f"{addr} {host}"]) + "\n")
    return addrs


def network_down() -> None:
    """Remove exactly what `network_up` creates (ignoring what is already gone)."""
    for i, node in enumerate(NODES):
        subprocess.run(["ip", "netns", "del", node], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"tbv{i}"], capture_output=True, check=False)
        shutil.rmtree(Path("/etc/netns") / node, ignore_errors=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    try:
        Path("/etc/netns").rmdir()  # only when nothing else lives there
    except OSError:
        pass


def in_node(node: str, cmd: list[str]) -> list[str]:
    """`cmd` run inside `node`: its network namespace, and a private mount namespace where /etc/hosts is the node's
    (`ip netns exec` would do both but also remounts /sys, hiding the cgroup mounts slurmd needs)."""
    hosts = Path("/etc/netns") / node / "hosts"
    inner = f'mount --bind {hosts} /etc/hosts && exec nsenter --net=/run/netns/{node} "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, "sh", *cmd]


def start_two_nodes(root: str | Path) -> Cluster:
    """munged and slurmctld on this machine, a slurmd per node inside its network namespace; waits until both
    nodes are idle. `Cluster.stop` also removes the namespaces and the bridge."""
    ensure_installed()
    root = Path(root).resolve()
    lock_fd = hold_machine_lock()
    try:
        addrs = network_up()
        conf = write_conf(root, max(1, (os.cpu_count() or 2) // len(addrs)), addrs, f"{SUBNET}.1")
    except BaseException:  # nothing launched yet: undo the network and the lock here (`_launch` does it after)
        network_down()
        os.close(lock_fd)
        raise
    sbin = Path("/usr/sbin")
    daemons = {"slurmctld": [str(sbin / "slurmctld"), "-D", "-f", str(conf)]}
    for node in addrs:
        daemons[f"slurmd-{node}"] = in_node(node, [str(sbin / "slurmd"), "-D", "-N", node, "-f", str(conf)])
    return _launch(Cluster(root, conf, nodes=tuple(addrs), lock_fd=lock_fd), daemons)


def started_or_skipped(start_fn: Any, root: Path) -> Cluster:
    """`start_fn(root)` for a pytest fixture: a cluster that cannot start skips the tests with the reason, or fails
    them under TRICKBENCH_REQUIRE_SLURM=1 (`.ci/run`)."""
    import pytest

    try:
        return start_fn(root)
    except ClusterUnavailable as err:
        if os.environ.get("TRICKBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM cluster required (TRICKBENCH_REQUIRE_SLURM=1) but unavailable: {err}")
        pytest.skip(f"no SLURM cluster here: {err}")


def ablate(cluster: Cluster, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`trickbench ablate ARGS` from `cwd` against this cluster (`env` plus its SLURM_CONF)."""
    cmd = [sys.executable, "-m", "trickbench", "ablate", *args]
    env = {**env, "SLURM_CONF": str(cluster.conf)}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


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
    if action in ("up", "up2"):
        c = start(folder) if action == "up" else start_two_nodes(folder)
        print(f"SLURM up: export SLURM_CONF={c.conf}; daemons {[p.pid for p in c.procs.values()]}")
        # Keep the daemons after this process exits: they are not our children's children to reap here.
        os._exit(0)
    elif action == "down":
        _stop_from_pids(folder.resolve())
        network_down()
    else:
        sys.exit("usage: slurm_cluster.py up|up2|down DIR")
