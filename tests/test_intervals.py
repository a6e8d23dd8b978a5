"""Conformal half-widths, interval scores and their recalibration from recent errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.device.adapt import RecentErrors
from forecaster.errors import ConfigError
from forecaster.evaluation.intervals import score_intervals, winkler
from forecaster.intervals import (
    Intervals,
    calibrate,
    conformal_half_widths,
    fewest_origins,
    level_name,
    parse_levels,
    recent_half_widths,
    refresh_every,
    with_intervals,
)
from forecaster.records import from_plain, to_plain


def test_the_half_width_is_the_conformal_rank_of_the_errors():
    # 19 errors 1..19: level 0.8 takes rank ceil(20 * 0.8) = 16, level 0.95 rank 19.
    errors = np.arange(1.0, 20.0)[::-1].reshape(19, 1, 1)
    widths = conformal_half_widths(-errors, (0.5, 0.8, 0.95))
    assert widths[:, 0, 0].tolist() == [10.0, 16.0, 19.0]
    assert fewest_origins(0.95) == 19 and fewest_origins(0.8) == 4 and fewest_origins(0.99) == 99


def test_too_few_origins_take_the_largest_error_and_say_so():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(10, 3, 2))
    intervals = calibrate(
        np.zeros_like(truth), truth, first_origin="a", last_origin="b", source="test"
    )
    assert intervals.origins == 10
    assert intervals.short_levels == (0.95, 0.99)
    np.testing.assert_allclose(intervals.widths((0.99,))[0], np.abs(truth).max(axis=0))
    (note,) = intervals.notes((0.8, 0.95))
    assert "95% interval was calibrated on 10 origins, fewer than the 19" in note


def test_intervals_round_trip_through_json_and_refuse_an_uncalibrated_level():
    truth = np.random.default_rng(1).normal(size=(50, 4, 1))
    intervals = calibrate(
        np.zeros_like(truth), truth, first_origin="a", last_origin="b", source="x"
    )
    back = from_plain(Intervals, json.loads(json.dumps(to_plain(intervals))))
    assert back == intervals
    assert back.widths((0.95, 0.8)).shape == (2, 4, 1)
    assert (back.widths((0.95,)) >= back.widths((0.8,))).all()
    with pytest.raises(ConfigError, match="levels 50, 80, 90, 95, 99, not 85"):
        back.widths((0.85,))


def test_levels_parse_as_percents():
    assert parse_levels("95,80") == (0.8, 0.95)
    assert parse_levels(" 97.5% ") == (0.975,)
    assert parse_levels("none") == ()
    assert level_name(0.975) == "97.5" and level_name(0.8) == "80"
    for bad in ("0", "100", "eighty", "80;95"):
        with pytest.raises(ConfigError, match="--level"):
            parse_levels(bad)


def test_the_interval_score_is_the_width_plus_the_scaled_miss():
    truth = np.array([0.0, 5.0, -3.0])
    lower, upper = np.full(3, -1.0), np.full(3, 1.0)
    # Level 0.8: a miss costs 2 / 0.2 = 10 per unit outside.
    np.testing.assert_allclose(winkler(truth, lower, upper, 0.8), [2.0, 42.0, 22.0])
    point = np.zeros((3, 1, 1))
    (score,) = score_intervals(truth.reshape(3, 1, 1), point, np.ones((1, 1, 1)), (0.8,))
    assert score.coverage == pytest.approx(1 / 3)
    assert score.width == pytest.approx(2.0)
    assert score.winkler == pytest.approx(22.0)
    assert score.coverage_by_step == ((pytest.approx(1 / 3),),)


def test_calibrated_intervals_cover_new_errors_of_the_same_kind():
    rng = np.random.default_rng(2)
    calibration, test = rng.standard_t(4, size=(400, 6, 1)), rng.standard_t(4, size=(4000, 6, 1))
    intervals = calibrate(
        np.zeros_like(calibration), calibration, first_origin="", last_origin="", source=""
    )
    scores = score_intervals(test, np.zeros_like(test), intervals.widths((0.8, 0.95)), (0.8, 0.95))
    assert abs(scores[0].coverage - 0.8) < 0.03
    assert abs(scores[1].coverage - 0.95) < 0.02
    result = with_intervals(np.zeros_like(test), intervals.widths((0.8, 0.95)), (0.8, 0.95))
    lower, upper = result.interval(0.95)
    assert (lower < 0).all() and (upper > 0).all() and result.lower.shape == (2, *test.shape)


def level_shift(rows: int = 3000, shift_at: int = 1500, horizon: int = 4):
    """A daily cycle with noise that jumps by 3 noise widths at `shift_at`; a model blind to it.

    Returns the series, the forecasts of every origin (the cycle alone, as a model trained
    before the shift would give) and the origins.
    """
    rng = np.random.default_rng(3)
    t = np.arange(rows)
    cycle = 10 + 2 * np.sin(2 * np.pi * t / 24)
    series = cycle + rng.normal(0, 0.5, rows) + np.where(t >= shift_at, 1.5, 0.0)
    origins = np.arange(1, rows - horizon + 1)
    steps = origins[:, None] + np.arange(horizon)
    return series, cycle[steps][..., None], origins


def test_recent_errors_bring_coverage_back_after_a_level_shift():
    series, forecast, origins = level_shift()
    horizon = forecast.shape[1]
    truth = series[origins[:, None] + np.arange(horizon)][..., None]
    before = origins + horizon <= 1000
    levels = (0.8, 0.95)
    base = calibrate(forecast[before], truth[before], first_origin="", last_origin="", source="")
    fixed = base.widths(levels)
    recent = RecentErrors(fixed, levels, size=100)
    # Run in chunks, as the stream delivers them: the state carries over.
    parts = np.array_split(np.arange(len(origins)), 7)
    adapted = np.concatenate(
        [recent.run(origins[p] - 1, series[origins[p] - 1, None], forecast[p]) for p in parts],
        axis=1,
    )
    late = origins >= 1800  # 300 origins after the shift: the ring holds only new errors
    frozen = score_intervals(truth[late], forecast[late], fixed, levels)
    covered = [np.mean(np.abs(truth[late] - forecast[late]) <= adapted[i][late]) for i in range(2)]
    assert frozen[0].coverage < 0.45 and frozen[1].coverage < 0.75  # stays low without adapting
    assert abs(covered[0] - 0.8) < 0.06 and abs(covered[1] - 0.95) < 0.04
    # Before the shift adapting changes little: the recent errors look like the calibration's.
    calm = (origins > 300) & (origins + horizon <= 1500)
    assert np.mean(np.abs(truth[calm] - forecast[calm]) <= adapted[0][calm]) == pytest.approx(
        0.8, abs=0.05
    )


def test_recent_half_widths_over_an_evaluation_equal_the_streaming_ring():
    """evaluate's all-at-once widths are the ones predict computes row by row."""
    rng = np.random.default_rng(3)
    n, horizon, targets, levels = 300, 5, 2, (0.5, 0.8, 0.95)
    series = np.cumsum(rng.normal(size=(n + horizon + 10, targets)), axis=0)
    origins = np.arange(10, 10 + n)
    point = series[origins[:, None] - 1] + rng.normal(size=(n, horizon, targets))
    truth = np.stack([series[o : o + horizon] for o in origins])
    base = np.full((len(levels), horizon, targets), 7.0)
    streamed = RecentErrors(base, levels, 30).run(origins - 1, series[origins - 1], point)
    batch = recent_half_widths(truth - point, origins, base, levels, 30)
    np.testing.assert_array_equal(batch, streamed)
    # Refreshed every third row (30 // 10): origins 109-111 (rows 108-110) share their widths.
    assert refresh_every(30) == 3 and (batch[:, 100:102] == batch[:, 99:100]).all()
    assert (batch[:, 102] != batch[:, 99]).any() and (batch[:, 99] != batch[:, 98]).any()
    # The first origins have too few errors for 95% and keep the bundle's width.
    assert (batch[2, :19] == 7.0).all() and (batch[2, 40:] != 7.0).any()


