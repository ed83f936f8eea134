"""Factorial designs: balance, orthogonality, resolution (from generators and measured from the matrix alone), alias
chains of known designs, four-level factors, the generator search and its errors (scripts/ablation/design.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from trickbench.scripts.ablation.design import DesignError, Factor, build, measured_resolution, search_generators


def on_off(*names: str) -> list[Factor]:
    return [Factor(n, {"off": (), "on": (f"{n}.yaml",)}) for n in names]


MIX = Factor("mix", {"none": (), "mixup": ("m.yaml",), "cutmix": ("c.yaml",), "both": ("mc.yaml",)})


def test_half_fraction_of_five_factors_is_resolution_five_balanced_and_orthogonal() -> None:
    d = build(on_off(*"abcde"), 5, "a b c d abcd")
    assert d.matrix.shape == (16, 5) and d.resolution == 5
    assert measured_resolution(d.matrix, d.factors) == 5
    assert (d.matrix.sum(axis=0) == 0).all()  # balance: every column half + half
    assert np.array_equal(d.matrix.T @ d.matrix, 16 * np.eye(5))  # orthogonal main effects
    for i, j in itertools.combinations(range(5), 2):  # every two-factor column orthogonal to the main effects
        assert not (d.matrix.T @ (d.matrix[:, i] * d.matrix[:, j])).any()
    assert d.word_names() == ["a*b*c*d*e"]
    assert all(len(chain) == 1 for chain in d.alias_chains())  # resolution V: mains and 2fis all clear


def test_known_quarter_fraction_aliases_ab_with_ce() -> None:
    """2^(6-2) with E = ABC, F = BCD: I = ABCE = BCDF = ADEF, so AB = CE, AE = BC = DF, ..."""
    d = build(on_off(*"abcdef"), 4, "a b c d abc bcd")
    assert d.resolution == 4 and measured_resolution(d.matrix, d.factors) == 4
    assert sorted(d.word_names()) == ["a*b*c*e", "a*d*e*f", "b*c*d*f"]
    chains = {frozenset(t for t, _ in c) for c in d.alias_chains()}
    assert frozenset({"a:b", "c:e"}) in chains
    assert frozenset({"a:e", "b:c", "d:f"}) in chains
    assert frozenset({"a"}) in chains  # main effects clear of two-factor terms


def test_alias_chains_match_pydoe3s() -> None:
    """Our chains (from the term columns) and pyDOE3's (from its own enumeration) agree on mains and 2fis."""
    d = build(on_off(*"abcdefg"), 4, "a b c d abc abd acd")
    ours = {frozenset(t.replace(":", "") for t, _ in c) for c in d.alias_chains()}
    theirs = set()
    for chain in d.pydoe3_aliases():
        low = frozenset(t.strip() for t in chain.split("=") if len(t.strip()) <= 2)
        if low:
            theirs.add(low)
    assert ours == theirs


def test_search_finds_the_minimum_aberration_designs_known_in_the_literature() -> None:
    # 2^(7-3) resolution IV has 7 words of length 4; 2^(6-2) IV minimum aberration has 3 (Box, Hunter & Hunter)
    d7 = build(on_off(*"abcdefg"), 4)
    assert (d7.runs, d7.resolution, len(d7.word_names())) == (16, 4, 7)
    d6 = build(on_off(*"abcdef"), 4)
    assert (d6.runs, d6.resolution) == (16, 4)
    assert sum(len(w.split("*")) == 4 for w in d6.word_names()) == 3
    d5 = build(on_off(*"abcde"), 5)
    assert (d5.runs, d5.resolution) == (16, 5)


def test_four_level_factor_is_balanced_and_its_three_contrasts_are_clear_main_effects() -> None:
    factors = on_off("w", "s", "l", "n", "k") + [MIX] + on_off("g", "e")
    d = build(factors, 4)
    assert d.runs == 32 and d.resolution == 4 == measured_resolution(d.matrix, factors)
    counts = {lvl: sum(d.level(i, MIX) == lvl for i in range(d.runs)) for lvl in MIX.levels}
    assert counts == {"none": 8, "mixup": 8, "cutmix": 8, "both": 8}
    terms = d.terms()
    mains = d.main_terms()
    assert mains[5:8] == ["mix[mixup]", "mix[cutmix]", "mix[mixup*cutmix]"]
    M = np.column_stack([terms[m] for m in mains])
    assert np.array_equal(M.T @ M, 32 * np.eye(len(mains)))
    for chain in d.alias_chains():  # no main-effect contrast shares a column with anything else
        if chain[0][0] in mains:
            assert len(chain) == 1, chain


def test_shipped_factorial_files_pin_the_searchs_generators() -> None:
    from trickbench.scripts.ablation.factorial import design_of

    for path in ("configs/ablations/cifar10_cpu_factorial.yaml", "configs/ablations/cifar10_gpu_factorial.yaml"):
        raw = yaml.safe_load(open(path))
        pinned = design_of(raw)
        assert pinned.resolution >= 4 and measured_resolution(pinned.matrix, pinned.factors) >= 4
        assert search_generators(pinned.factors, 4) == raw["generators"], path


def test_resolution_below_the_request_is_one_clear_error() -> None:
    with pytest.raises(DesignError, match=r"resolution 3, below the 4 asked for.*Leave `generators` out"):
        build(on_off(*"abcd"), 4, "a b c ab")


def test_three_levels_and_wrong_generator_counts_are_refused() -> None:
    three = Factor("x", {"a": (), "b": ("b",), "c": ("c",)})
    with pytest.raises(DesignError, match="2 levels .* or 4"):
        build(on_off("p", "q") + [three])
    with pytest.raises(DesignError, match="give 2 columns; the factors need 3"):
        build(on_off("p", "q", "r"), 3, "a b")
    with pytest.raises(DesignError, match="no base column"):
        build(on_off("p", "q", "r"), 3, "a b cd")
