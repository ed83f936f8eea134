"""Seed statistics for ablation reports: mean, std, and a Welch t interval for a difference of means.

Hand-written instead of `scipy.stats` because scipy is not a dependency of the template; the
Student-t CDF is the regularised incomplete beta function (continued fraction, Numerical Recipes 6.4)
and its quantile is found by bisection, so every number is exact to ~1e-10, not a table lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for I_x(a, b) (modified Lentz); converges fast for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for x in [0, 1]."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` (real, > 0) degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse of `t_cdf` for p in (0, 1), by bisection (60 halvings: far below print precision)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


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
    return min(1.0, 2.0 * (1.0 - t_cdf(abs(t), df)))


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
    valid = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m, running, out = len(valid), 0.0, {k: math.nan for k in pvalues}
    for i, (p, k) in enumerate(valid):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
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
