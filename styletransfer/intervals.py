"""Means with 95% confidence intervals (Student's t), for results aggregated over image pairs or seeds.

The two-sided 95% quantiles of Student's t are tabulated to three decimals (the printed tables'
values) for 1–30 degrees of freedom and at 40, 60 and 120, interpolated linearly in 1/df between
them and 1.960 (the normal quantile) beyond: no statistics package is needed.
"""

from __future__ import annotations

import math
from typing import Iterable

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
NORMAL_975 = 1.960


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` ≥ 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be ≥ 1, got {df}")
    if df in T_975:
        return T_975[df]
    known = sorted(T_975)
    above = next((k for k in known if k > df), None)
    below = max(k for k in known if k < df)
    high_q, high_inv = (T_975[above], 1 / above) if above is not None else (NORMAL_975, 0.0)
    share = (1 / df - high_inv) / (1 / below - high_inv)
    return high_q + share * (T_975[below] - high_q)


def mean_interval(values: Iterable[float]) -> dict:
    """Mean, sample standard deviation and the 95% t-interval of the mean of ``values``.

    One value gives no interval (``low``/``high`` None); non-finite values are refused.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to summarise")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"non-finite values: {values}")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "half_width": None, "low": None, "high": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "half_width": half, "low": mean - half, "high": mean + half}


def paired_difference(a: Iterable[float], b: Iterable[float]) -> dict:
    """The mean of the paired differences a_i − b_i with its 95% interval, and whether the interval
    excludes 0 (the paired t-test at the 5% level)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    summary = mean_interval(x - y for x, y in zip(a, b))
    significant = summary["low"] is not None and (summary["low"] > 0 or summary["high"] < 0)
    return {**summary, "significant": significant}


def format_interval(summary: dict, digits: int = 3) -> str:
    """'0.512 ± 0.031' (mean ± half width), or the mean alone for one value."""
    if summary["half_width"] is None:
        return f"{summary['mean']:.{digits}g}"
    return f"{summary['mean']:.{digits}g} ± {summary['half_width']:.2g}"
