"""A global model's evaluation over a fleet: per-series scores, their spread, wins and the worst.

Each series is scored by the real `evaluate_forecasts` with its own fitted baselines; the
model's forecast is the truth plus an offset set to a known multiple of that series' best
baseline's MAE, so which series the model wins, ties or loses on is known in advance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.errors import DataError
from forecaster.evaluation.fleet import BEST_BASELINE, FleetEvaluation
from forecaster.evaluation.rolling import Evaluation

SEASON, HORIZON, TRAIN = 12, 4, 80
# id -> (model MAE / best baseline MAE, test origins, MASE scale divided by)
PLAN = {
    "a": (0.5, 20, 20.0),  # a win, but a small scale makes its MASE the fleet's highest
    "b": (0.7, 20, 1.0),
    "c": (1.01, 20, 1.0),  # within 2%: a tie
    "d": (1.5, 10, 1.0),
    "e": (3.0, 20, 1.0),  # the largest loss
}


def evaluate_series(
    seed: int, factor: float, n_origins: int, shrink: float, covered_80: bool
) -> Evaluation:
    from forecaster.evaluation.baselines import fit_holt_winters
    from forecaster.evaluation.metrics import seasonal_naive_scale
    from forecaster.evaluation.rolling import FittedBaselines, evaluate_forecasts
    from forecaster.intervals import Intervals

    rng = np.random.default_rng(seed)
    rows = np.arange(120)
    series = (10 + 3 * np.sin(2 * np.pi * rows / SEASON) + rng.normal(0, 0.4, 120))[:, None]
    baselines = FittedBaselines((SEASON,), [fit_holt_winters(series[:TRAIN, 0], SEASON)])
    scale = seasonal_naive_scale(series[:TRAIN], SEASON) / shrink
    origins = np.arange(TRAIN + 4, TRAIN + 4 + n_origins)
    truth = np.stack([series[o : o + HORIZON] for o in origins])

    def run(offset: float) -> Evaluation:
        # Covered iff the half-width reaches the offset: at 80% on some series, at 95% on all.
        width_80 = 2 * offset if covered_80 else offset / 2
        half = (((width_80,),) * HORIZON, ((2 * offset,),) * HORIZON)
        return evaluate_forecasts(
            series,
            origins,
            truth + offset,
            targets=("y",),
            labels=[str(o) for o in origins],
            baselines=baselines,
            mase_scale=scale,
            model_intervals=Intervals((0.8, 0.95), half, 10, "", "", "test"),
        )

    # The baselines do not depend on the model's forecast: score once to learn the best one.
    probe = run(1.0)
    best_mae = probe.scores[probe.best_baseline]["mae"]
    return run(factor * best_mae)


@pytest.fixture(scope="module")
def evaluations() -> dict[str, Evaluation]:
    return {
        sid: evaluate_series(seed, factor, n, shrink, covered_80=sid in "abc")
        for seed, (sid, (factor, n, shrink)) in enumerate(PLAN.items())
    }


@pytest.fixture(scope="module")
def fleet(evaluations) -> FleetEvaluation:
    return FleetEvaluation.from_series(list(evaluations), list(evaluations.values()))


def test_each_series_is_won_tied_or_lost_against_its_own_best_baseline(fleet):
    by_id = {s.id: s for s in fleet.series}
    for sid, (factor, origins, _) in PLAN.items():
        assert by_id[sid].ratio == pytest.approx(factor)
        assert by_id[sid].origins == origins
    assert [s.outcome for s in fleet.series] == ["win", "win", "tie", "loss", "loss"]
    assert (fleet.wins, fleet.ties, fleet.losses) == (2, 1, 2)
    assert fleet.win_share == pytest.approx(0.4)
    assert by_id["a"].best == "model" and by_id["e"].best == by_id["e"].best_baseline


def test_the_spread_of_per_series_mase_and_the_verdict(fleet, evaluations):
    best = {
        sid: min(v["mase"] for m, v in e.scores.items() if m != "model")
        for sid, e in evaluations.items()
    }
    model = np.array([PLAN[sid][0] * best[sid] for sid in PLAN])  # ratio x best, by construction
    spread = fleet.spreads["model"]
    assert spread.median == pytest.approx(np.median(model))
    assert (spread.q1, spread.q3) == pytest.approx(tuple(np.percentile(model, [25, 75])))
    assert spread.mean == pytest.approx(model.mean())
    weights = [PLAN[sid][1] for sid in PLAN]
    assert spread.pooled == pytest.approx(np.average(model, weights=weights))
    assert spread.series == 5 and spread.best_on == 2  # a and b
    assert fleet.best_baseline.median == pytest.approx(np.median(list(best.values())))
    assert fleet.ratio == pytest.approx(np.median(model) / np.median(list(best.values())))
    assert fleet.spreads[BEST_BASELINE].best_on == 3
    assert sum(fleet.spreads[m].best_on for m in fleet.methods) == 5
    assert fleet.labels["seasonal_naive"] == "seasonal naive (12)"
    assert fleet.methods[0] == "model" and "holt_winters" in fleet.methods
    assert fleet.verdict().startswith(
        "WARNING: over 5 series the model does not beat each series' best baseline (median MASE "
        f"{np.median(model):.3f} vs {np.median(list(best.values())):.3f}, ratio "
        f"{fleet.ratio:.2f}); it beats its series' best baseline on 2 of 5 series (40%)"
    )


def scored(model: float, holt_winters: float) -> Evaluation:
    """An evaluation of scores only (no forecasts), for the verdict's wording."""
    scores = {"model": model, "naive": 2.0, "holt_winters": holt_winters}
    return Evaluation(
        ("y",),
        np.arange(2),
        ["0", "1"],
        np.zeros((2, 1, 1)),
        {m: np.zeros((2, 1, 1)) for m in scores},
        {m: {"mase": v, "mae": v} for m, v in scores.items()},
        SEASON,
        0,
    )


