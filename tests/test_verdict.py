"""The verdict compares the model with the best of every baseline, and calls a near miss a tie."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.evaluation.rolling import Evaluation


def evaluation_with(model_mase: float, baselines: dict[str, float]) -> Evaluation:
    scores = {"model": {"mase": model_mase}} | {k: {"mase": v} for k, v in baselines.items()}
    empty = np.empty((0, 1, 1))
    return Evaluation(
        targets=("y",),
        origins=np.empty(0, np.int64),
        labels=[],
        truth=empty,
        forecasts={},
        scores=scores,
        season=48,
        skipped=0,
        seasons=(48, 336),
    )


BASELINES = {
    "naive": 1.5,
    "seasonal_naive": 0.9,
    "seasonal_naive_336": 0.4,
    "holt_winters": 0.6,
    "decomposition": 0.5,
}


def test_the_best_baseline_is_the_best_of_all_of_them():
    result = evaluation_with(0.3, BASELINES)
    assert result.best_baseline == "seasonal_naive_336"
    assert result.verdict().startswith("the model beats every baseline: its MASE is 25% lower")
    assert "seasonal naive (336)" in result.verdict()
    assert result.summary().beats_best_baseline


@pytest.mark.parametrize("model", [0.395, 0.4, 0.407])
def test_within_two_percent_is_a_tie(model):
    result = evaluation_with(model, BASELINES)
    assert result.verdict().startswith("the model ties with seasonal naive (336)")
    assert not result.summary().beats_best_baseline


def test_losing_to_the_weekly_season_is_a_warning_even_when_the_daily_one_is_beaten():
    result = evaluation_with(0.45, BASELINES)
    assert result.skill("seasonal_naive") < 1  # beats the daily seasonal naive ...
    assert result.verdict().startswith("WARNING: the model does not beat seasonal naive (336)")


def test_labels_name_each_season():
    result = evaluation_with(0.3, BASELINES)
    assert result.label("seasonal_naive") == "seasonal naive (48)"
    assert result.label("decomposition") == "MSTL/STL + ETS"
    assert result.summary().label("seasonal_naive_336") == "seasonal naive (336)"


def test_a_baseline_without_error_is_written_as_strict_json(tmp_path):
    from forecaster.evaluation.rolling import EvaluationSummary
    from forecaster.records import read_record, write_record

    summary = evaluation_with(0.2, {"naive": 0.0, "seasonal_naive": 0.5}).summary()
    assert summary.skill_mase["naive"] == float("inf")
    write_record(tmp_path / "metrics.json", summary)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    back = read_record(tmp_path / "metrics.json", EvaluationSummary)
    assert np.isnan(back.skill_mase["naive"]) and back.skill_mase["seasonal_naive"] == 0.4
