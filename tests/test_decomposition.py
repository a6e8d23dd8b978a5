"""The decomposition baseline: frozen profiles and a filtered level, checked against refits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.evaluation.baselines import seasonal_naive
from forecaster.evaluation.decomposition import (
    DecompositionSpec,
    decomposition_forecast,
    fit_decomposition,
)
from forecaster.evaluation.metrics import mae
from forecaster.records import from_plain, to_plain
from tests.test_seasons import two_seasons

HORIZON = 48


@pytest.fixture(scope="module")
def load() -> np.ndarray:
    return two_seasons(48 * 7 * 14, seed=3)


@pytest.fixture(scope="module")
def spec(load) -> DecompositionSpec:
    return fit_decomposition(load[: 48 * 7 * 9], (48, 336))


def origins(load: np.ndarray) -> np.ndarray:
    return np.arange(48 * 7 * 10, len(load) - HORIZON, 5)


def truth(load: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.stack([load[o : o + HORIZON] for o in starts])[:, :, None]


def test_both_seasons_get_a_centred_profile(spec):
    assert spec.seasons == (48, 336) and spec.method == "MSTL + ETS"
    for season, profile in zip(spec.seasons, spec.profiles, strict=True):
        assert len(profile) == season
        assert abs(np.mean(profile)) < 1e-9
    # The daily shape has an amplitude of 5: its profile shows it.
    assert 8 < np.ptp(spec.profiles[0]) < 12


def test_it_beats_every_seasonal_naive_on_two_seasons(load, spec):
    starts = origins(load)
    forecast = decomposition_forecast(load[:, None], starts, HORIZON, [spec])
    assert np.isfinite(forecast).all()
    error = mae(truth(load, starts), forecast)
    for season in (48, 336):
        assert error < 0.9 * mae(
            truth(load, starts), seasonal_naive(load[:, None], starts, HORIZON, season)
        )


def test_the_rolling_form_is_as_good_as_refitting_at_each_origin(load, spec):
    # A refit at every origin is what the rolling form replaces; on a sample of origins its
    # error must be within 10% of the refit's (frozen profiles lose little on a stable series).
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.seasonal import MSTL

    sample = origins(load)[::60]
    rolling = decomposition_forecast(load[:, None], sample, HORIZON, [spec])[:, :, 0]
    refit = []
    for o in sample:
        history = load[o - 48 * 7 * 6 : o]
        seasonal = np.asarray(MSTL(history, periods=[48, 336]).fit().seasonal)
        rest = ExponentialSmoothing(
            history - seasonal.sum(axis=1),
            trend="add",
            damped_trend=True,
            initialization_method="estimated",
        ).fit()
        ahead = sum(seasonal[-m:, k][np.arange(HORIZON) % m] for k, m in enumerate((48, 336)))
        refit.append(rest.forecast(HORIZON) + ahead)
    actual = truth(load, sample)[:, :, 0]
    assert np.abs(rolling - actual).mean() <= 1.1 * np.abs(np.array(refit) - actual).mean()


def test_the_phase_follows_the_grid_row_in_another_file(load, spec):
    starts = origins(load)
    whole = decomposition_forecast(load[:, None], starts, HORIZON, [spec])
    offset = 48 * 7 * 8 + 13  # a later file starts at this grid row of the training file
    tail = decomposition_forecast(load[offset:, None], starts - offset, HORIZON, [spec], offset)
    # Only the level's start differs; after a few days of filtering both agree closely.
    late = starts - offset > 48 * 7
    assert np.abs(whole[late] - tail[late]).max() < 0.05


def test_origins_before_the_warm_up_get_nan_and_gaps_are_carried(load, spec):
    series = load.copy()
    series[3500:3530] = np.nan
    forecast = decomposition_forecast(series[:, None], np.array([3, 3540]), HORIZON, [spec])
    assert np.isnan(forecast[0]).all()
    assert np.isfinite(forecast[1]).all()


def test_the_spec_is_plain_json_and_back(spec):
    assert from_plain(DecompositionSpec, json.loads(json.dumps(to_plain(spec)))) == spec


def test_a_series_without_a_season_is_smoothed_alone():
    walk = 20 + np.cumsum(np.random.default_rng(4).normal(0, 0.1, 800))
    spec = fit_decomposition(walk[:600], (1,))
    assert spec.seasons == () and spec.method == "ETS"
    forecast = decomposition_forecast(walk[:, None], np.array([700]), 12, [spec])
    assert np.abs(forecast[0, :, 0] - walk[699]).max() < 1.0


def test_too_few_complete_rows_carry_the_last_value():
    spec = fit_decomposition(np.array([1.0, np.nan, 2.0, 3.0]), (2,))
    assert spec.seasons == () and spec.alpha == 1.0 and not spec.trend
    assert "no 10 consecutive complete rows" in (spec.note or "")
