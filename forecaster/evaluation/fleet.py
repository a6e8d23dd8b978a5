"""A global model's evaluation over a fleet: each series' scores, their spread, and pooled figures.

Each series is evaluated on its own (`evaluation.rolling`: its own baselines, its own MASE
scale, its original units); this module turns those per-series evaluations into the fleet's
figures. MASE is unitless, so it compares and pools across series; MAE is in each series' own
units, so it is kept per series, and pooled over every origin only as a figure that means
something when all the series measure the same quantity in the same units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from forecaster.errors import DataError
from forecaster.evaluation.rolling import TIE, Evaluation, method_label
from forecaster.intervals import level_name
from forecaster.layout import FLEET_METRICS
from forecaster.records import read_record, write_record

Outcome = Literal["win", "tie", "loss"]
# The per-series best baseline, shown beside the methods in tables and the picture.
BEST_BASELINE = "best_baseline"
BEST_BASELINE_LABEL = "best baseline (per series)"


def outcome_of(ratio: float) -> Outcome:
    """The model against a baseline from their MASE ratio: within 2% is a tie, as in verdicts."""
    if ratio < 1.0 - TIE:
        return "win"
    return "tie" if ratio <= 1.0 + TIE else "loss"


@dataclass(frozen=True)
class SeriesScore:
    """One series' scores: every method's MASE and MAE on that series' test origins."""

    id: str
    origins: int
    mase: dict[str, float]  # method -> MASE, scaled by this series' own training part
    mae: dict[str, float]  # method -> MAE, in this series' units
    best_baseline: str  # this series' baseline with the lowest MASE
    ratio: float  # model MASE / best baseline's MASE; below 1 the model is better
    outcome: Outcome  # against the best baseline, with the verdicts' 2% tie rule
    best: str  # the method (model included) with the lowest MASE
    coverage: dict[str, float] = field(default_factory=dict)  # level name -> model's coverage

    @property
    def best_baseline_mase(self) -> float:
        """The MASE of this series' best baseline."""
        return self.mase[self.best_baseline]


@dataclass(frozen=True)
class Spread:
    """How one method's per-series MASE is spread over the fleet."""

    method: str
    label: str
    series: int  # series this method was scored on
    median: float
    q1: float  # first quartile
    q3: float  # third quartile
    mean: float  # mean of the per-series MASEs: every series counts once
    pooled: float  # scaled errors pooled over every origin: series weighted by their origins
    lowest: float
    highest: float
    best_on: int = 0  # series where this method has the lowest MASE of all

    @classmethod
    def of(
        cls, method: str, label: str, values: Sequence[float], origins: Sequence[int], best_on: int
    ) -> Spread:
        """The spread of `values`, one MASE per series, each over that many `origins`."""
        array = np.asarray(values, dtype=np.float64)
        if not array.size:  # a baseline that ran on no series: nothing measured
            nan = math.nan
            return cls(method, label, 0, nan, nan, nan, nan, nan, nan, nan, best_on)
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        return cls(
            method=method,
            label=label,
            series=len(array),
            median=float(median),
            q1=float(q1),
            q3=float(q3),
            mean=float(array.mean()),
            pooled=float(np.average(array, weights=np.asarray(origins, dtype=np.float64))),
            lowest=float(array.min()),
            highest=float(array.max()),
            best_on=best_on,
        )


@dataclass(frozen=True)
class PooledCoverage:
    """One method's intervals at one level, their coverage pooled over every series' truths."""

    level: float
    coverage: float  # share of all the fleet's test truths inside the interval
    series: int  # series scored at this level
    lowest: float  # the lowest coverage of one series
    lowest_series: str

    @property
    def name(self) -> str:
        """The level as tables name it: '80'."""
        return level_name(self.level)


@dataclass(frozen=True)
class WorstSeries:
    """A series named in the report: where the model does worst, by one measure."""

    id: str
    model_mase: float
    best_baseline: str
    best_baseline_label: str
    best_baseline_mase: float
    ratio: float  # model MASE / best baseline's MASE

    def describe(self) -> str:
        """The series and its numbers in one phrase, for reports and the terminal."""
        return (
            f"series '{self.id}', {self.model_mase:.3f} against {self.best_baseline_mase:.3f} "
            f"for {self.best_baseline_label} (ratio {self.ratio:.2f})"
        )


