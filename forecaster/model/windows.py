"""Chronological split, min-max scaling fitted on the training part, and sliding windows.

Windows are built with numpy's `sliding_window_view` and fed to Keras as arrays: on the 2-core
machines we train on they build over 100x faster than `keras.utils.timeseries_dataset_from_array`
iterates, at the cost of one copy. Per epoch of training no pipeline was reliably faster
(bench/results.md, section 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecaster.bundle import SeasonalInputs
from forecaster.config import SplitConfig, WindowConfig
from forecaster.data.calendar import calendar_features, calendar_parts
from forecaster.data.lags import lag_channels
from forecaster.data.load import SensorData
from forecaster.errors import DataError
from forecaster.scaling import MinMaxParams

PARTS = ("train", "val", "test")
_PART_NAMES = {"train": "training", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class Split:
    """Row ranges [start, stop) of the three chronological parts on the time grid."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def part(self, name: str) -> tuple[int, int]:
        """The row range of 'train', 'val' or 'test'."""
        rows: tuple[int, int] = getattr(self, name)
        return rows


def split_rows(n_rows: int, config: SplitConfig) -> Split:
    """Cut rows 0..n_rows into train, validation and test parts, in time order."""
    train_end = round(n_rows * config.train)
    val_end = round(n_rows * (config.train + config.val))
    return Split((0, train_end), (train_end, val_end), (val_end, n_rows))


def fit_scaler(data: SensorData, split: Split) -> MinMaxParams:
    """Fit scikit-learn's MinMaxScaler on the complete rows of the training part only."""
    from sklearn.preprocessing import MinMaxScaler

    start, stop = split.train
    rows = data.values()[start:stop]
    rows = rows[~np.isnan(rows).any(axis=1)]
    if len(rows) == 0:
        raise DataError(
            f"the training part of {data.name} has no complete rows; fix the gaps or pass a "
            "larger --max-gap"
        )
    scaler = MinMaxScaler().fit(rows)
    return MinMaxParams(
        columns=data.features,
        data_min=tuple(float(v) for v in scaler.data_min_),
        data_max=tuple(float(v) for v in scaler.data_max_),
        scale=tuple(float(v) for v in scaler.scale_),
        min=tuple(float(v) for v in scaler.min_),
    )


@dataclass(frozen=True)
class Windows:
    """Model inputs and targets for every origin with a full window and horizon."""

    x: np.ndarray  # (n, window, features), float32, scaled
    y: np.ndarray  # (n, horizon, targets), float32, scaled
    origins: np.ndarray  # (n,) grid row of the first forecast step

    def __len__(self) -> int:
        return len(self.origins)


def window_origins(
    segments: tuple[tuple[int, int], ...], rows: tuple[int, int], config: WindowConfig
) -> np.ndarray:
    """The origins `make_windows` gives for `rows`, without building the windows."""
    found = [
        np.arange(
            max(seg_start, rows[0]) + config.window, min(seg_stop, rows[1]) - config.horizon + 1
        )
        for seg_start, seg_stop in segments
        if min(seg_stop, rows[1]) - max(seg_start, rows[0]) >= config.span
    ]
    return np.concatenate(found).astype(np.int64) if found else np.empty(0, np.int64)


