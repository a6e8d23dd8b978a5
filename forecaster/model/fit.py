"""Training one recurrent forecaster: seeding, early stopping, progress, and clean interruption."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.config import ModelConfig, TrainConfig
from forecaster.model.build import build_model
from forecaster.model.shrink import shrink_toward_reference
from forecaster.model.windows import Prepared, Windows

if TYPE_CHECKING:
    import keras

    from forecaster.model.pooled import PooledPrepared

# Called after every epoch with (epoch number from 1, total epochs, logs such as loss and val_loss).
EpochCallback = Callable[[int, int, dict[str, float]], None]


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and Keras; optionally make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  # Keras and some libraries draw from the global state.
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclass
class TrainResult:
    """A trained model and how its training went."""

    model: keras.Model
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    best_epoch: int  # 1-based
    interrupted: bool
    seconds: float
    params: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # Per step and target, the share of the network's correction kept (forecaster.model.shrink);
    # None when the model has no reference to shrink toward.
    shrinkage: np.ndarray | None = None

    @property
    def epochs_run(self) -> int:
        """Epochs that finished."""
        return len(self.epoch_seconds)

    @property
    def best_val_loss(self) -> float:
        """The validation loss of the kept weights."""
        losses = self.history.get("val_loss", [])
        return float(losses[self.best_epoch - 1]) if losses else float("nan")


def train_model(
    prepared: Prepared | PooledPrepared,
    model_config: ModelConfig,
    train_config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    initial_weights: Path | None = None,
) -> TrainResult:
    """Train on the training windows with early stopping on the validation windows, then
    shrink the network's correction toward the reference per step on the same windows.

    `initial_weights` (a Keras weights file of the same architecture, optimizer state included)
    continues an earlier training instead of starting from the seeded initialisation. Ctrl-C
    stops training after the current batch and keeps the best weights seen so far.
    """
    import keras

    seed_everything(train_config.seed, deterministic=train_config.deterministic)
    train, val = prepared.windows["train"], prepared.windows["val"]
    model = build_model(
        model_config,
        window=prepared.window.window,
        n_features=train.x.shape[2],
        horizon=prepared.window.horizon,
        n_targets=train.y.shape[2],
        target_index=prepared.data.target_index,
        sensor_channels=prepared.sensor_channels,
        seasonal=prepared.seasonal,
        lag_channels=prepared.lag_channels,
    )
    if initial_weights is not None:
        # Build Adam's slots first, or Keras skips the saved optimizer state.
        model.optimizer.build(model.trainable_variables)
        model.load_weights(initial_weights)
    early = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=train_config.patience, restore_best_weights=True
    )
    timer = _EpochLog(train_config.epochs, on_epoch)
    callbacks: list[keras.callbacks.Callback] = [early, timer.callback()]
    if train_config.time_limit is not None:
        callbacks.append(deadline_callback(time.monotonic() + train_config.time_limit))
    if train_config.patience >= 4:
        # Halving the step on a plateau lets long runs keep improving instead of stalling.
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=train_config.patience // 2, min_lr=1e-5
            )
        )
    interrupted = False
    per_epoch = train_config.windows_per_epoch
    inputs: dict[str, Any] = {"x": train.x, "y": train.y, "batch_size": train_config.batch_size}
    monitored = val
    if per_epoch is not None and len(train) > per_epoch:
        inputs = {"x": sampled_windows(train, per_epoch, train_config)}
        # Early stopping needs the same yardstick every epoch: a fixed sample of the validation
        # windows, as large as an epoch, so that checking costs no more than training.
        monitored = _subset(val, per_epoch, train_config.seed)
    started = time.perf_counter()
    try:
        model.fit(
            **inputs,
            validation_data=(monitored.x, monitored.y),
            epochs=train_config.epochs,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
    except KeyboardInterrupt:
        interrupted = True
        if early.best_weights is not None:
            model.set_weights(early.best_weights)
    seconds = time.perf_counter() - started
    shrinkage = shrink_toward_reference(model, val.x, val.y)
    history = {k: [float(v) for v in vs] for k, vs in timer.history.items()}
    val_losses = history.get("val_loss", [])
    best_epoch = int(np.nanargmin(val_losses)) + 1 if val_losses else 0
    return TrainResult(
        model=model,
        history=history,
        epoch_seconds=timer.seconds,
        best_epoch=best_epoch,
        interrupted=interrupted,
        seconds=seconds,
        params=int(model.count_params()),
        shrinkage=shrinkage,
    )


def sampled_windows(train: Windows, per_epoch: int, config: TrainConfig) -> Any:
    """A Keras dataset of `per_epoch` training windows drawn without replacement each epoch.

    Seeded, so the same seed and data draw the same windows; every window is drawn about as
    often over many epochs.
    """
    import keras

    batch = config.batch_size

    class Sampled(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(config.seed)
            self.order = self._draw()

        def _draw(self) -> np.ndarray:
            return self.rng.choice(len(train), per_epoch, replace=False)

        def __len__(self) -> int:
            return math.ceil(per_epoch / batch)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            picked = self.order[index * batch : (index + 1) * batch]
            return train.x[picked], train.y[picked]

        def on_epoch_end(self) -> None:
            self.order = self._draw()

    return Sampled()


def _subset(windows: Windows, size: int, seed: int) -> Windows:
    if len(windows) <= size:
        return windows
    picked = np.sort(np.random.default_rng(seed).choice(len(windows), size, replace=False))
    return Windows(windows.x[picked], windows.y[picked], windows.origins[picked])


def deadline_callback(deadline: float) -> keras.callbacks.Callback:
    """Stop training before an epoch that would end after `deadline` (a time.monotonic() value).

    The next epoch is assumed to last as long as the last one; the first epoch always runs.
    """
    import keras

    class StopBeforeDeadline(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.started = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            now = time.monotonic()
            if now + (now - self.started) > deadline:
                self.model.stop_training = True

    return StopBeforeDeadline()


class _EpochLog:
    """Per-epoch logs and seconds, fed by a Keras LambdaCallback and passed on to `on_epoch`."""

    def __init__(self, epochs: int, on_epoch: EpochCallback | None) -> None:
        self.epochs = epochs
        self.on_epoch = on_epoch
        self.history: dict[str, list[float]] = {}
        self.seconds: list[float] = []
        self._start = 0.0

    def begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._start = time.perf_counter()

    def end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, self.epochs, dict(logs or {}))

    def callback(self) -> keras.callbacks.Callback:
        """The Keras side of the log."""
        import keras

        return keras.callbacks.LambdaCallback(on_epoch_begin=self.begin, on_epoch_end=self.end)
