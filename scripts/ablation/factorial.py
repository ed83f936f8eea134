"""`design: factorial` ablation files -> the arms of an ordinary plan, one per design row.

    name: cifar10_cpu_factorial
    design: factorial
    base: [configs/cifar10_cpu_fast.yaml]
    seeds: [0, 1]                  # one block (replicate) per seed: every row runs once with that seed
    resolution: 4                  # >= IV: no main effect aliased with a two-factor interaction
    generators: a b c d abc e acd abd abe   # optional, one word per column in factor order (pinned: no search)
    prerequisites: {teacher: {overrides: [--trainer.max_epochs=12], seed: 100}}
    factors:
      warmup: [configs/tricks/warmup.yaml]                    # two levels: off (nothing) / on (these fragments)
      kd: {fragments: [configs/tricks/kd.yaml], teacher: teacher}
      batch_mix:                                               # four levels: two pseudo-factor columns
        levels: {none: [], mixup: [configs/tricks/mixup.yaml], cutmix: [configs/tricks/cutmix.yaml],
                 mixup_cutmix: [configs/tricks/mixup_cutmix.yaml]}
    test_factors:                                              # test-only, two levels: every run tested both ways
      tta: [configs/ablations/tricks/tta.yaml]

Row i of the design becomes arm `r<i>` (its fragments: each factor's level, in factor order); a test factor T
adds the test-only arm `r<i>+T` that tests r<i>'s final weights with T's fragments (`evaluate:` in plan.py).
Seeds are blocks: a seed fixes init, data order and augmentation draws within its replicate, as it pairs arms in a
one-at-a-time file. The design itself is stored in plan.json (`design`), which the report analyses.
"""

from __future__ import annotations

import re
from typing import Any

from trickbench.scripts.ablation.design import Design, DesignError, Factor, build
from trickbench.scripts.ablation.fields import string_list

