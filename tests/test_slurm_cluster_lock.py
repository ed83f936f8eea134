"""The test SLURM clusters take turns (tests/slurm_cluster.py `hold_machine_lock`): parallel test workers, or two
test sessions on one machine, would otherwise start two munged on one socket. No SLURM needed here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import slurm_cluster  # noqa: E402


def test_a_second_cluster_waits_for_the_first_to_stop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(slurm_cluster, "LOCK", tmp_path / "cluster.lock")
    first = slurm_cluster.Cluster(tmp_path, tmp_path / "slurm.conf", lock_fd=slurm_cluster.hold_machine_lock())
    with pytest.raises(TimeoutError, match="another test SLURM cluster has held .*cluster.lock for 0 s"):
        slurm_cluster.hold_machine_lock(timeout=0.2)
    first.stop()  # no daemons: stop only releases the lock
    assert first.lock_fd is None
    second = slurm_cluster.hold_machine_lock(timeout=0.2)
    os.close(second)


def test_the_two_slurm_files_are_one_unit_of_parallel_work() -> None:
    """Else the worker that draws the second cluster waits for the first one's tests (minutes) doing nothing."""
    from conftest import FileUnitScheduling

    scope = FileUnitScheduling.__new__(FileUnitScheduling)._split_scope  # no xdist session needed to split ids
    assert scope("tests/test_slurm.py::test_a") == scope("tests/test_slurm_multinode.py::test_b[x]")
    assert scope("tests/test_ddp.py::test_a") == "tests/test_ddp.py" != scope("tests/test_slurm.py::t")


def test_a_two_node_cluster_that_fails_to_configure_releases_the_lock_and_the_network(
    tmp_path: Path, monkeypatch
) -> None:
    """A failure between taking the lock and launching the daemons (the conf cannot be written) must not leave the
    lock held (every later cluster on the machine would wait 30 min for it) nor the namespaces up."""
    monkeypatch.setattr(slurm_cluster, "LOCK", tmp_path / "cluster.lock")
    monkeypatch.setattr(slurm_cluster, "ensure_installed", lambda: None)
    events: list[str] = []
    monkeypatch.setattr(slurm_cluster, "network_up", lambda: events.append("up") or {"tbnode1": "10.0.0.2"})
    monkeypatch.setattr(slurm_cluster, "network_down", lambda: events.append("down"))

    def unwritable(*args, **kwargs):
        raise PermissionError("slurm.conf: read-only folder")

    monkeypatch.setattr(slurm_cluster, "write_conf", unwritable)
    with pytest.raises(PermissionError, match="read-only folder"):
        slurm_cluster.start_two_nodes(tmp_path)
    assert events == ["up", "down"]
    after = slurm_cluster.hold_machine_lock(timeout=0.2)  # TimeoutError while the failed start still holds it
    os.close(after)
