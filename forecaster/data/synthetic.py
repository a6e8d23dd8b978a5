"""Deterministic synthetic multichannel sensor series for tests, demos and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = ("temp", "humidity", "load")


def make_series(
    rows: int = 1000,
    *,
    freq: str = "1h",
    seed: int = 0,
    trend: float = 0.0,
    noise: float = 0.1,
    gaps: int = 0,
    gap_length: int = 6,
    nan_fraction: float = 0.0,
    level_shift: float = 0.0,
    shift_at: float = 0.8,
    weekend: float = 0.0,
    start: str = "2024-01-01",
) -> pd.DataFrame:
    """A frame with a `time` column and three channels with daily seasonality.

    `trend` is added to `temp` per day; `level_shift` is added to `temp` from the `shift_at`
    fraction of the rows on; `weekend` is added to `temp` and `load` on Saturdays and Sundays;
    `gaps` removes that many runs of `gap_length` rows; `nan_fraction` blanks cells at random.
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=rows, freq=freq)
    hours = (time - time[0]) / pd.Timedelta("1h")
    day = 2 * np.pi * np.asarray(hours) / 24.0
    week = day / 7.0
    temp = 20 + 5 * np.sin(day) + trend * np.asarray(hours) / 24.0 + rng.normal(0, noise, rows)
    temp[int(rows * shift_at) :] += level_shift
    is_weekend = np.asarray(time.day_of_week >= 5)
    temp += weekend * is_weekend
    # Humidity follows temperature with a lag, so the inputs carry information about the target.
    humidity = 60 - 2.0 * (temp - 20) + 3 * np.cos(day - 0.5) + rng.normal(0, noise * 2, rows)
    load = 50 + 10 * np.sin(day - 1.0) + 5 * np.sin(week) + rng.normal(0, noise * 5, rows)
    load += weekend * is_weekend
    frame = pd.DataFrame({"time": time, "temp": temp, "humidity": humidity, "load": load})
    frame[list(CHANNELS)] = frame[list(CHANNELS)].round(4)
    if nan_fraction > 0:
        for col in CHANNELS:
            hit = rng.random(rows) < nan_fraction
            frame.loc[hit, col] = np.nan
    if gaps > 0:
        starts = np.sort(rng.choice(np.arange(1, rows - gap_length - 1), size=gaps, replace=False))
        drop = np.unique(np.concatenate([np.arange(s, s + gap_length) for s in starts]))
        frame = frame[~np.isin(np.arange(rows), drop)].reset_index(drop=True)
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a generated frame as a sensor CSV with ISO timestamps."""
    path = Path(path)
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path
