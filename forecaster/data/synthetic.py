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


def make_fleet(
    n_series: int,
    rows: int,
    *,
    seed: int,
    freq: str = "1h",
    start: str = "2024-01-01",
    humidity: bool = False,
    short: int = 0,
    short_rows: int = 24,
    gaps: int = 0,
    gap_length: int = 6,
    nan_fraction: float = 0.0,
) -> pd.DataFrame:
    """A long frame `time,sensor,value` of `n_series` sensors of one kind, sorted by time.

    Each series has its own level, daily amplitude and phase, trend and noise; about a third also
    have a weekly cycle. `humidity` adds a second channel that falls as `value` rises, an hour
    late. `short` series (picked by the seed) keep only their last `short_rows` rows, as sensors
    installed late; `gaps` runs of `gap_length` rows are removed from every series and
    `nan_fraction` of the cells blanked. Ids are `s0`, `s1`, ... padded to one width.
    """
    if n_series < 1 or rows < 1:
        raise ValueError(f"a fleet needs at least one series and one row, not {n_series}x{rows}")
    if not 0 <= short <= n_series:
        raise ValueError(f"short must be between 0 and n_series={n_series}, not {short}")
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=rows, freq=freq)
    hours = np.asarray((time - time[0]) / pd.Timedelta("1h"))
    days = hours / 24.0

    # One parameter per series, as a column, so that the whole fleet is one broadcast.
    def draw(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=(n_series, 1))

    level, amplitude, phase = draw(5, 35), draw(1, 8), draw(0, 2 * np.pi)
    trend, noise = rng.normal(0, 0.03, size=(n_series, 1)), draw(0.05, 0.5)
    weekly = draw(1, 3) * (rng.random((n_series, 1)) < 1 / 3)
    day = 2 * np.pi * days
    season = amplitude * np.sin(day + phase) + weekly * np.sin(day / 7 + 2 * phase)
    value = level + season + trend * days + noise * rng.standard_normal((n_series, rows))
    channels = {"value": value}
    if humidity:
        late = np.concatenate([season[:, :1], season[:, :-1]], axis=1)  # one step behind
        channels["humidity"] = 60 - 2 * late + 2 * noise * rng.standard_normal((n_series, rows))

    keep = np.ones((n_series, rows), dtype=bool)
    if short:
        keep[rng.choice(n_series, size=short, replace=False), : max(rows - short_rows, 0)] = False
    if gaps and rows > gap_length + 2:
        starts = rng.integers(1, rows - gap_length - 1, size=(n_series, gaps))
        hit = starts[:, :, None] + np.arange(gap_length)
        keep[np.arange(n_series)[:, None, None], hit] = False
    for values in channels.values():
        values[rng.random((n_series, rows)) < nan_fraction] = np.nan

    width = len(str(n_series - 1))
    ids = np.array([f"s{i:0{width}d}" for i in range(n_series)], dtype=object)
    # Time-major (every sensor's reading of one step, then the next step), as a gateway logs.
    mask = keep.T.ravel()
    frame = pd.DataFrame(
        {
            "time": np.repeat(time.to_numpy(), n_series)[mask],
            "sensor": np.tile(ids, rows)[mask],
            **{name: values.T.ravel()[mask].round(4) for name, values in channels.items()},
        }
    )
    return frame