@pytest.mark.parametrize(
    ("models", "start"),
    [
        (
            (0.5, 0.5, 1.5),
            "over 3 series the model beats each series' best baseline: its median "
            "MASE is 50% lower (median MASE 0.500 vs 1.000); it beats its series' best baseline "
            "on 2 of 3 series (67%)",
        ),
        (
            (0.5, 1.01, 1.5),
            "over 3 series the model ties with each series' best baseline "
            "(median MASE 1.010 vs 1.000, ratio 1.01)",
        ),
        ((0.5, 1.03, 1.5), "WARNING: over 3 series the model does not beat"),
    ],
)
def test_the_verdict_compares_the_medians_with_the_two_percent_tie(models, start):
    fleet = FleetEvaluation.from_series(["x", "y", "z"], [scored(m, 1.0) for m in models])
    assert fleet.verdict().startswith(start)


def test_the_worst_series_are_named(fleet, evaluations):
    assert fleet.worst_mase.id == "a"  # its own tiny scale: the highest MASE, yet a win
    assert fleet.worst_mase.model_mase == pytest.approx(evaluations["a"].scores["model"]["mase"])
    assert fleet.worst_ratio.id == "e"
    assert fleet.worst_ratio.ratio == pytest.approx(3.0)
    assert fleet.worst_ratio.best_baseline == evaluations["e"].best_baseline
    assert [s.id for s in fleet.ranked(3)] == ["e", "d", "c"]


def test_coverage_is_pooled_over_every_series_truths(fleet):
    model = {c.name: c for c in fleet.coverage["model"]}
    # Covered at 80% on a, b, c (60 origins), not on d (10) and e (20): truths, not series.
    assert model["80"].coverage == pytest.approx(60 / 90)
    assert model["80"].lowest == 0.0 and model["80"].lowest_series == "d"
    assert model["95"].coverage == 1.0 and model["95"].series == 5
    assert fleet.series[0].coverage == {"80": 1.0, "95": 1.0}


def test_pooled_mae_is_over_every_origin(fleet, evaluations):
    errors = np.concatenate(
        [np.abs(e.truth - e.forecasts["model"]).ravel() for e in evaluations.values()]
    )
    assert fleet.pooled_mae["model"] == pytest.approx(errors.mean())


