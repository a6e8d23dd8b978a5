"""Baselines: hand-checked naive forecasts, Holt-Winters against statsmodels, the origin rule."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from forecaster.data.synthetic import make_series
from forecaster.errors import ConfigError
from forecaster.evaluation.baselines import (
    HW_FILTER_TOLERANCE,
    MAX_HW_SEASON,
    all_baselines,
    earliest_origin,
    fit_holt_winters,
    holt_winters,
    hw_warmup,
    naive,
    seasonal_lags,
    seasonal_naive,
    usable_origins,
    warmup_rows,
)
from forecaster.evaluation.metrics import mae

# Rows 0..9 of two targets: row r holds (r, 100 + r), so a forecast names the rows it copied.
ROWS = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)
HOURLY = make_series(rows=700, freq="1h", noise=0.2)["temp"].to_numpy()
TRAIN = 450


@pytest.fixture(scope="module")
def hw_spec() -> dict[str, Any]:
    return fit_holt_winters(HOURLY[:TRAIN], 24)


def test_naive_repeats_the_row_before_the_origin():
    forecast = naive(ROWS, np.array([2, 7]), 3)
    assert forecast.shape == (2, 3, 2)
    np.testing.assert_array_equal(forecast[0], [[1, 101]] * 3)
    np.testing.assert_array_equal(forecast[1], [[6, 106]] * 3)
    assert np.isnan(naive(ROWS, np.array([0]), 2)).all()  # nothing before row 0


def test_seasonal_naive_shorter_horizon_than_season():
    # m = 4, H = 2: step h copies row o + h - 4.
    forecast = seasonal_naive(ROWS, np.array([5, 9]), 2, 4)
    np.testing.assert_array_equal(forecast[:, :, 0], [[1, 2], [5, 6]])
    np.testing.assert_array_equal(forecast[:, :, 1], [[101, 102], [105, 106]])


def test_seasonal_naive_longer_horizon_than_season():
    # m = 3, H = 5: lags 3, 3, 3, 6, 6, so origin 6 copies rows 3, 4, 5, 3, 4.
    np.testing.assert_array_equal(seasonal_lags(5, 3), [3, 3, 3, 6, 6])
    forecast = seasonal_naive(ROWS, np.array([6, 8]), 5, 3)
    np.testing.assert_array_equal(forecast[:, :, 0], [[3, 4, 5, 3, 4], [5, 6, 7, 5, 6]])


def test_seasonal_naive_edges():
    np.testing.assert_array_equal(
        seasonal_naive(ROWS, np.array([4]), 3, 1), naive(ROWS, np.array([4]), 3)
    )
    early = seasonal_naive(ROWS, np.array([2]), 2, 3)[0, :, 0]
    np.testing.assert_array_equal(early, [np.nan, 0.0])  # row -1 does not exist
    with pytest.raises(ValueError, match="origins"):
        naive(ROWS, np.array([11]), 1)


def _statsmodels_forecast(
    y: np.ndarray,
    origin: int,
    spec: dict[str, Any],
    horizon: int,
    tolerance: float | None = HW_FILTER_TOLERANCE,
) -> np.ndarray:
    """statsmodels' own forecast from the rows before `origin`, initialised like ours."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    options = {"trend": True, "damped_trend": True, "seasonal": spec["seasonal_periods"]}
    params = np.array(list(spec["params"].values()))
    warmup = warmup_rows(spec["seasonal_periods"])
    state = (
        ExponentialSmoothing(y[:warmup], initialization_method="heuristic", **options)
        .filter(params)
        .initial_state
    )
    model = ExponentialSmoothing(
        y[:origin],
        initialization_method="known",
        initial_level=state[0],
        initial_trend=state[1],
        initial_seasonal=state[2:],
        **options,
    )
    if tolerance is not None:
        model.ssm.tolerance = tolerance
    return model.filter(params).get_forecast(horizon).predicted_mean


def test_holt_winters_equals_statsmodels_forecast(hw_spec):
    assert hw_spec["seasonal_periods"] == 24 and hw_spec["damped_trend"]
    y = HOURLY.copy()
    y[500:560] = np.nan  # a long gap: the Kalman filter treats it as missing
    origins = np.array([48, 49, 300, TRAIN, 561, 600, len(y)])
    forecast = holt_winters(y[:, None], origins, 12, [hw_spec])[:, :, 0]
    for row, origin in zip(forecast, origins, strict=True):
        np.testing.assert_allclose(row, _statsmodels_forecast(y, origin, hw_spec, 12), atol=1e-6)
        # The filter's default convergence test too: our looser one changes nothing here.
        exact = _statsmodels_forecast(y, origin, hw_spec, 12, tolerance=None)
        np.testing.assert_allclose(row, exact, atol=1e-6)


