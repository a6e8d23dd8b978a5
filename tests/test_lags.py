"""Seasonal-lag inputs: the value a season before each forecast step, in training and on device.

A window shorter than a season gets, per target, a channel holding the value one season before
the step a horizon ahead, and a linear path from those values to the output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.bundle import Bundle
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.data.lags import history_rows, lag_channels, lag_seasons
from forecaster.errors import DataError
from tests.test_seasons import two_seasons, two_seasons_frame

WINDOW, HORIZON, WEEK = 24, 12, 336


def test_each_row_carries_the_value_a_season_before_the_step_a_horizon_ahead():
    targets = np.arange(40, dtype=np.float32).reshape(20, 2)  # 20 rows, 2 targets
    lags = lag_channels(targets, (5, 8), horizon=3)
    assert lags.shape == (20, 4)  # lag-major: (lag 5: both targets), (lag 8: both targets)
    r = 10
    np.testing.assert_array_equal(lags[r], [*targets[r + 3 - 5], *targets[r + 3 - 8]])
    assert np.isnan(lags[1, 0]) and not np.isnan(lags[2, 0])  # lag 5 reaches row 0 at row 2
    assert np.isnan(lags[4, 2]) and not np.isnan(lags[5, 2])
    # Windows (n, rows, targets) get the same numbers as the whole series.
    stacked = lag_channels(np.stack([targets[:12], targets[8:]]), (5, 8), horizon=3)
    np.testing.assert_array_equal(stacked[1, 5:], lags[13:])


def test_only_seasons_past_the_window_and_as_long_as_the_horizon_get_a_lag():
    assert lag_seasons((48, 336), window=96, horizon=12) == (336,)
    assert lag_seasons((48, 336), window=24, horizon=12) == (48, 336)
    assert lag_seasons((24,), window=48, horizon=12) == ()
    assert lag_seasons((6,), window=4, horizon=12) == ()  # would need values not yet observed
    assert history_rows(96, 12, (336,)) == 96 + 336 - 12
    assert history_rows(96, 12, ()) == 96


def tiny_lag_model():
    """A 6-step window of the target, a covariate and the target's lag; 3 steps ahead."""
    from forecaster.model.build import build_model

    return build_model(
        ModelConfig(units=4, residual="last", normalize="last"),
        window=6,
        n_features=3,  # the target, a covariate, the target's lag
        horizon=3,
        n_targets=1,
        target_index=(0,),
        sensor_channels=3,
        lag_channels=[2],
    )