def test_recent_errors_use_only_the_past():
    # A forecast error is known once its row is observed, never before.
    base = np.ones((1, 2, 1))
    recent = RecentErrors(base, (0.5,), size=3)
    point = np.zeros((6, 2, 1))
    actual = np.full((6, 1), 100.0)
    widths = recent.run(np.arange(6), actual, point)
    # Origin 1 (row 0 seen) has no errors yet; origin 2 saw row 1, step 1 of origin 1: 1 error.
    assert widths[0, 0].ravel().tolist() == [1.0, 1.0]
    assert widths[0, 1].ravel().tolist() == [100.0, 1.0]  # 1 error: rank 1 of 1 at level 0.5
    assert widths[0, 2].ravel().tolist() == [100.0, 100.0]


@pytest.mark.parametrize("season", [12, 1])
def test_holt_winters_variance_is_its_state_space_models_own(season):
    """1 + sum c_j^2 from the ETS formula equals sum (Z T^j R)^2 of statsmodels' own matrices."""
    from forecaster.evaluation.baselines import (
        _build_model,
        _param_vector,
        fit_holt_winters,
        holt_winters_variance,
    )

    t = np.arange(300)
    y = 10 + np.sin(2 * np.pi * t / 12) + 0.01 * t + np.random.default_rng(4).normal(0, 0.3, 300)
    spec = fit_holt_winters(y, season)
    assert (spec["seasonal_periods"] is not None) == (season > 1)
    spec["params"] |= {"smoothing_level": 0.5, "smoothing_trend": 0.2, "damping_trend": 0.9}
    if season > 1:
        spec["params"]["smoothing_seasonal"] = 0.3
    model = _build_model(y, spec)
    model.update(_param_vector(model, spec))
    design, transition = np.asarray(model["design"])[0], np.asarray(model["transition"])
    selection = np.asarray(model["selection"])[:, 0]
    power, loadings = np.eye(len(transition)), []
    for _ in range(30):
        loadings.append(design @ power @ selection)
        power = transition @ power
    own = np.cumsum(np.square(loadings))
    np.testing.assert_allclose(holt_winters_variance(spec, 30), own / own[0], rtol=1e-10)
    assert own[0] == pytest.approx(1.0)


