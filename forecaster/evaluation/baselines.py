"""Baseline forecasts every model is compared with: naive, seasonal naive and Holt-Winters.

(The decomposition baseline, MSTL/STL + exponential smoothing, is in
`forecaster.evaluation.decomposition`.)

All baselines forecast rows o .. o+H-1 of `series` (rows, targets), in original units, from
the rows before origin o only, for many origins at once; the result has shape
(origins, horizon, targets) and NaN where a baseline has no input (see `usable_origins`).

Holt-Winters is statsmodels' state-space exponential smoothing model
(`statsmodels.tsa.statespace.exponential_smoothing.ExponentialSmoothing`): additive damped
trend, plus an additive seasonal component when the season is at most `MAX_HW_SEASON` steps
and the training part holds a gap-free stretch of two seasons. The smoothing parameters are
fitted on the longest gap-free stretch of the training part and stored as plain JSON (see
`fit_holt_winters`). To forecast, the same model is built on the whole series being evaluated
(NaN rows count as missing in the Kalman filter), its initial state set by statsmodels'
heuristic on that series' first complete warm-up block, so stored parameters apply to another
file too. Forecasts come from the filtered state at row o-1 and the model's system matrices,
for all origins in one matrix product.

Measured on `forecaster.data.synthetic.make_series` (2-core machine, statsmodels 0.15, other jobs
running): fitting on 3000 rows took 1-2.5 s for season 24 (27 states), 17-25 s for season 96
and 24-31 s for season 144; forecasting every origin of a 10000-row series with a 300-row gap
took 0.1 s, 9 s and 16 s. Both grow with rows x states^2 (more while the filter settles after
a gap), so longer seasons (288 for 5-minute data, 1440 for minute data) fall back to a damped
trend without a seasonal component; the seasonal-naive baseline still covers their cycle.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.errors import ConfigError

if TYPE_CHECKING:
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

# Longest seasonal period fitted with a seasonal state (period + 3 states). Fits grow with the
# square of the states: see the module docstring for measured times.
MAX_HW_SEASON = 144
# Fit on at most this many rows: the fit time grows with the rows too.
MAX_HW_FIT_ROWS = 3000
# statsmodels' heuristic initialisation regresses on the first 10 (deseasonalised) values.
_HEURISTIC_ROWS = 10
# After a gap the Kalman filter's covariance rarely meets the default convergence test (1e-19)
# again, and every later row then costs O(states^3): one likelihood with season 96 and a
# 200-row gap took 14 s instead of 0.6 s. At 1e-9 the filter settles to its steady gain a
# little early; on synthetic data (level 20, MAE 0.25) forecasts after a 300-row gap moved by
# at most 2e-4, and not at all where there is no gap.
HW_FILTER_TOLERANCE = 1e-9


def _as_2d(series: np.ndarray) -> np.ndarray:
    values = np.asarray(series, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"series must have shape (rows, targets); got {values.shape}")
    return values


def _as_origins(origins: np.ndarray, n_rows: int) -> np.ndarray:
    result = np.asarray(origins, dtype=np.int64).reshape(-1)
    if result.size and (result.min() < 0 or result.max() > n_rows):
        raise ValueError(f"origins must lie in 0..{n_rows} (the series has {n_rows} rows)")
    return result


def _take_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] with NaN where a row index is negative (before the series starts)."""
    out = values[np.clip(rows, 0, None)]
    out[rows < 0] = np.nan
    return out


