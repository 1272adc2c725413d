"""Means with 95% intervals: the t quantiles and the interval arithmetic by hand."""

from __future__ import annotations

import math

import pytest

from styletransfer.intervals import format_interval, mean_interval, paired_difference, t_quantile_975


def test_t_quantiles_from_the_table_and_between_its_rows():
    assert t_quantile_975(1) == 12.706 and t_quantile_975(11) == 2.201 and t_quantile_975(30) == 2.042
    assert 2.021 > t_quantile_975(45) > 2.000  # between the rows for 40 and 60
    assert t_quantile_975(10**6) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_t_quantiles_agree_with_scipy_where_it_is_installed():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 11, 29, 35, 50, 90, 200, 1000):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-3), df


def test_mean_interval_by_hand():
    summary = mean_interval([1.0, 2.0, 3.0, 4.0])
    sd = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)
    assert summary["mean"] == 2.5 and summary["sd"] == pytest.approx(sd)
    assert summary["half_width"] == pytest.approx(3.182 * sd / 2)
    assert summary["low"] == pytest.approx(2.5 - 3.182 * sd / 2) and summary["n"] == 4
    assert mean_interval([7.0])["low"] is None and format_interval(mean_interval([7.0])) == "7"
    assert format_interval(summary) == f"2.5 ± {3.182 * sd / 2:.2g}"
    with pytest.raises(ValueError):
        mean_interval([])
    with pytest.raises(ValueError):
        mean_interval([1.0, float("nan")])


def test_paired_difference_is_significant_only_when_the_interval_excludes_zero():
    better = paired_difference([1.0, 1.1, 0.9, 1.05], [0.5, 0.6, 0.45, 0.5])
    assert better["mean"] == pytest.approx(0.5) and better["significant"] is True
    noise = paired_difference([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0])
    assert noise["mean"] == 0 and noise["significant"] is False
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])
