"""Seasonal-lag input channels: each row carries the value one season before the step a horizon
ahead, so a window shorter than a season still sees last season's value of every forecast step.

numpy only: training and the on-device predictor both call this, so the model sees the same
numbers.
"""

from __future__ import annotations

import numpy as np


def lag_seasons(seasons: tuple[int, ...], window: int, horizon: int) -> tuple[int, ...]:
    """The seasons worth a lag channel: at least the horizon (so the value a season before every
    forecast step is already observed) and longer than the window (which holds the shorter ones).
    """
    return tuple(s for s in seasons if s >= horizon and s > window)


def history_rows(window: int, horizon: int, lags: tuple[int, ...]) -> int:
    """Rows a forecast reads before its origin: the window, or more for the longest lag."""
    return window + max((lag - horizon for lag in lags), default=0)


def lag_channels(targets: np.ndarray, lags: tuple[int, ...], horizon: int) -> np.ndarray:
    """For rows (..., rows, targets): row r gets each target at r + horizon - lag, NaN before the
    first row; channels lag-major, (..., rows, len(lags) * targets), float32."""
    targets = np.asarray(targets, dtype=np.float32)
    rows = targets.shape[-2]
    out = np.full((*targets.shape[:-1], len(lags), targets.shape[-1]), np.nan, np.float32)
    for j, lag in enumerate(lags):
        shift = lag - horizon  # >= 0: lag_seasons keeps seasons of at least the horizon
        if shift < rows:
            out[..., shift:, j, :] = targets[..., : rows - shift, :]
    return out.reshape(*targets.shape[:-1], len(lags) * targets.shape[-1])
