"""Training a run directory: fit one model, evaluate it on the test part, write its bundle."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecaster.bundle import Bundle, DataSpec, ModelSpec, TrainingSpec
from forecaster.config import (
    DEFAULT_ADAPT,
    DataConfig,
    ModelConfig,
    SplitConfig,
    TrainConfig,
    WindowConfig,
)
from forecaster.errors import ConfigError
from forecaster.files import sha256_of, staged_dir, write_text_atomic
from forecaster.layout import HISTORY, KERAS_MODEL, LOSS_PNG, TRAINING_FILE
from forecaster.runs.evaluate import check_origins, evaluate_windows, write_evaluation
from forecaster.runs.load import check_out_dir, default_run_dir, library_versions

if TYPE_CHECKING:
    import keras

    from forecaster.data.load import SensorData
    from forecaster.evaluation.rolling import Evaluation, FittedBaselines
    from forecaster.intervals import Intervals
    from forecaster.model.fit import EpochCallback, TrainResult
    from forecaster.model.windows import Prepared, Split


@dataclass
class RunOutcome:
    """What `train` produced: the run directory, its bundle, the training and the evaluation."""

    run_dir: Path
    bundle: Bundle
    result: TrainResult
    evaluation: Evaluation
    warnings: list[str] = field(default_factory=list)  # what loading and scoring worked around


@dataclass(frozen=True)
class ScoredBaselines:
    """The baselines fitted on a run's training part, its MASE scale, and what was worked around."""

    fitted: FittedBaselines
    mase_scale: np.ndarray  # (targets,)
    warnings: tuple[str, ...] = ()


def fit_baselines(
    data: SensorData,
    split: Split,
    window: WindowConfig,
    seasons: tuple[int, ...] | None = None,
    fitted: FittedBaselines | None = None,
) -> ScoredBaselines:
    """Find the seasons (unless given) and fit the MASE scale and every baseline on the training
    part.

    Run before training, so a file the baselines cannot score is refused, with the numbers,
    before any work. A season needs two cycles in the training part to be found, so a file
    shorter than a day is scored with season 1. `fitted`: the baselines already fitted on this
    training part with `seasons` (a fleet fits them in parallel).
    """
    from forecaster.data.seasons import kept_seasons, training_seasons
    from forecaster.evaluation.metrics import seasonal_naive_scale
    from forecaster.evaluation.rolling import FittedBaselines
    from forecaster.model.windows import window_origins

    targets = data.frame[list(data.targets)].to_numpy(np.float64)
    train_targets = targets[slice(*split.train)]
    seasons = seasons or kept_seasons(training_seasons(data, split.train))
    fitted = fitted or FittedBaselines.fit(train_targets, seasons)
    check_origins(
        f"the test part of {data.name}",
        targets,
        window_origins(data.segments, split.test, window),
        window.horizon,
        seasons,
        fitted.holt_winters,
        fix="pass a smaller --season or use a file with more rows",
    )
    warnings = []
    for i, name in enumerate(data.targets):
        values = train_targets[:, i][np.isfinite(train_targets[:, i])]
        if values.size and np.ptp(values) == 0:
            warnings.append(
                f"target '{name}' is constant ({values[0]:g}) in the training part of "
                f"{data.name}; the naive baselines forecast it exactly and the model cannot "
                "beat them"
            )
    return ScoredBaselines(fitted, seasonal_naive_scale(train_targets, seasons[0]), tuple(warnings))


