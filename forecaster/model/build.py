"""GRU and LSTM forecasters built from one recipe, so the two cells compare fairly.

Two options keep a recurrent network honest on real sensor data (see README, "Forecast quality"):
window normalization subtracts a per-window statistic (the last value or the mean) from each
sensor channel, so levels outside the training range still look familiar; residual forecasting
adds the network's output to a reference (the last value or the seasonal-naive forecast taken
from the window, or the decomposition baseline run over the window), so the network learns the
change rather than the level. Both are plain tensor ops inside the model, so the exported LiteRT
file carries them and the device needs nothing else (beyond the seasonal input channels the
decomposition reference reads, which the device computes from timestamps like calendar ones).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.bundle import SeasonalInputs
from forecaster.config import ModelConfig
from forecaster.errors import ConfigError
from forecaster.model.smoothing import holt_matrix

if TYPE_CHECKING:
    import keras

_LAYERS: dict[str, type] = {}

# last_seasonal's gain is stored divided by this, so Adam's steps of about the learning rate move
# the gain itself ten times as fast: a few hundred steps (short daily series) take it from 1 to 0.
GAIN_SCALE = 10.0


def seasonal_indices(window: int, horizon: int, season: int) -> list[int]:
    """Window rows holding the seasonal-naive value of each forecast step (latest full season)."""
    return [window - season * math.ceil((h + 1) / season) + h for h in range(horizon)]


def seasonal_base_indices(window: int, horizon: int, season: int) -> list[int]:
    """For each forecast step, the window row as many seasons before the window's last row as
    its seasonal-naive row is before the step."""
    return [i - h - 1 for h, i in enumerate(seasonal_indices(window, horizon, season))]


def reference_rows(residual: str, window: int, horizon: int, season: int) -> list[int]:
    """Window rows a seasonal reference reads (empty for the others)."""
    if residual == "seasonal":
        return seasonal_indices(window, horizon, season)
    if residual == "last_seasonal":
        return seasonal_base_indices(window, horizon, season)
    return []


def smoothing_matrix(smoothing: list[list[float]], window: int, horizon: int) -> np.ndarray:
    """Holt's smoothing of every target over a window as one (window * targets, horizon *
    targets) matrix: a window's deseasonalised targets, flattened row-major, times it give the
    forecast (horizon, targets) flattened. Targets do not mix (a block-diagonal map)."""
    n = len(smoothing)
    matrix = np.zeros((window, n, horizon, n), np.float32)
    for t, (alpha, beta, phi) in enumerate(smoothing):
        matrix[:, t, :, t] = holt_matrix(alpha, beta, phi, window, horizon).T
    return matrix.reshape(window * n, horizon * n)


def decomposition_config(
    seasonal: SeasonalInputs, n_features: int, n_targets: int
) -> dict[str, Any]:
    """What AddReference keeps of the decomposition: the seasonal channels and the smoothing.

    The channels are the inputs' last 2 * targets: every target's profile sum at its row, then
    at its row plus the horizon (SeasonalInputs.channels).
    """
    first = n_features - 2 * n_targets
    return {
        "now": list(range(first, first + n_targets)),
        "ahead": list(range(first + n_targets, n_features)),
        "smoothing": [[float(v) for v in values] for values in seasonal.smoothing],
    }


def _channels(x: Any, index: list[int]) -> Any:
    """Channels `index` of x (..., channels): a slice when they are consecutive."""
    from keras import ops

    first, last = min(index), max(index)
    if index == list(range(first, last + 1)):
        return x[:, :, first : last + 1]  # a slice converts to fewer ops than a gather
    return ops.take(x, index, axis=2)


def normalize_window(x: Any, mode: str, channels: int) -> Any:
    """Subtract each window's last value or mean from its first `channels` channels."""
    from keras import ops

    if mode == "none":
        return x
    sensors = x[..., :channels]
    stat = sensors[:, -1:, :] if mode == "last" else ops.mean(sensors, axis=1, keepdims=True)
    if channels == x.shape[-1]:
        return sensors - stat
    return ops.concatenate([sensors - stat, x[..., channels:]], axis=-1)


