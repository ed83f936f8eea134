"""Factorial analysis (scripts/ablation/effects.py): hand-computed fixtures, a test-only factor, and a simulated
ablation with known effects whose intervals cover them at the nominal rate; the stopping rule's decision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trickbench.scripts.ablation.adaptive import BUDGET, TARGET, decide
from trickbench.scripts.ablation.design import Factor, build
from trickbench.scripts.ablation.effects import analyse


def on_off(*names: str) -> list[Factor]:
    return [Factor(n, {"off": (), "on": (f"{n}.yaml",)}) for n in names]


def test_two_by_two_in_two_blocks_matches_the_hand_computation() -> None:
    d = build(on_off("a", "b"), 4, "a b")  # the full 2^2: rows (-,-) (-,+) (+,-) (+,+)
    assert d.matrix.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    y = {(0, 0): 80.0, (1, 0): 83.0, (2, 0): 84.0, (3, 0): 90.0, (0, 1): 81.0, (1, 1): 85.0, (2, 1): 84.0, (3, 1): 89.0}
    a = analyse(d, y)
    by = {e.term: e for e in a.effects}
    # by hand: A = mean(A+) - mean(A-) = (84 + 90 + 84 + 89)/4 - (80 + 83 + 81 + 85)/4 = 86.75 - 82.25
    assert by["a"].effect == pytest.approx(4.5)
    assert by["b"].effect == pytest.approx((83 + 90 + 85 + 89) / 4 - (80 + 84 + 81 + 84) / 4)
    assert by["a:b"].effect == pytest.approx((80 + 90 + 81 + 89) / 4 - (83 + 84 + 85 + 84) / 4)
    # residuals of the cell + block model: y - cell mean - (block mean - grand mean); df = 8 - 1 - 3 - 1 = 3
    cell = {i: (y[(i, 0)] + y[(i, 1)]) / 2 for i in range(4)}
    grand = sum(y.values()) / 8
    block = {s: sum(y[(i, s)] for i in range(4)) / 4 - grand for s in (0, 1)}
    ss = sum((y[(i, s)] - cell[i] - block[s]) ** 2 for i in range(4) for s in (0, 1))
    assert a.df_resid == 3 and a.sigma == pytest.approx(math.sqrt(ss / 3))
    se = 2 * a.sigma / math.sqrt(8)  # an effect is a difference of two means of 4
    half = stats.t.ppf(0.975, 3) * se
    assert by["a"].low == pytest.approx(4.5 - half) and by["a"].high == pytest.approx(4.5 + half)
    assert by["a"].p == pytest.approx(2 * stats.t.sf(4.5 / se, 3))
    ps = sorted(e.p for e in a.effects)  # Holm: the smallest p times 3, then max-accumulated
    assert min(e.p_holm for e in a.effects) == pytest.approx(min(1.0, 3 * ps[0]))


def test_one_replicate_of_a_saturated_design_has_no_interval() -> None:
    d = build(on_off("a", "b"), 4, "a b")
    a = analyse(d, {(i, 0): float(i) for i in range(4)})
    assert a.df_resid == 0 and math.isnan(a.max_main_halfwidth())
    assert [e.effect for e in a.effects] == pytest.approx([2.0, 1.0, 0.0])


def test_a_test_only_factor_is_the_mean_within_run_difference_and_its_interaction_half_the_change() -> None:
    d = build(on_off("a", "b"), 4, "a b")
    y = {(i, s): 80.0 + i + s for i in range(4) for s in (0, 1)}
    # TTA adds 1.0 with a off and 1.6 with a on (rows 2, 3), +-0.1 noise that cancels between blocks
    tta = {(i, s): y[(i, s)] + (1.6 if i >= 2 else 1.0) + (0.1 if s == 0 else -0.1) for i in range(4) for s in (0, 1)}
    a = analyse(d, y, {"tta": tta})
    by = {e.term: e for e in a.effects}
    assert by["tta"].effect == pytest.approx(1.3) and by["tta"].kind == "test"
    assert by["tta:a"].effect == pytest.approx(0.3)  # (1.6 - 1.0) / 2
    assert by["tta:b"].effect == pytest.approx(0.0, abs=1e-12)


def test_simulated_ablation_recovers_known_effects_at_the_nominal_rate() -> None:
    """A 2^(6-2) design, 3 replicates with block shifts, known main effects and one interaction: over 300
    simulated sweeps the 95% intervals cover the true effects 95% of the time (binomial sd 0.25%)."""
    d = build(on_off(*"abcdef"), 4, "a b c d abc bcd")
    terms = d.terms()
    true = {"a": 0.5, "b": -0.3, "c": 0.0, "d": 0.2, "e": 0.0, "f": 1.0, "a:b": 0.4}
    rng = np.random.default_rng(7)
    covered = total = 0
    for _ in range(300):
        y = {}
        for s in range(3):
            shift = rng.normal(0.0, 0.5)
            for i in range(d.runs):
                mean = 85.0 + shift + sum(v / 2 * terms[t][i] for t, v in true.items())
                y[(i, s)] = mean + rng.normal(0.0, 0.3)
        for e in analyse(d, y, adjust=False).effects:
            truth = true.get(e.term, 0.0) + sum(true.get(t.lstrip("-"), 0.0) for t in e.aliases)
            covered += e.low <= truth <= e.high
            total += 1
    assert 0.94 <= covered / total <= 0.96, covered / total


def test_stopping_rule() -> None:
    assert decide(0.0014, 0.0015, 2, 32, 64) == TARGET
    assert decide(0.0016, 0.0015, 2, 32, 64) == BUDGET  # a third replicate would make 96 > 64
    assert decide(0.0016, 0.0015, 2, 32, 96) is None  # add one
    assert decide(math.nan, 0.0015, 1, 32, 64) is None  # no interval yet: never "reached"
