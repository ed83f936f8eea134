"""Ablation report: t quantiles, Welch intervals, aggregation on fixture metrics, byte-identical output."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from trickbench.scripts import report
from trickbench.scripts.ablation.stats import mean_std, t_cdf, t_quantile, welch_diff


@pytest.mark.parametrize(  # two-sided 95% critical values from any t table; 1e6: z + (z^3 + z) / (4 df)
    "df, expected",
    [
        (1, 12.7062047),
        (2, 4.3026527),
        (3, 3.1824463),
        (4, 2.7764451),
        (10, 2.2281389),
        (30, 2.0422725),
        (1e6, 1.9599664),
    ],
)
def test_t_quantile_matches_tables(df: float, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=2e-7)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=2e-7)


def test_t_cdf_known_values_and_bad_input() -> None:
    assert t_cdf(0.0, 3) == 0.5
    assert t_cdf(-2.0, 4) == pytest.approx(0.0580582618, abs=1e-9)
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)  # Cauchy: 1/2 + atan(1)/pi
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_quantile(1.0, 3)


def test_welch_interval_numbers() -> None:
    # equal n and std -> df = 2(n-1) = 4; se = sqrt(2 * 0.02^2 / 3); half = t(4) * se
    d = welch_diff([0.85, 0.87, 0.89], [0.80, 0.82, 0.84])
    half = 2.7764451052 * math.sqrt(2 * 0.0004 / 3)
    assert d.delta == pytest.approx(0.05) and d.df == pytest.approx(4.0)
    assert (d.low, d.high) == (pytest.approx(0.05 - half), pytest.approx(0.05 + half))
    # unequal variances: Welch-Satterthwaite df = (va + vb)^2 / (va^2/2 + vb^2/2) with va=4e-4/3, vb=1e-4/3
    assert welch_diff([0.80, 0.82, 0.84], [0.85, 0.86, 0.87]).df == pytest.approx(25 / 8.5)
    assert math.isnan(welch_diff([0.9], [0.8, 0.7]).low)
    assert welch_diff([0.5, 0.5], [0.4, 0.4]).low == pytest.approx(0.1)
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(math.sqrt(5 / 3)))


def make_runs(root: Path) -> None:
    """baseline 80/82/84 %, better 85/87/89 %, short 90 % (one seed), one crashed, one teacher."""
    arms = {"baseline": [0.80, 0.82, 0.84], "better": [0.85, 0.87, 0.89], "short": [0.90]}
    for arm, accs in arms.items():
        for seed, acc in enumerate(accs):
            rec = {"status": "completed", "test": {"acc": acc, "loss": 1 - acc}, "wall_seconds": 90.0 + seed}
            (root / arm / f"seed{seed}").mkdir(parents=True)
            (root / arm / f"seed{seed}" / "metrics.json").write_text(json.dumps(rec, indent=1))
    (root / "short" / "seed1").mkdir()
    (root / "short" / "seed1" / "metrics.json").write_text(json.dumps({"status": "fit_interrupted"}))
    teacher = root / "prerequisites" / "teacher" / "seed0"
    teacher.mkdir(parents=True)
    teacher.joinpath("metrics.json").write_text(
        json.dumps({"status": "completed", "test": {"acc": 0.95}, "wall_seconds": 200.0})
    )
    plan = {
        "name": "toy",
        "source": "configs/ablations/toy.yaml",
        "base": ["b.yaml"],
        "overrides": [],
        "arms": ["baseline", "better", "short"],
        "prerequisites": ["teacher"],
        "runs": {"baseline/seed0": {}, "short/seed2": {}},
    }
    (root / "plan.json").write_text(json.dumps(plan))


def test_report_aggregates_fixture_metrics(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs")
    rows = report.write_report(tmp_path / "runs", tmp_path / "out")
    by = {r["arm"]: r for r in rows}
    assert [r["arm"] for r in rows] == ["baseline", "better", "short"]
    assert (by["baseline"]["n"], by["better"]["n"], by["short"]["n"]) == (3, 3, 1)
    assert by["baseline"]["mean"] == pytest.approx(0.82) and by["baseline"]["std"] == pytest.approx(0.02)
    half = 2.7764451052 * math.sqrt(2 * 0.0004 / 3)
    assert by["better"]["ci_low"] == pytest.approx(0.05 - half) and by["better"]["ci_high"] == pytest.approx(
        0.05 + half
    )
    assert by["short"]["delta"] == pytest.approx(0.08) and math.isnan(by["short"]["ci_low"])
    assert by["baseline"]["wall_seconds"] == pytest.approx(91.0)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| baseline | 3 | 82.00 ± 2.00 | — | — | — | — | — | 91 |" in md
    welch = f"+5.00 [{100 * (0.05 - half):+.2f}, {100 * (0.05 + half):+.2f}]"
    # an exact shift: the per-seed differences agree to rounding error, so p is tiny (scipy's t tail, not a 0)
    line = next(x for x in md.splitlines() if x.startswith("| better |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["better", "3", "87.00 ± 2.00", "+5.00 [+5.00, +5.00]"] and cells[6:] == [welch, "2", "91"]
    assert float(cells[4]) < 1e-20 and float(cells[5]) < 1e-20
    assert "| short | 1 | 90.00 ± n/a | +10.00 [n/a, n/a] | — | — | +8.00 [n/a, n/a] | — | 90 |" in md  # seed 0 only
    assert "`prerequisites/teacher/seed0` test/acc 95.00, 200 s" in md
    assert "Not counted (no completed metrics.json): `short/seed1`, `short/seed2`." in md
    assert md.split("\n")[2].startswith("**PARTIAL: 8 of 10 planned runs completed**")  # 7 arm runs + the teacher
    csv = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv[0] == (
        "arm,n,mean,std,delta,ci_low,ci_high,wall_seconds,seeds,values,paired_delta,paired_low,"
        "paired_high,p,p_holm,n_pairs,sd_diff,seeds_needed"
    )
    assert csv[1] == "baseline,3,0.820000,0.020000,,,,91.000000,0 1 2,0.800000 0.820000 0.840000,,,,,,0,,"
    raw = tmp_path / "out" / "raw"
    assert (raw / "better" / "seed2" / "metrics.json").read_bytes() == (
        tmp_path / "runs" / "better" / "seed2" / "metrics.json"
    ).read_bytes()
    assert (raw / "prerequisites" / "teacher" / "seed0" / "metrics.json").is_file()
    assert not (raw / "short" / "seed1").exists()


def test_same_runs_give_byte_identical_reports(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs")
    report.write_report(tmp_path / "runs", tmp_path / "a")
    report.write_report(tmp_path / "runs", tmp_path / "b")
    report.write_report(tmp_path / "runs", tmp_path / "a")  # rewriting in place changes nothing either
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 4 + 8 + 1  # report, csv, chart and forest png; 8 completed runs; plan.json
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    png = (tmp_path / "a" / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib" not in png


def test_raw_copy_is_a_run_folder_that_regenerates_the_report(tmp_path: Path) -> None:
    """The committed raw/ (the counted runs' metrics.json, definition.json and CSV log, and plan.json) rebuilds the
    report: a sweep whose run folders are gone can still be re-reported, or merged with runs added later."""
    make_runs(tmp_path / "runs")
    shutil.rmtree(tmp_path / "runs" / "short" / "seed1")  # raw/ holds the counted runs only, not failed ones
    for d in (tmp_path / "runs").glob("*/seed*"):
        (d / "csv").mkdir()
        (d / "csv" / "metrics.csv").write_text(f"epoch,step,val/acc\n0,9,0.5\n1,19,{0.6 + int(d.name[4:]) / 100}\n")
        d.joinpath("definition.json").write_text(json.dumps({"base": ["b.yaml"], "overrides": ["--x=1"]}))
    report.write_report(tmp_path / "runs", tmp_path / "a")
    raw = tmp_path / "a" / "raw"
    assert (raw / "better" / "seed2" / "definition.json").read_bytes() == (
        tmp_path / "runs" / "better" / "seed2" / "definition.json"
    ).read_bytes()
    assert (
        "All counted runs ran base configs `b.yaml` with overrides `--x=1`."
        in (tmp_path / "a" / "report.md").read_text()
    )
    report.write_report(raw, tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert "curves.png" in {str(f) for f in files}
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    with pytest.raises(SystemExit, match="raw/ folder this report would replace"):
        report.write_report(raw, tmp_path / "a")
    assert (raw / "plan.json").is_file()  # refused before anything was removed


def test_forest_plot_points_are_the_per_seed_paired_differences(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs")
    rows = report.write_report(tmp_path / "runs", tmp_path / "out")
    diffs = report.paired_differences(rows, "baseline")
    by_arm = {r["arm"]: r for r in rows}
    base = dict(zip(by_arm["baseline"]["seeds"], by_arm["baseline"]["values"]))
    for arm, d in diffs.items():  # one dot per shared seed, and their mean is the plotted paired delta
        own = dict(zip(by_arm[arm]["seeds"], by_arm[arm]["values"]))
        assert d == pytest.approx([own[k] - base[k] for k in own if k in base])
        assert sum(d) / len(d) == pytest.approx(by_arm[arm]["paired_delta"])
    png = (tmp_path / "out" / "forest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png != (tmp_path / "out" / "chart.png").read_bytes()


def test_forest_range_puts_only_a_far_out_arm_off_scale() -> None:
    """A -32-point arm beside 1-point tricks would squash them into a line: it goes to the edge, the axis fits
    the rest; arms of comparable reach stay on scale together."""
    arms = [
        {"arm": "a", "paired_delta": -0.003, "paired_low": -0.006, "paired_high": 0.0},
        {"arm": "b", "paired_delta": 0.0075, "paired_low": 0.0016, "paired_high": 0.0134},
        {"arm": "one_seed", "paired_delta": -0.009, "paired_low": math.nan, "paired_high": math.nan},
        {"arm": "far", "paired_delta": -0.317, "paired_low": -0.394, "paired_high": -0.24},
    ]
    diffs = {"a": [-0.001, -0.005], "b": [0.002, 0.013], "one_seed": [-0.009], "far": [-0.22, -0.38]}
    half, off = report.forest_range(arms, diffs)
    assert off == {"far"} and half == pytest.approx(1.08 * 0.0134)
    assert report.forest_range(arms[:3], diffs) == (pytest.approx(1.08 * 0.0134), set())
    arms.append({"arm": "far2", "paired_delta": -0.2, "paired_low": -0.25, "paired_high": -0.15})
    diffs["far2"] = [-0.18, -0.22]
    assert report.forest_range(arms, diffs) == (pytest.approx(1.08 * 0.394), set())  # 0.394 < 4 x 0.25


def test_report_on_other_metric_and_without_plan(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs")
    (tmp_path / "runs" / "plan.json").unlink()
    rows = report.write_report(tmp_path / "runs", tmp_path / "out", metric="test/loss")
    assert [r["arm"] for r in rows] == ["baseline", "better", "short"]  # baseline first, then sorted
    assert rows[1]["delta"] == pytest.approx(-0.05)
    assert "| baseline | 3 | 0.18 ± 0.02 | — | — | — | — | — | 91 |" in (tmp_path / "out" / "report.md").read_text()


def test_report_cli_errors_clearly_on_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no completed runs"):
        report.main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def write_accuracies(root: Path, values: dict[str, list[float]]) -> None:
    """A completed run with test/acc `acc` for each arm and seed (seed = position in the list)."""
    for arm, accs in values.items():
        for seed, acc in enumerate(accs):
            (root / arm / f"seed{seed}").mkdir(parents=True)
            (root / arm / f"seed{seed}" / "metrics.json").write_text(
                json.dumps({"status": "completed", "test": {"acc": acc}})
            )


def test_paired_columns_against_hand_computation_and_holm_over_arms(tmp_path: Path) -> None:
    values = {"baseline": [0.80, 0.82, 0.84], "a": [0.85, 0.88, 0.89], "b": [0.79, 0.83, 0.86]}
    write_accuracies(tmp_path / "runs", values)
    by = {r["arm"]: r for r in report.write_report(tmp_path / "runs", tmp_path / "out")}
    assert "PARTIAL" not in (tmp_path / "out" / "report.md").read_text()  # every run there completed
    # a: per-seed differences 0.05, 0.06, 0.05 -> mean 0.05333, sd 0.005774, t = 16.0 on 2 df, p = 0.003884
    a = by["a"]
    half = 4.30265273 * 0.0057735027 / math.sqrt(3)
    assert a["paired_delta"] == pytest.approx(0.053333, abs=1e-6) and a["sd_diff"] == pytest.approx(0.0057735, abs=1e-7)
    assert (a["paired_low"], a["paired_high"]) == (
        pytest.approx(0.053333 - half, abs=1e-5),
        pytest.approx(0.053333 + half, abs=1e-5),
    )
    assert a["p"] == pytest.approx(0.003884, abs=2e-6)
    # b: differences -0.01, 0.01, 0.02 -> mean 0.006667, sd 0.015275, t = 0.7559, p = 0.5286
    assert by["b"]["p"] == pytest.approx(0.5286, abs=2e-4)
    assert by["a"]["p_holm"] == pytest.approx(2 * a["p"]) and by["b"]["p_holm"] == pytest.approx(by["b"]["p"])
    assert a["ci_low"] < a["paired_low"]  # pairing removes the seed spread: a narrower interval
    # 0.3-point Δ at 80% power: a's differences spread 0.58 points (effect size 0.52) -> 32 seeds; b's 1.5 -> more
    assert a["seeds_needed"] == 32 and by["b"]["seeds_needed"] > 150


def test_curves_are_the_per_epoch_mean_of_each_arms_csv_logs(tmp_path: Path) -> None:
    make_runs(tmp_path / "runs")
    logs = {
        ("baseline", 0): [0.5, 0.7],
        ("baseline", 1): [0.6, 0.8],
        ("baseline", 2): [0.4, 0.6],
        ("better", 0): [0.6, 0.9],
        ("better", 1): [0.7, 0.9],
        ("better", 2): [0.5, 0.9, 0.95],
    }
    for (arm, seed), accs in logs.items():
        folder = tmp_path / "runs" / arm / f"seed{seed}" / "csv"
        folder.mkdir(parents=True)
        rows = ["epoch,step,train/loss,val/acc"]
        for epoch, acc in enumerate(accs):
            rows += [f"{epoch},{10 * epoch + 5},0.5,", f"{epoch},{10 * epoch + 9},,{acc}"]  # a step row, then val
        (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    _, runs, _, _ = report.collect(tmp_path / "runs")
    curves = report.arm_curves(runs, "val/acc")
    assert curves["baseline"] == pytest.approx({0: 0.5, 1: 0.7})
    assert curves["better"] == pytest.approx({0: 0.6, 1: 0.9})  # epoch 2: only one seed logged it
    assert "short" not in curves  # no log
    assert report.partial_epochs(runs, "val/acc") == {"better": [2]}  # named in the figure's legend
    assert report._epoch_ranges([0, 1, 2, 5]) == "1-3, 6"
    report.write_report(tmp_path / "runs", tmp_path / "a")
    report.write_report(tmp_path / "runs", tmp_path / "b")
    assert (tmp_path / "a" / "curves.png").read_bytes() == (tmp_path / "b" / "curves.png").read_bytes()
    assert (tmp_path / "a" / "raw" / "better" / "seed2" / "metrics.csv").read_text().endswith("2,29,,0.95\n")


def test_power_flag_writes_seeds_needed_and_detectable_delta_per_arm(tmp_path: Path) -> None:
    values = {"baseline": [0.80, 0.82, 0.84], "a": [0.85, 0.88, 0.89], "flat": [0.80, 0.82, 0.84]}
    write_accuracies(tmp_path / "runs", values)
    assert report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--power"]) == 0
    text = (tmp_path / "out" / "power.md").read_text()
    # a: sd of differences 0.57735 points; (t_.975,2 + t_.8,2) * sd / sqrt(3) = (4.30265 + 1.06066) * 0.57735 / 1.73205
    assert "| a | 3 | 0.58 | 32 | 1.79 |" in text
    assert "| flat | 3 | 0.00 | — | — |" in text  # identical seeds: no spread, no estimate
    assert "baseline |" not in text
    # a wider target Δ needs fewer seeds; the table follows --power-delta
    report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out2"), "--power", "--power-delta", "0.01"])
    assert "| a | 3 | 0.58 | 5 |" in (tmp_path / "out2" / "power.md").read_text()
    assert (
        not (tmp_path / "out3").exists() and report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out3")]) == 0
    )
    assert not (tmp_path / "out3" / "power.md").exists()  # only with --power


def test_detectable_delta_is_the_inverse_of_seeds_needed() -> None:
    from trickbench.scripts.ablation.stats import detectable_delta, seeds_needed

    for sd in (0.002, 0.005, 0.01):
        n = seeds_needed(sd, 0.003)
        assert detectable_delta(sd, n) <= 0.003 < detectable_delta(sd, n - 1)
    with pytest.raises(ValueError, match="n >= 2"):
        detectable_delta(0.01, 1)


def test_curves_fall_back_to_the_train_metric_when_the_runs_do_not_validate(tmp_path: Path, monkeypatch) -> None:
    make_runs(tmp_path / "runs")
    for arm in ("baseline", "better", "short"):
        for seed in range(3):
            folder = tmp_path / "runs" / arm / f"seed{seed}" / "csv"
            if not (folder.parent / "metrics.json").is_file():
                continue
            folder.mkdir(parents=True)
            rows = ["epoch,step,train/loss,train/acc,test/acc"]
            for e in range(3):
                rows += [f"{e},{10 * e + 5},0.5,,", f"{e},{10 * e + 9},,{0.4 + 0.1 * e + 0.01 * seed},"]
            rows.append("2,29,,,0.9")  # the test row at the end: no epoch curve of its own
            (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    drawn = {}
    real = report.curves_png
    monkeypatch.setattr(
        report,
        "curves_png",
        lambda name, curves, metric, *a: drawn.update(metric=metric, curves=curves) or real(name, curves, metric, *a),
    )
    report.write_report(tmp_path / "runs", tmp_path / "out")
    assert drawn["metric"] == "train/acc" and (tmp_path / "out" / "curves.png").is_file()
    assert drawn["curves"]["baseline"] == pytest.approx({0: 0.41, 1: 0.51, 2: 0.61})  # mean over seeds 0, 1, 2


def test_report_says_where_and_with_what_code_the_runs_ran(tmp_path: Path) -> None:
    prov = {
        "cpu": "Xeon X",
        "torch_threads": 1,
        "git_commit": "abcdef1234567",
        "git_dirty": False,
        "versions": {"torch": "2.14.1", "lightning": "2.6.6", "python": "3.11.7"},
    }
    for arm, seed, cpu in [
        ("baseline", 0, "Xeon X"),
        ("baseline", 1, "EPYC Y"),
        ("a", 0, "Xeon X"),
        ("a", 1, "EPYC Y"),
    ]:
        d = tmp_path / "runs" / arm / f"seed{seed}"
        d.mkdir(parents=True)
        rec = {"status": "completed", "test": {"acc": 0.8}, "provenance": {**prov, "cpu": cpu}}
        (d / "metrics.json").write_text(json.dumps(rec))
    report.write_report(tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert (
        "- 2 run(s) (baseline, a): Xeon X, 1 torch thread(s); torch 2.14.1, lightning 2.6.6, python 3.11.7; "
        "git abcdef1234" in md
    )
    assert "- 2 run(s) (baseline, a): EPYC Y, 1 torch thread(s);" in md
