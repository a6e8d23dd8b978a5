"""Real Keras training on tiny data: learning, determinism, and a fair GRU/LSTM recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.data.load import load_csv
from forecaster.model.build import GAIN_SCALE, build_model
from forecaster.model.fit import train_model
from forecaster.model.windows import prepare

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from forecaster.data.synthetic import make_series, write_csv

    path = write_csv(make_series(rows=600, seed=4), tmp_path_factory.mktemp("d") / "s.csv")
    data = load_csv(path, DataConfig(targets=("temp",)))
    return prepare(data, SplitConfig(), WindowConfig(24, 6))


def test_loss_decreases_on_a_learnable_signal(prepared):
    plain = ModelConfig(units=8, residual="none", normalize="none")
    result = train_model(prepared, plain, TrainConfig(epochs=4, batch_size=32))
    losses = result.history["loss"]
    assert len(losses) == 4
    assert losses[-1] < 0.8 * losses[0]
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]


def test_same_seed_same_weights_other_seed_other_weights(prepared):
    config = TrainConfig(epochs=2, batch_size=32, seed=3)
    first = train_model(prepared, ModelConfig(units=4), config).model.get_weights()
    second = train_model(prepared, ModelConfig(units=4), config).model.get_weights()
    other = train_model(
        prepared, ModelConfig(units=4), TrainConfig(epochs=2, batch_size=32, seed=4)
    ).model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_epoch_callback_sees_every_epoch(prepared):
    seen = []
    train_model(
        prepared,
        ModelConfig(units=4),
        TrainConfig(epochs=2, batch_size=64),
        on_epoch=lambda epoch, total, logs: seen.append((epoch, total, "val_loss" in logs)),
    )
    assert seen == [(1, 2, True), (2, 2, True)]


def test_a_time_limit_stops_before_an_epoch_that_would_overrun_it(prepared):
    model = ModelConfig(units=4)
    ample = train_model(prepared, model, TrainConfig(epochs=3, patience=9, time_limit=3600))
    spent = train_model(prepared, model, TrainConfig(epochs=3, patience=9, time_limit=1e-6))
    assert ample.epochs_run == 3
    assert spent.epochs_run == 1  # the first epoch always runs, so there is a model to keep
    assert spent.best_epoch == 1 and not spent.interrupted


def test_training_can_go_on_from_saved_weights(prepared, tmp_path):
    model, one_epoch = ModelConfig(units=4), TrainConfig(epochs=1, batch_size=32)
    first = train_model(prepared, model, TrainConfig(epochs=4, batch_size=32))
    saved = tmp_path / "trial.weights.h5"
    first.model.save_weights(saved)
    fresh = train_model(prepared, model, one_epoch)
    onward = train_model(prepared, model, one_epoch, initial_weights=saved)
    steps = math.ceil(len(prepared.windows["train"].x) / 32)
    # Adam's state came along: its step count goes on from the saved training's.
    assert int(onward.model.optimizer.iterations) == int(first.model.optimizer.iterations) + steps
    assert onward.history["val_loss"][0] < fresh.history["val_loss"][0]


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, False), (2, True)])
def test_gru_and_lstm_share_the_recipe(layers, bidirectional):
    shapes = {}
    for cell in ("gru", "lstm"):
        config = ModelConfig(cell, units=8, layers=layers, bidirectional=bidirectional)
        model = build_model(config, window=12, n_features=3, horizon=4, n_targets=2, compile=False)
        assert model.output_shape == (None, 4, 2)
        shapes[cell] = [type(layer).__name__ for layer in model.layers]
    assert [s.replace("GRU", "LSTM") for s in shapes["gru"]] == shapes["lstm"]


def test_lstm_has_four_gates_to_grus_three():
    def recurrent_params(cell):
        model = build_model(
            ModelConfig(cell, units=8), window=12, n_features=3, horizon=1, n_targets=1
        )
        return model.get_layer(f"{cell}_0").count_params()

    # GRU (reset_after): 3 * (3*8 + 8*8 + 2*8); LSTM: 4 * (3*8 + 8*8 + 8).
    assert recurrent_params("gru") == 3 * (24 + 64 + 16)
    assert recurrent_params("lstm") == 4 * (24 + 64 + 8)


@pytest.mark.parametrize(
    ("residual", "normalize"),
    [
        ("last", "last"),
        ("last", "none"),
        ("none", "mean"),
        ("seasonal", "last"),
        ("last_seasonal", "last"),
    ],
)
def test_with_a_silent_head_the_forecast_is_the_reference(residual, normalize):
    """The network's output is added to the reference: zero it and the reference remains."""
    rng = np.random.default_rng(1)
    x = rng.random((5, 12, 3)).astype(np.float32)
    config = ModelConfig(units=4, residual=residual, normalize=normalize, season=4)
    model = build_model(
        config, window=12, n_features=3, horizon=6, n_targets=1, target_index=(2,), compile=False
    )
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    gain = np.array([0.0, 0.5, 1.0, 1.0, 2.0, -1.0], np.float32)  # learned: anything
    if residual == "last_seasonal":
        model.get_layer("forecast").set_weights([gain[:, None] / GAIN_SCALE])
    out = model.predict(x, verbose=0)[..., 0]
    target = x[..., 2]
    if residual == "seasonal":
        # step h repeats the value one season (4 steps) before it: rows 8, 9, 10, 11, 8, 9
        expected = target[:, [8, 9, 10, 11, 8, 9]]
    elif residual == "last_seasonal":
        # the last value plus the change over the same steps one season (two, past step 4) back,
        # weighed per step by the learned gain
        before = target[:, [8, 9, 10, 11, 8, 9]] - target[:, [7, 7, 7, 7, 3, 3]]
        expected = target[:, -1:] + gain * before
    elif residual == "last":
        expected = np.repeat(target[:, -1:], 6, axis=1)
    else:
        expected = np.repeat(target.mean(axis=1, keepdims=True), 6, axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_last_seasonal_learns_to_distrust_a_seasonal_change_that_is_noise():
    """On a random walk the change a season back is noise: the gain falls from 1 toward 0."""
    import keras

    keras.utils.set_random_seed(4)
    walk = np.cumsum(np.random.default_rng(4).normal(0, 0.02, 3000)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(walk, 14)
    x, y = windows[:, :12, None], windows[:, 12:, None]
    config = ModelConfig(units=4, residual="last_seasonal", normalize="last", season=4)
    model = build_model(config, window=12, n_features=1, horizon=2, n_targets=1)
    reference = model.get_layer("forecast")
    np.testing.assert_allclose(reference.gain_value(), 1.0)  # starts as plain last_seasonal
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert np.all(np.abs(np.asarray(reference.gain_value())) < 0.3)


@pytest.mark.parametrize("loss", ["mae", "mse"])
def test_the_loss_option_is_what_training_minimizes(loss):
    rng = np.random.default_rng(3)
    x = rng.random((32, 8, 1), dtype=np.float32)
    y = rng.random((32, 2, 1), dtype=np.float32)
    model = build_model(
        ModelConfig(units=4, loss=loss), window=8, n_features=1, horizon=2, n_targets=1
    )
    error = model.predict(x, verbose=0) - y
    expected = np.abs(error).mean() if loss == "mae" else np.square(error).mean()
    reported = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["loss"]
    assert reported == pytest.approx(float(expected), rel=1e-5)


def test_a_loss_that_is_not_offered_is_refused():
    from forecaster.errors import ConfigError

    with pytest.raises(ConfigError, match="--loss must be mae or mse, not 'huber'"):
        ModelConfig(loss="huber")  # type: ignore[arg-type]


def test_seasonal_residual_needs_a_long_enough_window():
    from forecaster.errors import ConfigError

    config = ModelConfig(units=4, residual="seasonal", season=24)
    with pytest.raises(ConfigError, match="needs --window of at least 24 steps, not 12"):
        build_model(config, window=12, n_features=1, horizon=6, n_targets=1)
    config = ModelConfig(units=4, residual="last_seasonal", season=24)
    with pytest.raises(ConfigError, match="needs --window of at least 25 steps, not 24"):
        build_model(config, window=24, n_features=1, horizon=6, n_targets=1)
