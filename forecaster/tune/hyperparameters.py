"""The hyperparameters: the space for the data, its declaration, trial values, seeds and recipes."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecaster.config import Loss, ModelConfig
from forecaster.model.windows import Split
from forecaster.tune.data import check_windows_fit, longest_run
from forecaster.tune.space import HYPERPARAMETERS, SearchSpace, SpaceOverrides, default_space

if TYPE_CHECKING:
    from keras_tuner import HyperParameters

    from forecaster.data.load import SensorData

HP_ORDER = tuple(HYPERPARAMETERS.values())
_SEED_MODULUS = 2**31 - 1


def clean_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameter values without Hyperband's bookkeeping (tuner/epochs, tuner/bracket, ...)."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def trial_seed(base_seed: int, values: Mapping[str, Any]) -> int:
    """The seed of one trial: base seed plus a stable hash of its hyperparameters.

    The cell is left out, so a GRU and an LSTM with the same other values start from the same
    seed (the same shuffling): a matched comparison. Hyperband's bookkeeping is left out too.
    """
    items = {k: v for k, v in clean_values(values).items() if k != "cell"}
    text = json.dumps(items, sort_keys=True, default=str)
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return (base_seed + digest) % _SEED_MODULUS


def oracle_seed(base_seed: int) -> int:
    """The seed of a cell's oracle: never 0, which Keras Tuner replaces with a random one."""
    return base_seed % (_SEED_MODULUS - 1) + 1


def declare(hp: HyperParameters, space: SearchSpace, cell: str) -> dict[str, Any]:
    """Register the search space on a Keras Tuner `HyperParameters` and return this trial's values.

    The order is fixed (see SPACE_KEYS): random draws follow it. Each hyperparameter's default
    is the space's starting point, which the oracles try first.
    """
    start = space.starting_point()

    def choice(name: str, values: tuple[Any, ...]) -> Any:
        if len(values) == 1:
            return hp.Fixed(name, values[0])
        ordered = not isinstance(values[0], str)
        return hp.Choice(name, list(values), ordered=ordered, default=start[name])

    def number(name: str, pair: tuple[float, float], **kwargs: Any) -> Any:
        low, high = pair
        if low == high:
            return hp.Fixed(name, low)
        kind = hp.Int if isinstance(low, int) and isinstance(high, int) else hp.Float
        return kind(name, low, high, default=start[name], **kwargs)

    dropout_step = 0.1 if space.dropout[1] - space.dropout[0] >= 0.1 else None
    return {
        "cell": hp.Fixed("cell", cell),
        "window": choice("window", space.windows),
        "units": choice("units", space.unit_choices),
        "layers": number("layers", space.layers),
        "dropout": number(
            "dropout", (float(space.dropout[0]), float(space.dropout[1])), step=dropout_step
        ),
        "learning_rate": number(
            "learning_rate",
            (float(space.learning_rate[0]), float(space.learning_rate[1])),
            sampling="log",
        ),
        "residual": choice("residual", space.residual),
        "normalize": choice("normalize", space.normalize),
    }


def model_config(values: Mapping[str, Any], season: int, loss: Loss = "mae") -> ModelConfig:
    """The model recipe of a set of hyperparameter values."""
    return ModelConfig(
        cell=values["cell"],
        units=int(values["units"]),
        layers=int(values["layers"]),
        dropout=float(values["dropout"]),
        learning_rate=float(values["learning_rate"]),
        residual=values.get("residual", "none"),
        normalize=values.get("normalize", "none"),
        season=season,
        loss=loss,
    )


@cache
def builder_support() -> tuple[bool, bool]:
    """Whether `build_model` honours ModelConfig.residual and .normalize yet.

    Two tiny models with the same seed, one with the option set, must give different outputs;
    an option the builder ignores would only waste trials, so the default space leaves it out.
    """
    import keras

    from forecaster.model.build import build_model

    x = np.linspace(0.2, 1.0, 8, dtype=np.float32).reshape(1, 4, 2)

    def output(**changes: Any) -> np.ndarray:
        keras.utils.set_random_seed(0)
        options = {"residual": "none", "normalize": "none", **changes}
        config = ModelConfig(units=2, season=2, **options)
        model = build_model(config, window=4, n_features=2, horizon=2, n_targets=1, compile=False)
        return np.asarray(model(x, training=False))

    base = output()
    try:
        residual = not np.allclose(output(residual="last"), base)
        normalize = not np.allclose(output(normalize="mean"), base)
    except Exception:  # a builder mid-change must not stop tuning: search without them
        residual = normalize = False
    keras.backend.clear_session()
    return residual, normalize


def resolve_space(
    data: SensorData,
    split: Split,
    horizon: int,
    season: int,
    overrides: SpaceOverrides,
) -> SearchSpace:
    """The default space for this data, with the user's overrides, checked against the data.

    The user's values are checked before the model builder is probed (which loads TensorFlow),
    so a bad option fails at once.
    """
    train_rows = longest_run(data, split.train)
    eval_rows = min(longest_run(data, split.val), longest_run(data, split.test))

    # The decomposition reference needs timestamps and a season with a profile, which takes two
    # of its cycles in the training part (evaluation.decomposition.fit_decomposition).
    timed = isinstance(data.frame.index, pd.DatetimeIndex) and data.freq is not None
    decomposition_ok = timed and season > 1 and train_rows >= 2 * season

    def base(residual_ok: bool, normalize_ok: bool) -> SearchSpace:
        return default_space(
            train_rows=train_rows,
            longest_eval_rows=eval_rows,
            horizon=horizon,
            season=season,
            residual_supported=residual_ok,
            normalize_supported=normalize_ok,
            decomposition_supported=decomposition_ok,
        )

    space = overrides.apply(base(False, False), horizon=horizon, season=season)
    check_windows_fit(space, data, split, horizon)
    if overrides.residual is None or overrides.normalize is None:
        space = overrides.apply(base(*builder_support()), horizon=horizon, season=season)
    return space


def describe(values: Mapping[str, Any]) -> str:
    """Hyperparameters as a short line: 'window 24, units 8, layers 1, dropout 0.1, lr 0.0012'."""
    names = {"learning_rate": "lr"}
    parts = []
    ordered = {k: values[k] for k in HP_ORDER if k in values} | clean_values(values)
    for key, value in ordered.items():
        if key == "cell":
            continue
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{names.get(key, key)} {text}")
    return ", ".join(parts)


def hyperband_trials(max_epochs: int, factor: int) -> int:
    """Trials one Hyperband iteration runs (Keras Tuner's bracket sizes)."""
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    return sum(
        math.ceil(end_size / (b + 1) * factor ** (b - r))
        for b in range(brackets)
        for r in range(b + 1)
    )
