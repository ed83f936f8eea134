"""Two-level fractional factorial designs for trick ablations: the design matrix, its resolution and aliases.

A factor has two levels (off/on) or four. A four-level factor (e.g. batch mixing: none / mixup / cutmix /
both) takes two +-1 columns ("pseudo-factors" p, q; its levels are (-,-) (+,-) (-,+) (+,+) in the order given),
and its three contrasts p, q and pq all count as main effects. The generalized resolution counts a word of the
defining relation that holds both p and q as one letter, so resolution IV means: no main-effect contrast is
aliased with another, nor with any two-factor interaction.

pyDOE3 builds the matrix from generators (`fracfact`) and lists the alias chains (`fracfact_aliasing`);
generators not given come from `search_generators` below, an exhaustive minimum-aberration search (small:
a trick design has few base factors).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from pyDOE3 import fracfact, fracfact_aliasing

LETTERS = "abcdefghijklmnopqrstuvwxyz"


class DesignError(ValueError):
    """A design that cannot be built as asked; the message says what to change."""


@dataclass(frozen=True)
class Factor:
    """A trick factor: level name -> the config fragments that level adds (the first level is the reference)."""

    name: str
    levels: dict[str, tuple[str, ...]]
    teacher: str | None = None  # prerequisite a level with a `teacher_checkpoint:` distils from

    @property
    def width(self) -> int:
        """+-1 columns the factor takes: 1 for two levels, 2 (pseudo-factors) for four."""
        return 1 if len(self.levels) == 2 else 2

    def contrasts(self) -> list[str]:
        """The factor's main-effect terms: its name, or for four levels name[L1], name[L2], name[L1*L2]."""
        if self.width == 1:
            return [self.name]
        _, l1, l2, _ = self.levels
        return [f"{self.name}[{l1}]", f"{self.name}[{l2}]", f"{self.name}[{l1}*{l2}]"]


@dataclass
class Design:
    factors: list[Factor]
    generators: str  # pyDOE3 generator string, one word per column, in factor order
    matrix: np.ndarray  # runs x columns, +-1, pyDOE3's standard order
    resolution: int  # generalized (see the module docstring); 0 when no word (a full factorial: "full")
    words: list[int] = field(default_factory=list)  # the defining relation: bit i = column i
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # terms and chains, computed once

    @property
    def runs(self) -> int:
        return self.matrix.shape[0]

    def columns(self) -> dict[str, list[int]]:
        """factor name -> its column indices."""
        out, i = {}, 0
        for f in self.factors:
            out[f.name] = list(range(i, i + f.width))
            i += f.width
        return out

    def level(self, run: int, factor: Factor) -> str:
        """The level `factor` takes in design row `run`."""
        cols = self.columns()[factor.name]
        bits = [self.matrix[run, c] > 0 for c in cols]
        index = bits[0] if factor.width == 1 else bits[0] + 2 * bits[1]
        return list(factor.levels)[int(index)]

    def terms(self) -> dict[str, np.ndarray]:
        """Every main-effect contrast and two-factor interaction term -> its +-1 column over the runs."""
        if "terms" in self._cache:
            return self._cache["terms"]
        cols = self.columns()

        def contrast_columns(f: Factor) -> list[tuple[str, np.ndarray]]:
            c = [self.matrix[:, i] for i in cols[f.name]]
            vecs = c if f.width == 1 else [c[0], c[1], c[0] * c[1]]
            return list(zip(f.contrasts(), vecs))

        out = {}
        for f in self.factors:
            out.update(contrast_columns(f))
        for f, g in itertools.combinations(self.factors, 2):
            for (nf, vf), (ng, vg) in itertools.product(contrast_columns(f), contrast_columns(g)):
                out[f"{nf}:{ng}"] = vf * vg
        self._cache["terms"] = out
        return out

    def main_terms(self) -> list[str]:
        return [c for f in self.factors for c in f.contrasts()]

    def alias_chains(self) -> list[list[tuple[str, int]]]:
        """Main-effect and two-factor terms grouped by identical column up to sign: [(term, sign vs first)].
        Chains are in term order (main effects first); a term alone is a chain of one."""
        if "chains" in self._cache:
            return self._cache["chains"]
        chains: list[tuple[np.ndarray, list[tuple[str, int]]]] = []
        for name, vec in self.terms().items():
            for first, chain in chains:
                if np.array_equal(vec, first) or np.array_equal(vec, -first):
                    chain.append((name, 1 if np.array_equal(vec, first) else -1))
                    break
            else:
                chains.append((vec, [(name, 1)]))
        self._cache["chains"] = [chain for _, chain in chains]
        return self._cache["chains"]

    def word_names(self) -> list[str]:
        """The defining relation with factor contrasts for column letters, shortest first, e.g. 'warmup*kd*ema*sd'."""
        names = [c for f in self.factors for c in (f.contrasts() if f.width == 1 else f.contrasts()[:2])]
        out = [[names[c] for c in range(len(names)) if w >> c & 1] for w in self.words]
        return ["*".join(w) for w in sorted(out, key=lambda w: (len(w), w))]

    def pydoe3_aliases(self) -> list[str]:
        """pyDOE3's alias chains of the +-1 columns, all orders, in its column letters (a = first column)."""
        return fracfact_aliasing(self.matrix.astype(float))[0]


def _column_words(gens: list[str]) -> list[int]:
    """The defining relation (without I) of a regular design whose column i has generator word gens[i], each
    word as a bit mask over column positions (bit i: column i)."""
    base = {g.lstrip("-"): i for i, g in enumerate(gens) if len(g.lstrip("-")) == 1}
    generators = []
    for i, g in enumerate(gens):
        word = g.lstrip("-")
        if len(word) > 1:
            generators.append((1 << i) ^ sum(1 << base[ch] for ch in word))
    words = []
    for r in range(1, len(generators) + 1):
        for combo in itertools.combinations(generators, r):
            mask = 0
            for m in combo:
                mask ^= m
            words.append(mask)
    return words


