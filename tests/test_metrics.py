"""Metrics on tiny hand-computed arrays: MAE, RMSE, sMAPE, MASE and the JSON score."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from forecaster.evaluation.metrics import (
    mae,
    mae_by_step,
    mase,
    mase_by_step,
    rmse,
    rmse_by_step,
    score,
    seasonal_naive_scale,
    smape,
    smape_by_step,
)

# 2 origins, horizon 2, 1 target. Absolute errors: origin 0 -> [1, 0], origin 1 -> [2, 4].
TRUE = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
PRED = np.array([[[2.0], [2.0]], [[1.0], [8.0]]])


def test_mae_per_step_and_overall():
    np.testing.assert_allclose(mae_by_step(TRUE, PRED), [[1.5], [2.0]])
    assert mae(TRUE, PRED) == pytest.approx(7 / 4)


def test_rmse_per_step_and_overall_is_not_the_mean_of_steps():
    np.testing.assert_allclose(rmse_by_step(TRUE, PRED), [[math.sqrt(2.5)], [math.sqrt(8.0)]])
    assert rmse(TRUE, PRED) == pytest.approx(math.sqrt(21 / 4))


def test_smape_per_step_and_overall():
    # Terms 2|e|/(|y|+|yhat|): origin 0 -> [2/3, 0], origin 1 -> [1, 2/3].
    np.testing.assert_allclose(smape_by_step(TRUE, PRED), [[100 * 5 / 6], [100 / 3]])
    assert smape(TRUE, PRED) == pytest.approx(100 * 7 / 12)


def test_smape_zeros():
    true = np.array([[[0.0], [0.0], [-1.0]]])
    pred = np.array([[[0.0], [5.0], [1.0]]])
    # 0/0 is a perfect forecast; a zero truth with a non-zero forecast is the 200% maximum.
    np.testing.assert_allclose(smape_by_step(true, pred), [[0.0], [200.0], [200.0]])
    assert smape(true, pred) == pytest.approx(400 / 3)
    assert smape(np.zeros((2, 3, 2)), np.zeros((2, 3, 2))) == 0.0


def test_mase_divides_by_the_scale():
    np.testing.assert_allclose(mase_by_step(TRUE, PRED, np.array([2.0])), [[0.75], [1.0]])
    assert mase(TRUE, PRED, np.array([2.0])) == pytest.approx(0.875)


def test_mase_with_zero_or_missing_scale_is_the_mae():
    assert mase(TRUE, PRED, np.array([0.0])) == pytest.approx(mae(TRUE, PRED))
    assert mase(TRUE, PRED, np.array([np.nan])) == pytest.approx(mae(TRUE, PRED))


def test_mase_is_the_mean_over_targets_of_scaled_mae():
    true = np.zeros((1, 1, 2))
    pred = np.array([[[2.0, 30.0]]])
    assert mase(true, pred, np.array([1.0, 10.0])) == pytest.approx((2 + 3) / 2)
    with pytest.raises(ValueError, match="one value per target"):
        mase(true, pred, np.array([1.0]))


def test_seasonal_naive_scale_hand_values():
    train = np.array([1.0, 2.0, 4.0, 7.0])
    np.testing.assert_allclose(seasonal_naive_scale(train, 1), [2.0])  # |1|, |2|, |3|
    np.testing.assert_allclose(seasonal_naive_scale(train, 2), [4.0])  # |4-1|, |7-2|


def test_seasonal_naive_scale_skips_pairs_with_nan_and_handles_columns():
    train = np.array([[1.0, 0.0], [np.nan, 1.0], [4.0, 3.0], [7.0, 6.0], [5.0, 10.0]])
    # Column 0 keeps only the pairs (4, 7) and (7, 5); column 1 keeps all four.
    np.testing.assert_allclose(seasonal_naive_scale(train, 1), [2.5, 2.5])


def test_seasonal_naive_scale_fallbacks():
    # A constant target has no scale: 1.0, so its MASE is its MAE.
    np.testing.assert_allclose(seasonal_naive_scale(np.full((10, 2), 3.0), 2), [1.0, 1.0])
    # Shorter than one season: the naive scale instead.
    np.testing.assert_allclose(seasonal_naive_scale(np.array([1.0, 3.0, 2.0]), 24), [1.5])
    np.testing.assert_allclose(seasonal_naive_scale(np.array([np.nan, 1.0]), 1), [1.0])
    with pytest.raises(ValueError, match="season"):
        seasonal_naive_scale(np.ones(5), 0)


def test_score_is_json_ready_with_per_step_lists_per_target():
    true = np.concatenate([TRUE, 10 * TRUE], axis=2)
    pred = np.concatenate([PRED, 10 * PRED], axis=2)
    result = score(true, pred, np.array([2.0, 20.0]))
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert set(result) == {"mae", "rmse", "smape", "mase", "per_step"}
    assert all(type(result[k]) is float for k in ("mae", "rmse", "smape", "mase"))
    assert result["mae"] == pytest.approx((7 / 4 + 70 / 4) / 2)
    assert result["mase"] == pytest.approx(0.875)
    assert result["per_step"]["mae"] == [[1.5, 2.0], [15.0, 20.0]]
    assert result["per_step"]["mase"] == [[0.75, 1.0], [0.75, 1.0]]
    assert result["per_step"]["smape"][1] == pytest.approx([100 * 5 / 6, 100 / 3])


def test_no_origins_gives_nan_without_warnings():
    empty = np.empty((0, 3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = score(empty, empty, np.ones(2))
    assert math.isnan(result["mae"]) and math.isnan(result["mase"])
    assert len(result["per_step"]["rmse"]) == 2 and len(result["per_step"]["rmse"][0]) == 3


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shape"):
        mae(TRUE, PRED[:, :1])
    with pytest.raises(ValueError, match="shape"):
        mae(TRUE[..., 0], PRED[..., 0])


def test_a_constant_target_scores_finite_with_a_perfect_baseline():
    from forecaster.evaluation.baselines import fit_holt_winters
    from forecaster.evaluation.rolling import FittedBaselines, evaluate_forecasts

    series = np.full((60, 1), 21.5)
    origins = np.arange(40, 59)
    scale = seasonal_naive_scale(series[:40], 24)
    assert scale.tolist() == [1.0]  # zero seasonal-naive error on a constant series
    hw = [fit_holt_winters(series[:40, 0], 24)]

    def evaluate(forecast: np.ndarray):
        return evaluate_forecasts(
            series,
            origins,
            forecast,
            targets=("t",),
            labels=[str(o) for o in origins],
            baselines=FittedBaselines((24,), hw),
            mase_scale=scale,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        off = evaluate(np.full((len(origins), 2, 1), 21.6))
        exact = evaluate(np.full((len(origins), 2, 1), 21.5))
    assert off.scores["naive"]["mase"] == 0.0
    assert off.scores["model"]["mase"] == pytest.approx(0.1)
    # The model cannot beat an exact baseline; the same error as an exact one is a tie.
    assert off.skill("naive") == math.inf and not off.beats_seasonal_naive
    assert exact.skill("naive") == 1.0 and exact.skill("seasonal_naive") == 1.0
    summary = exact.summary()
    assert summary.origins == len(origins) and "ties with naive" in summary.verdict
