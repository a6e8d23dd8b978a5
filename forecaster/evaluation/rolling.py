"""Rolling-origin evaluation: model and baselines on the same origins, in original units.

The baselines are naive, seasonal naive for every season the data has, Holt-Winters on the
first season, and the decomposition baseline (MSTL/STL profiles + exponential smoothing); "the
best baseline" is the best of all of them by MASE, whose scale is the first season's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecaster.bundle import Bundle
from forecaster.evaluation.baselines import (
    all_baselines,
    fit_holt_winters,
    holt_winters_variance,
    usable_origins,
)
from forecaster.evaluation.decomposition import (
    DecompositionSpec,
    decomposition_forecast,
    fit_decomposition,
)
from forecaster.evaluation.intervals import IntervalScore, score_intervals
from forecaster.evaluation.metrics import score
from forecaster.intervals import (
    DEFAULT_LEVELS,
    Intervals,
    conformal_half_widths,
    recent_half_widths,
)
from forecaster.records import from_plain, to_plain

NAMES = {
    "model": "model",
    "naive": "naive",
    "seasonal_naive": "seasonal naive",
    "holt_winters": "Holt-Winters",
    "holt_winters_conformal": "Holt-Winters, conformal",
    "model_adapting": "model, adapting",
    "decomposition": "MSTL/STL + ETS",
}
# A model within this share of the best baseline's MASE ties with it.
TIE = 0.02


@dataclass(frozen=True)
class FittedBaselines:
    """The baselines fitted on a run's training part; bundle.json keeps them under `baselines`."""

    seasons: tuple[int, ...]  # seasonal naive for each; the first is Holt-Winters' and MASE's
    holt_winters: list[dict[str, Any]]  # per target, as written by fit_holt_winters
    decomposition: list[DecompositionSpec] = field(default_factory=list)  # per target

    @classmethod
    def fit(cls, train_targets: np.ndarray, seasons: tuple[int, ...]) -> FittedBaselines:
        """Fit Holt-Winters and the decomposition on each target's training part."""
        columns = range(train_targets.shape[1])
        return cls(
            seasons,
            [fit_holt_winters(train_targets[:, i], seasons[0]) for i in columns],
            [fit_decomposition(train_targets[:, i], seasons) for i in columns],
        )

    @classmethod
    def of(cls, bundle: Bundle) -> FittedBaselines:
        """The baselines a run was trained beside (a bundle from before seasons had one)."""
        stored = bundle.baselines
        return cls(
            bundle.data.seasons or (bundle.data.season,),
            stored.get("holt_winters", []),
            [from_plain(DecompositionSpec, d) for d in stored.get("decomposition", [])],
        )

    def to_bundle(self) -> dict[str, Any]:
        """The plain values bundle.json keeps (the seasons live in its data part)."""
        return {"holt_winters": self.holt_winters, "decomposition": to_plain(self.decomposition)}


def method_label(method: str, seasons: tuple[int, ...] = ()) -> str:
    """What tables call a method: 'seasonal naive (24)', 'seasonal naive (168)', 'Holt-Winters'."""
    if method == "seasonal_naive" and seasons:
        return f"seasonal naive ({seasons[0]})"
    if method.startswith("seasonal_naive_"):
        return f"seasonal naive ({method.rsplit('_', 1)[1]})"
    return NAMES.get(method, method)


@dataclass(frozen=True)
class EvaluationSummary:
    """An evaluation's scores and verdict as written to metrics.json and the bundle."""

    origins: int
    skipped_origins: int
    first_origin: str | None
    last_origin: str | None
    season: int  # the first season: the MASE scale's
    targets: tuple[str, ...]
    scores: dict[str, dict[str, Any]]  # method -> metrics
    skill_mase: dict[str, float]  # baseline -> model MASE / baseline MASE
    best_baseline: str
    beats_seasonal_naive: bool
    beats_best_baseline: bool
    verdict: str
    seasons: tuple[int, ...] = ()  # every season with a seasonal-naive baseline
    intervals: dict[str, list[IntervalScore]] = field(default_factory=dict)  # method -> levels
    calibration_origins: int = 0  # validation origins the baselines' intervals came from

    def label(self, method: str) -> str:
        """A method's name in tables."""
        return method_label(method, self.seasons or (self.season,))


