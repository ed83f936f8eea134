"""Seed statistics for ablation reports: mean, std, a Welch t interval for a difference of means, the paired t
interval and test, Holm's adjustment and the paired t-test's power. The Student t distribution is scipy's
(`scipy.stats.t`) and Holm's step-down is statsmodels' (`multipletests`), the same libraries the factorial
analysis (effects.py) uses; this module only shapes their answers for the one-at-a-time report."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` (real, > 0) degrees of freedom."""
    return float(scipy_stats.t.cdf(t, df))


def t_quantile(p: float, df: float) -> float:
    """Inverse of `t_cdf` for p in (0, 1)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    return float(scipy_stats.t.ppf(p, df))


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for fewer than two values)."""
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return mean, std


@dataclass(frozen=True)
class Diff:
    delta: float  # mean(a) - mean(b)
    low: float  # confidence interval bounds (NaN when a side has < 2 values)
    high: float
    df: float  # Welch-Satterthwaite degrees of freedom


def welch_diff(a: list[float], b: list[float], confidence: float = 0.95) -> Diff:
    """mean(a) - mean(b) with a Welch t interval (unequal variances; no pairing of seeds assumed)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    delta = ma - mb
    if len(a) < 2 or len(b) < 2:
        return Diff(delta, math.nan, math.nan, math.nan)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # identical values on both sides: the interval collapses to the point
        return Diff(delta, delta, delta, math.inf)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return Diff(delta, delta - half, delta + half, df)


def two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, float(2.0 * scipy_stats.t.sf(abs(t), df)))


@dataclass(frozen=True)
class PairedDiff:
    delta: float  # mean over shared seeds of a[seed] - b[seed]
    low: float  # t interval bounds (NaN with fewer than two shared seeds)
    high: float
    p: float  # two-sided paired t-test p-value
    n: int  # shared seeds
    sd: float  # sample std of the per-seed differences


def paired_diff(a: dict[int, float], b: dict[int, float], confidence: float = 0.95) -> PairedDiff:
    """a - b over the seeds both have (a seed fixes everything but the arm), with a paired t interval."""
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    mean, sd = mean_std(diffs)
    n = len(diffs)
    if n < 2:
        return PairedDiff(mean, math.nan, math.nan, math.nan, n, sd)
    se = sd / math.sqrt(n)
    if se == 0.0:
        return PairedDiff(mean, mean, mean, 0.0 if mean else 1.0, n, sd)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * se
    return PairedDiff(mean, mean - half, mean + half, two_sided_p(mean / se, n - 1), n, sd)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error control over all the given tests); NaN kept."""
    valid = [k for k, p in pvalues.items() if not math.isnan(p)]
    out = {k: math.nan for k in pvalues}
    if valid:
        adjusted = multipletests([pvalues[k] for k in valid], method="holm")[1]
        out.update({k: float(q) for k, q in zip(valid, adjusted)})
    return out


def seeds_needed(sd_diff: float, delta: float = 0.3, alpha: float = 0.05, power: float = 0.8, cap: int = 10_000) -> int:
    """Seeds for a two-sided paired t-test at level `alpha` to detect a true mean difference `delta` with
    probability `power`, given the per-seed std of the differences: the smallest n with
    n >= ((t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / delta)^2 (the usual t approximation of the noncentral t;
    it gives G*Power's n = 10 for an effect size of 1 at 80% power)."""
    if not sd_diff > 0 or not delta > 0:
        raise ValueError(f"seeds_needed needs sd_diff > 0 and delta > 0, got {sd_diff}, {delta}")
    for n in range(2, cap + 1):
        need = ((t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd_diff / delta) ** 2
        if n >= need:
            return n
    return cap


def detectable_delta(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true paired difference that `n` seeds detect with probability `power` (two-sided, level
    `alpha`), given the per-seed std of the differences: (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n),
    the inverse of `seeds_needed`."""
    if n < 2:
        raise ValueError(f"detectable_delta needs n >= 2 seeds, got {n}")
    return (t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd_diff / math.sqrt(n)