def test_the_linear_path_adds_last_seasons_change_over_the_reference():
    """With the network's head at zero and the path at identity, the forecast is the lag."""
    model = tiny_lag_model()
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    # Untrained, the path is closed: the forecast is the reference, the last target value.
    np.testing.assert_allclose(model.predict(x, verbose=0)[..., 0], np.repeat(x[:, -1:, 0], 3, 1))
    model.get_layer("forecast").highway.assign(np.eye(3, dtype=np.float32))
    np.testing.assert_allclose(model.predict(x, verbose=0)[..., 0], x[:, -3:, 2], atol=1e-6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on two-season half-hourly data whose window never holds a week."""
    from forecaster.export.ship import export
    from forecaster.runs.train import train

    root = tmp_path_factory.mktemp("lags")
    rows = WEEK * 4
    frame = two_seasons_frame(rows, seed=3)
    csv = root / "load.csv"
    frame.to_csv(csv, index=False)
    run = train(
        csv,
        DataConfig(targets=("load",)),
        window=WindowConfig(WINDOW, HORIZON, lags=True),
        model=ModelConfig(units=8, residual="decomposition"),
        training=TrainConfig(epochs=1, batch_size=64),
        seasons=(48, WEEK),
        out=root / "run",
    )
    outcomes = {
        mode: export(run.run_dir, quantize=mode, out=root / mode, force=True)
        for mode in ("none", "int8")
    }
    return frame, run, outcomes


@pytest.mark.slow
def test_the_run_records_its_lags_and_trains_on_windows_with_a_week_behind(trained):
    _, run, _ = trained
    bundle = Bundle.load(run.run_dir)
    assert bundle.data.lags == (48, WEEK)
    # Sensors, a lag channel per season, then the decomposition's two channels.
    assert run.result.model.input_shape == (None, WINDOW, 2 + 2 + 2)
    # The first test origin has a week of history; every origin of the test part has one.
    assert run.evaluation.origins.min() - (WEEK - HORIZON) - WINDOW >= 0
    assert np.abs(np.asarray(run.result.model.get_layer("forecast").highway)).max() > 0


@pytest.mark.slow
def test_the_run_shrinks_the_networks_correction_per_step_and_ships_it(trained):
    """Fitted on the validation part, in [0, 1], folded into the head the export converts
    (the LiteRT parity below runs on this shrunk model)."""
    _, run, outcomes = trained
    training, shipped = Bundle.load(run.run_dir).training, Bundle.load(outcomes["none"].bundle_dir)
    assert training is not None and shipped.training is not None
    shares = np.asarray(training.shrinkage)
    assert shares.shape == (HORIZON, 1)
    assert ((shares >= 0) & (shares <= 1)).all() and (shares < 1).any()
    np.testing.assert_allclose(shares, run.result.shrinkage, atol=1e-4)
    assert shipped.training.shrinkage == training.shrinkage


@pytest.mark.slow
def test_litert_and_the_predictor_forecast_what_keras_does(trained, tmp_path):
    """Rolling prediction over a file cut mid-week: the device computes the lags from history."""
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.device.summary import summarize_bundle
    from forecaster.runs.load import load_keras_model, load_training_data

    frame, run, outcomes = trained
    bundle = Bundle.load(run.run_dir)
    prepared = load_training_data(bundle, run_dir=run.run_dir)
    keras_model = load_keras_model(run.run_dir)
    test = prepared.windows["test"]
    expected = keras_model.predict(test.x, verbose=0)
    for mode, tolerance in (("none", 1e-5), ("int8", 0.05)):
        predictor = Predictor.load(outcomes[mode].bundle_dir, num_threads=1)
        assert np.abs(predictor.predict_scaled(test.x) - expected).max() < tolerance, mode

    start = WEEK * 2 + 7
    part = tmp_path / "tail.csv"
    frame.iloc[start:].to_csv(part, index=False)
    predictor = Predictor.load(outcomes["none"].bundle_dir, num_threads=1)
    assert predictor.history == WINDOW + WEEK - HORIZON
    inputs = summarize_bundle(outcomes["none"].bundle_dir).rows()["inputs"]
    assert inputs == (
        "load, temp; the values 48, 336 steps before each forecast step (a forecast reads 348 rows)"
    )
    out = tmp_path / "rolling.csv"
    predict_files(predictor, [part], out, mode="rolling")
    got = pd.read_csv(out)
    origins = sorted(set(got["origin"]))
    assert len(origins) == len(frame) - start - predictor.history + 1
    rows = np.array([int(frame.index[frame["time"] == pd.Timestamp(o)][0]) + 1 for o in origins])
    x = prepared.scaled[rows[:, None] + np.arange(-WINDOW, 0)]
    want = bundle.scaler.inverse(keras_model.predict(x, verbose=0), ("load",))[:, :, 0]
    np.testing.assert_allclose(
        got["load"].to_numpy().reshape(len(origins), HORIZON), want, rtol=1e-5
    )


@pytest.mark.slow
def test_a_file_shorter_than_a_week_before_the_horizon_is_refused_with_the_reason(
    trained, tmp_path
):
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor

    frame, _, outcomes = trained
    part = tmp_path / "short.csv"
    frame.iloc[:200].to_csv(part, index=False)  # holds the window, not a week
    predictor = Predictor.load(outcomes["none"].bundle_dir, num_threads=1)
    with pytest.raises(DataError, match=r"fewer than the 348 .*seasonal lags.* 336 steps before"):
        predict_files(predictor, [part], tmp_path / "out.csv", mode="last")


def test_a_search_gives_each_window_the_lags_train_would(tmp_path):
    from forecaster.data.load import load_csv
    from forecaster.model.windows import prepare, split_rows
    from forecaster.tune.data import prepare_tuning_data

    rows = WEEK * 4
    path = tmp_path / "load.csv"
    pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=rows, freq="30min"), "load": two_seasons(rows)}
    ).to_csv(path, index=False)
    data = load_csv(path, DataConfig(targets=("load",)))
    split = split_rows(data.n_rows, SplitConfig())
    tuning = prepare_tuning_data(data, split, HORIZON, 96, seasons=(48, WEEK))
    assert tuning.lags(24) == (48, WEEK) and tuning.lags(96) == (WEEK,)
    assert tuning.n_features("last", 24) == 3 and tuning.n_features("last", 96) == 2
    assert tuning.lag_channels(96) == [1]
    prepared = prepare(data, SplitConfig(), WindowConfig(96, HORIZON, lags=True), lags=(WEEK,))
    train = tuning.train(96, "last")
    np.testing.assert_array_equal(train.origins, prepared.windows["train"].origins)
    np.testing.assert_array_equal(train.x, prepared.windows["train"].x)
    # Training origins start once a week before the horizon is observed.
    assert train.origins[0] == 96 + WEEK - HORIZON
    assert not np.isnan(tuning.val(96, "last").x).any()


def test_a_file_too_short_for_its_lags_is_refused_with_the_fix(tmp_path):
    from forecaster.data.load import load_csv
    from forecaster.model.windows import prepare

    rows = 505  # the training part ends before its first origin has a week of history
    path = tmp_path / "load.csv"
    pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=rows, freq="30min"), "load": two_seasons(rows)}
    ).to_csv(path, index=False)
    data = load_csv(path, DataConfig(targets=("load",)))
    window = WindowConfig(WINDOW, HORIZON, lags=True)
    with pytest.raises(DataError, match=r"the training part of .* 336 steps .* without --lags"):
        prepare(data, SplitConfig(), window, lags=(WEEK,))


@pytest.mark.slow
def test_evaluating_another_file_reads_its_lags_from_that_file(trained, tmp_path):
    from forecaster.runs.evaluate import evaluate
    from forecaster.runs.load import load_keras_model, load_training_data

    frame, run, _ = trained
    bundle = Bundle.load(run.run_dir)
    scaled = load_training_data(bundle, run_dir=run.run_dir).scaled
    start = WEEK + 5
    part = tmp_path / "later.csv"
    frame.iloc[start:].to_csv(part, index=False)
    _, evaluation = evaluate(run.run_dir, part)
    # The file's first origin has a week before its horizon inside the file.
    assert evaluation.origins.min() >= WINDOW + WEEK - HORIZON
    origins = evaluation.origins + start  # rows of the training file
    x = scaled[origins[:, None] + np.arange(-WINDOW, 0)]
    expected = bundle.scaler.inverse(load_keras_model(run.run_dir).predict(x, verbose=0), ("load",))
    np.testing.assert_allclose(evaluation.forecasts["model"], expected, rtol=1e-5)
    # As predict would on this file: the bundle's widths at first, then its own recent errors.
    adapting = evaluation.adapting_widths
    assert bundle.intervals is not None and adapting is not None
    assert adapting.shape == (2, len(origins), HORIZON, 1)
    np.testing.assert_array_equal(adapting[:, 0], bundle.intervals.widths((0.8, 0.95)))
    assert not np.array_equal(adapting[:, -1], adapting[:, 0])
