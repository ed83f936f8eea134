"""The benchmarks/ scripts run end to end on tiny generated data (plumbing only: no timing assertions)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks import data_path as bench_data_path
from benchmarks import gpu as bench_gpu
from benchmarks import step_overhead as bench_step_overhead
from benchmarks import time_to_acc as bench_time_to_acc


def torchvision_compatible(root):
    """conftest's fake batches have bytes keys (what the template reads from the real Python-2 pickles);
    torchvision, unpickling with encoding="latin1", needs str keys: add both, plus batches.meta."""
    folder = root / "cifar-10-batches-py"
    for path in folder.glob("*_batch*"):
        entry = pickle.loads(path.read_bytes())
        entry.update({k.decode(): v for k, v in list(entry.items())})
        path.write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return root


def test_step_overhead_times_all_three_sides(tmp_path):
    res = bench_step_overhead.main(
        ["--nets", "mlp64", "--repeats", "2", "--warmup", "1", "--steps", "3", "--n", "512", "--out", str(tmp_path)]
    )
    raw = json.loads((tmp_path / "step_overhead.json").read_text())
    runs = raw["results"]["mlp64"]["per_step_s"]
    assert len(runs["defaults"]["cpu"]) == len(runs["bare"]["cpu"]) == len(runs["plain"]["wall"]) == 2
    assert all(t > 0 for side in runs.values() for clock in side.values() for t in clock)
    assert res["mlp64"]["cpu"]["defaults"]["ratio_of_medians"] > 0 and "command" in raw and "cpu" in raw["machine"]
    assert raw["machine"]["git_commit"]
    md = (tmp_path / "step_overhead.md").read_text()
    assert "| MLP 784-64-10 | bare |" in md and "| MLP 784-64-10 | defaults |" in md and "- git commit: " in md


def test_data_path_compares_both_loaders(fake_cifar, tmp_path):
    torchvision_compatible(fake_cifar)
    med = bench_data_path.main(
        [
            "--data_dir",
            str(fake_cifar),
            "--batch_size",
            "32",
            "--images",
            "64",
            "--workers",
            "0",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert set(med) == {"tensorloader", "torchvision_w0"} and all(v > 0 for v in med.values())
    assert json.loads((tmp_path / "data_path.json").read_text())["images_per_s"]["tensorloader"]


def test_unchecked_cifar_reads_the_same_pixels_as_the_datamodule(fake_cifar, capsys):
    torchvision_compatible(fake_cifar)
    ds = bench_data_path.UncheckedCIFAR10(str(fake_cifar), train=False)
    dm = bench_data_path.CIFAR10DataModule(str(fake_cifar), accept_nonoriginal=True, val_size=0)
    dm.setup("test")
    assert "not the original release" in capsys.readouterr().err  # one note
    x, y = dm.splits["test"]
    assert torch.equal(torch.from_numpy(ds.data).permute(0, 3, 1, 2), x) and ds.targets == y.tolist()


@pytest.mark.slow
def test_time_to_acc_tiny_runs_both_processes(fake_mnist, tmp_path):
    res = bench_time_to_acc.main(
        [
            "--tasks",
            "mlp",
            "--repeats",
            "1",
            "--tiny",
            "--val_size",
            "32",
            "--data_dir",
            str(fake_mnist),
            "--out",
            str(tmp_path),
        ]
    )
    runs = res["mlp"]["runs"]
    assert len(runs["template"]) == len(runs["plain"]) == 1
    assert all(0 <= r["test_acc"] <= 1 and r["seconds"] > 0 for rs in runs.values() for r in rs)
    assert (tmp_path / "time_to_acc_mlp.md").is_file()


def test_plain_loop_trains_the_template_nets_not_copies():
    from benchmarks import plain_mnist as plain
    from trickbench.lightning_modules.nets import MLP, SmallCNN

    # the YAML's class_path names resolve to the project's own classes (a copy could drift from them)
    assert plain.NETS == {"MLP": MLP, "SmallCNN": SmallCNN}


@pytest.mark.slow
def test_gpu_script_tiny_on_cpu(fake_cifar, tmp_path):
    # bf16 autocast on CPU is slow; the GPU session runs all modes. compile="auto" is checked in the fast-preset test.
    res = bench_gpu.main(
        ["--tiny", "--runs", "1", "--modes", "32-true", "--data_dir", str(fake_cifar), "--out", str(tmp_path)]
    )
    assert len(res["fast_runs"]) == 1 and 0 <= res["fast_runs"][0]["test_acc"] <= 1
    assert set(res["resnet18"]) == {"32-true"} and res["resnet18"]["32-true"]["compiled"] is False
    assert all(r["images_per_s"] > 0 for r in res["resnet18"].values())
    assert json.loads((tmp_path / "gpu.json").read_text())["fast_runs"]


def test_channels_last_benchmark_times_both_layouts_of_the_same_net(tmp_path: Path, monkeypatch) -> None:
    from benchmarks import channels_last

    calls = []
    real = channels_last.step_seconds
    monkeypatch.setattr(channels_last, "step_seconds", lambda cl, steps: calls.append(cl) or real(cl, steps, batch=8))
    channels_last.main(["--steps", "1", "--rounds", "2", "--out", str(tmp_path)])
    assert calls == [True, False, True, False]  # alternating, in one process
    payload = json.loads((tmp_path / "channels_last.json").read_text())
    assert [r["round"] for r in payload["rounds"]] == [0, 1]
    assert all(r["channels_last_s"] > 0 and r["contiguous_s"] > 0 for r in payload["rounds"])
    assert "| contiguous / channels_last |" in (tmp_path / "channels_last.md").read_text()


@pytest.mark.slow
def test_gpu_session_script_rehearses_end_to_end_on_cpu(tmp_path: Path) -> None:
    """`benchmarks/gpu_session.sh --rehearse`: the one-call GPU script's steps (install the clone as a package,
    data, the trick table's ablation file at tiny scale, status, report, archive) on a CPU, with the packages the
    GPU machine lacks (gymnasium, wandb) hidden, so the script works the first time a GPU is lent."""
    import os
    import subprocess
    import sys
    import tarfile

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_session.sh"), "--rehearse", "900"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    log = (tmp_path / "out" / "session.log").read_text()
    assert "25/25 runs completed" in log and "trickbench from" in log and "/site/trickbench/" in log
    with tarfile.open(tmp_path / "out" / "gpu_trick_table.tgz") as tar:
        report = tar.extractfile("./cifar10_gpu_fast_rehearsal/report.md").read().decode()
    arms = yaml.safe_load((root / "configs" / "ablations" / "cifar10_gpu_fast.yaml").read_text())["arms"]
    assert len(arms) == 12
    assert all(f"| {arm} | 2 |" in report for arm in arms), report


def test_side_by_side_pairs_of_another_commit_are_refused(tmp_path):
    from benchmarks.airbench_side_by_side import PairsError, load_pairs, spread

    (tmp_path / "pair0.json").write_text(json.dumps({"run": 0, "git_commit": "aaa"}))
    assert list(load_pairs(tmp_path, "aaa")) == [0]
    with pytest.raises(PairsError, match="commit aaa, this checkout is bbb.*another --out"):
        load_pairs(tmp_path, "bbb")
    assert spread([1.0, 2.0, 3.0]) == "2 (sd 1, range 1-3)" and spread([0.5]) == "0.5 (one pair)"


def test_a_benchmark_never_overwrites_a_record_and_stops_before_measuring(tmp_path, monkeypatch):
    """Each benchmark refuses an --out that already holds its record before it measures anything (the default
    --out is the committed folder); `save` refuses too, unless a resumable benchmark rewrites its own report."""
    import sys

    from benchmarks import airbench_side_by_side, channels_last
    from benchmarks.common import RecordExists, save

    (tmp_path / "channels_last.md").write_text("a committed record")
    with pytest.raises(RecordExists, match="channels_last.md exists; records are never overwritten.*at_COMMIT"):
        channels_last.main(["--out", str(tmp_path)])
    assert (tmp_path / "channels_last.md").read_text() == "a committed record"
    assert not (tmp_path / "channels_last.json").exists()
    (tmp_path / "time_to_acc_cnn.json").write_text("{}")
    with pytest.raises(RecordExists, match="time_to_acc_cnn.json exists"):  # mlp's record would be new: not run
        bench_time_to_acc.main(["--out", str(tmp_path), "--tasks", "mlp", "cnn", "--data_dir", str(tmp_path)])
    assert not (tmp_path / "time_to_acc_mlp.json").exists()
    with pytest.raises(RecordExists):
        save(tmp_path, "channels_last", {"new": 1}, "new")
    save(tmp_path, "channels_last", {"new": 1}, "new", replace=True)
    assert json.loads((tmp_path / "channels_last.json").read_text()) == {"new": 1}
    # the side by side: a folder holding a report but none of its pairs is an older record
    (tmp_path / "side_by_side.json").write_text("{}")
    monkeypatch.setattr(sys, "argv", ["x", "--data_dir", str(tmp_path), "--out", str(tmp_path), "--allow_dirty"])
    with pytest.raises(RecordExists, match="side_by_side.json exists"):
        airbench_side_by_side.main()
    assert (tmp_path / "side_by_side.json").read_text() == "{}"


@pytest.mark.slow
def test_side_by_side_resumes_keeping_finished_pairs(fake_cifar, tmp_path):
    """Tiny airbench + trickbench pairs: a second call with more --runs keeps the finished pair's record as it was
    and adds one; the report is PARTIAL only while pairs are missing."""
    import subprocess
    import sys

    from conftest import subprocess_env

    def run(pairs: int) -> None:
        cmd = [sys.executable, "-m", "benchmarks.airbench_side_by_side", "--data_dir", str(fake_cifar)]
        cmd += ["--accept_nonoriginal", "--runs", str(pairs), "--epochs", "0.5", "--allow_dirty"]
        cmd += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--trickbench_args"]
        cmd += ["--trainer.max_steps 2 --data.init_args.val_size 32 --data.init_args.batch_size 8"]
        root = Path(__file__).resolve().parents[1]
        subprocess.run(cmd, cwd=root, env=subprocess_env(), check=True, capture_output=True, timeout=600)

    run(1)
    first = (tmp_path / "out" / "pairs" / "pair0.json").read_bytes()
    assert "PARTIAL" not in (tmp_path / "out" / "side_by_side.md").read_text()
    run(2)
    assert (tmp_path / "out" / "pairs" / "pair0.json").read_bytes() == first
    record = json.loads((tmp_path / "out" / "side_by_side.json").read_text())
    assert [r["run"] for r in record["runs"]] == [0, 1] and record["pairs_planned"] == 2
    assert all(r["ratio_cpu"] > 0 for r in record["runs"])
    md = (tmp_path / "out" / "side_by_side.md").read_text()
    assert "Over 2 pair(s): CPU seconds trickbench / airbench" in md
    for r in record["runs"]:  # each pair names its own machine: a resumed folder may hold pairs of several
        assert r["machine"]["cpu"] and r["machine"]["cores"] >= 1 and len(r["machine"]["loadavg_end"]) == 3
        assert f"- run {r['run']}: {r['machine']['cpu']}, {r['machine']['cpu_capability']} (" in md


def test_same_weights_tells_identical_from_changed_checkpoints(tmp_path):
    from benchmarks.same_weights import compare

    state = {"w": torch.arange(4.0), "b": torch.zeros(2)}
    torch.save({"state_dict": state}, tmp_path / "a.ckpt")
    torch.save({"state_dict": {**state, "extra": torch.ones(1)}}, tmp_path / "b.ckpt")
    torch.save({"state_dict": {**state, "w": state["w"] + 1e-6}}, tmp_path / "c.ckpt")
    same = compare(str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"))
    assert same["bit_identical"] and same["shared_tensors"] == 2 and same["only_in_b"] == ["extra"]
    moved = compare(str(tmp_path / "a.ckpt"), str(tmp_path / "c.ckpt"))
    assert not moved["bit_identical"] and 0 < moved["max_abs_diff"] < 1e-5
