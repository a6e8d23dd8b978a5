"""Forecast error metrics (MAE, RMSE, sMAPE, MASE) over rolling-origin forecasts, in numpy only.

Forecasts and truth are arrays of shape (origins, horizon, targets) in original units. Each
metric comes in two forms: `<metric>_by_step` gives one value per horizon step and target,
shape (horizon, targets), and `<metric>` gives one overall value over every origin, step and
target. NaN in the inputs propagates to the result: choose the origins with
`forecaster.evaluation.baselines.usable_origins` first, so every method is scored on the same cells.
With no origins at all every value is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METRICS = ("mae", "rmse", "smape", "mase")


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.ndim != 3 or true.shape != pred.shape:
        raise ValueError(
            f"truth and forecast must both have shape (origins, horizon, targets); got "
            f"{true.shape} and {pred.shape}"
        )
    return true, pred


def _mean_over_origins(values: np.ndarray) -> np.ndarray:
    # np.mean of an empty axis warns; no origins means "not measured", i.e. NaN.
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan)
    result: np.ndarray = values.mean(axis=0)
    return result


def _mean_all(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def mae_by_step(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Mean absolute error per horizon step and target, shape (horizon, targets)."""
    true, pred = _errors(y_true, y_pred)
    return _mean_over_origins(np.abs(true - pred))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over every origin, step and target."""
    true, pred = _errors(y_true, y_pred)
    return _mean_all(np.abs(true - pred))


def rmse_by_step(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Root mean squared error per horizon step and target, shape (horizon, targets)."""
    true, pred = _errors(y_true, y_pred)
    return np.sqrt(_mean_over_origins((true - pred) ** 2))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root of the mean squared error over every cell (not the mean of per-step RMSEs)."""
    true, pred = _errors(y_true, y_pred)
    return float(np.sqrt(_mean_all((true - pred) ** 2)))


def _smape_terms(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """2|y - yhat| / (|y| + |yhat|) per cell, with 0/0 (both exactly zero) counted as 0."""
    numerator = 2.0 * np.abs(true - pred)
    denominator = np.abs(true) + np.abs(pred)
    # A zero denominator means y == yhat == 0: a perfect forecast. NaN is not == 0, so it stays.
    zero = denominator == 0
    return np.where(zero, 0.0, numerator / np.where(zero, 1.0, denominator))


def smape_by_step(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Symmetric MAPE in percent (0..200) per horizon step and target, shape (horizon, targets)."""
    true, pred = _errors(y_true, y_pred)
    return 100.0 * _mean_over_origins(_smape_terms(true, pred))


def smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200) over every cell: mean(2|y-yhat|/(|y|+|yhat|)) * 100.

    A cell where truth and forecast are both exactly 0 counts as 0 (a perfect forecast).
    """
    true, pred = _errors(y_true, y_pred)
    return 100.0 * _mean_all(_smape_terms(true, pred))


def _safe_scale(scale: np.ndarray | list[float] | tuple[float, ...]) -> np.ndarray:
    values = np.asarray(scale, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(values) & (values > 0), values, 1.0)


def seasonal_naive_scale(train_series: np.ndarray, season: int) -> np.ndarray:
    """MASE scale per target, shape (targets,): in-sample seasonal-naive MAE on the training part.

    The scale is the mean over t of |y_t - y_{t-season}|, skipping pairs with a NaN (long gaps);
    season 1 gives the naive scale. `train_series` has shape (rows, targets) or (rows,).

    Fallbacks, so that MASE is always finite and the scale can be stored as plain JSON:

    - a training part shorter than one season (no pairs) uses the naive (season 1) MAE instead;
    - a scale that is still 0 or undefined (a constant target, or fewer than two usable rows)
      becomes 1.0, so that target's MASE equals its MAE in original units.
    """
    if season < 1:
        raise ValueError(f"season must be at least 1; got {season}")
    values = np.asarray(train_series, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    scale = _lagged_mae(values, season)
    if season > 1:
        # Too short for one full season: the naive scale is still in the data's own units.
        scale = np.where(np.isnan(scale), _lagged_mae(values, 1), scale)
    return _safe_scale(scale)


def _lagged_mae(values: np.ndarray, lag: int) -> np.ndarray:
    """Mean |y_t - y_{t-lag}| per column over pairs without NaN; NaN where there is no pair."""
    if len(values) <= lag:
        return np.full(values.shape[1], np.nan)
    diffs = np.abs(values[lag:] - values[:-lag])
    valid = ~np.isnan(diffs)
    counts = valid.sum(axis=0)
    totals = np.where(valid, diffs, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def mase_by_step(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean absolute scaled error per horizon step and target, shape (horizon, targets).

    `scale` (targets,) comes from `seasonal_naive_scale`; a 0 or non-finite scale counts as 1.
    """
    return mae_by_step(y_true, y_pred) / _checked_scale(scale, np.shape(y_true))


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error over every cell: the mean over targets of MAE_t / scale_t."""
    true, pred = _errors(y_true, y_pred)
    return _mean_all(np.abs(true - pred) / _checked_scale(scale, true.shape))


def _checked_scale(scale: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    safe = _safe_scale(scale)
    if len(shape) == 3 and safe.shape != (shape[2],):
        raise ValueError(f"scale must have one value per target ({shape[2]}); got {safe.shape}")
    return safe


def score(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Overall MAE, RMSE, sMAPE and MASE, and each per step, as plain floats ready for JSON.

    Returns ``{"mae": float, "rmse": float, "smape": float, "mase": float, "per_step": {metric:
    [[step 1, ..., step H] for each target]}}``: ``per_step[metric][target][step]``.
    """
    by_step = {
        "mae": mae_by_step(y_true, y_pred),
        "rmse": rmse_by_step(y_true, y_pred),
        "smape": smape_by_step(y_true, y_pred),
        "mase": mase_by_step(y_true, y_pred, scale),
    }
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "smape": smape(y_true, y_pred),
        "mase": mase(y_true, y_pred, scale),
        # (horizon, targets) -> one list per target, read per step in the report and plots.
        "per_step": {name: values.T.tolist() for name, values in by_step.items()},
    }


def first_step(scores: dict[str, Any], metric: str = "mase") -> float:
    """The first horizon step of a `score` result's metric, averaged over the targets."""
    return float(np.mean([steps[0] for steps in scores["per_step"][metric]]))