def _owners(factors: list[Factor]) -> list[int]:
    """Column position -> index of the factor that owns it."""
    return [k for k, f in enumerate(factors) for _ in range(f.width)]


def _effective_length(word: int, owners: list[int]) -> int:
    return len({owners[c] for c in range(len(owners)) if word >> c & 1})


def generalized_resolution(words: list[int], factors: list[Factor]) -> int:
    """Shortest word of the defining relation, counting the two columns of a four-level factor as one letter
    (0 for a full factorial, which has no word)."""
    owners = _owners(factors)
    return min((_effective_length(w, owners) for w in words), default=0)


def measured_resolution(matrix: np.ndarray, factors: list[Factor]) -> int:
    """The same number found from the matrix alone: the fewest factors whose contrast columns multiply to a
    constant column (0 when none do). A check of `generalized_resolution` that trusts no generator algebra."""
    owners, ncols = _owners(factors), matrix.shape[1]
    best = 0
    for r in range(1, ncols + 1):
        for combo in itertools.combinations(range(ncols), r):
            col = np.prod(matrix[:, list(combo)], axis=1)
            if abs(col.sum()) == len(col):
                n = len({owners[c] for c in combo})
                best = n if best == 0 else min(best, n)
    return best


def search_generators(factors: list[Factor], resolution: int = 4) -> str:
    """Generators for the smallest regular design of at least `resolution` (generalized) with the fewest words
    of its shortest length (minimum aberration, first criterion); ties go to the first found in a fixed order, so
    the result is the same on every machine. With a four-level factor the search also chooses which two columns
    its pseudo-factors take (the first four-level factor; further ones keep the places the order gives them).

    Hand-written: pyDOE3's `fracfact_by_res` neither knows four-level factors nor minimises aberration."""
    ncols = sum(f.width for f in factors)
    wide = [i for i, f in enumerate(factors) if f.width == 2]
    if len(wide) > 1:
        raise DesignError(
            "the generator search places one four-level factor; with several, give `generators:` (one word per "
            "column, in factor order) and the design is checked instead"
        )
    pair_at = sum(f.width for f in factors[: wide[0]]) if wide else None
    pairs = list(itertools.combinations(range(ncols), 2)) if wide else [(-1, -1)]
    for k in range(max(1, math.ceil(math.log2(ncols + 1))), ncols + 1):
        base = list(LETTERS[:k])
        cands = ["".join(c) for r in range(2, k + 1) for c in itertools.combinations(base, r)]
        best = None
        for extra in itertools.combinations(cands, ncols - k):
            gens = base + list(extra)
            words = _column_words(gens)
            sizes = [w.bit_count() for w in words]
            for p, q in pairs:  # the columns the four-level factor takes; a word with both counts them once
                both = (1 << p) | (1 << q) if p >= 0 else 0
                lengths = [n - (both and (w & both) == both) for w, n in zip(words, sizes)]
                res = min(lengths, default=0)
                if res and res < resolution:
                    continue
                key = (-(res or ncols + 1), lengths.count(res))
                if best is None or key < best[0]:
                    order = list(range(ncols))
                    if p >= 0:
                        rest = [c for c in order if c not in (p, q)]
                        order = rest[:pair_at] + [p, q] + rest[pair_at:]
                    best = (key, " ".join(gens[c] for c in order))
        if best is not None:
            return best[1]
    raise DesignError(f"no regular two-level design of resolution {resolution} exists for {ncols} columns")


def build(factors: list[Factor], resolution: int = 4, generators: str | None = None) -> Design:
    """The design of `factors`: from the given generators (checked to reach `resolution`), else searched."""
    names = [f.name for f in factors]
    if len(set(names)) != len(names) or not factors:
        raise DesignError(f"factors must be a non-empty list of unique names, got {names}")
    bad = [f"{f.name} ({len(f.levels)} levels)" for f in factors if len(f.levels) not in (2, 4)]
    if bad:
        raise DesignError(
            f"a factor has 2 levels (off/on) or 4 (two pseudo-factors); got {', '.join(bad)}. "
            "For three tricks that exclude one another, add a fourth level (e.g. their combination)."
        )
    ncols = sum(f.width for f in factors)
    if ncols > len(LETTERS):
        raise DesignError(f"{ncols} columns: at most {len(LETTERS)}")
    generators = generators if generators is not None else search_generators(factors, resolution)
    gens = generators.split()
    if len(gens) != ncols:
        raise DesignError(
            f"generators {generators!r} give {len(gens)} columns; the factors need {ncols} "
            f"({', '.join(f'{f.name}: {f.width}' for f in factors)}), in factor order"
        )
    base = [g for g in gens if len(g) == 1]
    for g in gens:
        if len(g.lstrip("-")) > 1 and any(ch not in base for ch in g.lstrip("-")):
            raise DesignError(f"generator {g!r} uses a letter that is no base column (base: {' '.join(base)})")
    if len(set(base)) != len(base):
        raise DesignError(f"generators {generators!r} name a base letter twice")
    matrix = np.asarray(fracfact(generators), dtype=int)
    words = _column_words(gens)
    res = generalized_resolution(words, factors)
    if res and res < resolution:
        raise DesignError(
            f"generators {generators!r} give a design of resolution {res}, below the {resolution} asked for: "
            "main effects would be aliased with two-factor interactions. Leave `generators` out to have a design "
            "searched, add a base letter (twice the runs), or lower `resolution`."
        )
    return Design(factors, generators, matrix, res, words)
