"""The decomposition baseline: seasonal profiles from MSTL/STL, exponential smoothing of the rest.

Fitted on the training part only: statsmodels' STL (one season) or MSTL (several) splits the
longest gap-free stretch of it into trend, seasons and remainder; each season's profile is the
mean of its component over the last `PROFILE_CYCLES` cycles, by phase, centred on zero. What is
left once the profiles are taken out (level, trend and noise) is fitted by Holt's linear method
with a damped trend, or by simple exponential smoothing when that has the lower AIC
(statsmodels' ExponentialSmoothing): the trend part of an AutoETS.

To forecast at every origin without refitting, the profiles stay frozen and the level and trend
are filtered forward once over the whole series, in O(1) per row (the smoothing recursions in
numpy): the forecast from origin o is the state after row o-1 projected h steps with the damped
trend, plus each profile at the phase of row o+h. A refit at every origin (statsforecast's
`MSTL.forward` decomposes again each time) costs about 1.4 s on 3,000 half-hourly rows, 19
minutes for 800 origins; the filter takes milliseconds. tests/test_decomposition.py checks it
against refits on a sample of origins.

Every number it needs is in the spec (plain JSON), so the device can compute it with numpy too.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from forecaster.bundle import SeasonalInputs
from forecaster.errors import ConfigError
from forecaster.evaluation.baselines import longest_complete_run

# The mean over a few cycles keeps the latest shape of a season, without one cycle's noise.
PROFILE_CYCLES = 4
# MSTL's cost grows with the rows; this many cover four weeks of half-hourly data.
MAX_FIT_ROWS = 8_000
# Rows of the series the level must have seen before an origin is scored.
MIN_WARMUP = 10


@dataclass(frozen=True)
class DecompositionSpec:
    """One target's fitted decomposition: profiles by phase and smoothing parameters."""

    seasons: tuple[int, ...]  # the seasons with a profile (others had too few rows)
    profiles: tuple[tuple[float, ...], ...]  # one per season, indexed by grid row % season
    alpha: float  # level smoothing
    beta: float  # trend smoothing (0 without a trend)
    phi: float  # trend damping (0 without a trend)
    trend: bool
    fit_rows: int
    note: str | None = None

    @property
    def method(self) -> str:
        """A short name for tables: 'MSTL + ETS', 'STL + ETS' or 'ETS'."""
        decomposition = "MSTL" if len(self.seasons) > 1 else "STL" if self.seasons else ""
        return f"{decomposition} + ETS" if decomposition else "ETS"

    def seasonal(self, rows: np.ndarray) -> np.ndarray:
        """The sum of the profiles at grid rows `rows` (any shape)."""
        total = np.zeros(np.shape(rows))
        for season, profile in zip(self.seasons, self.profiles, strict=True):
            total += np.asarray(profile)[np.mod(rows, season)]
        return total


def fit_decomposition(train: np.ndarray, seasons: tuple[int, ...]) -> DecompositionSpec:
    """Fit one target on its training part (1-D, NaN in gaps; row 0 is grid row 0)."""
    y = np.asarray(train, dtype=np.float64)
    start, stop = longest_complete_run(y)
    if stop - start < MIN_WARMUP:
        # Too short to fit: the last value carried forward, so tiny files still get scored.
        short = f"the training part has no {MIN_WARMUP} consecutive complete rows: the last value"
        return DecompositionSpec((), (), 1.0, 0.0, 0.0, False, stop - start, short)
    longest = max((s for s in seasons if s > 1), default=1)
    start = max(start, stop - max(MAX_FIT_ROWS, PROFILE_CYCLES * longest))
    part = y[start:stop]
    usable = tuple(s for s in seasons if s > 1 and 2 * s <= len(part))
    note: str | None = None
    if len(usable) < len([s for s in seasons if s > 1]):
        note = "seasons with fewer than two cycles in the training part have no profile"
    profiles = _profiles(part, start, usable)
    spec = DecompositionSpec(usable, profiles, 1.0, 0.0, 0.0, False, len(part), note)
    rest = part - spec.seasonal(np.arange(start, stop))
    alpha, beta, phi, trend = _fit_smoothing(rest)
    return DecompositionSpec(usable, profiles, alpha, beta, phi, trend, len(part), note)


