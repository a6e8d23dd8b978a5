"""The decomposition reference: seasonal input channels, Holt's smoothing in the graph, the device.

The model's `decomposition` residual runs the decomposition baseline over each window (profiles
from input channels, Holt's recursions as a fixed matrix) and adds the network's output to it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.bundle import Bundle, DataSpec, SeasonalInputs
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.errors import ConfigError, DataError
from forecaster.model.smoothing import holt_forecast
from forecaster.records import from_plain, to_plain
from tests.test_seasons import two_seasons, two_seasons_frame

WINDOW, HORIZON = 12, 4
# Two targets with their own seasons and smoothing: one with a damped trend, one without.
SEASONAL = SeasonalInputs(
    seasons=((6,), (3, 6)),
    profiles=(
        ((0.5, 1.0, 0.0, -0.5, -1.0, 0.0),),
        ((0.2, -0.1, -0.1), (0.3, 0.0, -0.3, 0.1, 0.0, -0.1)),
    ),
    smoothing=((0.4, 0.2, 0.9), (0.7, 0.0, 0.0)),
    horizon=HORIZON,
)
SCALE = np.array([0.5, 2.0])


def plain(record: object) -> dict:
    """A record as bundle.json holds it: through JSON text."""
    return json.loads(json.dumps(to_plain(record)))


def windows(n: int, first_row: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, WINDOW, 3 sensors + 4 seasonal channels) and the grid row of each window row.

    The targets are sensors 0 and 2, so the reference must pick them out of the sensors.
    """
    rng = np.random.default_rng(1)
    rows = first_row + np.arange(n)[:, None] + np.arange(WINDOW)[None, :]
    sensors = rng.random((n, WINDOW, 3))
    x = np.concatenate([sensors, SEASONAL.channels(rows, SCALE)], axis=-1).astype(np.float32)
    return x, rows


def expected_reference(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The decomposition of every window, by running Holt's recursions in numpy."""
    out = np.empty((len(x), HORIZON, 2))
    for t, column in enumerate((0, 2)):
        alpha, beta, phi = SEASONAL.smoothing[t]
        for i in range(len(x)):
            rest = x[i, :, column] - SCALE[t] * SEASONAL.sums(rows[i])[:, t]
            ahead = SCALE[t] * SEASONAL.sums(rows[i, -1] + 1 + np.arange(HORIZON))[:, t]
            out[i, :, t] = holt_forecast(rest, alpha, beta, phi, HORIZON) + ahead
    return out


def decomposition_model(window: int = WINDOW, seasonal: SeasonalInputs | None = SEASONAL):
    from forecaster.model.build import build_model

    config = ModelConfig(units=4, residual="decomposition", normalize="last")
    return build_model(
        config,
        window=window,
        n_features=7,
        horizon=HORIZON,
        n_targets=2,
        target_index=(0, 2),
        sensor_channels=3,
        seasonal=seasonal,
    )


def test_channels_are_scaled_profile_sums_now_and_a_horizon_ahead():
    rows = np.array([[0, 1], [6, 7]])
    channels = SEASONAL.channels(rows, SCALE)
    assert channels.shape == (2, 2, 4) and channels.dtype == np.float32
    np.testing.assert_allclose(channels[0, :, 0], [0.25, 0.5])  # target 0 at rows 0, 1
    np.testing.assert_allclose(channels[1], channels[0])  # one season on: the same phase
    np.testing.assert_allclose(channels[0, 0, 2], 0.5 * SEASONAL.profiles[0][0][HORIZON])
    np.testing.assert_allclose(channels[0, 0, 3], 2.0 * (-0.1 + 0.0))  # row 4 in both seasons
    assert from_plain(SeasonalInputs, plain(SEASONAL)) == SEASONAL


def test_timestamps_become_grid_rows_of_the_training_file():
    spec = from_plain(
        DataSpec,
        {
            "source": "s.csv",
            "source_sha256": "",
            "time_col": "time",
            "features": ["a"],
            "targets": ["a"],
            "step_seconds": 1800.0,
            "freq": "30min",
            "max_gap": 3,
            "dedupe": "error",
            "bad_rows": "error",
            "split": [0.7, 0.15, 0.15],
            "train_start": "2024-01-01 00:00:00",
            "train_end": "2024-01-02 00:00:00",
            "season": 48,
            "mase_scale": [1.0],
            "seasonal": plain(SEASONAL),
        },
    )
    assert spec.seasonal == SEASONAL
    stamps = pd.DatetimeIndex(["2023-12-31 23:30", "2024-01-01", "2024-01-08 00:30"])
    np.testing.assert_array_equal(spec.grid_rows(stamps.as_unit("ns").asi8), [-1, 0, 337])
    untimed = from_plain(DataSpec, plain(spec) | {"time_col": None, "step_seconds": None})
    with pytest.raises(DataError, match="without timestamps"):
        untimed.grid_rows(stamps.asi8)


def test_the_reference_is_holt_over_the_window_plus_the_profile_ahead():
    """numpy's recursions against the Keras layer, two targets with their own numbers."""
    model = decomposition_model()
    x, rows = windows(20)
    layer = model.get_layer("forecast")
    got = np.asarray(layer.reference(x))
    np.testing.assert_allclose(got, expected_reference(x, rows), atol=1e-5)


def test_with_a_silent_network_the_model_forecasts_the_decomposition():
    model = decomposition_model()
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x, rows = windows(20)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected_reference(x, rows), atol=1e-5)


