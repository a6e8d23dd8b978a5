"""GRU and LSTM forecasters built from one recipe, so the two cells compare fairly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forecaster.config import ModelConfig

if TYPE_CHECKING:
    import keras


def build_model(
    config: ModelConfig,
    *,
    window: int,
    n_features: int,
    horizon: int,
    n_targets: int,
    batch_size: int | None = None,
    unroll: bool = False,
    compile: bool = True,
) -> keras.Model:
    """A stateless recurrent encoder over a fixed-length window and a dense multi-step head.

    `batch_size` and `unroll` exist for export: the same weights load into a fixed-batch or an
    unrolled twin, which the LiteRT converter turns into builtin ops only.
    """
    import keras

    inputs = keras.Input(shape=(window, n_features), batch_size=batch_size, name="window")
    x = inputs
    recurrent = keras.layers.GRU if config.cell == "gru" else keras.layers.LSTM
    for i in range(config.layers):
        last = i == config.layers - 1
        layer = recurrent(
            config.units, return_sequences=not last, unroll=unroll, name=f"{config.cell}_{i}"
        )
        x = (
            keras.layers.Bidirectional(layer, name=f"bi_{i}")(x)
            if config.bidirectional
            else layer(x)
        )
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    x = keras.layers.Dense(horizon * n_targets, name="head")(x)
    outputs = keras.layers.Reshape((horizon, n_targets), name="forecast")(x)
    model = keras.Model(inputs, outputs, name=f"{config.cell}_forecaster")
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
            loss="mse",
            metrics=["mae"],
        )
    return model
