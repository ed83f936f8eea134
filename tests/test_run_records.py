"""Run records you can trust (docs/guarantees.md): one run per directory, one writer, evaluation beside
the fit record, explicit arguments win over checkpoint hyperparameters, honest status and exit codes,
cumulative times over resumes, readable files, the whole config in W&B, progress lines in log files."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import fit_smoke, make_fake_mnist, subprocess_env
from wandb_records import finished_run_file, run_config

from trickbench.datamodules.integrity import DatasetError
from trickbench.io import atomic_write_text
from trickbench.lightning_cli import main
from trickbench.run.record import RunRecordError
from trickbench.run.run_dir import RunDirError, RunLock, default_run_dir

ROOT = Path(__file__).resolve().parents[1]
SYNTH = str(ROOT / "configs" / "synthetic_mlp.yaml")
MNIST_MLP = str(ROOT / "configs" / "mnist_mlp.yaml")
FAST = [
    "--trainer.max_epochs",
    "2",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--data.init_args.n_train",
    "256",
]


def fit(run: Path, *extra: str):
    return main(["fit", "--config", SYNTH, "--run_dir", str(run), *FAST, *extra])


def files_of(run: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"
    }


# 1. A used run directory is never silently reused.
def test_second_fit_into_a_run_dir_refuses_and_overwrite_starts_over(tmp_path):
    run = tmp_path / "run"
    fit(run, "--seed_everything", "1")
    before = files_of(run)
    with pytest.raises(
        RunDirError, match=r"already holds a run \(status: completed\).*--ckpt_path last.*--overwrite true"
    ):
        fit(run, "--seed_everything", "2")
    assert files_of(run) == before  # config, metrics, CSV and checkpoints untouched
    first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    fit(run, "--seed_everything", "2", "--overwrite", "true")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert not [n for n in names if "-v" in n], names  # one name per checkpoint: no last-v1.ckpt
    second = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(not torch.equal(v, second["state_dict"][k]) for k, v in first["state_dict"].items())
    assert yaml.safe_load((run / "config.yaml").read_text())["seed_everything"] == 2
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "completed" and len(record["segments"]) == 1  # started over


def test_cli_prints_the_refusal_as_one_line_and_exits_2(tmp_path):
    run = tmp_path / "run"
    fit(run)
    out = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", SYNTH, "--run_dir", str(run), *FAST],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: run directory")


# 2. One writer per run directory.
def test_a_locked_run_dir_stops_a_second_process_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    code = (
        "import time; from trickbench.run.run_dir import RunLock; "
        f"RunLock({str(run)!r}).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"in use by PID {holder.pid} "):
            fit(run)
        assert not (run / "config.yaml").exists() and not (run / "metrics.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match=rf"stale lock .* of PID {holder.pid} \(no longer running\)"):
        fit(run)  # the holder died without releasing: taken over
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert (run / ".lock").read_text() == ""  # released at the end of the run


def test_default_run_dirs_are_unique_within_one_second(tmp_path, monkeypatch):
    names = {default_run_dir().name for _ in range(50)}
    assert len(names) == 50
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", SYNTH, *FAST])
    main(["fit", "--config", SYNTH, *FAST])
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.json").is_file() for r in runs)


# 3. test/validate of an existing run write beside it, never over it.
def test_evaluating_a_run_writes_an_eval_subdir_and_leaves_the_fit_record(tmp_path):
    run = tmp_path / "run"
    fit(run)
    before = files_of(run)
    fit_test = json.loads((run / "metrics.json").read_text())["test"]
    for sub in ("test", "validate"):
        main([sub, "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    evals = sorted((run / "eval").iterdir())
    assert [e.name.split("-")[0] for e in evals] == ["test", "validate"]
    assert {k: v for k, v in files_of(run).items() if not k.startswith("eval/")} == before
    tested = json.loads((evals[0] / "metrics.json").read_text())
    assert tested["status"] == "completed" and tested["test"] == pytest.approx(fit_test, rel=1e-6)
    assert (evals[0] / "config.yaml").is_file() and (evals[0] / "csv" / "metrics.csv").is_file()
    assert json.loads((evals[1] / "metrics.json").read_text())["val"]["loss"] > 0


# 4. Explicit arguments beat the checkpoint's saved hyperparameters.
def test_explicit_arguments_win_over_checkpoint_hyperparameters(tmp_path, capsys):
    data = make_fake_mnist(tmp_path / "data")
    run = tmp_path / "run"
    fit_smoke(MNIST_MLP, data, run)
    ckpt = str(run / "checkpoints" / "last.ckpt")
    cli = main(
        ["test", "--config", str(run / "config.yaml"), "--ckpt_path", ckpt, "--model.init_args.tta_flip", "true"]
    )
    assert cli.model.hparams.tta_flip is True
    saved = yaml.safe_load(next((run / "eval").glob("test-*/config.yaml")).read_text())
    assert saved["model"]["init_args"]["tta_flip"] is True and saved["ckpt_path"] == ckpt  # the config = what ran
    assert "tta_flip: checkpoint False -> running True" in capsys.readouterr().err


# 5. No checkpoint -> no test of random weights.
def test_test_with_ckpt_last_and_no_checkpoint_is_an_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for extra in (["--run_dir", str(empty)], []):
        with pytest.raises(RunDirError, match="would evaluate untrained weights"):
            main(["test", "--config", SYNTH, "--ckpt_path", "last", *extra])
    assert list(empty.iterdir()) == [".lock"] or list(empty.iterdir()) == []


# 6. Out-of-range values are named at construction, before any data loads.
@pytest.mark.parametrize(
    ("key", "value", "range_"),
    [
        ("model.init_args.label_smoothing", "-0.1", r"\[0, 1\)"),
        ("model.init_args.label_smoothing", "1.5", r"\[0, 1\)"),
        ("model.init_args.net.init_args.dropout", "1.0", r"\[0, 1\)"),
    ],
)
def test_out_of_range_rates_are_one_error_before_data_loads(tmp_path, key, value, range_):
    args = [
        "fit",
        "--config",
        MNIST_MLP,
        "--run_dir",
        str(tmp_path / "run"),
        f"--{key}",
        value,
        "--data.init_args.data_dir",
        str(tmp_path / "nowhere"),
        "--data.init_args.download",
        "false",
    ]
    name = key.rsplit(".", 1)[1]
    with pytest.raises(ValueError, match=rf"`{name}` must be in {range_}, got {value}"):
        main(args)  # not a DatasetError: the data were never touched


def test_a_rejected_argument_is_one_line_from_the_shell_and_a_failed_record(tmp_path):
    run = tmp_path / "run"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trickbench",
            "fit",
            "--config",
            SYNTH,
            "--run_dir",
            str(run),
            "--model.init_args.net.init_args.dropout",
            "1.5",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: MLP `dropout` must be in [0, 1), got 1.5"
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "failed" and "MLP `dropout` must be in [0, 1)" in record["error"]


def fit_with_cosine(tmp_path, *extra: str) -> None:
    cosine = str(ROOT / "configs" / "tricks" / "cosine.yaml")
    data = str(make_fake_mnist(tmp_path / "d"))
    main(
        ["fit", "--config", MNIST_MLP, "--config", cosine, "--run_dir", str(tmp_path / "run")]
        + ["--data.init_args.data_dir", data, "--data.init_args.accept_nonoriginal", "true"]
        + ["--data.init_args.val_size", "32", *extra]
    )


def test_a_schedule_on_an_endless_run_asks_for_a_finite_length(tmp_path):
    with pytest.raises(ValueError, match="needs a finite run length.*max_epochs=-1.*set a finite"):
        fit_with_cosine(tmp_path, "--trainer.max_epochs", "-1")


def test_a_schedule_on_a_training_set_smaller_than_a_batch_says_so(tmp_path):
    with pytest.raises(ValueError, match="no optimizer step.*fewer images than one batch.*batch_size"):
        fit_with_cosine(tmp_path, "--trainer.max_epochs", "1", "--data.init_args.batch_size", "100000")


# 8. A damaged record is one clear error naming the file.
def test_damaged_metrics_json_is_a_clear_error_naming_the_file(tmp_path):
    run = tmp_path / "run"
    fit(run)
    (run / "metrics.json").write_text('{"status": "compl')
    with pytest.raises(RunRecordError, match=rf"{re.escape(str(run / 'metrics.json'))} is damaged.*Move it aside"):
        fit(run, "--ckpt_path", "last")


# 9. A resumed run keeps its whole record.
def test_resume_keeps_val_metrics_and_sums_times_over_processes(tmp_path):
    run = tmp_path / "run"
    args = ["fit", "--config", SYNTH, "--run_dir", str(run), *FAST, "--trainer.max_epochs", "4"]
    kill = ["--trainer.callbacks+", "killswitch.KillAtTest"]
    first = subprocess.run(
        [sys.executable, "-m", "trickbench", *args, *kill],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert first.returncode == 17, first.stderr[-2000:]  # died after fit, before test
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "fit_completed" and record["val"]
    main([*args, "--ckpt_path", "last"])  # trains nothing more, runs no validation, tests
    final = json.loads((run / "metrics.json").read_text())
    assert final["status"] == "completed" and final["val"] == record["val"]
    segs = final["segments"]
    assert [s["exit"] for s in segs] == ["fit_completed", "completed"]
    assert final["fit_seconds"] == pytest.approx(sum(s["fit_seconds"] for s in segs), abs=2e-3)
    assert final["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in segs), abs=2e-3)
    assert final["wall_seconds"] > segs[0]["wall_seconds"] >= record["fit_seconds"] > 0


# 10. Wall time: from the process start for the first run, from main() for later ones.
def test_wall_seconds_counts_imports_and_not_an_earlier_run(tmp_path):
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "trickbench", "fit", "--config", SYNTH, "--run_dir", str(tmp_path / "a"), *FAST],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outer = time.time() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    wall = json.loads((tmp_path / "a" / "metrics.json").read_text())["wall_seconds"]
    assert 0.8 * outer - 1.0 <= wall <= outer  # imports (several seconds) included
    fit(tmp_path / "b")
    t1 = time.time()
    fit(tmp_path / "c")
    second = json.loads((tmp_path / "c" / "metrics.json").read_text())["wall_seconds"]
    assert second <= time.time() - t1 + 0.05  # does not include the run before it in this process


# 12. Files colleagues can read.
def test_records_and_checkpoints_get_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        fit(run)
        atomic_write_text(tmp_path / "script.sh", "#!/bin/sh\n", mode=0o777)
    finally:
        os.umask(old)
    for rel in ("metrics.json", "checkpoints/last.ckpt", "wandb_run_id", "config.yaml"):
        if (run / rel).exists():
            assert stat.S_IMODE((run / rel).stat().st_mode) == 0o644, rel
    assert stat.S_IMODE((tmp_path / "script.sh").stat().st_mode) == 0o755


# 13. Bad-data messages that say what is wrong.
def test_data_dir_that_is_a_file_and_short_label_file_are_dataset_errors(tmp_path):
    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    base = [
        "fit",
        "--config",
        MNIST_MLP,
        "--data.init_args.accept_nonoriginal",
        "true",
        "--data.init_args.val_size",
        "32",
    ]
    with pytest.raises(DatasetError, match=r"data\.txt is a file, not a directory"):
        main([*base, "--run_dir", str(tmp_path / "r1"), "--data.init_args.data_dir", str(a_file)])
    data = make_fake_mnist(tmp_path / "data", n_train=128)
    labels = data / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[4:8] = (100).to_bytes(4, "big")  # a consistent idx1 file of 100 labels for 128 images
    labels.write_bytes(bytes(raw[: 8 + 100]))
    with pytest.raises(DatasetError, match="holds 128 images but .* holds 100 labels"):
        main([*base, "--run_dir", str(tmp_path / "r2"), "--data.init_args.data_dir", str(data)])


# The whole config in W&B (offline run files), and the same provenance in metrics.json.
def test_wandb_offline_run_holds_the_whole_config_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    warmup, ema = (str(ROOT / "configs" / "tricks" / f) for f in ("warmup.yaml", "ema.yaml"))
    fit(run, "--config", warmup, "--config", ema, "--model.init_args.optimizer.init_args.lr", "0.0042")
    cfg = run_config(finished_run_file(run / "wandb"))
    assert cfg["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.0042
    callbacks = {c["class_path"]: c["init_args"] for c in cfg["trainer"]["callbacks"]}
    assert callbacks["trickbench.callbacks.LRWarmup"]["warmup_fraction"] == 0.05
    assert (
        callbacks["trickbench.callbacks.EMA"]["decay"] == 0.998
        and callbacks["trickbench.callbacks.EMA"]["buffers"] == "copy"
    )
    assert cfg["trainer"]["max_epochs"] == 2 and cfg["seed_everything"] == 0
    prov = cfg["provenance"]
    assert prov["data_fingerprint"] == "synthetic-sine-d8-seed0" and prov["versions"]["torch"] == torch.__version__
    assert set(prov) >= {"git_commit", "git_dirty", "host", "cpu"}
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # AVX2/AVX512: the kernels' kind
    record = json.loads((run / "metrics.json").read_text())
    assert record["provenance"]["git_commit"] == prov["git_commit"] and record["provenance"]["host"] == prov["host"]


def test_a_run_started_from_another_runs_checkpoint_gets_its_own_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    fit(first)
    first_id = (first / "wandb_run_id").read_text().strip()
    fit(tuned, "--ckpt_path", str(first / "checkpoints" / "last.ckpt"), "--trainer.max_epochs", "3")
    tuned_id = (tuned / "wandb_run_id").read_text().strip()
    assert tuned_id != first_id and not list((first / "wandb").glob(f"*-{tuned_id}"))
    assert [d.name.rsplit("-", 1)[1] for d in (tuned / "wandb").glob("offline-run-*")] == [tuned_id]


def test_training_subprocesses_do_not_inherit_this_processs_wandb_service(tmp_path, monkeypatch):
    """After an in-process W&B run, wandb leaves WANDB_SERVICE in os.environ; a harness child that inherits it
    joins this process's service, and once killed its run id stays "in use" there: the resume then fails."""
    from trickbench.scripts import ablate

    monkeypatch.setenv("WANDB_MODE", "offline")
    fit(tmp_path / "run")
    assert "WANDB_SERVICE" in os.environ  # what wandb does (if this changes, the guard is moot, not wrong)
    assert (
        all("WANDB_SERVICE" not in e for e in ablate.worker_envs(0, 2, None))
        and "WANDB_SERVICE" not in subprocess_env()
    )


# Progress without a terminal.
def test_fit_with_stdout_to_a_file_prints_one_progress_line_per_epoch(tmp_path):
    log = tmp_path / "stdout.log"
    with open(log, "w") as fh:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "trickbench",
                "fit",
                "--config",
                SYNTH,
                "--run_dir",
                str(tmp_path / "run"),
                *FAST[:1],
                "3",
                *FAST[2:],
            ],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    pattern = (
        r"epoch 3/3  step 6/6  train/loss [\d.e-]+  val/loss [\d.e-]+  val/rmse [\d.e-]+  \d+ img/s  "
        r"elapsed \d+:\d\d:\d\d  ETA \d+:\d\d:\d\d"
    )
    assert re.fullmatch(pattern, lines[-1]), lines[-1]


def test_run_lock_is_exclusive_within_and_across_handles(tmp_path):
    lock = RunLock(tmp_path).acquire()
    with pytest.raises(RunDirError, match=f"PID {os.getpid()} "):
        RunLock(tmp_path).acquire()
    lock.release()
    RunLock(tmp_path).acquire().release()