def make_windows(
    scaled: np.ndarray,
    segments: tuple[tuple[int, int], ...],
    rows: tuple[int, int],
    config: WindowConfig,
    target_index: tuple[int, ...],
) -> Windows:
    """Slide a window over `rows`, never crossing a segment boundary or the ends of `rows`."""
    xs, ys, origins = [], [], []
    window, horizon = config.window, config.horizon
    for seg_start, seg_stop in segments:
        start, stop = max(seg_start, rows[0]), min(seg_stop, rows[1])
        if stop - start < config.span:
            continue
        piece = scaled[start:stop]
        # sliding_window_view puts the window axis last: (n, features, window) -> (n, window, f).
        xs.append(sliding_window_view(piece[:-horizon], window, axis=0).transpose(0, 2, 1))
        ys.append(
            sliding_window_view(piece[window:, list(target_index)], horizon, axis=0).transpose(
                0, 2, 1
            )
        )
        origins.append(np.arange(start + window, stop - horizon + 1))
    n_features = scaled.shape[1]
    if not xs:
        return Windows(
            np.empty((0, window, n_features), np.float32),
            np.empty((0, horizon, len(target_index)), np.float32),
            np.empty(0, np.int64),
        )
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32)
    found = np.concatenate(origins).astype(np.int64)
    # Seasonal-lag channels are NaN where a season back falls before the file or in a gap.
    complete = ~np.isnan(x).any(axis=(1, 2))
    if not complete.all():
        x, y, found = x[complete], y[complete], found[complete]
    return Windows(x, y, found)


def model_inputs(
    data: SensorData,
    scaler: MinMaxParams,
    calendar: tuple[str, ...],
    seasonal: SeasonalInputs | None = None,
    first_row: int = 0,
    *,
    lags: tuple[int, ...] = (),
    horizon: int = 1,
) -> np.ndarray:
    """Scaled sensor columns, the seasonal-lag channels, the calendar channels, then the
    decomposition's seasonal channels of each row.

    `first_row` is the number of `data`'s first row on the training file's grid (0 for that file
    itself): the seasonal profiles' phase.
    """
    parts = [scaler.transform(data.values())]
    if lags:
        parts.append(lag_channels(parts[0][:, list(data.target_index)], lags, horizon))
    if calendar:
        stamps = pd.DatetimeIndex(data.frame.index).as_unit("ns").asi8
        parts.append(calendar_features(stamps, calendar))
    if seasonal is not None:
        check_timestamps(data)
        rows = np.arange(data.n_rows) + first_row
        parts.append(seasonal.channels(rows, scaler.scales(data.targets)))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def check_timestamps(data: SensorData) -> None:
    """Refuse a file without timestamps: the decomposition reference places rows by time."""
    if not isinstance(data.frame.index, pd.DatetimeIndex) or data.freq is None:
        raise DataError(
            f"{data.name} has no timestamps on a regular grid, and --residual decomposition "
            "places every row in its seasons by time; pass --time-col or choose another "
            "--residual"
        )


@dataclass(frozen=True)
class Prepared:
    """A series split, scaled and windowed: everything training and evaluation need."""

    data: SensorData
    split: Split
    scaler: MinMaxParams
    scaled: np.ndarray  # (rows, features + calendar channels), float32; NaN inside long gaps
    windows: dict[str, Windows]
    window: WindowConfig
    calendar: tuple[str, ...] = ()  # calendar cycles appended as sin/cos channels
    seasonal: SeasonalInputs | None = None  # the decomposition reference's channels, last
    lags: tuple[int, ...] = ()  # seasons whose lag channels follow the sensors

    @property
    def sensor_channels(self) -> int:
        """Channels the window normalization applies to: the sensors and their seasonal lags."""
        return len(self.data.features) + len(self.lags) * len(self.data.targets)

    @property
    def lag_channels(self) -> list[int]:
        """Input channels of the seasonal lags, lag-major then target."""
        return list(range(len(self.data.features), self.sensor_channels))


