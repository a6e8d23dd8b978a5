"""Rolling-origin evaluation: model and baselines on the same origins, in original units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecaster.evaluation.baselines import all_baselines, usable_origins
from forecaster.evaluation.metrics import score
from forecaster.records import to_plain

BASELINES = ("naive", "seasonal_naive", "holt_winters")
NAMES = {"naive": "naive", "seasonal_naive": "seasonal naive", "holt_winters": "Holt-Winters"}


@dataclass(frozen=True)
class EvaluationSummary:
    """An evaluation's scores and verdict as written to metrics.json and the bundle."""

    origins: int
    skipped_origins: int
    first_origin: str | None
    last_origin: str | None
    season: int
    targets: tuple[str, ...]
    scores: dict[str, dict[str, Any]]  # method -> metrics
    skill_mase: dict[str, float]  # baseline -> model MASE / baseline MASE
    best_baseline: str
    beats_seasonal_naive: bool
    beats_best_baseline: bool
    verdict: str


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
        return min(BASELINES, key=lambda b: float(self.scores[b]["mase"]))

    @property
    def beats_seasonal_naive(self) -> bool:
        """Whether the model's MASE is lower than seasonal naive's."""
        return self.skill("seasonal_naive") < 1.0

    def verdict(self) -> str:
        """One sentence on the model against the baselines."""
        best = self.best_baseline
        ratio = self.skill(best)
        if ratio < 1.0:
            return (
                f"the model beats every baseline: its MASE is {1 - ratio:.0%} lower than "
                f"{NAMES[best]}, the best baseline"
            )
        return (
            f"WARNING: the model does not beat {NAMES[best]} (MASE ratio {ratio:.2f}); "
            "ship the baseline or train longer / tune before relying on the model"
        )

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
            skill_mase={b: self.skill(b) for b in BASELINES},
            best_baseline=self.best_baseline,
            beats_seasonal_naive=self.beats_seasonal_naive,
            beats_best_baseline=self.skill(self.best_baseline) < 1.0,
            verdict=self.verdict(),
        )

    def to_json(self) -> dict[str, Any]:
        """Scores and verdict as plain values for metrics.json and the bundle."""
        plain: dict[str, Any] = to_plain(self.summary())
        return plain


def evaluate_forecasts(
    series: np.ndarray,
    origins: np.ndarray,
    model_forecast: np.ndarray,
    *,
    targets: tuple[str, ...],
    labels: list[str],
    season: int,
    mase_scale: np.ndarray,
    hw_params: list[dict[str, Any]],
) -> Evaluation:
    """Score the model's forecasts and the baselines on the origins where all are defined.

    `series` holds the targets in original units on the time grid (NaN inside long gaps); the
    model's forecast for origin o covers rows o .. o + horizon - 1.
    """
    horizon = model_forecast.shape[1]
    keep = usable_origins(series, origins, horizon, season, hw_params=hw_params)
    origins = origins[keep]
    model_forecast = model_forecast[keep]
    truth = (
        np.stack([series[o : o + horizon] for o in origins])
        if len(origins)
        else np.empty((0, horizon, series.shape[1]))
    )
    forecasts = {"model": model_forecast} | all_baselines(
        series, origins, horizon, season, hw_params
    )
    scores = {name: score(truth, pred, mase_scale) for name, pred in forecasts.items()}
    return Evaluation(
        targets=targets,
        origins=origins,
        labels=[labels[i] for i in np.flatnonzero(keep)],
        truth=truth,
        forecasts=forecasts,
        scores=scores,
        season=season,
        skipped=int((~keep).sum()),
    )