@dataclass(frozen=True)
class FleetEvaluation:
    """A global model over many series: per-series scores, their spread, wins and the worst."""

    series: tuple[SeriesScore, ...]
    methods: tuple[str, ...]  # model first, then every baseline scored on some series
    labels: dict[str, str]  # method -> its name in tables
    spreads: dict[str, Spread]  # method (and BEST_BASELINE) -> spread of per-series MASE
    wins: int  # series where the model beats its own best baseline by more than 2%
    ties: int
    losses: int
    worst_mase: WorstSeries  # the highest model MASE
    worst_ratio: WorstSeries  # the largest model MASE / best baseline MASE
    pooled_mae: dict[str, float]  # method -> MAE over every origin of every series (see below)
    coverage: dict[str, list[PooledCoverage]] = field(default_factory=dict)  # method -> levels
    unscored: tuple[str, ...] = ()  # series with no test origin to score

    @classmethod
    def from_series(cls, ids: Sequence[str], evaluations: Sequence[Evaluation]) -> FleetEvaluation:
        """The fleet's figures from one evaluation per series, in the same order as `ids`."""
        if len(ids) != len(evaluations):
            raise ValueError(f"{len(ids)} series ids for {len(evaluations)} evaluations")
        if len(set(ids)) != len(ids):
            raise ValueError("each series id must appear once")
        has_origins = [len(e.origins) > 0 for e in evaluations]
        scored = [(i, e) for i, e, ok in zip(ids, evaluations, has_origins, strict=True) if ok]
        unscored = tuple(i for i, ok in zip(ids, has_origins, strict=True) if not ok)
        if not scored:
            raise DataError(
                f"none of the {len(ids)} series has a test origin to score; use longer "
                "series or a smaller --window / --horizon"
            )
        series = tuple(_series_score(i, e) for i, e in scored)
        methods = _methods([e for _, e in scored])
        labels = {m: _label(m, [e for _, e in scored]) for m in methods}
        spreads = {m: _spread(m, labels[m], series) for m in methods}
        spreads[BEST_BASELINE] = Spread.of(
            BEST_BASELINE,
            BEST_BASELINE_LABEL,
            [s.best_baseline_mase for s in series],
            [s.origins for s in series],
            best_on=sum(s.best != "model" for s in series),
        )
        outcomes = [s.outcome for s in series]
        return cls(
            series=series,
            methods=methods,
            labels=labels,
            spreads=spreads,
            wins=outcomes.count("win"),
            ties=outcomes.count("tie"),
            losses=outcomes.count("loss"),
            worst_mase=_worst(max(series, key=lambda s: _finite(s.mase["model"])), labels),
            worst_ratio=_worst(max(series, key=lambda s: _finite(s.ratio)), labels),
            pooled_mae={m: _pooled_mae(m, [e for _, e in scored]) for m in methods},
            coverage=_coverage([(i, e) for i, e in scored]),
            unscored=unscored,
        )

    @property
    def model(self) -> Spread:
        """The spread of the model's per-series MASE."""
        return self.spreads["model"]

    @property
    def best_baseline(self) -> Spread:
        """The spread of each series' best baseline's MASE."""
        return self.spreads[BEST_BASELINE]

    @property
    def leading_baseline(self) -> str:
        """The baseline with the lowest median MASE over the series."""
        baselines = [m for m in self.methods if m != "model" and self.spreads[m].series]
        return min(baselines, key=lambda m: self.spreads[m].median)

    @property
    def ratio(self) -> float:
        """The model's median MASE over the median of the per-series best baselines'."""
        best = self.best_baseline.median
        if best == 0:
            return 1.0 if self.model.median == 0 else math.inf
        return self.model.median / best

    @property
    def win_share(self) -> float:
        """The share of series where the model beats its best baseline (0..1)."""
        return self.wins / len(self.series)

    def label(self, method: str) -> str:
        """A method's name in tables."""
        if method == BEST_BASELINE:
            return BEST_BASELINE_LABEL
        return self.labels.get(method) or method_label(method)

    def verdict(self) -> str:
        """One sentence on the fleet: median model MASE against the per-series best baselines'."""
        n = len(self.series)
        medians = f"median MASE {self.model.median:.3f} vs {self.best_baseline.median:.3f}"
        wins = (
            f"it beats its series' best baseline on {self.wins} of {n} series "
            f"({self.win_share:.0%})"
        )
        ratio = self.ratio
        if outcome_of(ratio) == "win":
            return (
                f"over {n} series the model beats each series' best baseline: its median MASE "
                f"is {1 - ratio:.0%} lower ({medians}); {wins}"
            )
        if outcome_of(ratio) == "tie":
            return (
                f"over {n} series the model ties with each series' best baseline ({medians}, "
                f"ratio {ratio:.2f}): it is no better than the baselines here; {wins}"
            )
        return (
            f"WARNING: over {n} series the model does not beat each series' best baseline "
            f"({medians}, ratio {ratio:.2f}); {wins}. Train longer or tune before relying on it"
        )

    def ranked(self, count: int | None = None) -> list[SeriesScore]:
        """The series, the model's largest loss to its best baseline first."""
        ordered = sorted(self.series, key=lambda s: -_finite(s.ratio))
        return ordered if count is None else ordered[:count]

    def write(self, directory: Path) -> Path:
        """Write fleet_metrics.json into `directory` (atomically)."""
        path = directory / FLEET_METRICS
        write_record(path, self)
        return path

    @classmethod
    def read(cls, directory: Path) -> FleetEvaluation:
        """Read the fleet_metrics.json written by `write`."""
        return read_record(directory / FLEET_METRICS, cls)