def prepare(
    data: SensorData,
    split_config: SplitConfig,
    window: WindowConfig,
    seasonal: SeasonalInputs | None = None,
    lags: tuple[int, ...] = (),
) -> Prepared:
    """Split, fit the scaler on the training part, and window each part.

    `seasonal` (for the decomposition reference) appends its channels after the others; `lags`
    (seasons from `lag_seasons`) puts a lag channel per target after the sensors. A window whose
    lags reach before the file or into a gap is left out.
    """
    if not data.targets:
        raise DataError(f"no target column chosen for {data.name}; pass --target COLUMN")
    _refuse_too_few_rows(data, split_config, window)
    split = split_rows(data.n_rows, split_config)
    scaler = fit_scaler(data, split)
    calendar: tuple[str, ...] = ()
    if window.calendar:
        calendar = calendar_parts(data.freq.total_seconds() if data.freq is not None else None)
        if not calendar:
            raise DataError(
                f"{data.name} has no timestamps to derive calendar features from; train "
                "without --calendar or pass --time-col"
            )
    scaled = model_inputs(data, scaler, calendar, seasonal, lags=lags, horizon=window.horizon)
    windows = {
        name: make_windows(scaled, data.segments, split.part(name), window, data.target_index)
        for name in PARTS
    }
    empty = [_PART_NAMES[name] for name in PARTS if len(windows[name]) == 0]
    if empty and lags:
        lagless = model_inputs(data, scaler, calendar, seasonal, horizon=window.horizon)
        if all(len(make_windows(lagless, data.segments, split.part(n), window, ())) for n in PARTS):
            names = ", ".join(empty[:-1]) + " and " + empty[-1] if len(empty) > 1 else empty[0]
            parts = "parts" if len(empty) > 1 else "part"
            raise DataError(
                f"the {names} {parts} of {data.name} leave no origin with the value "
                f"{max(lags)} steps (a season) before each forecast step, which the seasonal lags "
                "need; train without --lags (--no-lags in tune and run) or use a longer file"
            )
    if empty:
        _raise_too_short(data, split, split_config, window, windows)
    return Prepared(data, split, scaler, scaled, windows, window, calendar, seasonal, lags)


def _refuse_too_few_rows(data: SensorData, config: SplitConfig, window: WindowConfig) -> None:
    """A file shorter than one window and its horizon: say so, not which part fell short."""
    if data.n_rows >= window.span:
        return
    raise DataError(
        f"{data.name} has {data.n_rows} rows, fewer than the window + horizon = "
        f"{window.window} + {window.horizon} = {window.span} rows one training example needs; "
        f"pass a file with at least {rows_needed(config, window.span)} rows (each part of "
        f"--split {config.describe()} needs one), or a smaller --window or --horizon"
    )


def rows_needed(config: SplitConfig, span: int) -> int:
    """The fewest gap-free rows whose training, validation and test parts each hold `span` rows."""
    n_rows = math.ceil(span / min(config.train, config.val, config.test))
    # Rounding the part boundaries can leave the smallest part a row short; step past it.
    while True:
        split = split_rows(n_rows, config)
        if all(split.part(name)[1] - split.part(name)[0] >= span for name in PARTS):
            return n_rows
        n_rows += 1


def _raise_too_short(
    data: SensorData,
    split: Split,
    config: SplitConfig,
    window: WindowConfig,
    windows: dict[str, Windows],
) -> None:
    parts = []
    split_by_gaps = False
    for name in PARTS:
        start, stop = split.part(name)
        overlaps = (min(e, stop) - max(s, start) for s, e in data.segments)
        longest = max((n for n in overlaps if n > 0), default=0)
        text = f"the {_PART_NAMES[name]} part ({_rows(start, stop)}) leaves {len(windows[name])}"
        if len(windows[name]) == 0 and window.span <= stop - start:
            split_by_gaps = True
            plural = "" if longest == 1 else "s"
            text += f" (its longest stretch without a gap is {longest} row{plural})"
        parts.append(text)
    needed = rows_needed(config, window.span)
    fix = (
        f"use a smaller --window or --horizon, or a file with at least {needed} rows "
        f"(it has {data.n_rows})"
    )
    if split_by_gaps:
        fix += " and fewer gaps (a larger --max-gap fills short ones)"
    raise DataError(
        f"{data.name} has too few rows for window {window.window} and horizon {window.horizon}, "
        f"which need {window.span} consecutive complete rows per origin: "
        f"{', '.join(parts[:-1])} and {parts[-1]} origins; {fix}"
    )


def _rows(start: int, stop: int) -> str:
    if stop <= start:
        return "no rows"
    return f"row {start}" if stop - start == 1 else f"rows {start}-{stop - 1}"
