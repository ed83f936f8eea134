"""`design: factorial` ablation files end to end through the harness, with the torch-free fake trainer (true effects
come from `fake: {add: ...}` in the fragments): plan expansion, `--dry-run`, the stopping rule of
`--target-halfwidth/--max-runs` (and its resumption), and the factorial report."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.test_ablate import write
from trickbench.scripts import ablate, report
from trickbench.scripts.ablation.plan import load_plan

pytestmark = pytest.mark.usefixtures("fake_trainer")  # tests/conftest.py: the torch-free stand-in trains
EFFECTS = {"warm": 0.02, "smooth": -0.01, "ema": 0.0}  # trick -> true main effect (accuracy)


def factorial_file(tmp: Path, seeds=(0, 1), noise: float = 0.002) -> str:
    factors = {n: [write(tmp / f"{n}.yaml", {"fake": {"add": v}})] for n, v in EFFECTS.items()}
    factors["mix"] = {
        "levels": {
            "none": [],
            "mixup": [write(tmp / "mixup.yaml", {"fake": {"add": 0.004}})],
            "cutmix": [write(tmp / "cutmix.yaml", {"fake": {"add": 0.0}})],
            "both": [write(tmp / "both.yaml", {"fake": {"add": 0.004}})],
        }
    }
    spec = {
        "name": "toyfact",
        "design": "factorial",
        "base": [write(tmp / "base.yaml", {"fake": {"acc": 0.8, "noise": noise}})],
        "seeds": list(seeds),
        "resolution": 4,
        "factors": factors,
        "test_factors": {"tta": [write(tmp / "tta.yaml", {"fake": {"add": 0.005}})]},
    }
    return write(tmp / "factorial.yaml", spec)


def test_rows_become_arms_with_their_levels_fragments_and_a_test_only_arm_each(tmp_path: Path) -> None:
    plan = load_plan(factorial_file(tmp_path), tmp_path / "runs")
    rows = plan.design["rows"]
    assert len(rows) == 16 and plan.design["resolution"] == 4  # 3 + 2 columns in 16 runs
    arms = plan.arms()
    assert arms[:2] == ["r00", "r00+tta"] and len(arms) == 32
    for row in rows:
        job = next(j for j in plan.jobs if j.arm == row["arm"])
        expected = [str(tmp_path / f"{n}.yaml") for n in EFFECTS if row["levels"][n] == "on"]
        level = row["levels"]["mix"]
        expected += [] if level == "none" else [str(tmp_path / f"{level}.yaml")]
        assert list(job.fragments) == expected
        tested = next(j for j in plan.jobs if j.arm == row["arm"] + "+tta")
        assert tested.evaluates == row["arm"]
    seeds_in_order = [j.seed for j in plan.jobs]
    assert seeds_in_order == sorted(seeds_in_order)  # replicate by replicate


def test_dry_run_prints_matrix_resolution_and_aliases(tmp_path: Path, capsys) -> None:
    assert ablate.main([factorial_file(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "factorial design: 16 runs per replicate, 4 factors (5 columns), resolution IV" in out
    assert "test-only factors (every run tested both ways): tta" in out
    assert "defining relation: I = " in out
    assert sum(line.startswith("r") and line.split()[0].isalnum() for line in out.splitlines()) >= 16
    assert "  main warm\n" in out and "2fi  " in out
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing written


def test_a_factorial_file_with_arms_or_a_three_level_factor_is_refused(tmp_path: Path, capsys) -> None:
    path = factorial_file(tmp_path)
    spec = yaml.safe_load(open(path))
    spec["factors"]["mix"]["levels"].pop("both")
    write(tmp_path / "bad.yaml", spec)
    assert ablate.main([str(tmp_path / "bad.yaml"), "--dry-run"]) == 2
    assert "factor 'mix' has 3 levels" in capsys.readouterr().err
    spec = yaml.safe_load(open(path))
    spec["factors"]["warm+up"] = spec["factors"].pop("warm")
    write(tmp_path / "bad.yaml", spec)
    assert ablate.main([str(tmp_path / "bad.yaml"), "--dry-run"]) == 2
    assert "factor 'warm+up': use letters, digits and '_'" in capsys.readouterr().err


def test_stops_when_the_target_is_met_and_again_at_the_budget(tmp_path: Path, capsys) -> None:
    path, runs = factorial_file(tmp_path), tmp_path / "runs"
    # a generous target: the file's two replicates already meet it
    assert ablate.main([path, "--runs-dir", str(runs), "--target-halfwidth", "0.05", "--max-runs", "64"]) == 0
    stop = json.loads((runs / "toyfact" / "stopping.json").read_text())
    assert stop["rule"] == "target reached" and stop["seeds"] == [0, 1] and stop["runs"] == 32
    assert stop["max_halfwidth"] <= 0.05
    # an unreachable target: replicates are added until a fourth would pass the budget of 48 runs
    assert ablate.main([path, "--runs-dir", str(runs), "--target-halfwidth", "1e-9", "--max-runs", "48"]) == 0
    stop = json.loads((runs / "toyfact" / "stopping.json").read_text())
    assert stop["rule"] == "budget spent" and stop["seeds"] == [0, 1, 2] and stop["runs"] == 48
    assert (runs / "toyfact" / "r15" / "seed2" / "metrics.json").is_file()
    assert not (runs / "toyfact" / "r00" / "seed3").exists()
    # resumed: the same command trains nothing more and takes the same decision
    calls = json.loads((runs / "toyfact" / "r00" / "seed0" / "calls.json").read_text())
    assert ablate.main([path, "--runs-dir", str(runs), "--target-halfwidth", "1e-9", "--max-runs", "48"]) == 0
    assert json.loads((runs / "toyfact" / "r00" / "seed0" / "calls.json").read_text()) == calls
    assert json.loads((runs / "toyfact" / "stopping.json").read_text()) == stop


def test_budget_below_the_files_own_replicates_is_refused(tmp_path: Path, capsys) -> None:
    path = factorial_file(tmp_path)
    assert ablate.main([path, "--runs-dir", str(tmp_path / "r"), "--target-halfwidth", "0.01", "--max-runs", "20"]) == 2
    assert "--max-runs 20 is below the file's own 2 replicate(s) x 16 rows" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_report_recovers_the_true_effects_and_states_the_stopping_rule(tmp_path: Path) -> None:
    path, runs = factorial_file(tmp_path, seeds=(0, 1, 2)), tmp_path / "runs"
    assert ablate.main([path, "--runs-dir", str(runs), "--target-halfwidth", "0.05", "--max-runs", "48"]) == 0
    out = tmp_path / "out"
    assert report.main([str(runs / "toyfact"), "--out", str(out)]) == 0
    rows = {r["term"]: r for r in csv.DictReader((out / "effects.csv").open())}
    for term, truth in [*EFFECTS.items(), ("mix[mixup]", 0.004), ("mix[cutmix]", 0.0), ("tta", 0.005)]:
        low, high = float(rows[term]["ci_low"]), float(rows[term]["ci_high"])
        assert low <= truth <= high, (term, low, high)
    assert float(rows["warm"]["p_holm"]) < 0.01 and abs(float(rows["warm"]["effect"]) - 0.02) < 0.004
    text = (out / "report.md").read_text()
    assert "Stopping rule: **target reached**" in text and "PARTIAL" not in text
    assert re.search(r"\| warm \| \+(1\.9\d|2\.0\d) \| \[", text)  # in points, first among the main effects
    assert "resolution IV" in text
    # the four-level factor against its first level: mixup and both add 0.4 points, cutmix nothing
    for level, truth in (("mixup", 0.4), ("cutmix", 0.0), ("both", 0.4)):
        row = re.search(rf"\| {level} \| [+-][\d.]+ \| \[([+-][\d.]+), ([+-][\d.]+)\] \|", text)
        low, high = map(float, row.groups())
        assert low <= truth <= high, (level, low, high)
    for name in ("effects.png", "interactions.png", "raw/plan.json", "raw/stopping.json"):
        assert (out / name).is_file(), name
    again = tmp_path / "again"  # raw/ is a run folder: the same report from it
    assert report.main([str(out / "raw"), "--out", str(again)]) == 0
    assert (again / "report.md").read_text() == text
    assert (again / "effects.csv").read_text() == (out / "effects.csv").read_text()


def test_gpu_preset_is_the_cpu_design_with_more_replicates() -> None:
    cpu, gpu = (yaml.safe_load(open(f"configs/ablations/cifar10_{k}_factorial.yaml")) for k in ("cpu", "gpu"))
    for key in ("design", "resolution", "generators", "factors", "test_factors", "seed_keys"):
        assert cpu[key] == gpu[key], key
    assert len(gpu["seeds"]) > len(cpu["seeds"])
    plan = load_plan("configs/ablations/cifar10_gpu_factorial.yaml", "runs")
    trained = [j for j in plan.jobs if not j.prerequisite and not j.evaluates]
    assert len(trained) == 32 * len(gpu["seeds"]) and plan.design["resolution"] == 4


def test_a_field_that_is_not_a_list_of_files_is_named_in_one_error(tmp_path: Path, capsys) -> None:
    spec = yaml.safe_load(open(factorial_file(tmp_path)))
    spec["factors"]["warm"] = {"fragments": "warm.yaml"}  # a string, not a list
    assert ablate.main([write(tmp_path / "bad.yaml", spec), "--dry-run"]) == 2
    assert "factor 'warm' fragments must be a list of config files, got 'warm.yaml'" in capsys.readouterr().err
    spec = yaml.safe_load(open(factorial_file(tmp_path)))
    spec["base"] = "base.yaml"
    assert ablate.main([write(tmp_path / "bad2.yaml", spec), "--dry-run"]) == 2
    assert "base must be a list of strings, got 'base.yaml'" in capsys.readouterr().err


COMMITTED_RAW = Path(__file__).resolve().parents[1] / "results" / "cifar10_cpu_factorial" / "raw"


def committed_subset(dest: Path, seed: int, arms: list[str] | None = None) -> Path:
    """A raw/ holding the committed CIFAR factorial's plan, teacher and one seed of `arms` (all arms: None), so a
    test sees the same state however far the committed table has grown."""
    dest.mkdir()
    shutil.copyfile(COMMITTED_RAW / "plan.json", dest / "plan.json")
    shutil.copytree(COMMITTED_RAW / "prerequisites", dest / "prerequisites")
    for arm in arms if arms is not None else json.loads((COMMITTED_RAW / "plan.json").read_text())["arms"]:
        shutil.copytree(COMMITTED_RAW / arm / f"seed{seed}", dest / arm / f"seed{seed}")
    return dest


def test_the_committed_factorial_report_is_remade_from_its_raw_alone(tmp_path: Path) -> None:
    """results/cifar10_cpu_factorial/raw/ is enough to make its report.md and effects.csv again, byte for byte: a
    reader can recompute every effect, interval and p from the committed records (the PNGs are left out: their
    bytes follow the matplotlib version)."""
    committed = COMMITTED_RAW.parent
    compare = committed.parent / "cifar10_cpu_fast"  # as in its COMMAND.md
    assert report.main([str(COMMITTED_RAW), "--out", str(tmp_path / "out"), "--compare", str(compare)]) == 0
    for name in ("report.md", "effects.csv"):
        assert (tmp_path / "out" / name).read_text() == (committed / name).read_text(), name


def test_noise_by_factor_pools_to_the_reports_residual_sd_and_remakes_its_record(capsys) -> None:
    """benchmarks/factorial_noise.py: the per-run sd over all rows from replicate differences equals the residual sd
    of the report's OLS fit (two replicates: a residual is half a row's centred difference), and noise.md is its
    output on the committed raw/."""
    from benchmarks import factorial_noise

    _, diffs, _ = factorial_noise.differences(COMMITTED_RAW)
    pooled = re.search(r"one run's sd ([\d.]+) \(points\)", (COMMITTED_RAW.parent / "report.md").read_text())
    assert factorial_noise.per_run_sd(list(diffs.values())) == pytest.approx(float(pooled[1]), abs=0.0005)
    assert factorial_noise.main([str(COMMITTED_RAW)]) == 0
    assert capsys.readouterr().out == (COMMITTED_RAW.parent / "noise.md").read_text()


def test_a_partial_report_names_only_the_files_it_wrote_and_keeps_no_earlier_figure(tmp_path: Path, capsys) -> None:
    """The committed CIFAR factorial cut to a few runs of replicate 0 (no replicate complete): no effects to plot, so
    no figure. A figure left in the folder by an earlier report would not show these runs: it goes. The closing
    line used to name effects.png and interactions.png all the same."""
    raw = committed_subset(tmp_path / "raw", 0, ["r00", "r00+tta", "r01", "r01+tta"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "effects.png").write_bytes(b"an earlier report's figure")
    assert report.main([str(raw), "--out", str(out)]) == 0
    assert "PARTIAL" in (out / "report.md").read_text()
    assert not (out / "effects.png").exists() and not (out / "interactions.png").exists()
    assert f"wrote {out}/report.md, effects.csv and raw/" in capsys.readouterr().out


def test_a_partial_report_with_a_complete_replicate_plots_its_effects(tmp_path: Path, capsys) -> None:
    """Replicate 0 of the committed CIFAR factorial, complete, and nothing of replicate 1: point estimates without
    intervals, plotted, and the report still PARTIAL."""
    raw = committed_subset(tmp_path / "raw", 0)
    out = tmp_path / "out"
    assert report.main([str(raw), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "PARTIAL" in text and "replicates analysed (seeds): 0; 32 trained runs" in text
    assert (out / "effects.png").stat().st_size > 1000 and (out / "interactions.png").stat().st_size > 1000
    assert f"wrote {out}/report.md, effects.csv, effects.png, interactions.png and raw/" in capsys.readouterr().out
