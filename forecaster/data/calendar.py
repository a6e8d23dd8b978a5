"""Calendar covariates from timestamps: sin/cos of the time of day, week and year, numpy only.

Training and the on-device predictor both call this, so the model sees the same numbers.
"""

from __future__ import annotations

import numpy as np

PERIOD_SECONDS = {"day": 86_400.0, "week": 7 * 86_400.0, "year": 365.2425 * 86_400.0}


def calendar_parts(step_seconds: float | None) -> tuple[str, ...]:
    """The cycles worth encoding for a sampling step: those spanning several steps."""
    if step_seconds is None:
        return ()
    # A cycle needs at least 4 steps to be seen, and day-of-year is only useful on daily data
    # and coarser (finer series rarely span enough years to learn it).
    parts = [name for name, period in PERIOD_SECONDS.items() if period >= 4 * step_seconds]
    if step_seconds < 86_400.0 and "year" in parts:
        parts.remove("year")
    return tuple(parts)


def calendar_features(times_ns: np.ndarray, parts: tuple[str, ...]) -> np.ndarray:
    """sin and cos of each cycle's phase for timestamps in nanoseconds: shape (..., 2 * parts)."""
    seconds = np.asarray(times_ns, dtype=np.int64) / 1e9
    columns = []
    for part in parts:
        phase = 2 * np.pi * np.mod(seconds, PERIOD_SECONDS[part]) / PERIOD_SECONDS[part]
        columns += [np.sin(phase), np.cos(phase)]
    if not columns:
        return np.empty((*seconds.shape, 0), np.float32)
    return np.stack(columns, axis=-1).astype(np.float32)