def naive(series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last value before each origin (row o-1), repeated: shape (origins, horizon, targets)."""
    values = _as_2d(series)
    starts = _as_origins(origins, len(values))
    last = _take_rows(values, starts - 1)
    return np.repeat(last[:, None, :], horizon, axis=1)


def seasonal_lags(horizon: int, season: int) -> np.ndarray:
    """Rows back from row o+h for each step h: season * ceil((h+1)/season), shape (horizon,)."""
    steps = np.arange(horizon)
    return season * ((steps + season) // season)


def seasonal_naive(
    series: np.ndarray, origins: np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """Step h repeats row o + h - m*ceil((h+1)/m): the latest value whole seasons back.

    Season 1 is the naive forecast. Shape (origins, horizon, targets).
    """
    if season < 1:
        raise ValueError(f"season must be at least 1; got {season}")
    values = _as_2d(series)
    starts = _as_origins(origins, len(values))
    rows = starts[:, None] + np.arange(horizon) - seasonal_lags(horizon, season)
    return _take_rows(values, rows)


def _hw_season(season: int) -> int | None:
    """The seasonal period Holt-Winters uses for `season`, or None for no seasonal component."""
    return season if 1 < season <= MAX_HW_SEASON else None


def warmup_rows(seasonal_periods: int | None) -> int:
    """Complete rows statsmodels' heuristic needs to set the initial Holt-Winters state.

    Two whole seasons, or more when they hold fewer than 10 + 2*(m//2) rows (its limits);
    10 rows without a seasonal component.
    """
    if seasonal_periods is None:
        return _HEURISTIC_ROWS
    m = seasonal_periods
    cycles = max(2, math.ceil((_HEURISTIC_ROWS + 2 * (m // 2)) / m))
    return m * cycles


def _first_complete_block(complete: np.ndarray, length: int) -> int | None:
    """Start of the first run of `length` True values in a 1-D mask, or None."""
    if length <= 0:
        return 0
    if length > len(complete):
        return None
    counts = np.concatenate(([0], np.cumsum(complete, dtype=np.int64)))
    full = np.flatnonzero(counts[length:] - counts[:-length] == length)
    return int(full[0]) if full.size else None


def _build_model(y: np.ndarray, spec: dict[str, Any]) -> ExponentialSmoothing:
    """The state-space model on `y`, initialised by the heuristic on its first warm-up rows.

    `y` must start with `warmup_rows` complete rows; NaN later on is treated as missing.
    """
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    options = {
        "trend": spec["trend"],
        "damped_trend": spec["damped_trend"],
        "seasonal": spec["seasonal_periods"],
    }
    # The heuristic on the whole series would look at up to five seasons, NaN included; on the
    # warm-up block alone it sees only complete rows that come before every usable origin.
    warmup = y[: warmup_rows(spec["seasonal_periods"])]
    starter = ExponentialSmoothing(warmup, initialization_method="heuristic", **options)
    # The heuristic state does not depend on the parameters; filtering just exposes it.
    state = starter.filter(starter.start_params, cov_type="none").initial_state
    model = ExponentialSmoothing(
        y,
        initialization_method="known",
        initial_level=state[0],
        initial_trend=state[1] if spec["trend"] else None,
        initial_seasonal=state[1 + int(spec["trend"]) :] if spec["seasonal_periods"] else None,
        **options,
    )
    model.ssm.tolerance = HW_FILTER_TOLERANCE
    return model


def longest_complete_run(y: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the longest run of non-NaN values (the latest one on a tie)."""
    complete = np.concatenate(([False], np.isfinite(y), [False]))
    edges = np.flatnonzero(np.diff(complete.astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    if not len(starts):
        return 0, 0
    lengths = stops - starts
    best = len(lengths) - 1 - int(np.argmax(lengths[::-1]))
    return int(starts[best]), int(stops[best])


def fit_holt_winters(train_series: np.ndarray, season: int) -> dict[str, Any]:
    """Fit Holt-Winters on one target's training part; the result is a plain JSON dict.

    The parameters are fitted on the longest gap-free stretch of `train_series` (its last
    MAX_HW_FIT_ROWS rows when longer). The model has an additive damped trend and, when
    `season` is 2..MAX_HW_SEASON and that stretch holds `warmup_rows(season)` rows (two
    seasons), an additive seasonal component; otherwise none, with the reason in "note". A
    stretch shorter than the 10 rows a fit needs gets statsmodels' default smoothing parameters,
    also with a note. Returns::

        {"season": 24, "seasonal_periods": 24 or None, "trend": True, "damped_trend": True,
         "params": {"smoothing_level": ..., ...}, "fit_rows": 3000, "note": None or "..."}
    """
    y = np.asarray(train_series, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"fit_holt_winters takes one target (1-D); got shape {y.shape}")
    # After a gap the Kalman filter pays O(states^3) per row until it settles again, and a fit
    # runs it ~100 times: a 300-row gap made a season-144 fit take over 4 minutes.
    start, stop = longest_complete_run(y)
    y = y[max(start, stop - MAX_HW_FIT_ROWS) : stop]
    seasonal = _hw_season(season)
    note = None
    if season > MAX_HW_SEASON:
        note = (
            f"season {season} is longer than {MAX_HW_SEASON} steps, too slow for the "
            "state-space model; fitted without a seasonal component"
        )
    elif seasonal is not None and len(y) < warmup_rows(seasonal):
        note = (
            f"the training part has no {warmup_rows(seasonal)} consecutive complete rows "
            f"(two seasons of {seasonal}); fitted without a seasonal component"
        )
        seasonal = None
    spec: dict[str, Any] = {
        "season": int(season),
        "seasonal_periods": seasonal,
        "trend": True,
        "damped_trend": True,
        "params": {},
        "fit_rows": len(y),
        "note": note,
    }
    if len(y) < warmup_rows(None):
        # Too short for statsmodels' heuristic start; its default smoothing parameters still
        # make a sane damped-trend baseline wherever the evaluated series has a warm-up block.
        spec["params"] = _default_params(spec)
        spec["note"] = (
            f"the training part has {len(y)} consecutive complete rows, fewer than the "
            f"{warmup_rows(None)} a fit needs; using statsmodels' default smoothing parameters"
        )
        return spec
    model = _build_model(y, spec)
    if np.ptp(y) == 0:
        # A constant training part has zero innovation variance and no finite optimum; every
        # parameter value forecasts the constant, so skip the (slow, failing) search.
        spec["params"] = _named(model, model.start_params)
        return spec
    with warnings.catch_warnings():
        # Convergence and bound warnings are expected on flat or noisy sensor data; the fitted
        # values are still within the smoothing bounds and only serve as a baseline.
        warnings.simplefilter("ignore")
        params = model.fit(disp=False, return_params=True)
    if not np.all(np.isfinite(params)):
        # A failed search: statsmodels' own starting values are a sane damped model.
        params = model.start_params
    spec["params"] = _named(model, params)
    return spec


def _default_params(spec: dict[str, Any]) -> dict[str, float]:
    """statsmodels' starting values for the model in `spec`; they do not depend on the data."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    model = ExponentialSmoothing(
        np.zeros(2),
        trend=spec["trend"],
        damped_trend=spec["damped_trend"],
        initialization_method="known",
        initial_level=0.0,
        initial_trend=0.0 if spec["trend"] else None,
    )
    return _named(model, model.start_params)


def _named(model: ExponentialSmoothing, params: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(model.param_names, params, strict=True)}


def _param_vector(model: ExponentialSmoothing, spec: dict[str, Any]) -> np.ndarray:
    missing = [name for name in model.param_names if name not in spec["params"]]
    if missing:
        raise ConfigError(
            f"Holt-Winters parameters lack {', '.join(missing)}; refit them with "
            "fit_holt_winters (retrain the run)"
        )
    return np.array([spec["params"][name] for name in model.param_names], dtype=np.float64)


def _check_spec(spec: Any) -> dict[str, Any]:
    keys = ("seasonal_periods", "trend", "damped_trend", "params")
    if not isinstance(spec, dict) or any(k not in spec for k in keys):
        raise ConfigError(
            f"Holt-Winters parameters must be a dict with keys {', '.join(keys)} as written by "
            f"fit_holt_winters; got {spec!r:.80}. Retrain the run to refit them"
        )
    return spec


def holt_winters(
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    params_per_target: list[dict[str, Any]],
) -> np.ndarray:
    """Holt-Winters forecasts with stored parameters, shape (origins, horizon, targets).

    Each target's model (options and smoothing parameters from `fit_holt_winters`) is filtered
    over the whole series from its first complete warm-up block on, NaN rows counting as
    missing. Step h of origin o is Z T^(h+1) a (plus intercepts), with a the filtered state
    at row o-1, Z the design and T the transition matrix: statsmodels' own forecast from the
    data before o. Origins before the end of the first warm-up block get NaN, so the warm-up
    never sees rows at or after the origin.
    """
    values = _as_2d(series)
    starts = _as_origins(origins, len(values))
    if len(params_per_target) != values.shape[1]:
        raise ConfigError(
            f"got Holt-Winters parameters for {len(params_per_target)} target(s) but the series "
            f"has {values.shape[1]}; refit them with fit_holt_winters (retrain the run)"
        )
    out = np.full((len(starts), horizon, values.shape[1]), np.nan)
    if len(starts) == 0 or horizon == 0:
        return out
    for target, spec in enumerate(params_per_target):
        out[:, :, target] = _forecast_target(values[:, target], starts, horizon, _check_spec(spec))
    return out


def _forecast_target(
    y: np.ndarray, origins: np.ndarray, horizon: int, spec: dict[str, Any]
) -> np.ndarray:
    from statsmodels.tsa.statespace.kalman_filter import MEMORY_CONSERVE, MEMORY_NO_FILTERED_MEAN

    out = np.full((len(origins), horizon), np.nan)
    warmup = warmup_rows(spec["seasonal_periods"])
    start = _first_complete_block(np.isfinite(y), warmup)
    if start is None:
        return out
    model = _build_model(y[start:], spec)
    # Keep only the filtered states: the covariances alone would take states^2 floats per row.
    result = model.filter(
        _param_vector(model, spec),
        return_ssm=True,
        conserve_memory=MEMORY_CONSERVE & ~MEMORY_NO_FILTERED_MEAN,
    )
    last = origins - 1 - start  # the filtered row each forecast starts from
    ready = last >= warmup - 1
    states = result.filtered_state[:, last[ready]].T  # (origins, states)

    design = np.asarray(model["design"])  # (1, states)
    transition = np.asarray(model["transition"])
    state_intercept = np.asarray(model["state_intercept"]).reshape(-1)
    obs_intercept = float(np.asarray(model["obs_intercept"]).reshape(-1)[0])
    # Row h of `loadings` is Z T^(h+1), so all steps of all origins are one matrix product;
    # `offset` carries the state intercepts along the same steps (zero for this model).
    loadings = np.empty((horizon, transition.shape[0]))
    row, offset = design[0], np.zeros(transition.shape[0])
    intercepts = np.empty(horizon)
    for h in range(horizon):
        row = row @ transition
        offset = transition @ offset + state_intercept
        loadings[h] = row
        intercepts[h] = obs_intercept + design[0] @ offset
    out[ready] = states @ loadings.T + intercepts
    return out


def holt_winters_variance(spec: dict[str, Any], horizon: int) -> np.ndarray:
    """Step h's forecast variance over the one-step variance, shape (horizon,).

    The additive ETS(A,Ad,A) formula (Hyndman et al. 2008, class 1): 1 + sum over j < h of
    (alpha + beta (phi + ... + phi^j) + gamma [j a multiple of the season])^2, with
    statsmodels' smoothing parameters in that form (beta <= alpha, gamma <= 1 - alpha).
    """
    params = _check_spec(spec)["params"]
    alpha = params.get("smoothing_level", 0.0)
    beta = params.get("smoothing_trend", 0.0) if spec["trend"] else 0.0
    phi = params.get("damping_trend", 1.0) if spec["damped_trend"] else 1.0
    gamma = params.get("smoothing_seasonal", 0.0) if spec["seasonal_periods"] else 0.0
    season = spec["seasonal_periods"] or 0
    j = np.arange(1, horizon)
    damped = np.cumsum(phi**j)  # phi + ... + phi^j
    seasonal = (j % season == 0) if season else np.zeros(len(j), bool)
    c = alpha + beta * damped + gamma * seasonal
    return np.concatenate([[1.0], 1.0 + np.cumsum(c**2)])


def usable_origins(
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    seasons: int | tuple[int, ...],
    hw_params: list[dict[str, Any]] | None = None,
) -> np.ndarray:
    """Which origins have every baseline input and the truth defined (no NaN), shape (origins,).

    An origin o is usable when, for every target:

    - the truth rows o .. o+H-1 lie in the series and hold no NaN;
    - naive: row o-1 exists and holds no NaN;
    - seasonal naive, for every season m: every row o + h - m*ceil((h+1)/m) exists and holds
      no NaN;
    - Holt-Winters: o comes after the first complete warm-up block (`warmup_rows`) of the
      series, so the initial state is known and uses no row at or after o. Gaps after that
      block are fine: the Kalman filter carries the state across them.

    The warm-up length follows `hw_params` when given (their seasonal periods), otherwise the
    period Holt-Winters would use for the first season. Evaluate the model and every baseline
    on the origins marked True only.
    """
    values = _as_2d(series)
    n_rows = len(values)
    starts = _as_origins(origins, n_rows)
    complete = np.isfinite(values).all(axis=1)
    counts = np.concatenate(([0], np.cumsum(complete, dtype=np.int64)))

    ends = np.minimum(starts + horizon, n_rows)
    keep = (starts >= 1) & (starts + horizon <= n_rows)
    keep &= counts[ends] - counts[starts] == horizon
    keep &= complete[np.clip(starts - 1, 0, None)]
    seasons = (seasons,) if isinstance(seasons, int) else seasons
    for season in seasons:
        rows = starts[:, None] + np.arange(horizon) - seasonal_lags(horizon, season)
        keep &= ((rows >= 0) & complete[np.clip(rows, 0, None)]).all(axis=1)

    warmup = warmup_rows(_hw_season(seasons[0])) if hw_params is None else hw_warmup(hw_params)
    block = _first_complete_block(complete, warmup)
    keep &= starts >= (block + warmup if block is not None else n_rows + 1)
    return keep


def earliest_origin(series: np.ndarray, season: int, hw_params: list[dict[str, Any]]) -> int | None:
    """The first row every baseline can forecast from, gaps after it aside; None if there is none.

    Naive needs one row before the origin, seasonal naive `season` rows, and Holt-Winters the
    end of the series' first complete warm-up block (`warmup_rows`); None when the series has
    no such block.
    """
    values = _as_2d(series)
    complete = np.isfinite(values).all(axis=1)
    warmup = hw_warmup(hw_params)
    block = _first_complete_block(complete, warmup)
    if block is None:
        return None
    return max(1, season, block + warmup)


def hw_warmup(hw_params: list[dict[str, Any]]) -> int:
    """Complete rows the Holt-Winters forecasts of every target need before their first origin."""
    return max((warmup_rows(_check_spec(p)["seasonal_periods"]) for p in hw_params), default=0)


def seasonal_naive_name(seasons: tuple[int, ...], season: int) -> str:
    """The key of a season's seasonal-naive baseline: the first season's is 'seasonal_naive'."""
    return "seasonal_naive" if season == seasons[0] else f"seasonal_naive_{season}"


def all_baselines(
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    seasons: int | tuple[int, ...],
    hw_params: list[dict[str, Any]],
) -> dict[str, np.ndarray]:
    """Naive, seasonal naive for each season and Holt-Winters, each (origins, horizon, targets)."""
    seasons = (seasons,) if isinstance(seasons, int) else seasons
    forecasts = {"naive": naive(series, origins, horizon)}
    for season in seasons:
        name = seasonal_naive_name(seasons, season)
        forecasts[name] = seasonal_naive(series, origins, horizon, season)
    forecasts["holt_winters"] = holt_winters(series, origins, horizon, hw_params)
    return forecasts
