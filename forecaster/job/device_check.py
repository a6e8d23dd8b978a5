"""The job's last check: the shipped bundle run by the device path agrees with the Keras model."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecaster.bundle import Bundle
from forecaster.config import DEFAULT_ADAPT
from forecaster.data.fleet import Fleet
from forecaster.data.load import SensorData
from forecaster.errors import ForecasterError
from forecaster.evaluation.intervals import IntervalScore, score_bounds, score_intervals
from forecaster.layout import BUNDLE_DIR, DEVICE_CHECK, SEARCH_DIR, TEST_PREDICTIONS, WINNER_DIR
from forecaster.records import write_record

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class DeviceCheck:
    """The largest difference between `forecaster predict` and Keras at the test origins."""

    origins: int
    max_abs_vs_keras: float
    mean_abs_vs_keras: float
    tolerance: float
    passed: bool
    predictions_csv: str
    # The shipped file's own intervals on the test origins, as `predict` wrote them.
    intervals: list[IntervalScore] = field(default_factory=list)
    max_abs_bounds_vs_keras: float = 0.0  # vs Keras' forecast +- the bundle's half-widths
    series: tuple[str, ...] = ()  # a fleet: the series checked (a sample of at most 8)
    # The same file's intervals as rolling `predict` adapts them by default (the last `adapt`
    # errors per step), on the same test origins.
    adaptive_intervals: list[IntervalScore] = field(default_factory=list)
    adapt: int = 0


# A fleet's check runs this many of its series (evenly spread): the device path is the same for
# every series, and rolling forecasts of all of them would be millions of rows.
FLEET_CHECK_SERIES = 8


def check_on_device(out: Path, data: SensorData) -> DeviceCheck:
    """Run the shipped bundle through the device path on the input CSV; compare with Keras.

    The intervals too: each bound must be Keras' forecast +- the bundle's half-width, and their
    coverage of the test part is recorded, beside that of the adapting intervals rolling
    `predict` writes by default. Writes those to OUT/test_predictions.csv, and
    OUT/device_check.json; raises when they disagree by more than the export measured for the
    shipped file.
    """
    import pandas as pd

    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.export.ship import ExportRecord
    from forecaster.intervals import DEFAULT_LEVELS
    from forecaster.runs.load import load_keras_model, load_training_data

    bundle = Bundle.load(out / BUNDLE_DIR)
    predictor = Predictor.load(out / BUNDLE_DIR)
    predictions = out / TEST_PREDICTIONS
    levels = DEFAULT_LEVELS if bundle.intervals is not None else ()
    test = load_training_data(bundle, data).windows["test"]
    index = data.frame.index
    last_rows = [str(index[o - 1]) for o in test.origins]
    targets = bundle.data.targets
    truth = bundle.scaler.inverse(test.y, targets)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        source = data.path
        if data.report.out_of_order and data.time_col:
            # Training sorted the rows; predict streams files in time order and refuses this one.
            source = _sorted_copy(data.path, data.time_col, Path(scratch))
        # The bundle's own intervals, to check each bound against Keras; then predict's default
        # in rolling mode, adapting them to recent errors, whose coverage is what a user gets.
        fixed = Path(scratch) / TEST_PREDICTIONS
        predict_files(predictor, [source], fixed, mode="rolling", levels=levels, adapt=0)
        horizon = bundle.model.horizon
        table = _forecast_table(pd.read_csv(fixed), last_rows, horizon, targets, levels)
        adaptive: list[IntervalScore] = []
        if levels:
            predict_files(predictor, [source], predictions, mode="rolling", levels=levels)
            bounds = _forecast_table(pd.read_csv(predictions), last_rows, horizon, targets, levels)
            # (levels, origins, horizon, targets) from the lower/upper pairs after the point.
            lower = np.moveaxis(bounds[..., 1::2], -1, 0)
            upper = np.moveaxis(bounds[..., 2::2], -1, 0)
            adaptive = score_bounds(truth, lower, upper, levels)
        else:
            fixed.replace(predictions)

    keras_model = load_keras_model(out / SEARCH_DIR / WINNER_DIR)
    keras_forecast = bundle.scaler.inverse(
        keras_model.predict(test.x, batch_size=1024, verbose=0), bundle.data.targets
    )
    ordered = table[..., 0]
    difference = np.abs(ordered - keras_forecast)
    shipped = ExportRecord.of(bundle).shipped_result()
    widths = bundle.intervals.widths(levels) if bundle.intervals is not None else np.zeros(0)
    # The CSV holds 6 significant digits; allow for that beside the exported model's own error.
    largest = float(np.abs(keras_forecast).max() + (widths.max() if widths.size else 0) + 1)
    tolerance = float(shipped.max_abs_vs_keras) * 1.01 + 1e-5 * largest
    bounds_difference, scores = 0.0, []
    if levels:
        keras_bounds = np.stack(
            [keras_forecast + sign * widths[i] for i in range(len(levels)) for sign in (-1, 1)],
            axis=-1,
        )
        bounds_difference = float(np.abs(table[..., 1:] - keras_bounds).max())
        scores = score_intervals(truth, ordered, widths, levels)
    check = DeviceCheck(
        origins=len(last_rows),
        max_abs_vs_keras=float(difference.max()),
        mean_abs_vs_keras=float(difference.mean()),
        tolerance=tolerance,
        passed=bool(max(difference.max(), bounds_difference) <= tolerance),
        predictions_csv=predictions.name,
        intervals=scores,
        max_abs_bounds_vs_keras=bounds_difference,
        adaptive_intervals=adaptive,
        adapt=DEFAULT_ADAPT if levels else 0,
    )
    write_record(out / DEVICE_CHECK, check)
    if not check.passed:
        raise ForecasterError(
            f"the bundle run through `forecaster predict` differs from Keras by up to "
            f"{max(check.max_abs_vs_keras, bounds_difference):.4g} (forecasts and interval "
            f"bounds), more than the {tolerance:.4g} measured at export"
        )
    return check


def check_fleet_on_device(out: Path, fleet: Fleet) -> DeviceCheck:
    """Run the shipped fleet bundle through the device path on a sample of its series' rows and
    compare each with the Keras model at its test origins, in its own units.

    The tolerance of a series is the export's largest change (measured in MASE units) times
    that series' MASE scale. Writes OUT/test_predictions.csv and OUT/device_check.json.
    """
    import pandas as pd

    from forecaster.data.load import parse_times
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.export.ship import ExportRecord
    from forecaster.intervals import DEFAULT_LEVELS
    from forecaster.runs.load import load_keras_model, load_training_fleet

    bundle = Bundle.load(out / BUNDLE_DIR)
    spec = bundle.fleet
    assert spec is not None
    predictor = Predictor.load(out / BUNDLE_DIR)
    pooled = load_training_fleet(bundle, fleet)
    picks = np.unique(np.linspace(0, len(spec.series) - 1, FLEET_CHECK_SERIES).astype(int))
    chosen = [spec.ids[i] for i in picks]
    levels = DEFAULT_LEVELS if all(s.intervals is not None for s in spec.series) else ()
    predictions = out / TEST_PREDICTIONS
    raw = pd.read_csv(fleet.path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw.columns = [str(c).strip() for c in raw.columns]
    rows = raw[raw[spec.id_col].str.strip().isin(chosen)]
    if fleet.series[0].time_col is not None:
        # Training sorted each series' rows; predict streams them in file order.
        times, _ = parse_times(rows[fleet.series[0].time_col])
        rows = rows.iloc[np.argsort(times.to_numpy(), kind="stable")]
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        sample = Path(scratch) / fleet.path.name
        rows.to_csv(sample, index=False)
        predict_files(predictor, [sample], predictions, mode="rolling", levels=levels, adapt=0)

    keras_model = load_keras_model(out / SEARCH_DIR / WINNER_DIR)
    targets = bundle.data.targets
    shipped = ExportRecord.of(bundle).shipped_result()
    frame = pd.read_csv(predictions, dtype={spec.id_col: str})
    horizon = bundle.model.horizon
    worst, worst_bounds, mean_parts, origins, passed = 0.0, 0.0, [], 0, True
    tolerance_used = 0.0
    for i in picks:
        member, series = pooled.members[i], spec.series[i]
        test = member.windows["test"]
        keras = series.scaler.inverse(
            keras_model.predict(test.x, batch_size=1024, verbose=0), targets
        )
        index = member.data.frame.index
        last_rows = [str(index[o - 1]) for o in test.origins]
        table = _forecast_table(
            frame[frame[spec.id_col] == series.id], last_rows, horizon, targets, levels
        )
        difference = np.abs(table[..., 0] - keras)
        bounds = 0.0
        if levels and series.intervals is not None:
            widths = series.intervals.widths(levels)
            keras_bounds = np.stack(
                [keras + sign * widths[j] for j in range(len(levels)) for sign in (-1, 1)],
                axis=-1,
            )
            bounds = float(np.abs(table[..., 1:] - keras_bounds).max())
        scale = float(np.max(series.mase_scale))
        largest = float(np.abs(keras).max() + 1)
        tolerance = float(shipped.max_abs_vs_keras) * scale * 1.01 + 1e-5 * largest
        passed &= max(float(difference.max()), bounds) <= tolerance
        worst = max(worst, float(difference.max()))
        worst_bounds = max(worst_bounds, bounds)
        tolerance_used = max(tolerance_used, tolerance)
        mean_parts.append(difference.mean() * len(last_rows))
        origins += len(last_rows)
    check = DeviceCheck(
        origins=origins,
        max_abs_vs_keras=worst,
        mean_abs_vs_keras=float(sum(mean_parts) / max(origins, 1)),
        tolerance=tolerance_used,
        passed=bool(passed),
        predictions_csv=predictions.name,
        max_abs_bounds_vs_keras=worst_bounds,
        series=tuple(chosen),
    )
    write_record(out / DEVICE_CHECK, check)
    if not check.passed:
        raise ForecasterError(
            f"the bundle run through `forecaster predict` differs from Keras by more than the "
            f"export measured on some of the series {', '.join(chosen)} (up to {worst:.4g} in "
            "their own units)"
        )
    return check


def _forecast_table(
    frame: pd.DataFrame,
    last_rows: list[str],
    horizon: int,
    targets: tuple[str, ...],
    levels: tuple[float, ...],
) -> np.ndarray:
    """(origins, horizon, targets, 1 + 2 levels) from predict's rows: the point, then each
    level's lower and upper bound, at the origins whose last rows are `last_rows`."""
    from forecaster.device.predict_csv import target_columns

    device = frame[frame["origin"].isin(set(last_rows))]
    device = device.set_index(["origin", "step"])[target_columns(targets, levels)]
    return np.stack(
        [device.loc[[(t, s) for s in range(1, horizon + 1)]].to_numpy() for t in last_rows]
    ).reshape(len(last_rows), horizon, len(targets), -1)


def _sorted_copy(path: Path, time_col: str, folder: Path) -> Path:
    """The CSV with its rows in time order (stable), under its own name in `folder`."""
    import pandas as pd

    from forecaster.data.load import parse_times

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    times, _ = parse_times(raw[time_col])
    ordered = raw.iloc[np.argsort(times.to_numpy(), kind="stable")]
    copy = folder / path.name
    ordered.to_csv(copy, index=False)
    return copy
