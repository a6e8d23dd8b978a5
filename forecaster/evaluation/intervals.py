"""Scoring prediction intervals: coverage, mean width and the interval (Winkler) score.

The model's intervals come from its bundle; each baseline's are split-conformal from its own
absolute errors on the validation origins (`forecaster.intervals`), Holt-Winters' also its own
Gaussian ones (`evaluation.rolling`); all are scored on the same test origins. The Winkler
score of a level l = 1 - a interval [lo, hi] for truth y is (hi - lo) + (2/a)(lo - y) if
y < lo, + (2/a)(y - hi) if y > hi: width plus a penalty for each miss, in the target's units;
lower is better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.intervals import level_name


@dataclass(frozen=True)
class IntervalScore:
    """One method's intervals at one level over the test origins, overall and per step."""

    level: float
    coverage: float  # share of truths inside the interval, 0..1
    width: float  # mean (upper - lower), original units
    winkler: float  # mean interval score, original units
    coverage_by_step: tuple[tuple[float, ...], ...] = ()  # per target, per step
    width_by_step: tuple[tuple[float, ...], ...] = ()
    winkler_by_step: tuple[tuple[float, ...], ...] = ()

    @property
    def name(self) -> str:
        """The level as tables name it: '80'."""
        return level_name(self.level)


def winkler(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    """The interval score of every cell: width plus 2/(1 - level) times the miss distance."""
    alpha = 1 - level
    below = np.clip(lower - truth, 0, None)
    above = np.clip(truth - upper, 0, None)
    result: np.ndarray = (upper - lower) + 2 / alpha * (below + above)
    return result


def score_intervals(
    truth: np.ndarray, point: np.ndarray, half_widths: np.ndarray, levels: tuple[float, ...]
) -> list[IntervalScore]:
    """Scores of point +- half_widths (levels, horizon, targets) against truth (n, H, T).

    Half-widths may also vary by origin, (levels, n, horizon, targets), as adapting ones do.
    """
    point = np.asarray(point, dtype=np.float64)
    half_widths = np.asarray(half_widths, dtype=np.float64)
    if half_widths.ndim == 3:
        half_widths = half_widths[:, None]  # the same for every origin
    return score_bounds(truth, point - half_widths, point + half_widths, levels)


def score_bounds(
    truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, levels: tuple[float, ...]
) -> list[IntervalScore]:
    """Scores of intervals [lower, upper], each (levels, n, horizon, targets), against truth."""
    truth = np.asarray(truth, dtype=np.float64)
    scores = []
    for level, low, high in zip(levels, lower, upper, strict=True):
        inside = (truth >= low) & (truth <= high)
        width = np.broadcast_to(high - low, truth.shape)
        cells = winkler(truth, low, high, level)
        scores.append(
            IntervalScore(
                level=level,
                coverage=_mean(inside),
                width=_mean(width),
                winkler=_mean(cells),
                coverage_by_step=_by_step(inside),
                width_by_step=_by_step(width),
                winkler_by_step=_by_step(cells),
            )
        )
    return scores


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


def _by_step(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """Mean over origins, as one tuple of steps per target."""
    if len(values) == 0:
        return ()
    means = np.asarray(values, dtype=np.float64).mean(axis=0)  # (horizon, targets)
    return tuple(tuple(float(v) for v in column) for column in means.T)