def window_reference(
    x: Any,
    *,
    residual: str,
    normalize: str,
    target_index: tuple[int, ...],
    horizon: int,
    season: int,
    gain: Any | None = None,
    mark: Callable[[str, Any], Any] | None = None,
    decomposition: dict[str, Any] | None = None,
    matrix: Any | None = None,
) -> Any | None:
    """What the network's output is added to, or None.

    Shape (batch, horizon, targets) for the seasonal and decomposition references, (batch, 1,
    targets) otherwise: it broadcasts over the horizon, which keeps the exported graph small.
    `gain` (horizon, targets) weighs last_seasonal's seasonal change per step. `decomposition`
    (from `decomposition_config`) places the seasonal channels; `matrix` is its smoothing
    matrix (default: built from it). `mark(name, tensor)` sees every tensor computed here (not
    merely gathered), for int8 conversion to range it.
    """
    from keras import ops

    mark = mark or (lambda _, tensor: tensor)
    targets = _channels(x, list(target_index))
    if residual == "decomposition":
        if decomposition is None:
            raise ValueError("the decomposition reference needs its seasonal channels")
        window, n = x.shape[1], len(target_index)
        if matrix is None:
            matrix = smoothing_matrix(decomposition["smoothing"], window, horizon)
        rest = mark("ref_z", targets - _channels(x, decomposition["now"]))
        level = ops.matmul(ops.reshape(rest, (-1, window * n)), matrix)
        level = mark("ref_level", ops.reshape(level, (-1, horizon, n)))
        ahead = _channels(x[:, window - horizon :, :], decomposition["ahead"])
        return mark("ref", level + ahead)
    if residual in ("seasonal", "last_seasonal"):
        seasonal = ops.take(targets, seasonal_indices(x.shape[1], horizon, season), axis=1)
        if residual == "seasonal":
            return seasonal
        base = ops.take(targets, seasonal_base_indices(x.shape[1], horizon, season), axis=1)
        change = mark("ref_change", seasonal - base)
        if gain is not None:
            change = mark("ref_gained", change * gain)
        return mark("ref", targets[:, -1:, :] + change)
    anchor = residual if residual != "none" else normalize
    if anchor == "none":
        return None
    return targets[:, -1:, :] if anchor == "last" else ops.mean(targets, axis=1, keepdims=True)