def train(
    source: str | Path | SensorData,
    data_config: DataConfig | None = None,
    *,
    split: SplitConfig | None = None,
    window: WindowConfig | None = None,
    model: ModelConfig | None = None,
    training: TrainConfig | None = None,
    seasons: tuple[int, ...] | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
    initial_weights: Path | None = None,
) -> RunOutcome:
    """Train one model on a CSV, evaluate it on the test part, and write a run directory.

    `source` is a CSV path read with `data_config`, or data already loaded by `load_csv` (its
    own options are used). `seasons` defaults to those the training part shows; the first is
    the model's and the MASE scale's. `initial_weights` continues from a saved training of the
    same model.
    """
    from forecaster.data.inspect import describe_freq, position_label
    from forecaster.data.lags import lag_seasons
    from forecaster.data.load import SensorData, load_csv
    from forecaster.evaluation.decomposition import seasonal_inputs
    from forecaster.model.fit import train_model
    from forecaster.model.windows import check_timestamps, prepare, split_rows

    if isinstance(source, SensorData):
        data_config = source.config
    elif data_config is None:
        raise ConfigError("train needs a DataConfig with the target column(s) to read a CSV")
    split = split or SplitConfig()
    window = window or WindowConfig()
    model = model or ModelConfig()
    training = training or TrainConfig()
    if not data_config.targets:
        raise ConfigError("no target column chosen; pass --target COLUMN")
    file = source.path if isinstance(source, SensorData) else Path(source)
    out = out or default_run_dir(file, model.cell)
    check_out_dir(out, overwrite=overwrite)

    data = source if isinstance(source, SensorData) else load_csv(file, data_config)
    # The baselines come first: a file they cannot score is refused before any training, and the
    # decomposition reference reads their profiles as inputs.
    scored = fit_baselines(data, split_rows(data.n_rows, split), window, seasons)
    baselines, mase_scale = scored.fitted, scored.mase_scale
    seasons = baselines.seasons
    season = seasons[0]
    model = dataclasses.replace(model, season=season)
    seasonal = None
    if model.residual == "decomposition":
        check_timestamps(data)
        seasonal = seasonal_inputs(baselines.decomposition, window.horizon)
    lags = lag_seasons(seasons, window.window, window.horizon) if window.lags else ()
    prepared = prepare(data, split, window, seasonal, lags)
    result = train_model(prepared, model, training, on_epoch, initial_weights)

    intervals = keras_intervals(result.model, prepared)
    evaluation = evaluate_windows(
        result.model,
        data,
        prepared.scaler,
        prepared.windows["test"],
        baselines,
        mase_scale,
        intervals=intervals,
        calibration=prepared.windows["val"],
        adapt=DEFAULT_ADAPT,
    )
    bundle = Bundle(
        data=DataSpec(
            source=file.name,
            source_sha256=sha256_of(file),
            time_col=data.time_col,
            features=data.features,
            targets=data.targets,
            step_seconds=data.freq.total_seconds() if data.freq is not None else None,
            freq=describe_freq(data.freq),
            max_gap=data_config.max_gap,
            dedupe=data_config.dedupe,
            bad_rows=data_config.bad_rows,
            split=(split.train, split.val, split.test),
            train_start=position_label(data, prepared.split.train[0]),
            train_end=position_label(data, prepared.split.train[1] - 1),
            season=season,
            mase_scale=tuple(float(v) for v in mase_scale),
            calendar=prepared.calendar,
            seasons=seasons,
            seasonal=seasonal,
            lags=lags,
        ),
        scaler=prepared.scaler,
        model=ModelSpec(
            **dataclasses.asdict(model),
            window=window.window,
            horizon=window.horizon,
            params=result.params,
        ),
        training=training_spec(training, result, initial_weights),
        baselines=baselines.to_bundle(),
        metrics={"test": evaluation.to_json()},
        intervals=intervals,
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        result.model.save(stage / KERAS_MODEL)
        bundle.save(stage)
        record = {"path": str(file.resolve())}
        write_text_atomic(stage / TRAINING_FILE, json.dumps(record, indent=2) + "\n")
        write_text_atomic(stage / HISTORY, history_csv(result.history))
        write_evaluation(stage, evaluation, data)
        from forecaster.report.plots import plot_history

        plot_history(result.history, result.best_epoch, stage / LOSS_PNG, model.loss)
    warnings = [*data.report.warnings, *scored.warnings]
    return RunOutcome(out, bundle, result, evaluation, warnings)


def keras_intervals(keras_model: keras.Model, prepared: Prepared) -> Intervals:
    """Conformal intervals of the Keras model from its errors on the validation part.

    The export replaces them with the shipped LiteRT file's own.
    """
    from forecaster.data.inspect import position_label
    from forecaster.intervals import calibrate

    val, targets = prepared.windows["val"], prepared.data.targets
    forecast = keras_model.predict(val.x, batch_size=1024, verbose=0)
    return calibrate(
        prepared.scaler.inverse(forecast, targets),
        prepared.scaler.inverse(val.y, targets),
        first_origin=position_label(prepared.data, int(val.origins[0])),
        last_origin=position_label(prepared.data, int(val.origins[-1])),
        source="the Keras model on the validation part",
    )


def training_spec(
    training: TrainConfig, result: TrainResult, initial_weights: Path | None = None
) -> TrainingSpec:
    """How a model was trained and how it went, for its bundle."""
    return TrainingSpec(
        **dataclasses.asdict(training),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        best_val_loss=result.best_val_loss,
        seconds=round(result.seconds, 3),
        seconds_per_epoch=round(float(np.median(result.epoch_seconds)), 4)
        if result.epoch_seconds
        else 0.0,
        interrupted=result.interrupted,
        initial_weights=str(initial_weights) if initial_weights else None,
        shrinkage=_rounded(result.shrinkage),
    )


def _rounded(shares: np.ndarray | None) -> tuple[tuple[float, ...], ...]:
    """Shares (horizon, targets) as JSON-ready rows."""
    if shares is None:
        return ()
    return tuple(tuple(round(float(v), 4) for v in row) for row in shares)


def history_csv(history: dict[str, list[float]]) -> str:
    buffer = io.StringIO()
    keys = list(history)
    writer = csv.writer(buffer)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    return buffer.getvalue()
