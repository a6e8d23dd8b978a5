"""Exponential smoothing over one window as a fixed linear map, for the decomposition reference.

Holt's damped-trend recursions with fixed parameters are linear in the observations: after a
window of W deseasonalised values z, the forecast h steps ahead is sum_i A[h, i] z_i. The
network's `decomposition` reference is that product plus the seasonal profile ahead, so it runs
inside the model (and the exported file) as one matrix multiply, on the device as in training.

The level starts at the window's mean (a first value alone would carry its noise through a
slowly adapting filter) and the trend at zero; the recursion then reads the window in order.
"""

from __future__ import annotations

import numpy as np


def holt_matrix(alpha: float, beta: float, phi: float, window: int, horizon: int) -> np.ndarray:
    """A (horizon, window) matrix: row h gives the forecast h+1 steps past the window's end.

    `phi` 0 means no trend (simple exponential smoothing). Each row sums to 1, so a constant
    window forecasts that constant.
    """
    level = np.full(window, 1.0 / window)  # the level as weights on z: the window's mean
    trend = np.zeros(window)
    for i in range(window):
        observed = np.zeros(window)
        observed[i] = 1.0
        predicted = level + phi * trend
        new_level = alpha * observed + (1 - alpha) * predicted
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
    damped = np.cumsum(phi ** np.arange(1, horizon + 1))
    return level[None, :] + damped[:, None] * trend[None, :]


def holt_forecast(z: np.ndarray, alpha: float, beta: float, phi: float, horizon: int) -> np.ndarray:
    """The same forecast by running the recursions on the values (for tests and checks)."""
    level, trend = float(np.mean(z)), 0.0
    for value in z:
        predicted = level + phi * trend
        new_level = alpha * value + (1 - alpha) * predicted
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
    return level + np.cumsum(phi ** np.arange(1, horizon + 1)) * trend