@dataclass
class Evaluation:
    """Forecasts, truth and scores of every method over the same origins."""

    targets: tuple[str, ...]
    origins: np.ndarray  # grid rows of the first forecast step
    labels: list[str]  # the origins as timestamps (or row numbers)
    truth: np.ndarray  # (n, horizon, targets), original units
    forecasts: dict[str, np.ndarray]  # method -> (n, horizon, targets)
    scores: dict[str, dict[str, Any]]  # method -> metrics
    season: int
    skipped: int  # origins left out because a baseline's input fell in a gap
    seasons: tuple[int, ...] = field(default=())
    intervals: dict[str, list[IntervalScore]] = field(default_factory=dict)  # method -> levels
    half_widths: dict[str, np.ndarray] = field(default_factory=dict)  # (levels, horizon, targets)
    calibration_origins: int = 0
    # The model's half-widths as predict adapts them, per origin: (levels, n, horizon, targets).
    adapting_widths: np.ndarray | None = None

    @property
    def baselines(self) -> list[str]:
        """Every baseline scored, in table order."""
        return [m for m in self.scores if m != "model"]

    def label(self, method: str) -> str:
        """A method's name in tables."""
        return method_label(method, self.seasons or (self.season,))

    def skill(self, baseline: str, metric: str = "mase") -> float:
        """The model's error divided by a baseline's: below 1 means the model is better.

        A baseline without error (a constant target) gives inf, or 1 when the model has none either.
        """
        numerator = float(self.scores["model"][metric])
        denominator = float(self.scores[baseline][metric])
        if denominator == 0:
            return 1.0 if numerator == 0 else float("inf")
        return numerator / denominator

    @property
    def best_baseline(self) -> str:
        """The baseline with the lowest MASE."""
        return min(self.baselines, key=lambda b: float(self.scores[b]["mase"]))

    @property
    def beats_seasonal_naive(self) -> bool:
        """Whether the model's MASE is lower than seasonal naive's."""
        return self.skill("seasonal_naive") < 1.0

    def verdict(self) -> str:
        """One sentence on the model against the best baseline; within 2% is a tie."""
        return verdict(self.skill(self.best_baseline), self.label(self.best_baseline))

    def summary(self) -> EvaluationSummary:
        """Scores and verdict without the forecasts."""
        return EvaluationSummary(
            origins=len(self.origins),
            skipped_origins=self.skipped,
            first_origin=self.labels[0] if self.labels else None,
            last_origin=self.labels[-1] if self.labels else None,
            season=self.season,
            targets=tuple(self.targets),
            scores=self.scores,
            skill_mase={b: self.skill(b) for b in self.baselines},
            best_baseline=self.best_baseline,
            beats_seasonal_naive=self.beats_seasonal_naive,
            beats_best_baseline=self.skill(self.best_baseline) < 1.0 - TIE,
            verdict=self.verdict(),
            seasons=self.seasons,
            intervals=self.intervals,
            calibration_origins=self.calibration_origins,
        )

    def to_json(self) -> dict[str, Any]:
        """Scores and verdict as plain values for metrics.json and the bundle."""
        plain: dict[str, Any] = to_plain(self.summary())
        return plain


def holt_winters_intervals(
    truth: np.ndarray,
    forecast: np.ndarray,
    hw_params: list[dict[str, Any]],
    levels: tuple[float, ...],
) -> np.ndarray:
    """Holt-Winters' own Gaussian half-widths (levels, horizon, targets).

    z * sigma * sqrt(variance factor of step h), sigma from its one-step errors at the
    calibration origins (the stored fit keeps no innovation variance).
    """
    from statistics import NormalDist

    horizon = truth.shape[1]
    sigma = np.sqrt(np.mean((truth[:, 0] - forecast[:, 0]) ** 2, axis=0))  # (targets,)
    factors = np.stack([holt_winters_variance(p, horizon) for p in hw_params], axis=-1)
    z = np.array([NormalDist().inv_cdf((1 + level) / 2) for level in levels])
    result: np.ndarray = z[:, None, None] * sigma[None, None, :] * np.sqrt(factors)[None]
    return result


def verdict(ratio: float, best: str, what: str = "the model") -> str:
    """One sentence on a MASE ratio to the best baseline (`best`, its label); within 2% ties."""
    if ratio < 1.0 - TIE:
        return (
            f"{what} beats every baseline: its MASE is {1 - ratio:.0%} lower than "
            f"{best}, the best baseline"
        )
    if ratio <= 1.0 + TIE:
        return (
            f"{what} ties with {best}, the best baseline (MASE ratio {ratio:.2f}): "
            "it is no better than that baseline here"
        )
    return (
        f"WARNING: {what} does not beat {best} (MASE ratio {ratio:.2f}); "
        "ship the baseline or train longer / tune before relying on the model"
    )