def test_the_reference_needs_its_numbers_and_a_window_as_long_as_the_horizon():
    with pytest.raises(ConfigError, match="at least the horizon"):
        decomposition_model(window=HORIZON - 1)
    with pytest.raises(ConfigError, match="seasonal profiles"):
        decomposition_model(seasonal=None)


def test_a_saved_model_loads_in_safe_mode(tmp_path):
    import keras

    from forecaster.model.build import custom_layers

    model = decomposition_model()
    x, _ = windows(8)
    model.save(tmp_path / "m.keras")
    custom_layers()
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_file_without_timestamps_is_refused(tmp_path):
    from forecaster.runs.train import train

    rows = 48 * 7 * 3
    path = tmp_path / "untimed.csv"
    pd.DataFrame({"load": two_seasons(rows)}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"no timestamps .* --residual decomposition"):
        train(
            path,
            DataConfig(targets=("load",)),
            window=WindowConfig(48, 12),
            model=ModelConfig(residual="decomposition"),
            training=TrainConfig(epochs=1),
            seasons=(48,),
            out=tmp_path / "run",
        )
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny decomposition run on two-season half-hourly data, exported float32 and dynamic."""
    from forecaster.export.ship import export
    from forecaster.runs.train import train

    root = tmp_path_factory.mktemp("decomposition")
    rows = 48 * 7 * 5
    frame = two_seasons_frame(rows, seed=2)
    csv = root / "load.csv"
    frame.to_csv(csv, index=False)
    run = train(
        csv,
        DataConfig(targets=("load",)),
        window=WindowConfig(48, 12),
        model=ModelConfig(units=8, residual="decomposition"),
        training=TrainConfig(epochs=2, batch_size=64),
        seasons=(48, 336),
        out=root / "run",
    )
    outcomes = {
        mode: export(run.run_dir, quantize=mode, out=root / mode, force=True)
        for mode in ("none", "dynamic")
    }
    return frame, csv, run, outcomes


@pytest.mark.slow
def test_the_run_keeps_the_baselines_numbers_and_beats_nothing_it_should_not(trained):
    _, _, run, _ = trained
    bundle = Bundle.load(run.run_dir)
    seasonal = bundle.data.seasonal
    assert seasonal is not None and seasonal.horizon == 12
    decomposition = bundle.baselines["decomposition"][0]
    assert seasonal.seasons == (tuple(decomposition["seasons"]),)
    assert seasonal.profiles[0] == tuple(tuple(p) for p in decomposition["profiles"])
    assert seasonal.smoothing[0][0] == decomposition["alpha"]
    # Sensors, then the two seasonal channels of the one target.
    assert run.result.model.input_shape == (None, 48, 4)
    assert "decomposition" in run.evaluation.scores


@pytest.mark.slow
def test_litert_forecasts_what_keras_does(trained):
    from forecaster.device.predictor import Predictor
    from forecaster.runs.load import load_keras_model, load_training_data

    _, _, run, outcomes = trained
    test = load_training_data(Bundle.load(run.run_dir), run_dir=run.run_dir).windows["test"]
    expected = load_keras_model(run.run_dir).predict(test.x, verbose=0)
    for mode, outcome in outcomes.items():
        predictor = Predictor.load(outcome.bundle_dir, num_threads=1)
        tolerance = {"none": 1e-5, "dynamic": 0.02}[mode]
        assert np.abs(predictor.predict_scaled(test.x) - expected).max() < tolerance, mode


@pytest.mark.slow
def test_predicting_a_csv_builds_the_seasonal_channels_from_its_times(trained, tmp_path):
    """Batch and rolling prediction from a file that starts mid-week, against Keras."""
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.runs.load import load_keras_model, load_training_data

    frame, _, run, outcomes = trained
    bundle = Bundle.load(run.run_dir)
    prepared = load_training_data(bundle, run_dir=run.run_dir)
    keras_model = load_keras_model(run.run_dir)
    start = 48 * 7 * 4 + 7  # a file cut at another phase of both seasons
    part = tmp_path / "tail.csv"
    frame.iloc[start:].to_csv(part, index=False)
    predictor = Predictor.load(outcomes["none"].bundle_dir, num_threads=1)
    for mode in ("last", "rolling"):
        out = tmp_path / f"{mode}.csv"
        predict_files(predictor, [part], out, mode=mode)
        got = pd.read_csv(out)
        origins = sorted(set(got["origin"]))
        rows = [int(frame.index[frame["time"] == pd.Timestamp(o)][0]) + 1 for o in origins]
        x = prepared.scaled[np.asarray(rows)[:, None] + np.arange(-48, 0)]
        expected = bundle.scaler.inverse(keras_model.predict(x, verbose=0), ("load",))
        device = got["load"].to_numpy().reshape(len(origins), 12)
        assert len(origins) == (1 if mode == "last" else len(frame) - start - 48 + 1)
        np.testing.assert_allclose(device, expected[:, :, 0], rtol=1e-5)


@pytest.mark.slow
def test_evaluating_another_file_keeps_the_phase(trained, tmp_path):
    from forecaster.runs.evaluate import evaluate
    from forecaster.runs.load import load_keras_model, load_training_data

    frame, _, run, _ = trained
    bundle = Bundle.load(run.run_dir)
    scaled = load_training_data(bundle, run_dir=run.run_dir).scaled
    start = 48 * 3 + 5
    part = tmp_path / "later.csv"
    frame.iloc[start:].to_csv(part, index=False)
    _, evaluation = evaluate(run.run_dir, part)
    origins = evaluation.origins + start  # rows of the training file
    x = scaled[origins[:, None] + np.arange(-48, 0)]
    expected = bundle.scaler.inverse(load_keras_model(run.run_dir).predict(x, verbose=0), ("load",))
    np.testing.assert_allclose(evaluation.forecasts["model"], expected, rtol=1e-5)


def test_a_search_serves_the_channels_only_to_decomposition_trials(tmp_path):
    from forecaster.data.load import load_csv
    from forecaster.model.windows import split_rows
    from forecaster.tune.data import decomposition_inputs, prepare_tuning_data

    rows = 48 * 7 * 4
    path = tmp_path / "load.csv"
    pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=rows, freq="30min"), "load": two_seasons(rows)}
    ).to_csv(path, index=False)
    data = load_csv(path, DataConfig(targets=("load",)))
    split = split_rows(data.n_rows, SplitConfig())
    seasonal = decomposition_inputs(data, split, (48, 336), 12)
    tuning = prepare_tuning_data(data, split, 12, 96, seasonal)
    assert tuning.n_features("last") == 1 and tuning.n_features("decomposition") == 3
    plain, seasonal_windows = tuning.val(48, "last"), tuning.val(48, "decomposition")
    assert plain.x.shape[2] == 1 and seasonal_windows.x.shape[2] == 3
    np.testing.assert_array_equal(seasonal_windows.x[..., :1], plain.x)
    np.testing.assert_array_equal(seasonal_windows.y, plain.y)
    assert tuning.train(48, "decomposition").x.shape[2] == 3
    without = prepare_tuning_data(data, split, 12, 96)
    with pytest.raises(DataError, match="no seasonal channels"):
        without.val(48, "decomposition")