def _finite(value: float) -> float:
    """NaN sorts as nothing; infinity (a baseline without error) stays the largest."""
    return -math.inf if math.isnan(value) else value


def _series_score(series_id: str, evaluation: Evaluation) -> SeriesScore:
    mase = {m: float(s["mase"]) for m, s in evaluation.scores.items()}
    best_baseline = evaluation.best_baseline
    ratio = evaluation.skill(best_baseline)
    model_intervals = evaluation.intervals.get("model", [])
    return SeriesScore(
        id=series_id,
        origins=len(evaluation.origins),
        mase=mase,
        mae={m: float(s["mae"]) for m, s in evaluation.scores.items()},
        best_baseline=best_baseline,
        ratio=ratio,
        outcome=outcome_of(ratio),
        best=min(mase, key=lambda m: math.inf if math.isnan(mase[m]) else mase[m]),
        coverage={score.name: score.coverage for score in model_intervals},
    )


def _methods(evaluations: Sequence[Evaluation]) -> tuple[str, ...]:
    """The model, then each baseline in the order the first series that has it scores it."""
    order = ["model"]
    for evaluation in evaluations:
        order += [m for m in evaluation.scores if m not in order]
    return tuple(order)


def _label(method: str, evaluations: Sequence[Evaluation]) -> str:
    """The method's label; a generic one when series found different seasons for it."""
    found = {e.label(method) for e in evaluations if method in e.scores}
    return found.pop() if len(found) == 1 else method_label(method)


def _spread(method: str, label: str, series: Sequence[SeriesScore]) -> Spread:
    having = [s for s in series if method in s.mase and not math.isnan(s.mase[method])]
    return Spread.of(
        method,
        label,
        [s.mase[method] for s in having],
        [s.origins for s in having],
        best_on=sum(s.best == method for s in having),
    )


def _worst(score: SeriesScore, labels: dict[str, str]) -> WorstSeries:
    return WorstSeries(
        id=score.id,
        model_mase=score.mase["model"],
        best_baseline=score.best_baseline,
        best_baseline_label=labels[score.best_baseline],
        best_baseline_mase=score.best_baseline_mase,
        ratio=score.ratio,
    )


def _pooled_mae(method: str, evaluations: Sequence[Evaluation]) -> float:
    """Absolute errors over every origin, step and target of every series that has `method`.

    In the target's units only when every series measures the same quantity in the same units.
    """
    errors = [
        np.abs(e.truth - e.forecasts[method]).ravel() for e in evaluations if method in e.forecasts
    ]
    values = np.concatenate(errors) if errors else np.empty(0)
    return float(values.mean()) if values.size else math.nan


def _coverage(scored: Sequence[tuple[str, Evaluation]]) -> dict[str, list[PooledCoverage]]:
    """Per method and level: the share of every series' test truths inside the intervals."""
    found: dict[tuple[str, float], list[tuple[float, int, str]]] = {}
    for series_id, evaluation in scored:
        for method, scores in evaluation.intervals.items():
            for score in scores:
                entry = (score.coverage, int(evaluation.truth.size), series_id)
                found.setdefault((method, score.level), []).append(entry)
    pooled: dict[str, list[PooledCoverage]] = {}
    for (method, level), each in found.items():
        coverages = np.array([c for c, _, _ in each])
        # Every series' coverage weighted by its cells: the share of all the truths covered.
        cells = np.array([n for _, n, _ in each], dtype=np.float64)
        lowest = min(each, key=lambda e: e[0])
        pooled.setdefault(method, []).append(
            PooledCoverage(
                level=level,
                coverage=float(np.average(coverages, weights=cells)),
                series=len(each),
                lowest=lowest[0],
                lowest_series=lowest[2],
            )
        )
    return {m: sorted(levels, key=lambda c: c.level) for m, levels in pooled.items()}