def decomposition_forecast(
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    specs: list[DecompositionSpec],
    first_row: int = 0,
) -> np.ndarray:
    """Forecasts of every origin, shape (origins, horizon, targets); NaN before the warm-up.

    `series` (rows, targets) is on the training grid; `first_row` is its first row's number
    there (0 for the training file itself), so the profiles keep their phase in other files.
    """
    values = np.asarray(series, dtype=np.float64).reshape(len(series), -1)
    starts = np.asarray(origins, dtype=np.int64).reshape(-1)
    out = np.full((len(starts), horizon, values.shape[1]), np.nan)
    if len(starts) == 0 or horizon == 0:
        return out
    if len(specs) != values.shape[1]:
        raise ConfigError(
            f"got decomposition parameters for {len(specs)} target(s) but the series has "
            f"{values.shape[1]}; retrain the run to refit them"
        )
    steps = np.arange(1, horizon + 1)
    for target, spec in enumerate(specs):
        rows = np.arange(len(values)) + first_row
        rest = values[:, target] - spec.seasonal(rows)
        level, trend, seen = _filter(rest, spec)
        last = starts - 1
        ready = (last >= 0) & (seen[np.clip(last, 0, None)] >= MIN_WARMUP)
        damped = np.cumsum(spec.phi**steps) if spec.trend else np.zeros(horizon)
        base = level[last[ready], None] + trend[last[ready], None] * damped[None, :]
        ahead = starts[ready, None] + steps[None, :] - 1 + first_row
        out[ready, :, target] = base + spec.seasonal(ahead)
    return out


def seasonal_inputs(specs: list[DecompositionSpec], horizon: int) -> SeasonalInputs:
    """The numbers the model's `decomposition` reference needs, one spec per target."""
    return SeasonalInputs(
        seasons=tuple(spec.seasons for spec in specs),
        profiles=tuple(spec.profiles for spec in specs),
        smoothing=tuple(
            (spec.alpha, spec.beta if spec.trend else 0.0, spec.phi if spec.trend else 0.0)
            for spec in specs
        ),
        horizon=horizon,
    )


def warmup_rows() -> int:
    """Complete rows the level must have seen before the first scored origin."""
    return MIN_WARMUP


def _profiles(
    part: np.ndarray, start: int, seasons: tuple[int, ...]
) -> tuple[tuple[float, ...], ...]:
    """Each season's component averaged by phase over its last cycles, centred on zero."""
    if not seasons:
        return ()
    from statsmodels.tsa.seasonal import MSTL, STL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on flat or short stretches
        if len(seasons) == 1:
            components = np.asarray(STL(part, period=seasons[0]).fit().seasonal)[:, None]
        else:
            components = np.asarray(MSTL(part, periods=list(seasons)).fit().seasonal)
    profiles = []
    rows = np.arange(start, start + len(part))
    for k, season in enumerate(seasons):
        recent = slice(max(0, len(part) - PROFILE_CYCLES * season), len(part))
        phase = np.mod(rows[recent], season)
        sums = np.bincount(phase, weights=components[recent, k], minlength=season)
        counts = np.bincount(phase, minlength=season)
        profile = sums / np.maximum(counts, 1)
        profiles.append(tuple(float(v) for v in profile - profile.mean()))
    return tuple(profiles)


def _fit_smoothing(rest: np.ndarray) -> tuple[float, float, float, bool]:
    """(alpha, beta, phi, trend) of the better of damped Holt and simple smoothing by AIC."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    if np.ptp(rest) == 0:
        return 1.0, 0.0, 0.0, False
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bounds and convergence warnings on flat sensor data
        for trend in (True, False):
            model = ExponentialSmoothing(
                rest,
                trend="add" if trend else None,
                damped_trend=trend,
                initialization_method="estimated",
            )
            try:
                result = model.fit()
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.isfinite(result.aic):
                fits.append((float(result.aic), trend, result.params))
    if not fits:
        return 1.0, 0.0, 0.0, False
    _, trend, params = min(fits, key=lambda f: f[0])
    alpha = float(params["smoothing_level"])
    beta = float(params.get("smoothing_trend") or 0.0) if trend else 0.0
    phi = float(params.get("damping_trend") or 0.0) if trend else 0.0
    return alpha, beta, phi, trend


def _filter(rest: np.ndarray, spec: DecompositionSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level and trend after each row, and how many complete rows the level has seen.

    Holt's recursions in component form, started at the first complete row (level = that value,
    trend = 0). A missing row carries the forecast forward, as a Kalman filter would.
    """
    n = len(rest)
    level, trend = np.full(n, np.nan), np.zeros(n)
    seen = np.zeros(n, dtype=np.int64)
    a, b, phi = spec.alpha, spec.beta, spec.phi if spec.trend else 0.0
    current_level, current_trend, count = np.nan, 0.0, 0
    for t, value in enumerate(rest.tolist()):
        predicted = current_level + phi * current_trend
        if math.isnan(value):  # a gap row
            current_level = predicted
            current_trend = phi * current_trend
        elif count == 0:
            current_level, current_trend = value, 0.0
            count = 1
        else:
            new_level = a * value + (1 - a) * predicted
            current_trend = b * (new_level - current_level) + (1 - b) * phi * current_trend
            current_level = new_level
            count += 1
        level[t], trend[t], seen[t] = current_level, current_trend, count
    return level, trend, seen
