"""Seasons found in the data: candidates from the sampling step, kept when the data shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.data.seasons import candidate_seasons, detect_seasons, kept_seasons, parse_seasons
from forecaster.errors import ConfigError


def two_seasons(rows: int, seed: int = 0) -> np.ndarray:
    """Half-hourly load: a daily shape, higher on weekends, a slow wander and noise."""
    t = np.arange(rows)
    rng = np.random.default_rng(seed)
    weekend = ((t // 48) % 7) >= 5
    wander = np.cumsum(rng.normal(0, 0.05, rows))
    return 50 + wander + 5 * np.sin(2 * np.pi * t / 48) + 4 * weekend + rng.normal(0, 0.6, rows)


def two_seasons_frame(rows: int, seed: int) -> pd.DataFrame:
    """Half-hourly sensor rows: `two_seasons` load beside a noisy temperature covariate."""
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=rows, freq="30min"),
            "load": two_seasons(rows, seed=seed),
            "temp": np.random.default_rng(seed).normal(10, 1, rows),
        }
    )


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("30min", [(48, "day"), (336, "week")]),
        ("1h", [(24, "day"), (168, "week")]),
        ("1D", [(7, "week"), (365, "year")]),
        ("7D", [(52, "year")]),
        ("11min", []),  # divides neither a day nor a week
    ],
)
def test_candidates_follow_the_sampling_step(freq, expected):
    assert candidate_seasons(pd.Timedelta(freq)) == expected


def test_candidates_need_timestamps():
    assert candidate_seasons(None) == []


def test_a_day_and_a_week_are_both_found():
    checks = detect_seasons(two_seasons(48 * 7 * 6)[:, None], pd.Timedelta("30min"))
    assert kept_seasons(checks) == (48, 336)
    assert "closer" in checks[1].reason


def test_a_daily_cycle_without_a_weekly_one_keeps_only_the_day():
    t = np.arange(24 * 7 * 6)
    rng = np.random.default_rng(1)
    temperature = 15 + 6 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.2, len(t)))
    checks = detect_seasons(temperature[:, None], pd.Timedelta("1h"))
    assert kept_seasons(checks) == (24,)
    assert not checks[1].kept


def test_a_random_walk_has_no_season():
    walk = np.cumsum(np.random.default_rng(2).normal(0, 1, 4000))
    assert kept_seasons(detect_seasons(walk[:, None], pd.Timedelta("1h"))) == (1,)


def test_a_season_needs_two_cycles_in_the_training_part():
    checks = detect_seasons(two_seasons(48 * 10)[:, None], pd.Timedelta("30min"))
    assert [c.kept for c in checks] == [True, False]
    assert "fewer than two cycles" in checks[1].reason


def test_gaps_do_not_hide_a_season():
    values = two_seasons(48 * 7 * 6)
    values[1000:1100] = np.nan
    assert kept_seasons(detect_seasons(values[:, None], pd.Timedelta("30min"))) == (48, 336)


def test_season_option_syntax():
    assert parse_seasons("336, 48") == (48, 336)
    assert parse_seasons("24") == (24,)
    with pytest.raises(ConfigError, match="whole numbers"):
        parse_seasons("day")
    with pytest.raises(ConfigError, match="1 or more"):
        parse_seasons("0")