def test_a_series_without_origins_is_listed_not_scored(evaluations):
    empty = Evaluation(
        ("y",), np.empty(0, np.int64), [], np.empty((0, HORIZON, 1)), {}, {}, SEASON, 0
    )
    fleet = FleetEvaluation.from_series(["a", "gone"], [evaluations["a"], empty])
    assert fleet.unscored == ("gone",) and [s.id for s in fleet.series] == ["a"]
    with pytest.raises(DataError, match="none of the 1 series has a test origin"):
        FleetEvaluation.from_series(["gone"], [empty])


def test_the_fleet_metrics_round_trip_as_strict_json(fleet, tmp_path):
    path = fleet.write(tmp_path)
    assert path.name == "fleet_metrics.json"

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    plain = json.loads(path.read_text(), parse_constant=refuse)
    assert plain["worst_ratio"]["id"] == "e"
    assert FleetEvaluation.read(tmp_path) == fleet


def test_the_fleet_report_has_the_picture_table_wins_and_worst(fleet, tmp_path):
    from forecaster.report.document import Report
    from forecaster.report.fleet import add_fleet_section, write_fleet_report

    md = write_fleet_report(tmp_path, fleet)
    text = md.read_text()
    assert md.name == "fleet.md"
    picture = tmp_path / "fleet_mase.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](fleet_mase.png)" in text
    assert "| **model** | **5** |" in text and "| best baseline (per series) | 5 |" in text
    assert "beats its series' best baseline on 2 of 5 series (40%), ties on 1" in text
    assert "Largest loss to a baseline: series 'e'" in text
    assert "Highest model MASE: series 'a'" in text
    lead = fleet.leading_baseline
    assert min(fleet.spreads[m].median for m in fleet.methods[1:]) == fleet.spreads[lead].median
    assert f"every series is {fleet.pooled_mae['model']:.4g}; that of {fleet.label(lead)}," in text
    assert "| model | 80% | 66.7% | 0.0% ('d') |" in text
    # The run report reads the same file back.
    report = Report("run")
    assert add_fleet_section(report, tmp_path)
    assert "data:image/png;base64," in report.html()
    assert not add_fleet_section(Report("run"), tmp_path / "elsewhere")


def test_the_picture_of_a_thousand_series_is_drawn(tmp_path):
    from forecaster.report.plots import plot_fleet_mase

    rng = np.random.default_rng(1)
    evaluations = []
    for model, naive, seasonal in rng.lognormal(0, 0.5, (1000, 3)):
        scores = {"model": model, "naive": naive * 1.5, "seasonal_naive": seasonal}
        evaluations.append(
            Evaluation(
                ("y",),
                np.arange(3),
                ["0", "1", "2"],
                np.zeros((3, 2, 1)),
                {m: np.zeros((3, 2, 1)) for m in scores},
                {m: {"mase": v, "mae": v} for m, v in scores.items()},
                SEASON,
                0,
                seasons=(SEASON,),
            )
        )
    ids = [f"gateway-7/sensor-{i:04d}" for i in range(1000)]
    fleet = FleetEvaluation.from_series(ids, evaluations)
    path = plot_fleet_mase(fleet, tmp_path / "fleet.png")
    assert path.stat().st_size > 10_000
    assert fleet.wins + fleet.ties + fleet.losses == 1000


def test_the_cli_table_shows_the_spread_and_the_worst(fleet, capsys):
    from forecaster.cli import render

    render.fleet(fleet)
    out, err = capsys.readouterr()
    assert "MASE of 5 series" in out and "best baseline (per series)" in out
    assert "Largest loss to a baseline: series 'e'" in out
    assert "Highest model MASE: series 'a'" in out
    assert "pooled over the series cover 66.7% of 80%" in out
    assert fleet.verdict().startswith("WARNING") == ("WARNING" in err)


def test_a_baseline_that_ran_on_no_series_has_an_empty_spread():
    lost = scored(1.0, 2.0)
    lost.scores["decomposition"] = {"mase": float("nan"), "mae": float("nan")}
    fleet = FleetEvaluation.from_series(["x", "y"], [lost, scored(0.5, 2.0)])
    assert fleet.spreads["decomposition"].series == 0
    assert np.isnan(fleet.spreads["decomposition"].median)
    assert fleet.spreads["model"].median == 0.75