def test_holt_winters_first_origin_matches_plain_heuristic_model(hw_spec):
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    first = warmup_rows(24)
    model = ExponentialSmoothing(
        HOURLY[:first],
        trend=True,
        damped_trend=True,
        seasonal=24,
        initialization_method="heuristic",
    )
    expected = model.filter(np.array(list(hw_spec["params"].values()))).forecast(12)
    forecast = holt_winters(HOURLY[:, None], np.array([first - 1, first]), 12, [hw_spec])
    assert np.isnan(forecast[0]).all()  # the warm-up would include the origin's own row
    np.testing.assert_allclose(forecast[1, :, 0], expected, atol=1e-6)


def test_holt_winters_params_survive_json_and_apply_to_another_series(hw_spec):
    stored = json.loads(json.dumps(hw_spec, allow_nan=False))
    other = make_series(rows=300, freq="1h", seed=5)[["temp", "load"]].to_numpy()
    origins = np.arange(48, 289)
    again = holt_winters(other, origins, 12, [stored, stored])
    np.testing.assert_array_equal(again, holt_winters(other, origins, 12, [hw_spec, hw_spec]))
    assert np.isfinite(again).all()
    assert mae(other[origins[:, None] + np.arange(12)], again) < mae(
        other[origins[:, None] + np.arange(12)], naive(other, origins, 12)
    )


def test_seasonal_baselines_beat_naive_on_a_daily_cycle(hw_spec):
    origins = np.arange(TRAIN, len(HOURLY) - 12 + 1)
    truth = HOURLY[origins[:, None] + np.arange(12)][:, :, None]
    forecasts = all_baselines(HOURLY[:, None], origins, 12, 24, [hw_spec])
    errors = {name: mae(truth, forecast) for name, forecast in forecasts.items()}
    assert errors["seasonal_naive"] < 0.5 * errors["naive"]
    assert errors["holt_winters"] < 0.5 * errors["naive"]


def test_fit_uses_the_longest_gap_free_stretch():
    y = HOURLY[:400].copy()
    y[[50, 300]] = np.nan
    spec = fit_holt_winters(y, 24)
    assert spec["fit_rows"] == 300 - 51 and spec["seasonal_periods"] == 24


@pytest.mark.parametrize(
    "y",
    [
        HOURLY[:0],
        HOURLY[:1],
        HOURLY[:9],
        np.where(np.arange(60) % 5 == 0, np.nan, HOURLY[:60]),  # 4 rows between gaps
    ],
)
def test_too_short_to_fit_falls_back_to_default_parameters(y):
    spec = fit_holt_winters(y, 24)
    assert spec["seasonal_periods"] is None
    assert spec["params"] == pytest.approx(
        {"smoothing_level": 0.1, "smoothing_trend": 0.01, "damping_trend": 0.979}, abs=1e-3
    )
    assert "default smoothing parameters" in spec["note"]
    json.dumps(spec)
    # The defaults forecast wherever the evaluated series has its 10 warm-up rows.
    forecast = holt_winters(HOURLY[:40, None], np.array([5, 10, 30]), 3, [spec])
    assert np.isnan(forecast[0]).all() and np.isfinite(forecast[1:]).all()


def test_earliest_origin_is_the_latest_need_of_any_baseline():
    series = np.arange(60.0)[:, None]
    plain = fit_holt_winters(series[:40, 0], 1)  # 10 warm-up rows, no seasonal component
    assert hw_warmup([plain]) == 10 and hw_warmup([]) == 0
    assert earliest_origin(series, 1, [plain]) == 10
    assert earliest_origin(series, 24, [plain]) == 24  # seasonal naive needs a season back
    assert earliest_origin(series, 1, []) == 1  # naive needs the row before
    series[5] = np.nan  # the warm-up block moves to rows 6..15
    assert earliest_origin(series, 1, [plain]) == 16
    assert earliest_origin(np.where(np.arange(60) % 5 == 0, np.nan, 1.0), 1, [plain]) is None
    # The rule agrees with usable_origins on a series without later gaps.
    origins = np.arange(16, 58)
    first = origins[usable_origins(series, origins, 2, 4, [plain])][0]
    assert first == earliest_origin(series, 4, [plain])