def lag_correction(
    x: Any,
    ref: Any | None,
    *,
    lag_channels: list[int],
    horizon: int,
    kernel: Any,
    mark: Callable[[str, Any], Any] | None = None,
) -> Any:
    """The seasonal lags' linear path to the output (LSTNet's highway): the value a season
    before each forecast step, less the reference, times `kernel` (lags * horizon * targets,
    horizon * targets). Zero at the start, so an untrained model forecasts the reference."""
    from keras import ops

    mark = mark or (lambda _, tensor: tensor)
    window = x.shape[1]
    lags = _channels(x[:, window - horizon :, :], lag_channels)  # (batch, horizon, lags * n)
    n = kernel.shape[1] // horizon
    lags = ops.reshape(lags, (-1, horizon, len(lag_channels) // n, n))
    if ref is not None:
        lags = mark("lag_in", lags - ops.expand_dims(ref, 2))
    flat = ops.reshape(lags, (-1, horizon * len(lag_channels)))
    return mark("lag_out", ops.reshape(ops.matmul(flat, kernel), (-1, horizon, n)))


def custom_layers() -> dict[str, type]:
    """forecaster's Keras layers, defined and registered once so safe-mode loading finds them."""
    if _LAYERS:
        return _LAYERS
    import keras

    @keras.saving.register_keras_serializable(package="forecaster")
    class WindowNormalize(keras.layers.Layer):
        """Subtract a per-window statistic from the sensor channels."""

        def __init__(self, mode: str, channels: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode, self.channels = mode, channels

        def call(self, x: Any) -> Any:
            return normalize_window(x, self.mode, self.channels)

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {"mode": self.mode, "channels": self.channels}

    @keras.saving.register_keras_serializable(package="forecaster")
    class AddReference(keras.layers.Layer):
        """Add the reference taken from the input window to the network's output.

        With `seasonal_gain`, last_seasonal learns per step how much of the change a season back to
        trust: a direct path from "naive" (0) to the full seasonal change (1, its start).
        """

        def __init__(
            self,
            residual: str,
            normalize: str,
            target_index: list[int],
            horizon: int,
            season: int,
            seasonal_gain: bool = False,  # saved models from before the gain have none
            decomposition: dict[str, Any] | None = None,  # decomposition_config's
            lag_channels: list[int] | None = None,  # input channels of the seasonal lags
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.lag_channels = list(lag_channels or [])
            self.highway: Any | None = None
            self.residual, self.normalize = residual, normalize
            self.target_index, self.horizon, self.season = list(target_index), horizon, season
            self.seasonal_gain = seasonal_gain and residual == "last_seasonal"
            self.gain: Any | None = None
            self.decomposition = decomposition if residual == "decomposition" else None

        def build(self, input_shape: Any) -> None:
            if self.seasonal_gain:
                self.gain = self.add_weight(
                    shape=(self.horizon, len(self.target_index)),
                    initializer=keras.initializers.Constant(1.0 / GAIN_SCALE),
                    name="seasonal_gain",
                )
            if self.lag_channels:
                n = len(self.target_index)
                self.highway = self.add_weight(
                    shape=(self.horizon * len(self.lag_channels), self.horizon * n),
                    initializer="zeros",
                    name="lag_highway",
                )

        def gain_value(self) -> Any | None:
            """The per-step gain on the seasonal change, or None without one."""
            return None if self.gain is None else self.gain * GAIN_SCALE

        def reference(self, x: Any) -> Any | None:
            return window_reference(
                x,
                residual=self.residual,
                normalize=self.normalize,
                target_index=tuple(self.target_index),
                horizon=self.horizon,
                season=self.season,
                gain=self.gain_value(),
                decomposition=self.decomposition,
            )

        def call(self, inputs: list[Any]) -> Any:
            x, delta = inputs
            ref = self.reference(x)
            out = delta if ref is None else delta + ref
            if self.highway is None:
                return out
            return out + lag_correction(
                x,
                ref,
                lag_channels=self.lag_channels,
                horizon=self.horizon,
                kernel=self.highway,
            )

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {
                "residual": self.residual,
                "normalize": self.normalize,
                "target_index": self.target_index,
                "horizon": self.horizon,
                "season": self.season,
                "seasonal_gain": self.seasonal_gain,
                "decomposition": self.decomposition,
                "lag_channels": self.lag_channels,
            }

    _LAYERS.update(WindowNormalize=WindowNormalize, AddReference=AddReference)
    return _LAYERS


def build_model(
    config: ModelConfig,
    *,
    window: int,
    n_features: int,
    horizon: int,
    n_targets: int,
    target_index: tuple[int, ...] | None = None,
    sensor_channels: int | None = None,
    batch_size: int | None = None,
    unroll: bool = False,
    compile: bool = True,
    seasonal: SeasonalInputs | None = None,
    lag_channels: list[int] | None = None,
) -> keras.Model:
    """A stateless recurrent encoder over a fixed-length window and a dense multi-step head.

    `n_features` counts every input channel; the first `sensor_channels` are sensors (the rest,
    calendar covariates and seasonal channels, are not normalized). `target_index` places the
    targets among them. `seasonal` describes the last 2 * n_targets channels, which the
    decomposition reference reads. `lag_channels` (lag-major, then target) are the seasonal lags:
    they feed the recurrent layers and a linear path to the output.
    """
    import keras

    layers = custom_layers()
    target_index = target_index if target_index is not None else tuple(range(n_targets))
    sensor_channels = sensor_channels if sensor_channels is not None else n_features
    if config.residual in ("seasonal", "last_seasonal"):
        if config.season < 2:
            raise ConfigError(
                f"--residual {config.residual} needs a season of 2 or more steps (--season)"
            )
        first = min(reference_rows(config.residual, window, horizon, config.season))
        if first < 0:
            raise ConfigError(
                f"--residual {config.residual} with season {config.season} and horizon "
                f"{horizon} needs --window of at least {window - first} steps, not {window}"
            )
    decomposition = None
    if config.residual == "decomposition":
        if seasonal is None or seasonal.n_targets != n_targets:
            raise ConfigError(
                "--residual decomposition needs the decomposition baseline's seasonal profiles "
                "and smoothing for every target as input channels; train with forecaster train"
            )
        if window < horizon:
            raise ConfigError(
                f"--residual decomposition reads each step's seasonal profile from the window's "
                f"last {horizon} rows: it needs --window of at least the horizon ({horizon}), "
                f"not {window}"
            )
        decomposition = decomposition_config(seasonal, n_features, n_targets)
    inputs = keras.Input(shape=(window, n_features), batch_size=batch_size, name="window")
    x = inputs
    if config.normalize != "none":
        x = layers["WindowNormalize"](config.normalize, sensor_channels, name="normalize")(x)
    recurrent = keras.layers.GRU if config.cell == "gru" else keras.layers.LSTM
    for i in range(config.layers):
        last = i == config.layers - 1
        layer = recurrent(
            config.units, return_sequences=not last, unroll=unroll, name=f"{config.cell}_{i}"
        )
        if config.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bi_{i}")
        x = layer(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    x = keras.layers.Dense(horizon * n_targets, name="head")(x)
    x = keras.layers.Reshape((horizon, n_targets), name="delta")(x)
    if lag_channels and window < horizon:
        raise ConfigError(
            f"seasonal lags are read from the window's last {horizon} rows: they need --window "
            f"of at least the horizon ({horizon}), not {window}"
        )
    if config.residual != "none" or config.normalize != "none" or lag_channels:
        x = layers["AddReference"](
            config.residual,
            config.normalize,
            list(target_index),
            horizon,
            config.season,
            seasonal_gain=True,
            decomposition=decomposition,
            lag_channels=lag_channels,
            name="forecast",
        )([inputs, x])
    model = keras.Model(inputs, x, name=f"{config.cell}_forecaster")
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
            loss=config.loss,
            metrics=["mae"],
        )
    return model
