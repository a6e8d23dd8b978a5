"""The seasons a series has: candidates from its sampling step, kept when the data shows them.

Sub-daily data may have a day and a week, daily data a week and a year, weekly data a year. A
candidate is kept when the training part holds at least two of its cycles and the cycle shows:

- the first kept season (and any season that is not a multiple of a kept one) when the series,
  less its moving average over one cycle (the trend of a classical decomposition, so a trend or
  a slow wander does not pass for a season), has an autocorrelation of at least
  `MIN_AUTOCORRELATION` at lag m. The M4 benchmarks' test also asks it to exceed its 90% bound
  under no seasonality; that bound rejects weak but real cycles on series with outliers (the
  water-flow sample's day: 0.11 against a bound of 0.16), and a season kept in doubt only adds a
  baseline, so it is not asked;
- a multiple of a kept season (a week over a day) when repeating the value one long season back
  beats repeating it one short season back on the training part by `MIN_GAIN`: hourly temperature
  has a day but not a week, office energy use has both.

`--season 48,336` names them instead. The first season is the one the MASE scale, Holt-Winters
and the `last_seasonal` reference use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.data.load import SensorData
from forecaster.errors import UsageError

MIN_AUTOCORRELATION = 0.1
MIN_GAIN = 0.10
_DAY = pd.Timedelta(days=1)
_WEEK = pd.Timedelta(days=7)
_YEAR_DAYS = 365


@dataclass(frozen=True)
class SeasonCheck:
    """One candidate season and what the training part said about it."""

    steps: int
    name: str  # "day", "week", "year"
    kept: bool
    reason: str


def candidate_seasons(freq: pd.Timedelta | None) -> list[tuple[int, str]]:
    """(steps, name) of the cycles data sampled every `freq` may have, shortest first."""
    if freq is None or freq <= pd.Timedelta(0):
        return []
    found = []
    for period, name in ((_DAY, "day"), (_WEEK, "week")):
        steps, rest = divmod(period, freq)
        if rest == pd.Timedelta(0) and steps >= 2:
            found.append((int(steps), name))
    if freq == _DAY:
        found.append((_YEAR_DAYS, "year"))
    elif freq == _WEEK:
        found.append((52, "year"))
    elif pd.Timedelta(days=28) <= freq <= pd.Timedelta(days=31):
        found.append((12, "year"))
    elif pd.Timedelta(days=89) <= freq <= pd.Timedelta(days=92):
        found.append((4, "year"))
    return found


def detect_seasons(train: np.ndarray, freq: pd.Timedelta | None) -> list[SeasonCheck]:
    """Check every candidate season on the training part's targets, shape (rows, targets).

    NaN rows (long gaps) are skipped by every statistic. A season is kept when any target shows it.
    """
    values = np.asarray(train, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    checks: list[SeasonCheck] = []
    if values.shape[1] == 0:
        return checks
    kept: list[int] = []
    for steps, name in candidate_seasons(freq):
        if len(values) < 2 * steps:
            reason = f"the training part has {len(values)} rows, fewer than two cycles"
            checks.append(SeasonCheck(steps, name, False, reason))
            continue
        shorter = [k for k in kept if steps % k == 0]
        if shorter:
            base = max(shorter)
            gains = [_lag_gain(values[:, i], base, steps) for i in range(values.shape[1])]
            gain = max(gains)
            keep = gain >= MIN_GAIN
            reason = (
                f"the value {steps} steps back is {gain:.0%} closer than {base} steps back"
                if gain > 0
                else f"the value {steps} steps back is no closer than {base} steps back"
            )
        else:
            r = max(_detrended_autocorrelation(values[:, i], steps) for i in range(values.shape[1]))
            keep = r >= MIN_AUTOCORRELATION
            reason = (
                f"autocorrelation at lag {steps} with the trend removed: {r:.2f} "
                f"(at least {MIN_AUTOCORRELATION} shows a season)"
            )
        checks.append(SeasonCheck(steps, name, keep, reason))
        if keep:
            kept.append(steps)
    return checks


def training_seasons(data: SensorData, train_rows: tuple[int, int]) -> list[SeasonCheck]:
    """Every candidate season of `data`, checked on its targets' training rows [start, stop).

    Without targets (`data inspect` with no --target), every input column is checked.
    """
    targets = data.frame[list(data.targets or data.features)].to_numpy(np.float64)
    return detect_seasons(targets[slice(*train_rows)], data.freq)


def kept_seasons(checks: list[SeasonCheck]) -> tuple[int, ...]:
    """The seasons kept, shortest first; (1,) when none, so season 1 means 'no season'."""
    return tuple(c.steps for c in checks if c.kept) or (1,)


def parse_seasons(text: str) -> tuple[int, ...]:
    """'48,336' -> (48, 336), sorted and without repeats; each at least 1."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seasons = sorted({int(p) for p in parts})
    except ValueError:
        raise UsageError(
            f"--season takes whole numbers of steps separated by commas, such as 48,336; "
            f"not {text!r}"
        ) from None
    if not seasons or seasons[0] < 1:
        raise UsageError(f"--season needs steps of 1 or more, such as 24 or 48,336; not {text!r}")
    return tuple(seasons)


def _detrended_autocorrelation(y: np.ndarray, lag: int) -> float:
    """Autocorrelation at `lag` of the series less its centred moving average over `lag` rows.

    Detrending the levels, rather than taking first differences, keeps a smooth cycle that the
    noise of differences would drown.
    """
    finite = np.isfinite(y)
    filled = np.where(finite, y, 0.0)
    window = np.ones(lag)
    counts = np.convolve(finite.astype(np.float64), window, mode="same")
    trend = np.convolve(filled, window, mode="same") / np.maximum(counts, 1)
    usable = finite & (counts == lag)
    n = int(usable.sum())
    if n <= 2 * lag:
        return 0.0
    detrended = np.where(usable, y - trend, 0.0)
    detrended[usable] -= detrended[usable].mean()
    variance = float(detrended @ detrended)
    if variance == 0:
        return 0.0
    return float(detrended[lag:] @ detrended[:-lag]) / variance


def _lag_gain(y: np.ndarray, short: int, long: int) -> float:
    """How much closer the value `long` steps back is than `short` steps back (MAE, 0.1 = 10%)."""
    short_error = np.abs(y[long:] - y[long - short : len(y) - short])
    long_error = np.abs(y[long:] - y[: len(y) - long])
    both = np.isfinite(short_error) & np.isfinite(long_error)
    if not both.any():
        return 0.0
    base = float(short_error[both].mean())
    return 0.0 if base == 0 else 1.0 - float(long_error[both].mean()) / base