def test_long_or_short_seasons_fall_back_to_no_seasonal_component():
    minutes = make_series(rows=200, freq="1min")["temp"].to_numpy()
    spec = fit_holt_winters(minutes, 1440)
    assert spec["seasonal_periods"] is None and spec["season"] == 1440
    assert str(MAX_HW_SEASON) in spec["note"]
    assert set(spec["params"]) == {"smoothing_level", "smoothing_trend", "damping_trend"}
    short = fit_holt_winters(HOURLY[:40], 24)
    assert short["seasonal_periods"] is None and "two seasons" in short["note"]
    assert np.isfinite(holt_winters(HOURLY[:60, None], np.array([50]), 3, [short])).all()


def test_constant_series_forecasts_the_constant():
    spec = fit_holt_winters(np.full(100, 7.0), 24)
    np.testing.assert_allclose(
        holt_winters(np.full((100, 1), 7.0), np.array([60, 99]), 5, [spec]), 7.0
    )


def test_holt_winters_rejects_parameters_that_do_not_fit():
    spec = fit_holt_winters(np.arange(30.0), 1)
    with pytest.raises(ConfigError, match="1 target"):
        holt_winters(ROWS, np.array([5]), 2, [spec])
    with pytest.raises(ConfigError, match="fit_holt_winters"):
        holt_winters(ROWS[:, :1], np.array([5]), 2, [{"alpha": 0.5}])
    del spec["params"]["damping_trend"]
    with pytest.raises(ConfigError, match="damping_trend"):
        holt_winters(np.arange(30.0)[:, None], np.array([20]), 2, [spec])


def test_usable_origins_rule():
    series = np.arange(40.0)[:, None] + 1.0
    series[20] = np.nan
    # Season 4: Holt-Winters warms up on rows 0..15, so origins start at 16.
    assert warmup_rows(4) == 16
    cases = {
        15: False,  # inside the Holt-Winters warm-up
        16: True,
        18: False,  # truth row 20 is missing
        21: False,  # naive input row 20 is missing
        24: False,  # seasonal-naive input row 20 (= 24 + 0 - 4) is missing
        25: True,
        37: True,
        38: False,  # truth runs past the end
    }
    origins = np.array(list(cases))
    np.testing.assert_array_equal(usable_origins(series, origins, 3, 4), list(cases.values()))
    # Parameters without a seasonal component only need 10 warm-up rows.
    plain: dict[str, Any] = {
        "seasonal_periods": None,
        "trend": True,
        "damped_trend": True,
        "params": {},
    }
    assert usable_origins(series, np.array([12]), 3, 4, [plain]).tolist() == [True]
    assert usable_origins(series, np.array([12]), 3, 4).tolist() == [False]
    # A missing row early on moves the warm-up block after it: rows 3..18 instead of 0..15.
    series[2, 0] = np.nan
    assert usable_origins(series, np.array([18, 19]), 1, 4).tolist() == [False, True]


def test_every_baseline_is_defined_on_usable_origins(hw_spec):
    frame = make_series(rows=400, freq="1h", seed=3)[["temp", "humidity"]].to_numpy()
    frame[100:130, 0] = np.nan
    frame[200:205] = np.nan
    origins = np.arange(0, 400 - 6 + 1)
    keep = usable_origins(frame, origins, 6, 24, [hw_spec, hw_spec])
    assert 0 < keep.sum() < len(origins)
    forecasts = all_baselines(frame, origins[keep], 6, 24, [hw_spec, hw_spec])
    assert all(np.isfinite(f).all() for f in forecasts.values())
    dropped = all_baselines(frame, origins[~keep], 6, 24, [hw_spec, hw_spec])
    assert all(f.shape == (len(origins) - keep.sum(), 6, 2) for f in dropped.values())


def test_no_origins():
    empty = all_baselines(ROWS, np.array([], dtype=np.int64), 3, 2, [{}, {}])
    assert all(f.shape == (0, 3, 2) for f in empty.values())
    assert usable_origins(ROWS, np.array([], dtype=np.int64), 3, 2).shape == (0,)
    # No Holt-Winters parameters means no warm-up to wait for.
    assert usable_origins(ROWS, np.array([2, 7]), 3, 2, []).tolist() == [True, True]
