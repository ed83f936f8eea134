"""Paired seed statistics for the ablation table: paired t interval + p, Holm's correction, seeds for a given power."""

from __future__ import annotations

import math

import pytest

from trickbench.scripts.ablation.stats import holm, paired_diff, seeds_needed, two_sided_p, welch_diff


def test_paired_difference_against_a_hand_computation():
    # per-seed differences 1..5: mean 3, sd sqrt(2.5), se sqrt(0.5), t = 4.2426 on 4 df, p = 0.01324
    a = {s: 10.0 + s for s in range(1, 6)}
    b = {s: 10.0 for s in range(1, 6)}
    d = paired_diff(a, b)
    assert d.n == 5 and d.delta == pytest.approx(3.0) and d.sd == pytest.approx(math.sqrt(2.5))
    half = 2.7764451 * math.sqrt(0.5)  # t_{0.975, 4}
    assert (d.low, d.high) == (pytest.approx(3 - half, abs=1e-6), pytest.approx(3 + half, abs=1e-6))
    assert d.p == pytest.approx(0.013236, abs=2e-6)
    assert two_sided_p(2.7764451, 4) == pytest.approx(0.05, abs=1e-6)


def test_pairing_uses_shared_seeds_only_and_removes_the_seed_effect():
    seed_effect = {0: -2.0, 1: 0.5, 2: 3.0, 3: -1.0}
    base = {s: 50 + e for s, e in seed_effect.items()}
    arm = {s: 50.4 + e + 0.01 * s for s, e in seed_effect.items()}
    arm[9] = 99.0  # a seed the baseline lacks is not paired
    paired = paired_diff(arm, base)
    assert paired.n == 4 and paired.low > 0  # the pairing sees the +0.4
    unpaired = welch_diff([arm[s] for s in seed_effect], list(base.values()))
    assert unpaired.low < 0 < unpaired.high  # the seed-to-seed spread hides it without pairing
    assert math.isnan(paired_diff({0: 1.0}, {0: 0.5}).low)


def test_holm_adjusts_step_down_and_keeps_order():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": math.nan})
    assert adjusted["d"] == pytest.approx(0.02) and adjusted["a"] == pytest.approx(0.03)
    assert adjusted["c"] == pytest.approx(0.06) and adjusted["b"] == pytest.approx(0.06)  # monotone
    assert math.isnan(adjusted["e"])


def test_seeds_needed_matches_gpower_and_scales_with_the_noise():
    assert seeds_needed(0.3, 0.3) == 10  # effect size 1, alpha 0.05, power 0.8: G*Power's paired n
    assert seeds_needed(0.15, 0.3) < seeds_needed(0.3, 0.3) < seeds_needed(0.6, 0.3)
    assert seeds_needed(0.6, 0.3) == pytest.approx(34, abs=1)  # effect size 0.5 -> 34
    with pytest.raises(ValueError):
        seeds_needed(0.0)