def evaluate_forecasts(
    series: np.ndarray,
    origins: np.ndarray,
    model_forecast: np.ndarray,
    *,
    targets: tuple[str, ...],
    labels: list[str],
    baselines: FittedBaselines,
    mase_scale: np.ndarray,
    first_row: int = 0,
    model_intervals: Intervals | None = None,
    calibration_origins: np.ndarray | None = None,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    model_calibration_forecast: np.ndarray | None = None,
    adapt: int = 0,
) -> Evaluation:
    """Score the model's forecasts and the baselines on the origins where all are defined.

    `series` holds the targets in original units on the time grid (NaN inside long gaps); the
    model's forecast for origin o covers rows o .. o + horizon - 1. `first_row` places the series
    on the training file's grid (the decomposition's phase). The model's `model_intervals` and
    the baselines' conformal intervals, calibrated on their errors at `calibration_origins` (the
    validation part's), are scored at `levels`. With `adapt`, so are the model's intervals as
    `predict` recalibrates them from the last `adapt` errors (`model_adapting`): over the model's
    forecasts at the calibration origins (`model_calibration_forecast`) and the test origins.
    """
    horizon = model_forecast.shape[1]
    seasons, hw_params = baselines.seasons, baselines.holt_winters
    n_test = len(origins)
    calibration = np.empty(0, np.int64) if calibration_origins is None else calibration_origins
    # Test and calibration origins in one pass: Holt-Winters filters the whole series per call.
    both = np.concatenate([origins, calibration]).astype(np.int64)
    usable = usable_origins(series, both, horizon, seasons, hw_params=hw_params)
    keep, cal_keep = usable[:n_test], usable[n_test:]
    extra: dict[str, np.ndarray] = {}
    cal_extra: dict[str, np.ndarray] = {}
    if baselines.decomposition:
        ahead = decomposition_forecast(series, both, horizon, baselines.decomposition, first_row)
        ready = np.isfinite(ahead).all(axis=(1, 2))
        # Its level needs a few rows to settle; on a series too short for that it sits out.
        if (keep & ready[:n_test]).any():
            keep &= ready[:n_test]
            cal_keep &= ready[n_test:]
            extra["decomposition"] = ahead[:n_test][keep]
            cal_extra["decomposition"] = ahead[n_test:][cal_keep]
    calibration = calibration[cal_keep]
    origins = origins[keep]
    model_forecast = model_forecast[keep]
    truth = (
        np.stack([series[o : o + horizon] for o in origins])
        if len(origins)
        else np.empty((0, horizon, series.shape[1]))
    )
    every = np.concatenate([origins, calibration])
    baseline_ahead = all_baselines(series, every, horizon, seasons, hw_params)
    forecasts = (
        {"model": model_forecast}
        | {k: v[: len(origins)] for k, v in baseline_ahead.items()}
        | extra
    )
    scores = {name: score(truth, pred, mase_scale) for name, pred in forecasts.items()}
    half_widths: dict[str, np.ndarray] = {}
    if model_intervals is not None and levels:
        half_widths["model"] = model_intervals.widths(levels)
    cal_truth = (
        np.stack([series[o : o + horizon] for o in calibration]) if len(calibration) else None
    )
    if cal_truth is not None and levels:
        cal_forecasts = {k: v[len(origins) :] for k, v in baseline_ahead.items()} | cal_extra
        for name, pred in cal_forecasts.items():
            half_widths[name] = conformal_half_widths(cal_truth - pred, levels)
        # Holt-Winters' own intervals replace its conformal ones in the first place.
        conformal = half_widths.pop("holt_winters")
        half_widths["holt_winters"] = holt_winters_intervals(
            cal_truth, cal_forecasts["holt_winters"], hw_params, levels
        )
        half_widths["holt_winters_conformal"] = conformal
    intervals = {
        name: score_intervals(truth, forecasts[name.removesuffix("_conformal")], widths, levels)
        for name, widths in half_widths.items()
        if len(origins)
    }
    adapting_widths = None
    if "model" in half_widths and adapt and len(origins):
        errors, every = truth - model_forecast, origins
        if model_calibration_forecast is not None and cal_truth is not None:
            cal_errors = cal_truth - model_calibration_forecast[cal_keep]
            errors = np.concatenate([cal_errors, errors])
            every = np.concatenate([calibration, origins])
        order = np.argsort(every, kind="stable")
        adapted = recent_half_widths(
            errors[order], every[order], half_widths["model"], levels, adapt
        )
        test = np.argsort(order)[len(every) - len(origins) :]  # the test origins' places
        adapting_widths = adapted[:, test]
        intervals["model_adapting"] = score_intervals(
            truth, model_forecast, adapting_widths, levels
        )
    return Evaluation(
        targets=targets,
        origins=origins,
        labels=[labels[i] for i in np.flatnonzero(keep)],
        truth=truth,
        forecasts=forecasts,
        scores=scores,
        season=seasons[0],
        skipped=int((~keep).sum()),
        seasons=seasons,
        intervals=intervals,
        half_widths=half_widths,
        calibration_origins=len(calibration),
        adapting_widths=adapting_widths,
    )
