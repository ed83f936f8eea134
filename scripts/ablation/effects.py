"""Effects of a factorial ablation: least squares with block effects (statsmodels), t intervals, Holm's p.

An *effect* is the difference between the mean response over the runs where a term is + and where it is -, the
usual two-level convention: for a main effect, trick on minus trick off, averaged over every other factor; for an
interaction A:B, half the difference between A's effect with B on and with B off.

Trained factors: one OLS fit over every run of the complete replicates, with a column per main-effect contrast,
one per alias chain of two-factor interactions (named by its first term; the others are listed) and block
(replicate) effects in deviation coding. With one column for every estimable term, the residuals hold only the
replicate-to-replicate noise, so intervals need two replicates or more.

Test-only factors (e.g. TTA): every run is tested both ways, so the factor's effect is the mean within-run
difference d = y(on) - y(off), and its interaction with a trained term X is X's coefficient when d is regressed
on the main-effect contrasts and the blocks (half of "T's effect with X on minus with X off").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from trickbench.scripts.ablation.design import Design, Factor


@dataclass(frozen=True)
class Effect:
    term: str  # "warmup", "warmup:kd", "tta", "tta:warmup"
    kind: str  # "main", "2fi" (trained), "test", "test:main" (a test factor and a trained term)
    effect: float
    low: float  # 95% t interval (NaN without residual degrees of freedom)
    high: float
    p: float
    aliases: tuple[str, ...] = ()  # the chain's other terms; a leading "-" where the column is the negative
    p_holm: float = math.nan

    @property
    def halfwidth(self) -> float:
        return (self.high - self.low) / 2.0


@dataclass
class Analysis:
    effects: list[Effect]
    blocks: list[int]  # the seeds (replicates) analysed: complete ones only
    runs: int  # trained runs analysed
    df_resid: float  # of the trained-factor fit
    sigma: float  # residual standard deviation of one run (metric units)
    pending: list[int] = field(default_factory=list)  # seeds with some rows not finished (left out)

    def mains(self) -> list[Effect]:
        return [e for e in self.effects if e.kind in ("main", "test")]

    def max_main_halfwidth(self) -> float:
        widths = [e.halfwidth for e in self.mains()]
        return max(widths) if widths and not any(math.isnan(w) for w in widths) else math.nan


def by_size(e: Effect) -> tuple[float, str]:
    """Sort key: largest effect first; sizes equal to 1e-9 (least-squares rounding differs between machines) by
    name, so a report made again elsewhere lists its effects in the same order."""
    return (-round(abs(e.effect), 9), e.term)


def _block_columns(blocks: list[int], seeds: list[int]) -> np.ndarray:
    """Deviation-coded replicate columns (k - 1 of them; the last block is -1 in each): the intercept stays the
    grand mean, the term coefficients are unchanged."""
    if len(blocks) < 2:
        return np.zeros((len(seeds), 0))
    cols = np.zeros((len(seeds), len(blocks) - 1))
    for i, s in enumerate(seeds):
        k = blocks.index(s)
        cols[i] = -1.0 if k == len(blocks) - 1 else np.eye(len(blocks) - 1)[k]
    return cols


def _fit(y: np.ndarray, terms: np.ndarray, blocks: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """(coefficients, low, high, p, df_resid, sigma) of the term columns (intercept first)."""
    X = np.column_stack([np.ones(len(y)), terms, blocks])
    fit = sm.OLS(y, X).fit()
    k = 1 + terms.shape[1]
    if fit.df_resid < 1:
        nan = np.full(k, math.nan)
        return fit.params[:k], nan, nan, nan, 0.0, math.nan
    ci = fit.conf_int(alpha=1.0 - confidence)
    return fit.params[:k], ci[:k, 0], ci[:k, 1], fit.pvalues[:k], float(fit.df_resid), float(np.sqrt(fit.scale))


def complete_blocks(design: Design, responses: dict[tuple[int, int], float]) -> tuple[list[int], list[int]]:
    """(seeds whose every design row has a response, seeds with only some)."""
    seeds = sorted({s for _, s in responses})
    full = [s for s in seeds if all((i, s) in responses for i in range(design.runs))]
    return full, [s for s in seeds if s not in full]


def analyse(
    design: Design,
    responses: dict[tuple[int, int], float],
    test_responses: dict[str, dict[tuple[int, int], float]] | None = None,
    confidence: float = 0.95,
    adjust: bool = True,
) -> Analysis:
    """Effects from `responses[(row, seed)]` (the trained runs) and `test_responses[T][(row, seed)]` (the same
    runs tested with test factor T on). Holm's adjustment runs over every effect reported (`adjust=False` leaves
    p_holm NaN: statsmodels' Holm runs a full garbage collection per call, slow in a loop of thousands)."""
    blocks, pending = complete_blocks(design, responses)
    keys = [(i, s) for s in blocks for i in range(design.runs)]
    if not keys:
        return Analysis([], [], 0, 0.0, math.nan, pending)
    rows, seeds = [i for i, _ in keys], [s for _, s in keys]
    y = np.array([responses[k] for k in keys])
    B = _block_columns(blocks, seeds)
    columns = design.terms()
    mains = design.main_terms()
    chains = [c for c in design.alias_chains() if c[0][0] not in mains]
    names = mains + [c[0][0] for c in chains]
    aliases = {n: () for n in mains} | {c[0][0]: tuple(("-" if s < 0 else "") + t for t, s in c[1:]) for c in chains}
    T = np.column_stack([columns[n][rows] for n in names])
    coef, low, high, p, df, sigma = _fit(y, T, B, confidence)
    effects = []
    for j, n in enumerate(names, start=1):  # column 0 is the intercept; an effect is twice a +-1 coefficient
        kind = "main" if n in mains else "2fi"
        effects.append(Effect(n, kind, 2 * coef[j], 2 * low[j], 2 * high[j], p[j], aliases[n]))
    for test, by_run in (test_responses or {}).items():
        have = [k for k in keys if k in by_run]
        if len(have) != len(keys):
            continue  # a test factor is analysed over the same complete blocks as the trained runs, or not at all
        d = np.array([by_run[k] - responses[k] for k in keys])
        Tm = np.column_stack([columns[n][rows] for n in mains])
        c, lo, hi, pt, _, _ = _fit(d, Tm, B, confidence)
        effects.append(Effect(test, "test", c[0], lo[0], hi[0], pt[0]))
        for j, n in enumerate(mains, start=1):
            effects.append(Effect(f"{test}:{n}", "test:main", c[j], lo[j], hi[j], pt[j]))
    valid = [i for i, e in enumerate(effects) if not math.isnan(e.p)]
    if valid and adjust:
        adjusted = multipletests([effects[i].p for i in valid], method="holm")[1]
        for i, q in zip(valid, adjusted):
            effects[i] = replace(effects[i], p_holm=float(q))
    return Analysis(effects, blocks, len(keys), df, sigma, pending)


def level_differences(a: Analysis, factor: Factor) -> list[tuple[str, float, float, float]]:
    """A four-level factor's levels against its first, averaged over the other factors: [(level, difference,
    95% low, high)]. From the contrasts' effects E (orthogonal, equal standard errors): level (+,-) is
    E_p - E_pq, (-,+) is E_q - E_pq, (+,+) is E_p + E_q, each with sqrt(2) times one effect's half-width."""
    if factor.width != 2 or math.isnan(a.df_resid) or a.df_resid < 1:
        return []
    by = {e.term: e for e in a.effects}
    p, q, pq = (by.get(c) for c in factor.contrasts())
    if p is None or q is None or pq is None:
        return []
    half = math.sqrt(2.0) * p.halfwidth
    _, l1, l2, l3 = factor.levels
    out = []
    for level, diff in ((l1, p.effect - pq.effect), (l2, q.effect - pq.effect), (l3, p.effect + q.effect)):
        out.append((level, diff, diff - half, diff + half))
    return out
