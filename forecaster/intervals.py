"""Prediction intervals: split-conformal half-widths per level, horizon step and target.

The half-width for level l is the k-th smallest absolute error over n calibration origins,
k = ceil((n + 1) l): for exchangeable errors the interval forecast +- half-width then covers
the truth with probability at least l (split conformal prediction). Computed once from origins
the model was not fitted on, stored in bundle.json and applied on the device with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster.errors import UsageError

# Levels calibrated into every bundle; `predict --level` chooses among them.
CALIBRATED_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
# Levels predict writes and evaluate scores unless told otherwise.
DEFAULT_LEVELS = (0.8, 0.95)


def level_name(level: float) -> str:
    """A level as a column suffix and in tables: 0.8 -> '80', 0.975 -> '97.5'."""
    return f"{level * 100:.4g}"


def parse_levels(text: str) -> tuple[float, ...]:
    """'80,95' -> (0.8, 0.95); 'none' -> (). Raises UsageError naming the fix."""
    if text.strip().lower() == "none":
        return ()
    levels = []
    for part in text.split(","):
        try:
            value = float(part.strip().rstrip("%"))
        except ValueError:
            raise UsageError(
                f"--level takes percents separated by commas (e.g. 80,95) or none; got {text!r}"
            ) from None
        if not 0 < value < 100:
            raise UsageError(f"--level {part.strip()} is not a percent between 0 and 100")
        levels.append(round(value / 100, 6))
    return tuple(sorted(set(levels)))


def fewest_origins(level: float) -> int:
    """Calibration origins the conformal rank ceil((n + 1) l) needs to stay within n."""
    return math.ceil(level / (1 - level) - 1e-9)


def conformal_half_widths(errors: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Half-widths (levels, horizon, targets) from absolute errors (origins, horizon, targets).

    Rank ceil((n + 1) l) of the n errors of each step and target; where that rank exceeds n
    (too few origins for the level) the largest error, which may cover less than l.
    """
    errors = np.sort(np.abs(np.asarray(errors, dtype=np.float64)), axis=0)
    n = len(errors)
    if n == 0:
        raise ValueError("no calibration errors")
    ranks = [min(math.ceil((n + 1) * level - 1e-9), n) for level in levels]
    return np.stack([errors[k - 1] for k in ranks])


@dataclass(frozen=True)
class Intervals:
    """Conformal half-widths of a model's forecasts, in original units; bundle.json keeps them."""

    levels: tuple[float, ...]
    half_widths: tuple[tuple[tuple[float, ...], ...], ...]  # per level, per step, per target
    origins: int  # calibration origins (n)
    first_origin: str
    last_origin: str
    source: str  # which forecasts were calibrated, on which part
    short_levels: tuple[float, ...] = ()  # levels with fewer origins than fewest_origins()

    def widths(self, levels: tuple[float, ...] | None = None) -> np.ndarray:
        """Half-widths of `levels` (default: all), shape (levels, horizon, targets)."""
        table = np.asarray(self.half_widths, dtype=np.float64)
        if levels is None:
            return table
        return table[[self.index(level) for level in levels]]

    def index(self, level: float) -> int:
        """Where `level` is in `levels`; UsageError naming the calibrated levels otherwise."""
        for i, known in enumerate(self.levels):
            if abs(known - level) < 1e-9:
                return i
        raise UsageError(
            f"the bundle has intervals for levels {', '.join(map(level_name, self.levels))}, "
            f"not {level_name(level)}; pass --level with some of those"
        )

    def notes(self, levels: tuple[float, ...] | None = None) -> list[str]:
        """What to know before trusting `levels`: too few calibration origins for some."""
        short = [lv for lv in self.short_levels if levels is None or lv in levels]
        return [
            f"the {level_name(lv)}% interval was calibrated on {self.origins} origins, fewer than "
            f"the {fewest_origins(lv)} its conformal rank needs: it is the largest error seen "
            "and may cover less than the level; a longer validation part (--split) fixes it"
            for lv in short
        ]


