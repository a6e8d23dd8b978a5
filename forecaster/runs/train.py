"""Training a run directory: fit one model, evaluate it on the test part, write its bundle."""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.bundle import Bundle, DataSpec, ModelSpec, TrainingSpec
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.errors import ConfigError
from forecaster.files import sha256_of, staged_dir, write_text_atomic
from forecaster.layout import HISTORY, KERAS_MODEL, LOSS_PNG
from forecaster.runs.evaluate import check_origins, evaluate_windows, write_evaluation
from forecaster.runs.load import check_out_dir, default_run_dir, library_versions

if TYPE_CHECKING:
    from forecaster.data.load import SensorData
    from forecaster.evaluation.rolling import Evaluation
    from forecaster.model.fit import EpochCallback, TrainResult
    from forecaster.model.windows import Prepared


@dataclass
class RunOutcome:
    """What `train` produced: the run directory, its bundle, the training and the evaluation."""

    run_dir: Path
    bundle: Bundle
    result: TrainResult
    evaluation: Evaluation
    warnings: list[str] = field(default_factory=list)  # what loading and scoring worked around


@dataclass(frozen=True)
class Baselines:
    """The season a run is scored with and the baselines' numbers fitted on its training part."""

    season: int
    mase_scale: np.ndarray  # (targets,)
    hw_params: list[dict[str, Any]]  # one fit_holt_winters spec per target
    warnings: tuple[str, ...] = ()


def fit_baselines(data: SensorData, prepared: Prepared, season: int | None = None) -> Baselines:
    """Choose the season and fit the MASE scale and Holt-Winters on the training part.

    Run before training, so a file the baselines cannot score is refused before any work.
    Without `season` the data's natural one is used (`infer_season`), or season 1 when that
    one leaves no test origin every baseline can forecast from (a file shorter than a season).
    Raises DataError, with the numbers, when no test origin is usable.
    """
    from forecaster.evaluation.baselines import (
        fit_holt_winters,
        infer_season,
        usable_origins,
    )
    from forecaster.evaluation.metrics import seasonal_naive_scale

    targets = data.frame[list(data.targets)].to_numpy(np.float64)
    train_targets = targets[slice(*prepared.split.train)]
    origins = prepared.windows["test"].origins
    horizon = prepared.window.horizon

    def fit(m: int) -> Baselines:
        hw_params = [fit_holt_winters(train_targets[:, i], m) for i in range(targets.shape[1])]
        return Baselines(m, seasonal_naive_scale(train_targets, m), hw_params)

    natural = infer_season(data.freq)
    chosen = fit(season or natural)
    warnings: list[str] = []
    usable = usable_origins(targets, origins, horizon, chosen.season, chosen.hw_params)
    if season is None and natural > 1 and not usable.any():
        warnings.append(
            f"no test origin of {data.path} has the complete rows its natural season of "
            f"{natural} steps needs before it; scoring the baselines with season 1 (pass "
            "--season to choose another)"
        )
        chosen = fit(1)
    check_origins(
        f"the test part of {data.path}",
        targets,
        origins,
        horizon,
        chosen.season,
        chosen.hw_params,
        fix="pass a smaller --season or use a file with more rows",
    )
    for i, name in enumerate(data.targets):
        values = train_targets[:, i][np.isfinite(train_targets[:, i])]
        if values.size and np.ptp(values) == 0:
            warnings.append(
                f"target '{name}' is constant ({values[0]:g}) in the training part of "
                f"{data.path}; the naive baselines forecast it exactly and the model cannot "
                "beat them"
            )
    return dataclasses.replace(chosen, warnings=tuple(warnings))


def train(
    source: str | Path | SensorData,
    data_config: DataConfig | None = None,
    *,
    split: SplitConfig | None = None,
    window: WindowConfig | None = None,
    model: ModelConfig | None = None,
    training: TrainConfig | None = None,
    season: int | None = None,
    out: Path | None = None,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
    initial_weights: Path | None = None,
) -> RunOutcome:
    """Train one model on a CSV, evaluate it on the test part, and write a run directory.

    `source` is a CSV path read with `data_config`, or data already loaded by `load_csv` (its
    own options are used). `initial_weights` continues from a saved training of the same model.
    """
    from forecaster.data.inspect import describe_freq, position_label
    from forecaster.data.load import SensorData, load_csv
    from forecaster.model.fit import train_model
    from forecaster.model.windows import prepare

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
    prepared = prepare(data, split, window)
    baselines = fit_baselines(data, prepared, season)
    season, mase_scale, hw_params = baselines.season, baselines.mase_scale, baselines.hw_params
    model = dataclasses.replace(model, season=season)
    result = train_model(prepared, model, training, on_epoch, initial_weights)

    evaluation = evaluate_windows(
        result.model, data, prepared.scaler, prepared.windows["test"], season, mase_scale, hw_params
    )
    bundle = Bundle(
        data=DataSpec(
            source=str(file.resolve()),
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
        ),
        scaler=prepared.scaler,
        model=ModelSpec(
            **dataclasses.asdict(model),
            window=window.window,
            horizon=window.horizon,
            params=result.params,
        ),
        training=TrainingSpec(
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
        ),
        baselines={"holt_winters": hw_params},
        metrics={"test": evaluation.to_json()},
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        result.model.save(stage / KERAS_MODEL)
        bundle.save(stage)
        write_text_atomic(stage / HISTORY, _history_csv(result.history))
        write_evaluation(stage, evaluation, data)
        from forecaster.report.plots import plot_history

        plot_history(result.history, result.best_epoch, stage / LOSS_PNG, model.loss)
    warnings = [*data.report.warnings, *baselines.warnings]
    return RunOutcome(out, bundle, result, evaluation, warnings)


def _history_csv(history: dict[str, list[float]]) -> str:
    buffer = io.StringIO()
    keys = list(history)
    writer = csv.writer(buffer)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    return buffer.getvalue()
