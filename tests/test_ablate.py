"""Ablation harness: plan expansion, errors, skip/resume, failures, prerequisites, SLURM script.

Runs go through `tests/ablate_fake_train.py` (a torch-free stand-in for `trickbench fit`), so the
scheduling logic is tested in seconds; tests/test_ablate_e2e.py runs the real trainer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from trickbench.scripts import ablate
from trickbench.scripts.ablation import plan as ablation
from trickbench.scripts.ablation import slurm
from trickbench.scripts.ablation.plan import AblationError, load_plan

FAKE = Path(__file__).with_name("ablate_fake_train.py")


def write(path: Path, data: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def make_ablation(tmp: Path, arms: dict, prerequisites: dict | None = None, seeds=(0, 1), **extra) -> str:
    spec = {
        "name": "toy",
        "base": [write(tmp / "base.yaml", {"fake": {"acc": 0.5}})],
        "overrides": ["--trainer.max_epochs=1"],
        "seeds": list(seeds),
        "arms": arms,
        **extra,
    }
    if prerequisites:
        spec["prerequisites"] = prerequisites
    return write(tmp / "ablation.yaml", spec)


def kd_fragment(tmp: Path) -> str:
    cb = {
        "class_path": "trickbench.callbacks.KnowledgeDistillation",
        "init_args": {"teacher": {"class_path": "x.ResNet18"}, "teacher_checkpoint": None, "alpha": 0.5},
    }
    return write(tmp / "kd.yaml", {"trainer": {"callbacks+": [cb]}})


def calls(run_dir: Path) -> list[list[str]]:
    return json.loads((run_dir / "calls.json").read_text())


def test_plan_expansion_orders_prerequisites_first_and_builds_commands(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", {"fake": {"acc": 0.6}})
    kd = kd_fragment(tmp_path)
    path = make_ablation(
        tmp_path,
        {"baseline": [], "good": [good], "kd": {"fragments": [kd], "teacher": "teacher"}},
        {"teacher": {"overrides": ["--trainer.max_epochs=2"], "seed": 5}},
    )
    plan = load_plan(path, tmp_path / "runs", ["--data.init_args.data_dir=/d"])
    labels = [j.label for j in plan.jobs]
    assert labels == [
        "prerequisites/teacher/seed5",
        "baseline/seed0",
        "baseline/seed1",
        "good/seed0",
        "good/seed1",
        "kd/seed0",
        "kd/seed1",
    ]
    assert plan.jobs[3].run_dir == tmp_path / "runs" / "toy" / "good" / "seed0"
    assert plan.arms() == ["baseline", "good", "kd"]
    cmd = ablation.command(plan, plan.jobs[4], resume="R/last.ckpt")
    assert cmd[len(ablation.TRAIN_CMD) :] == [
        "--config",
        plan.base[0],
        "--config",
        good,
        "--trainer.max_epochs=1",
        "--data.init_args.data_dir=/d",
        "--seed_everything=1",
        f"--run_dir={tmp_path / 'runs/toy/good/seed1'}",
        "--wandb.group=toy",
        "--wandb.tags=[good]",
        "--wandb.name=toy/good/seed1",
        "--ckpt_path=R/last.ckpt",
    ]
    teacher_cmd = ablation.command(plan, plan.jobs[0])
    assert "--trainer.max_epochs=2" in teacher_cmd and "--seed_everything=5" in teacher_cmd


def test_seed_keys_send_the_seed_to_every_listed_key(tmp_path: Path) -> None:
    plan = load_plan(
        make_ablation(tmp_path, {"baseline": []}, seeds=[3], seed_keys=["seed_everything", "data.init_args.seed"])
    )
    cmd = ablation.command(plan, plan.jobs[0])
    assert "--seed_everything=3" in cmd and "--data.init_args.seed=3" in cmd


def test_missing_fragments_are_one_error_before_anything_runs(tmp_path: Path, fake_trainer, capsys) -> None:
    path = make_ablation(
        tmp_path, {"baseline": [], "a": [str(tmp_path / "nope1.yaml")], "b": [str(tmp_path / "nope2.yaml")]}
    )
    with pytest.raises(AblationError, match="2 config file") as err:
        load_plan(path)
    assert "nope1.yaml" in str(err.value) and "nope2.yaml" in str(err.value)
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "Nothing was run" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "arms, prereqs, match",
    [
        ({"kd": {"fragments": [], "teacher": "ghost"}}, None, "not a prerequisite"),
        ({"kd": {"fragments": ["BASE"], "teacher": "t"}}, {"t": {}}, "teacher_checkpoint"),
        ({"prerequisites": []}, None, "must match"),
        ({"a": {"fragments": [], "typo": 1}}, None, "unknown key"),
    ],
)
def test_bad_ablation_files_say_what_to_fix(tmp_path: Path, arms, prereqs, match) -> None:
    base = str(tmp_path / "base.yaml")
    arms = {
        k: ({**v, "fragments": [base]} if isinstance(v, dict) and v.get("fragments") == ["BASE"] else v)
        for k, v in arms.items()
    }
    with pytest.raises(AblationError, match=match):
        load_plan(make_ablation(tmp_path, arms, prereqs))


def test_failing_run_does_not_stop_the_sweep(tmp_path: Path, fake_trainer, capsys) -> None:
    bad = write(tmp_path / "bad.yaml", {"fake": {"fail": True}})
    path = make_ablation(tmp_path, {"baseline": [], "bad": [bad], "after": []})
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 1
    root = tmp_path / "runs" / "toy"
    for arm in ("baseline", "after"):
        for seed in (0, 1):
            assert json.loads((root / arm / f"seed{seed}" / "metrics.json").read_text())["status"] == "completed"
    assert "boom" in (root / "bad" / "seed0" / "stderr.log").read_text()
    assert "fake training" in (root / "bad" / "seed0" / "stdout.log").read_text()
    out = capsys.readouterr().out
    assert "4/6 runs completed" in out and "FAILED bad/seed0" in out and "FAILED bad/seed1" in out
    assert "bad/seed0: failed: exit code 1: error: boom (see" in out  # the run's own error, in the sweep's output
    assert json.loads((root / "plan.json").read_text())["arms"] == ["baseline", "bad", "after"]


def test_a_shared_error_stops_the_sweep_before_any_run_starts(tmp_path: Path, fake_trainer, capsys) -> None:
    """The preflight fails (here: the stand-in says the data is missing): one error line naming the arm, exit 2,
    and not a single run folder, log or plan record written."""
    bad = write(tmp_path / "bad.yaml", {"fake": {"preflight": "MNIST: missing file /nowhere/MNIST/raw/x"}})
    path = make_ablation(tmp_path, {"baseline": [], "other": [bad]})
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: preflight: other/seed0: MNIST: missing file /nowhere/MNIST/raw/x", err
    assert not (tmp_path / "runs").exists()
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--skip-preflight"]) == 0  # the escape hatch


def test_rerun_skips_finished_resumes_interrupted_restarts_missing(tmp_path: Path, fake_trainer) -> None:
    path = make_ablation(tmp_path, {"baseline": []}, seeds=[0, 1, 2])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert ablate.main([path, *runs]) == 0
    root = tmp_path / "runs" / "toy" / "baseline"
    (root / "seed1" / "metrics.json").write_text(json.dumps({"status": "fit_interrupted"}))  # has last.ckpt
    (root / "seed2" / "metrics.json").unlink()
    (root / "seed2" / "checkpoints" / "last.ckpt").unlink()
    assert ablate.main([path, *runs]) == 0
    assert len(calls(root / "seed0")) == 1  # finished: skipped
    resumed = calls(root / "seed1")
    assert len(resumed) == 2 and f"--ckpt_path={root / 'seed1/checkpoints/last.ckpt'}" in resumed[1]
    restarted = calls(root / "seed2")
    assert len(restarted) == 2 and not any(a.startswith("--ckpt_path") for a in restarted[1])


def test_prerequisite_runs_first_and_kd_gets_a_generated_fragment(tmp_path: Path, fake_trainer) -> None:
    kd = kd_fragment(tmp_path)
    path = make_ablation(
        tmp_path,
        {"baseline": [], "kd": {"fragments": [kd], "teacher": "teacher"}},
        {"teacher": {"overrides": ["--trainer.max_epochs=2"]}},
    )
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--jobs", "2"]) == 0
    root = tmp_path / "runs" / "toy"
    teacher = root / "prerequisites" / "teacher" / "seed0"
    assert (teacher / "metrics.json").stat().st_mtime <= (root / "kd" / "seed1" / "metrics.json").stat().st_mtime
    generated = root / "kd" / "seed0" / "generated_kd.yaml"
    assert f"--config={generated}" not in calls(root / "kd" / "seed0")[0]
    assert str(generated) in calls(root / "kd" / "seed0")[0]
    init = yaml.safe_load(generated.read_text())["trainer"]["callbacks+"][0]["init_args"]
    assert init["teacher_checkpoint"] == str((teacher / "checkpoints" / "last.ckpt").resolve())
    assert init["teacher"] == {"class_path": "fake.Net", "init_args": {"width": 7}}  # the teacher's real net
    assert init["alpha"] == 0.5


def test_failed_prerequisite_fails_its_dependants_without_running_them(tmp_path: Path, fake_trainer, capsys) -> None:
    kd, bad = kd_fragment(tmp_path), write(tmp_path / "bad.yaml", {"fake": {"fail": True}})
    path = make_ablation(
        tmp_path, {"baseline": [], "kd": {"fragments": [kd], "teacher": "teacher"}}, {"teacher": {"fragments": [bad]}}
    )
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 1
    kd_run = tmp_path / "runs" / "toy" / "kd" / "seed0"
    assert not (kd_run / "calls.json").exists()  # never run; its record says why (for --status and the report)
    assert json.loads((kd_run / "metrics.json").read_text())["error"] == (
        "not run: prerequisite prerequisites/teacher/seed0 did not complete"
    )
    assert (tmp_path / "runs" / "toy" / "baseline" / "seed1" / "metrics.json").is_file()
    assert (
        "FAILED kd/seed0: failed: prerequisite prerequisites/teacher/seed0 did not complete" in capsys.readouterr().out
    )


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path, fake_trainer, capsys) -> None:
    path = make_ablation(
        tmp_path, {"baseline": [], "kd": {"fragments": [kd_fragment(tmp_path)], "teacher": "t"}}, {"t": {}}
    )
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--dry-run", "--set", "x.y=1"]) == 0
    out = capsys.readouterr().out
    assert out.count(" new\n") == 5 and "--x.y=1" in out and "generated_kd.yaml" in out
    assert not (tmp_path / "runs").exists()


def test_worker_envs_one_gpu_each_or_a_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [e["CUDA_VISIBLE_DEVICES"] for e in ablate.worker_envs(3, 1, None)] == ["0", "1", "2"]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    envs = ablate.worker_envs(0, 4, None)
    assert len(envs) == 4 and {e["OMP_NUM_THREADS"] for e in envs} == {"2"}
    assert ablate.worker_envs(0, 16, None)[0]["OMP_NUM_THREADS"] == "1"
    assert ablate.worker_envs(0, 1, 3)[0]["OMP_NUM_THREADS"] == "3"


def test_slurm_script_runs_the_same_plan_with_srun_and_ddp_devices(tmp_path: Path) -> None:
    ddp = write(tmp_path / "ddp.yaml", {"trainer": {"strategy": "ddp", "devices": 4, "accelerator": "gpu"}})
    path = make_ablation(
        tmp_path,
        {"baseline": [], "kd": {"fragments": [kd_fragment(tmp_path)], "teacher": "t"}},
        {"t": {}},
        slurm={"time": "01:00:00", "extra": ["--partition=gpu"]},
    )
    spec = yaml.safe_load(Path(path).read_text())
    spec["base"].append(ddp)
    Path(path).write_text(yaml.safe_dump(spec))
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--launcher", "slurm", "--set", "a.b=c"]) == 0
    folder = tmp_path / "runs" / "toy" / "slurm"
    text = (folder / "ablation.sbatch").read_text()
    for line in [
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --time=01:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --signal=USR1@90",
        "#SBATCH --requeue",
        "#     0: prerequisites/t/seed0",
        "#     4: kd/seed1",
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}" MKL_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
    ]:
        assert line in text.splitlines(), line
    assert f'--runs-dir {tmp_path / "runs"} --set=a.b=c --task "$SLURM_ARRAY_TASK_ID" --srun' in text
    submit = (folder / "submit.sh").read_text()
    assert "--array=0 " in submit and "--array=1-2 " in submit  # prerequisites; arms needing none start at once
    assert '--dependency="afterany:${prerequisites%%;*}" --array=3-4 ' in submit  # only KD waits for the teacher
    assert json.loads((tmp_path / "runs" / "toy" / "plan.json").read_text())["prerequisites"] == ["t"]
    plan = load_plan(path)
    plan.base.pop()  # without the DDP config: one process, and no GPU unless asked for
    assert slurm.resources(plan) == (1, 0)
    plan.slurm["gpus_per_task"] = 1
    assert slurm.resources(plan) == (1, 1)
    assert slurm.index_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


def test_task_mode_emits_the_command_or_nothing_when_finished(tmp_path: Path, fake_trainer, capsys) -> None:
    path = make_ablation(
        tmp_path, {"baseline": [], "kd": {"fragments": [kd_fragment(tmp_path)], "teacher": "t"}}, {"t": {}}
    )
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert ablate.main([path, *runs, "--task", "1", "--emit-command"]) == 0
    assert "--wandb.name=toy/baseline/seed0" in capsys.readouterr().out
    assert ablate.main([path, *runs, "--task", "3", "--emit-command"]) == 2  # teacher not trained yet
    assert ablate.main([path, *runs, "--task", "0"]) == 0  # trains the teacher
    assert capsys.readouterr().out == "prerequisites/t/seed0: finished: trained\n"
    assert ablate.main([path, *runs, "--task", "0", "--emit-command"]) == 0
    assert capsys.readouterr().out == ""  # finished: nothing to run
    assert ablate.main([path, *runs, "--task", "3", "--emit-command"]) == 0
    out = capsys.readouterr().out
    assert "generated_kd.yaml" in out and "--wandb.name=toy/kd/seed0" in out
    assert ablate.main([path, *runs, "--task", "9"]) == 2


def test_damaged_record_is_moved_aside_and_the_run_resumes(tmp_path: Path, fake_trainer) -> None:
    path = make_ablation(tmp_path, {"baseline": []}, seeds=[0])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert ablate.main([path, *runs]) == 0
    run = tmp_path / "runs" / "toy" / "baseline" / "seed0"
    (run / "metrics.json").write_text('{"status": "compl')  # half a record, checkpoint present
    assert ablate.run_state(ablate.load_plan(path, tmp_path / "runs").jobs[0])[0] == "damaged"
    assert ablate.main([path, *runs]) == 0
    assert [p.read_text() for p in run.glob("metrics.json.damaged-*")] == ['{"status": "compl']
    assert calls(run)[-1][-1] == f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"  # resumed
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_attempt_that_died_before_a_checkpoint_is_moved_aside_not_refused(tmp_path: Path, fake_trainer) -> None:
    path = make_ablation(tmp_path, {"baseline": []}, seeds=[0])
    run = tmp_path / "runs" / "toy" / "baseline" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"status": "failed", "error": "DatasetError: ..."}))
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 0
    (attempt,) = (run / "attempts").iterdir()
    assert json.loads((attempt / "metrics.json").read_text())["status"] == "failed"
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_changed_definition_makes_finished_runs_stale_until_rerun(tmp_path: Path, fake_trainer, capsys) -> None:
    from trickbench.scripts.report import write_report

    path = make_ablation(tmp_path, {"baseline": []}, seeds=[0])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert ablate.main([path, *runs]) == 0
    run = tmp_path / "runs" / "toy" / "baseline" / "seed0"
    assert len(calls(run)) == 1
    assert ablate.main([path, *runs]) == 0 and len(calls(run)) == 1  # same definition: skipped
    capsys.readouterr()
    changed = [path, *runs, "--set", "trainer.max_epochs=3"]
    assert ablate.main([*changed, "--dry-run"]) == 0
    assert "baseline/seed0" in (out := capsys.readouterr().out) and " stale" in out
    assert ablate.main(changed) == 2
    assert "1 run(s) hold results of another definition" in capsys.readouterr().err and len(calls(run)) == 1
    assert ablate.main([*changed, "--rerun-stale"]) == 0
    (old,) = run.parent.glob("seed0.stale-*")
    assert len(calls(old)) == 1 and "--trainer.max_epochs=3" in calls(run)[0]  # old run kept, new one trained
    write_report(tmp_path / "runs" / "toy", tmp_path / "report")
    header = (tmp_path / "report" / "report.md").read_text()
    assert "overrides `--trainer.max_epochs=1 --trainer.max_epochs=3`" in header  # what the counted run ran
    Path(tmp_path / "base.yaml").write_text(yaml.safe_dump({"fake": {"acc": 0.9}}))  # an edited config file
    assert (
        ablate.run_state(
            load_plan(path, tmp_path / "runs", ["--trainer.max_epochs=3"]).jobs[0],
            load_plan(path, tmp_path / "runs", ["--trainer.max_epochs=3"]),
        )[0]
        == "stale"
    )


def test_sweep_prints_a_line_when_each_run_starts_and_ends_with_the_eta(tmp_path: Path, fake_trainer, capsys) -> None:
    path = make_ablation(tmp_path, {"baseline": [], "other": []}, seeds=[0])
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in out if ln.startswith("[start")] == [
        "[start 1] baseline/seed0",
        "[start 2] other/seed0",
    ]
    ends = [ln for ln in out if re.match(r"\[\d/2\] ", ln)]
    assert len(ends) == 2 and all(
        re.search(r"finished: trained \(\d+ s; sweep ETA \d\d:\d\d:\d\d\)", ln) for ln in ends
    )
    assert ends[-1].endswith("sweep ETA 00:00:00)")  # nothing left after the last run


def test_sweep_eta_is_rounds_of_workers_times_the_mean_run(tmp_path: Path, capsys) -> None:
    """3 runs, 2 workers, 100-s runs: after 2 have finished one more round is left (100 s, not 50 s); after the
    3rd is recorded, nothing (the ETA is computed once its outcome counts)."""
    plan = load_plan(make_ablation(tmp_path, {"baseline": []}, seeds=[0, 1, 2]), tmp_path / "runs")
    sweep = ablate.Sweep(plan, plan.jobs, workers=2)
    sweep.durations = [100.0, 100.0]
    sweep.outcomes = {"baseline/seed0": ablate.TRAINED, "baseline/seed1": ablate.TRAINED}
    assert sweep.eta() == "sweep ETA 00:01:40"
    sweep.durations.append(100.0)
    with sweep.cond:
        sweep._record(plan.jobs[2], ablate.TRAINED, lambda: f" ({sweep.eta()})")
    assert capsys.readouterr().out.strip() == "[3/3] baseline/seed2: finished: trained (sweep ETA 00:00:00)"


def test_sweep_eta_counts_hours_past_a_day(tmp_path: Path) -> None:
    """A CPU sweep can have more than 24 h left: 3 runs of 10 h on one worker is 30 h, not 06:00:00."""
    plan = load_plan(make_ablation(tmp_path, {"baseline": []}, seeds=[0, 1, 2]), tmp_path / "runs")
    sweep = ablate.Sweep(plan, plan.jobs, workers=1)
    sweep.durations = [36000.0]
    assert sweep.eta() == "sweep ETA 30:00:00"
    sweep.durations = [99.6]
    assert sweep.eta() == "sweep ETA 00:04:59"  # 3 x 99.6 s = 298.8 s, to the nearest second


def test_status_of_a_local_sweep_names_each_state_and_exits_1_on_failures(tmp_path: Path, fake_trainer, capsys) -> None:
    bad = write(tmp_path / "bad.yaml", {"fake": {"fail": True}})
    path = make_ablation(tmp_path, {"baseline": [], "bad": [bad], "later": []}, seeds=[0])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert ablate.main([path, *runs, "--status"]) == 0  # nothing failed yet: all pending
    assert capsys.readouterr().out.count("pending   not started") == 3
    assert ablate.main([path, *runs]) == 1
    root = tmp_path / "runs" / "toy"
    (root / "later" / "seed0" / "metrics.json").write_text(json.dumps({"status": "running"}))  # died, no lock holder
    capsys.readouterr()
    assert ablate.main([path, *runs, "--status"]) == 1
    out = {ln.split()[0]: ln.split(None, 2)[1:] for ln in capsys.readouterr().out.splitlines() if "/seed" in ln}
    assert out["baseline/seed0"] == ["finished"]
    assert out["bad/seed0"][0] == "failed" and "boom" in out["bad/seed0"][1]
    assert out["later/seed0"] == ["failed", "process died while running (killed?); rerun the sweep to resume"]


def test_test_only_arm_tests_the_same_seed_of_the_arm_it_evaluates_after_it_trained(
    tmp_path: Path, fake_trainer
) -> None:
    good = write(tmp_path / "good.yaml", {"fake": {"acc": 0.6}})
    tta = write(tmp_path / "tta.yaml", {"model": {"init_args": {"tta_flip": True}}})
    path = make_ablation(tmp_path, {"tta": {"fragments": [tta], "evaluate": "good"}, "baseline": [], "good": [good]})
    plan = load_plan(path, tmp_path / "runs")
    job = next(j for j in plan.jobs if j.label == "tta/seed1")
    assert plan.dependency(job).label == "good/seed1"
    cmd = ablation.command(plan, job)
    assert cmd[: len(ablation.TEST_CMD)] == ablation.TEST_CMD
    args = cmd[len(ablation.TEST_CMD) :]
    assert args[:6] == ["--config", plan.base[0], "--config", good, "--config", tta]  # its arm's configs, then its own
    assert args[-1] == f"--ckpt_path={tmp_path / 'runs/toy/good/seed1/checkpoints/last.ckpt'}"
    assert ablate.main([path, "--runs-dir", str(tmp_path / "runs"), "--jobs", "2"]) == 0
    root = tmp_path / "runs" / "toy"
    assert calls(root / "tta/seed1")[0][0] == "test" and len(calls(root / "tta/seed1")) == 1
    # tta is listed first, yet it waited for the run it tests: that run's checkpoint existed when it started
    assert (root / "good/seed1/checkpoints/last.ckpt").stat().st_mtime <= (
        root / "tta/seed1/calls.json"
    ).stat().st_mtime
    # a change to the evaluated arm makes the test-only runs stale too (they tested other weights)
    write(tmp_path / "good.yaml", {"fake": {"acc": 0.65}})
    stale = {j.label for j in load_plan(path, tmp_path / "runs").jobs if ablate.run_state(j, plan)[0] == "stale"}
    assert stale == {"good/seed0", "good/seed1", "tta/seed0", "tta/seed1"}


@pytest.mark.parametrize(
    "arms, match",
    [
        ({"baseline": [], "t": {"evaluate": "nope"}}, "must name another arm that trains"),
        ({"baseline": [], "t": {"evaluate": "t"}}, "must name another arm"),
        ({"baseline": [], "t": {"evaluate": "baseline"}, "u": {"evaluate": "t"}}, "must name another arm that trains"),
    ],
)
def test_bad_test_only_arms_say_what_to_fix(tmp_path: Path, arms, match) -> None:
    with pytest.raises(AblationError, match=match):
        load_plan(make_ablation(tmp_path, arms), tmp_path / "runs")


def test_test_only_arm_takes_no_teacher(tmp_path: Path) -> None:
    kd = kd_fragment(tmp_path)
    path = make_ablation(
        tmp_path,
        {"baseline": [], "t": {"fragments": [kd], "evaluate": "baseline", "teacher": "teacher"}},
        {"teacher": {}},
    )
    with pytest.raises(AblationError, match="takes no teacher"):
        load_plan(path, tmp_path / "runs")


def test_slurm_submits_test_only_runs_after_every_training_array(tmp_path: Path) -> None:
    from trickbench.scripts.ablation import slurm

    kd = kd_fragment(tmp_path)
    path = make_ablation(
        tmp_path,
        {"baseline": [], "kd": {"fragments": [kd], "teacher": "teacher"}, "tta": {"evaluate": "kd"}},
        {"teacher": {}},
    )
    plan = load_plan(path, tmp_path / "runs")
    assert [w for w, _ in slurm.arrays(plan)] == ["prerequisites", "arms", "dependants", "evaluations"]
    assert dict(slurm.arrays(plan))["evaluations"] == [5, 6]
    text = slurm.submit_text(plan, tmp_path / "x.sbatch")
    line = next(x for x in text.splitlines() if x.startswith("evaluations="))
    assert '--dependency="afterany:${arms%%;*}:${dependants%%;*}"' in line


TRICK_TABLE_ARMS = {
    "baseline",
    "warmup",
    "stochastic_depth",
    "label_smoothing",
    "no_bias_decay",
    "kd",
    "mixup",
    "cutmix",
    "gn_ws",
    "ema",
    "tta",
    "all",
}


@pytest.mark.parametrize("name, min_seeds", [("cifar10_cpu_fast", 5), ("cifar10_gpu_fast", 10)])
def test_shipped_trick_tables_have_every_arm_paired_seeds_and_a_teacher(tmp_path: Path, name, min_seeds) -> None:
    root = Path(__file__).resolve().parents[1]
    plan = load_plan(root / "configs" / "ablations" / f"{name}.yaml", tmp_path)
    assert set(plan.arms()) == TRICK_TABLE_ARMS
    seeds = {arm: sorted(j.seed for j in plan.jobs if j.arm == arm and not j.prerequisite) for arm in plan.arms()}
    assert len(set(map(tuple, seeds.values()))) == 1 and len(seeds["baseline"]) >= min_seeds  # the same seeds
    assert plan.seed_keys == ["seed_everything", "data.init_args.seed"]
    teacher = plan.prerequisite("teacher")
    assert teacher.seed not in seeds["baseline"] and {j.teacher for j in plan.jobs if j.arm in ("kd", "all")} == {
        "teacher"
    }
    assert {j.evaluates for j in plan.jobs if j.arm == "tta"} == {"baseline"}