def calibrate(
    forecast: np.ndarray,
    truth: np.ndarray,
    *,
    first_origin: str,
    last_origin: str,
    source: str,
    levels: tuple[float, ...] = CALIBRATED_LEVELS,
) -> Intervals:
    """Intervals from forecasts and truth (origins, horizon, targets) at calibration origins."""
    widths = conformal_half_widths(np.asarray(truth) - np.asarray(forecast), levels)
    n = len(forecast)
    return Intervals(
        levels=tuple(levels),
        half_widths=tuple(
            tuple(tuple(float(v) for v in step) for step in level) for level in widths
        ),
        origins=n,
        first_origin=first_origin,
        last_origin=last_origin,
        source=source,
        short_levels=tuple(lv for lv in levels if n < fewest_origins(lv)),
    )


@dataclass(frozen=True)
class IntervalForecast:
    """Point forecasts and their intervals, in original units, with the levels named."""

    point: np.ndarray  # (origins, horizon, targets)
    levels: tuple[float, ...]
    lower: np.ndarray  # (levels, origins, horizon, targets)
    upper: np.ndarray

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of one level, each (origins, horizon, targets)."""
        for i, known in enumerate(self.levels):
            if abs(known - level) < 1e-9:
                return self.lower[i], self.upper[i]
        raise KeyError(f"no {level_name(level)}% interval; levels: {self.levels}")


def with_intervals(
    point: np.ndarray, half_widths: np.ndarray, levels: tuple[float, ...]
) -> IntervalForecast:
    """Point forecasts +- half-widths (levels, horizon, targets) or (levels, origins, H, T)."""
    widths = half_widths if half_widths.ndim == 4 else half_widths[:, None]
    return IntervalForecast(point, levels, point[None] - widths, point[None] + widths)


# Recent-error quantiles are recomputed every size / REFRESHES_PER_RING grid rows, so at most a
# tenth of a ring is new between two refreshes.
REFRESHES_PER_RING = 10


def refresh_every(size: int) -> int:
    """Grid rows between two recomputations of the quantiles of a ring of `size` errors."""
    return max(1, size // REFRESHES_PER_RING)


def recent_half_widths(
    errors: np.ndarray,
    origins: np.ndarray,
    base: np.ndarray,
    levels: tuple[float, ...],
    size: int,
    every: int | None = None,
) -> np.ndarray:
    """Half-widths (levels, n, horizon, targets) at n origins from the errors known before each.

    `errors` (n, horizon, targets) are the forecasts' at `origins` (increasing grid rows of the
    first step). An origin's step-h width (h from 1) is the conformal quantile of the last
    `size` step-h errors of origins at least h rows earlier, whose truth it has seen, as of the
    first origin of its stretch of `every` grid rows (default `refresh_every(size)`): what
    rolling `predict --adapt size` computes while streaming (`device.adapt.RecentErrors`),
    here over a whole evaluation at once. Below a level's fewest origins, `base`'s width.
    """
    errors = np.abs(np.asarray(errors, dtype=np.float64))
    origins = np.asarray(origins, dtype=np.int64)
    # The origin whose known errors each one uses: the first of its stretch (slot = origin - 1).
    stretch = (origins - 1) // (refresh_every(size) if every is None else every)
    refresh = origins[np.searchsorted(stretch, stretch)]
    n, horizon, targets = errors.shape
    out = np.broadcast_to(np.asarray(base, np.float64)[:, None], (len(levels), n, horizon, targets))
    out = out.copy()
    padded = np.concatenate([np.full((size, horizon, targets), np.nan), errors])
    # recent[k] holds the `size` errors before position k (NaN where there are fewer).
    recent = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)  # (n+1, H, T, size)
    for step in range(horizon):
        known = np.searchsorted(origins + step + 1, refresh, side="right")  # errors known at each
        ordered = np.sort(recent[known, step], axis=-1)  # (n, T, size), NaN last
        counts = np.minimum(known, size)
        for j, level in enumerate(levels):
            ranks = np.ceil((counts + 1) * level - 1e-9).astype(np.int64)
            ranks = np.minimum(ranks, counts) - 1
            ok = counts >= fewest_origins(level)
            picked = np.take_along_axis(ordered, np.maximum(ranks, 0)[:, None, None], axis=-1)
            out[j, ok, step] = picked[ok, :, 0]
    return out