def recent_errors_one_origin_at_a_time(base, levels, size, every, parts):
    """Half-widths from the last `size` errors per step, origin by origin: each forecast's
    errors recorded as its rows arrive, each step's ring sorted at the first origin of every
    stretch of `every` slots and its quantiles kept for the stretch's other origins."""
    base = np.asarray(base, np.float64)
    horizon = base.shape[1]
    history: list[list[np.ndarray]] = [[] for _ in range(horizon)]
    made: dict[int, np.ndarray] = {}  # origin -> forecast
    held, stretch = base.copy(), None
    out = []
    for slots, actual, point in parts:
        widths = np.empty((len(levels), *point.shape))
        for i, slot in enumerate(slots.tolist()):
            for step in range(horizon):
                if slot - step in made:
                    history[step].append(np.abs(actual[i] - made[slot - step][step]))
            if slot // every != stretch:
                stretch = slot // every
                for step in range(horizon):
                    errors = np.array(history[step][-size:]).reshape(-1, base.shape[2])
                    ring = np.sort(errors, axis=0)
                    for j, level in enumerate(levels):
                        n = len(ring)
                        rank = min(int(np.ceil((n + 1) * level - 1e-9)), n) - 1
                        enough = n >= fewest_origins(level)
                        held[j, step] = ring[rank] if enough else base[j, step]
            widths[:, i] = held
            made[slot + 1] = point[i]
        out.append(widths)
    return out


@pytest.mark.parametrize("seed", range(9))
def test_recent_errors_of_a_batch_are_those_of_one_origin_at_a_time(seed, monkeypatch):
    if seed % 2:  # rings sorted a few origins at a time
        monkeypatch.setattr("forecaster.device.adapt.SORT_VALUES", 200)
    rng = np.random.default_rng(seed)
    horizon, targets, size = (
        int(rng.integers(1, 6)),
        int(rng.integers(1, 3)),
        int(rng.integers(1, 25)),
    )
    levels = (0.5, 0.8, 0.95)[: int(rng.integers(1, 4))]
    every = int(rng.integers(1, 8))
    base = rng.random((len(levels), horizon, targets))
    n = 300
    # Gaps skip origins now and then; every third seed has none (the steady stream's path).
    slots = np.cumsum(rng.choice([1, 1, 1, 2, 5] if seed % 3 else [1], n))
    actual = np.round(rng.normal(size=(n, targets)), 1)  # rounded: tied errors
    point = np.round(rng.normal(size=(n, horizon, targets)), 1)
    cuts = np.sort(rng.choice(np.arange(1, n), 4, replace=False))
    parts = list(zip(*(np.split(v, cuts) for v in (slots, actual, point)), strict=True))
    recent = RecentErrors(base, levels, size, every)
    fast = [recent.run(s, a, p) for s, a, p in parts]
    slow = recent_errors_one_origin_at_a_time(base, levels, size, every, parts)
    for got, expected in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(got, expected)
    # Asking for some origins' widths fills those alike (and keeps the same state).
    again = RecentErrors(base, levels, size, every)
    for (s, a, p), expected in zip(parts, slow, strict=True):
        wanted = np.flatnonzero(rng.random(len(s)) < 0.2)
        got = again.run(s, a, p, wanted)
        np.testing.assert_array_equal(got[:, wanted], expected[:, wanted])
