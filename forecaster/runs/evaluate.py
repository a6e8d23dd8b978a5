"""Evaluating a run: its Keras model and every baseline on the same origins, written beside it."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.bundle import Bundle, DataSpec
from forecaster.config import DEFAULT_ADAPT
from forecaster.errors import DataError
from forecaster.files import write_text_atomic
from forecaster.layout import ERROR_BY_STEP_PNG, FORECAST_PNG, METRICS, suffixed
from forecaster.runs.load import (
    bundle_data_config,
    bundle_window,
    load_keras_model,
    load_training_data,
)

if TYPE_CHECKING:
    import keras

    from forecaster.data.load import SensorData
    from forecaster.evaluation.rolling import Evaluation, FittedBaselines
    from forecaster.intervals import Intervals
    from forecaster.model.windows import Windows
    from forecaster.scaling import MinMaxParams


def evaluate(
    run_dir: str | Path, file: str | Path | None = None, *, seasons: tuple[int, ...] | None = None
) -> tuple[Bundle, Evaluation]:
    """Rolling-origin evaluation of a run on its test part, or on every window of `file`.

    `seasons` replaces the seasons of the seasonal-naive baselines (the first stays the one the
    MASE scale, Holt-Winters and the decomposition were fitted with).
    """
    from forecaster.data.lags import history_rows
    from forecaster.data.load import load_csv
    from forecaster.evaluation.rolling import FittedBaselines
    from forecaster.model.windows import check_timestamps, make_windows, model_inputs

    run_dir = Path(run_dir)
    bundle = Bundle.load(run_dir)
    keras_model = load_keras_model(run_dir)
    spec = bundle.data
    window = bundle_window(bundle)
    calibration = None
    if file is None:
        prepared = load_training_data(bundle, run_dir=run_dir)
        data, windows = prepared.data, prepared.windows["test"]
        calibration = prepared.windows["val"]
        suffix = ""
    else:
        file = Path(file)
        _check_columns(file, bundle)
        data = load_csv(file, bundle_data_config(bundle))
        if spec.seasonal is not None:
            check_timestamps(data)
        scaled = model_inputs(
            data,
            bundle.scaler,
            spec.calendar,
            spec.seasonal,
            grid_offset(data, spec),
            lags=spec.lags,
            horizon=window.horizon,
        )
        windows = make_windows(scaled, data.segments, (0, data.n_rows), window, data.target_index)
        if data.n_rows < window.span:
            raise DataError(
                f"{file} has {data.n_rows} rows, fewer than the window + horizon = "
                f"{window.window} + {window.horizon} = {window.span} rows one forecast origin "
                f"needs; pass a file with at least {window.span} rows"
            )
        if len(windows) == 0 and spec.lags:
            needed = history_rows(window.window, window.horizon, spec.lags) + window.horizon
            raise DataError(
                f"{file} has no stretch of {needed} consecutive complete rows: each origin reads "
                f"window {window.window} + horizon {window.horizon} rows and the values "
                f"{max(spec.lags)} steps (a season) before each forecast step; pass a longer file"
            )
        if len(windows) == 0:
            raise DataError(
                f"{file} has no stretch of {window.span} consecutive complete rows (window "
                f"{window.window} + horizon {window.horizon}); pass a longer file"
            )
        suffix = f"_{file.stem}"
    baselines = FittedBaselines.of(bundle)
    if seasons:
        baselines = dataclasses.replace(baselines, seasons=seasons)
    first_row = 0 if file is None else grid_offset(data, spec)
    where = f"the test part of {data.name}" if file is None else f"{file}"
    check_origins(
        where,
        data.frame[list(data.targets)].to_numpy(np.float64),
        windows.origins,
        window.horizon,
        baselines.seasons,
        baselines.holt_winters,
        fix="pass a smaller --season or a longer file",
    )
    evaluation = evaluate_windows(
        keras_model,
        data,
        bundle.scaler,
        windows,
        baselines,
        np.asarray(spec.mase_scale),
        first_row,
        intervals=bundle.intervals,
        calibration=calibration,
        adapt=DEFAULT_ADAPT,
    )
    write_evaluation(run_dir, evaluation, data, suffix=suffix)
    return bundle, evaluation


def check_origins(
    where: str,
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    seasons: tuple[int, ...],
    hw_params: list[dict[str, Any]],
    *,
    fix: str,
) -> None:
    """Refuse, with the numbers, windows at none of whose origins every baseline can forecast.

    `where` names the windows' rows ("the test part of FILE"); `fix` is the advice when the
    series is too short for the season.
    """
    from forecaster.evaluation.baselines import earliest_origin, hw_warmup, usable_origins

    if len(origins) == 0 or usable_origins(series, origins, horizon, seasons, hw_params).any():
        return
    season = max(seasons)
    first, last = int(origins.min()), int(origins.max())
    found = f"{len(origins)} origin(s) (rows {first}-{last})"
    warmup = hw_warmup(hw_params)
    earliest = earliest_origin(series, season, hw_params)
    if earliest is None:
        raise DataError(
            f"{where}: the series has no {warmup} consecutive complete rows for the Holt-Winters "
            "baseline to start from; use a file with fewer gaps or a larger --max-gap"
        )
    if earliest > last:
        raise DataError(
            f"{where} has {found}, but the baselines forecast only from row {earliest} on "
            f"(seasonal naive with season {season} needs {season} rows before an origin, "
            f"Holt-Winters {warmup} complete rows); {fix}"
        )
    raise DataError(
        f"{where} has {found}, but gaps leave none of them with the complete rows every "
        "baseline needs before and after it; use a file with fewer gaps or a larger --max-gap"
    )


def evaluate_windows(
    keras_model: keras.Model,
    data: SensorData,
    scaler: MinMaxParams,
    windows: Windows,
    baselines: FittedBaselines,
    mase_scale: np.ndarray,
    first_row: int = 0,
    *,
    intervals: Intervals | None = None,
    calibration: Windows | None = None,
    scaled_forecast: np.ndarray | None = None,
    adapt: int = 0,
    scaled_calibration_forecast: np.ndarray | None = None,
) -> Evaluation:
    """The model's forecasts at the windows' origins, scored beside every baseline.

    The model's `intervals` and the baselines' own, calibrated at the `calibration` windows'
    origins, are scored too; with `adapt`, also the model's as `predict --adapt` recalibrates
    them from its recent errors there and on `windows`. `scaled_forecast` and
    `scaled_calibration_forecast`, when given, are the model's outputs for `windows` and
    `calibration` already computed (a fleet predicts every series' windows in one call).
    """
    from forecaster.data.inspect import position_label
    from forecaster.evaluation.rolling import evaluate_forecasts

    scaled_pred = (
        keras_model.predict(windows.x, batch_size=1024, verbose=0)
        if scaled_forecast is None
        else scaled_forecast
    )
    forecast = scaler.inverse(scaled_pred, data.targets)
    series = data.frame[list(data.targets)].to_numpy(np.float64)
    calibration_forecast = None
    if adapt and intervals is not None and calibration is not None and len(calibration):
        if scaled_calibration_forecast is None:
            scaled_calibration_forecast = keras_model.predict(
                calibration.x, batch_size=1024, verbose=0
            )
        calibration_forecast = scaler.inverse(scaled_calibration_forecast, data.targets)
    return evaluate_forecasts(
        series,
        windows.origins,
        forecast,
        targets=data.targets,
        labels=[position_label(data, int(o)) for o in windows.origins],
        baselines=baselines,
        mase_scale=mase_scale,
        first_row=first_row,
        model_intervals=intervals,
        calibration_origins=None if calibration is None else calibration.origins,
        model_calibration_forecast=calibration_forecast,
        adapt=adapt,
    )


def grid_offset(data: SensorData, spec: DataSpec) -> int:
    """Grid steps from the training file's first row to `data`'s: the seasons' phase.

    0 for a file without timestamps, whose rows are not placed in time.
    """
    import pandas as pd

    index = data.frame.index
    if not isinstance(index, pd.DatetimeIndex) or not spec.step_seconds or not len(index):
        return 0
    try:
        first = index[:1].as_unit("ns").asi8
        return int(spec.grid_rows(first)[0])
    except (ValueError, DataError):  # a bundle whose training file had no timestamps
        return 0


def write_evaluation(
    directory: Path, evaluation: Evaluation, data: SensorData, suffix: str = ""
) -> None:
    """metrics.json and the forecast and error plots, with `suffix` for another file's."""
    from forecaster.report.plots import plot_error_by_step, plot_forecasts

    write_text_atomic(
        directory / suffixed(METRICS, suffix), json.dumps(evaluation.to_json(), indent=2) + "\n"
    )
    series = data.frame[list(data.targets)].to_numpy(np.float64)
    plot_forecasts(evaluation, series, directory / suffixed(FORECAST_PNG, suffix))
    plot_error_by_step(evaluation, directory / suffixed(ERROR_BY_STEP_PNG, suffix))


def _check_columns(file: Path, bundle: Bundle) -> None:
    if not file.exists():
        raise DataError(f"{file} does not exist; check the path")
    with file.open(encoding="utf-8-sig", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    names = {h.strip() for h in header}
    missing = [c for c in bundle.data.features if c not in names]
    if missing:
        raise DataError(
            f"{file} lacks column(s) {', '.join(missing)} that the model was trained on "
            f"(inputs: {', '.join(bundle.data.features)}); pass a CSV with those columns"
        )