ROMAN = {0: "full factorial", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # factor, level and test-factor names: no ':', '*', '+' or '['
KEYS = {"design", "factors", "test_factors", "resolution", "generators"}
FACTOR_KEYS = {"fragments", "levels", "teacher"}


class FactorialError(ValueError):
    """A bad `design: factorial` section; the message says what to change."""


def _fragments(where: str, value: Any) -> tuple[str, ...]:
    return tuple(string_list(where, value, FactorialError, "config files"))


def _check_name(what: str, name: str) -> None:
    if not NAME.match(name):
        raise FactorialError(f"{what} {name!r}: use letters, digits and '_' (it becomes part of effect names)")


def parse_factor(name: str, spec: Any) -> Factor:
    """`[fragments]` (off/on), `{fragments: [...], teacher: P}`, or `{levels: {name: [fragments], ...}}`."""
    _check_name("factor", name)
    if isinstance(spec, list):
        spec = {"fragments": spec}
    if not isinstance(spec, dict) or set(spec) - FACTOR_KEYS:
        raise FactorialError(
            f"factor '{name}': give a list of fragments (off/on), or a mapping with keys {sorted(FACTOR_KEYS)}"
        )
    if ("levels" in spec) == ("fragments" in spec):
        raise FactorialError(f"factor '{name}': give either `fragments` (off/on) or `levels`, not both or neither")
    if "levels" in spec:
        if not isinstance(spec["levels"], dict):
            raise FactorialError(f"factor '{name}': levels must map level names to fragment lists")
        levels = {str(k): _fragments(f"factor '{name}' level '{k}'", v) for k, v in spec["levels"].items()}
        for level in levels:
            _check_name(f"factor '{name}' level", level)
    else:
        levels = {"off": (), "on": _fragments(f"factor '{name}' fragments", spec["fragments"])}
    if len(levels) not in (2, 4):
        raise FactorialError(
            f"factor '{name}' has {len(levels)} levels; a factor has 2 (off/on) or 4 (two pseudo-factors). For "
            "three tricks that exclude one another, add a fourth level (e.g. their combination)."
        )
    return Factor(name, levels, spec.get("teacher"))


def row_name(i: int, runs: int) -> str:
    return f"r{i:0{len(str(runs - 1))}d}"


def design_of(raw: dict) -> Design:
    factors_raw = raw.get("factors")
    if not isinstance(factors_raw, dict) or len(factors_raw) < 2:
        raise FactorialError("design: factorial needs `factors:` mapping at least two factor names to fragments")
    factors = [parse_factor(str(n), s) for n, s in factors_raw.items()]
    resolution = raw.get("resolution", 4)
    if not isinstance(resolution, int) or resolution < 3:
        raise FactorialError(f"resolution must be an integer >= 3 (4 to estimate interactions), got {resolution!r}")
    try:
        return build(factors, resolution, raw.get("generators"))
    except DesignError as err:
        raise FactorialError(str(err)) from None


def test_factors(raw: dict) -> dict[str, tuple[str, ...]]:
    spec = raw.get("test_factors") or {}
    if not isinstance(spec, dict):
        raise FactorialError("test_factors must map names to fragment lists (two levels: off / on)")
    for n in spec:
        _check_name("test factor", str(n))
    return {str(n): _fragments(f"test factor '{n}'", v) for n, v in spec.items()}


def expand(raw: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arms in the one-at-a-time format, the design record stored in plan.json)."""
    if raw.get("design") != "factorial":
        raise FactorialError(f"design: {raw.get('design')!r} is not known; the one design is `factorial`")
    if "arms" in raw:
        raise FactorialError("a factorial file has `factors:` instead of `arms:` (each design row becomes an arm)")
    design = design_of(raw)
    tests = test_factors(raw)
    clash = sorted(set(tests) & {f.name for f in design.factors})
    if clash:
        raise FactorialError(f"{clash}: a name is either a factor or a test factor, not both")
    arms: dict[str, Any] = {}
    rows = []
    for i in range(design.runs):
        levels = {f.name: design.level(i, f) for f in design.factors}
        frags = [p for f in design.factors for p in f.levels[levels[f.name]]]
        teachers = {f.teacher for f in design.factors if f.teacher and f.levels[levels[f.name]]}
        name = row_name(i, design.runs)
        arms[name] = {"fragments": frags, **({"teacher": teachers.pop()} if teachers else {})}
        if teachers:
            raise FactorialError(f"row {name} would distil from two teachers; give the factors one teacher")
        for t, t_frags in tests.items():
            arms[f"{name}+{t}"] = {"fragments": list(t_frags), "evaluate": name}
        rows.append({"arm": name, "levels": levels})
    record = {
        "kind": "factorial",
        "generators": design.generators,
        "resolution": design.resolution,
        "words": design.word_names(),
        "factors": [
            # levels as [name, fragments] pairs: their order is the coding (plan.json sorts mapping keys)
            {"name": f.name, "levels": [[k, list(v)] for k, v in f.levels.items()], "contrasts": f.contrasts()}
            for f in design.factors
        ],
        "test_factors": {t: list(v) for t, v in tests.items()},
        "rows": rows,
    }
    return arms, record


def design_from_record(record: dict[str, Any]) -> Design:
    """Rebuild the Design a plan.json's `design` describes (the report's entry point)."""
    factors = [Factor(f["name"], {k: tuple(v) for k, v in f["levels"]}) for f in record["factors"]]
    return build(factors, max(record["resolution"], 3) if record["resolution"] else 3, record["generators"])


def describe(design: Design, tests: dict[str, Any]) -> str:
    """The `--dry-run` header: columns, design matrix (levels per row), resolution, defining relation, aliases."""
    names = [f.name for f in design.factors]
    widths = [max(len(f.name), *(len(v) for v in f.levels)) for f in design.factors]
    columns = sum(f.width for f in design.factors)
    lines = [
        f"factorial design: {design.runs} runs per replicate, {len(design.factors)} factors ({columns} columns), "
        f"resolution {ROMAN.get(design.resolution, design.resolution)}",
        f"generators: {design.generators}   (pyDOE3 fracfact; columns in factor order)",
    ]
    if tests:
        lines.append(f"test-only factors (every run tested both ways): {', '.join(tests)}")
    lines.append("")
    lines.append("run  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths)))
    for i in range(design.runs):
        cells = [f"{design.level(i, f):>{w}}" for f, w in zip(design.factors, widths)]
        lines.append(f"{row_name(i, design.runs):4s} " + "  ".join(cells))
    lines += ["", "defining relation: I = " + " = ".join(design.word_names() or ["(none)"]), ""]
    lines.append("aliases among main effects and two-factor interactions (one estimate per line):")
    mains = set(design.main_terms())
    for chain in design.alias_chains():
        terms = [("-" if sign < 0 else "") + t for t, sign in chain]
        tag = "main " if chain[0][0] in mains else "2fi  "
        lines.append(f"  {tag}{' = '.join(terms)}")
    return "\n".join(lines)
