"""Reading and validating sensor CSV files: time index, sampling grid, duplicates, gaps and NaNs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.config import DataConfig
from forecaster.errors import DataError, UsageError

# Cells read as missing values rather than as junk.
NA_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a", "#n/a", "-nan", "nat"})
_TIME_NAMES = re.compile(r"^(time|timestamp|date|datetime|ds|ts)$|time|date", re.IGNORECASE)
# A grid much longer than the file means one stray timestamp, not a real sampling rate.
_MAX_GRID_GROWTH = 10
ALL_COLUMNS = "(all columns)"
# A column is numeric when most of its filled cells are numbers; the rest are junk to report.
_NUMERIC_SHARE = 0.5


@dataclass(frozen=True)
class Gap:
    """A run of missing values in one column, on the regular time grid."""

    column: str
    start: int
    length: int
    handling: str  # "interpolated", "split" or "trimmed"


@dataclass
class LoadReport:
    """What loading found in the file and what it did about it."""

    rows_read: int = 0
    rows_dropped: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    off_grid: int = 0
    missing_timestamps: int = 0
    nan_in_file: dict[str, int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def count(self, handling: str) -> int:
        """Number of gaps handled the given way."""
        return sum(1 for g in self.gaps if g.handling == handling)


@dataclass
class SensorData:
    """A sensor series on a regular grid, ready to split and window."""

    path: Path
    frame: pd.DataFrame  # one row per grid step; NaN only where a long gap splits the series
    features: tuple[str, ...]  # model inputs, in order (targets included)
    targets: tuple[str, ...]
    time_col: str | None
    freq: pd.Timedelta | None
    segments: tuple[tuple[int, int], ...]  # [start, stop) row ranges with no missing value
    report: LoadReport
    config: DataConfig = field(default_factory=DataConfig)  # the options it was read with
    series: str | None = None  # its id, when it is one series of a long file (data.fleet)

    @property
    def name(self) -> str:
        """How messages name it: the file, and the series within it."""
        return str(self.path) if self.series is None else f"{self.path} series '{self.series}'"

    @property
    def n_rows(self) -> int:
        """Rows on the grid, including the ones inside gaps."""
        return len(self.frame)

    def values(self) -> np.ndarray:
        """Feature values as float64, shape (rows, features)."""
        return self.frame[list(self.features)].to_numpy(dtype=np.float64)

    @property
    def target_index(self) -> tuple[int, ...]:
        """Positions of the targets among the features."""
        return tuple(self.features.index(t) for t in self.targets)


def load_csv(path: str | Path, config: DataConfig | None = None) -> SensorData:
    """Read a sensor CSV, validate it and put it on a regular time grid with gaps handled."""
    config = config or DataConfig()
    if config.id_col is not None:
        # Reading a long file as one series would interleave its series into one.
        raise UsageError(
            f"--id-col {config.id_col} names the series of a long file, but this reads {path} "
            "as one series; leave out --id-col, or keep one series' rows in the file"
        )
    parsed = parse_file(Path(path), config)
    return parsed.on_grid(parsed.values.index)


@dataclass
class ParsedFile:
    """A CSV's cells parsed and checked, before any series is put on its time grid."""

    path: Path
    raw: pd.DataFrame
    time_col: str | None
    features: tuple[str, ...]
    targets: tuple[str, ...]
    times: pd.Series | None
    values: pd.DataFrame  # junk rows already dropped (or refused)
    config: DataConfig
    report: LoadReport

    def on_grid(self, rows: pd.Index, series: str | None = None) -> SensorData:
        """The rows `rows` (labels of `values`) as one series on its regular grid, gaps handled.

        The file-level counts (rows read, junk dropped, NaNs) are the whole file's; the grid's
        (duplicates, gaps) are this series' own.
        """
        base = self.report
        report = LoadReport(
            rows_read=base.rows_read,
            rows_dropped=base.rows_dropped,
            ignored_columns=base.ignored_columns,
            warnings=list(base.warnings),
        )
        values = self.values.loc[rows]
        report.nan_in_file = {c: int(values[c].isna().sum()) for c in self.features}
        name = str(self.path) if series is None else f"{self.path} series '{series}'"
        if self.times is None:
            report.warnings.append(
                f"{name} has no timestamp column; using the row number as time "
                "(pass --time-col if one of the columns holds timestamps)"
            )
            frame = values.reset_index(drop=True)
            freq = None
        else:
            times = self.times.loc[rows]
            frame, freq = _to_grid(name, self.raw, times, values, self.config, report)
        frame, segments = fill_gaps(frame, self.config.max_gap, report)
        return SensorData(
            path=self.path,
            frame=frame,
            features=self.features,
            targets=self.targets,
            time_col=self.time_col,
            freq=freq,
            segments=segments,
            report=report,
            config=self.config,
            series=series,
        )


def parse_file(path: Path, config: DataConfig, *, skip: tuple[str, ...] = ()) -> ParsedFile:
    """Read a CSV and parse its timestamps and numbers, refusing (or dropping) junk rows.

    `skip` names columns that are neither time nor sensors (a series id column).
    """
    report = LoadReport()
    raw = _read_raw(path)
    report.rows_read = len(raw)
    others = raw.drop(columns=[c for c in skip if c in raw.columns])
    time_col = _find_time_column(others, config.time_col, path)
    numeric, ignored = _numeric_columns(others, time_col)
    report.ignored_columns = ignored
    features, targets = _select_columns(path, raw, time_col, numeric, config)

    bad = pd.Series(False, index=raw.index)
    times: pd.Series | None = None
    if time_col is not None:
        times, bad_time = parse_times(raw[time_col])
        _reject_or_flag(path, raw, time_col, bad_time, config, "timestamp")
        bad |= bad_time
    values = pd.DataFrame(index=raw.index)
    for col in features:
        numbers, junk = parse_numbers(raw[col])
        _reject_or_flag(path, raw, col, junk, config, "number")
        bad |= junk
        values[col] = numbers
    if bad.any():
        report.rows_dropped = int(bad.sum())
        report.warnings.append(f"dropped {report.rows_dropped} junk row(s) (--bad-rows drop)")
        values = values[~bad]
        if times is not None:
            times = times[~bad]
    if values.empty:
        raise DataError(f"{path} has no data rows; add rows below the header line")
    for col in features:
        if values[col].isna().all():
            raise DataError(
                f"column '{col}' in {path} has no numeric values; fix the file or leave the "
                "column out with --features"
            )
    return ParsedFile(path, raw, time_col, features, targets, times, values, config, report)


def sensor_columns(path: str | Path, time_col: str | None = None) -> list[str]:
    """The numeric columns of a CSV, the columns `--target` may name (DataError for a bad file)."""
    path = Path(path)
    raw = _read_raw(path)
    return _numeric_columns(raw, _find_time_column(raw, time_col, path))[0]


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a CSV file")
    try:
        raw = pd.read_csv(
            path,
            # Excel and Notepad start UTF-8 files with a byte order mark; it is not part of a name.
            encoding="utf-8-sig",
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            skipinitialspace=True,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; pass a CSV with a header line and data rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path} is not a well-formed CSV ({detail}); fix that line") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text CSV; re-save it as UTF-8 CSV") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    # Blank lines are kept while reading so that row numbers match the file; drop them now.
    # A row is filled once one cell is: later columns are only checked on the rows still blank.
    filled = pd.Series(False, index=raw.index)
    for col in raw.columns:
        blank = ~filled
        if not blank.any():
            break
        filled[blank] = raw.loc[blank, col].fillna("").str.strip() != ""
    raw = raw[filled]
    if _looks_like_data(list(raw.columns)):
        raise DataError(
            f"{path} has no header row: its first line ({', '.join(raw.columns[:3])}, ...) "
            "looks like data; add a header line naming the columns, e.g. time,temp"
        )
    if raw.empty:
        raise DataError(f"{path} has a header but no data rows; add rows below the header line")
    return raw


def _looks_like_data(columns: Sequence[str]) -> bool:
    def is_value(text: str) -> bool:
        if text.startswith("Unnamed:"):
            return False
        try:
            float(text)
            return True
        except ValueError:
            return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T][\d:.]+)?", text))

    return len(columns) > 0 and sum(map(is_value, columns)) >= max(1, len(columns) // 2 + 1)


def file_row(index: Any) -> int:
    """The 1-based line number in the file of a data row (the header is line 1)."""
    return int(index) + 2


def _find_time_column(raw: pd.DataFrame, asked: str | None, path: Path) -> str | None:
    if asked is not None:
        if asked not in raw.columns:
            raise DataError(
                f"time column '{asked}' not found in {path}; columns are: "
                f"{', '.join(raw.columns)}. Pass --time-col with one of them"
            )
        return asked
    named = [c for c in raw.columns if _TIME_NAMES.search(c)]
    for col in named + [c for c in raw.columns if c not in named]:
        sample = _first_filled(raw[col], 50)
        if sample.empty or pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5:
            continue
        parsed, _ = parse_times(sample)
        # A column named like a timestamp may hold a few junk rows; an unnamed one must not.
        if parsed.notna().mean() >= (0.5 if col in named else 0.9):
            return col
    return None


def _first_filled(column: pd.Series, count: int) -> pd.Series:
    """The first `count` cells that are not missing-value tokens (few rows are stripped)."""
    rows = max(count * 20, 1000)
    while True:
        head = column.head(rows)
        sample = head[~head.fillna("").str.strip().str.lower().isin(NA_TOKENS)].head(count)
        if len(sample) == count or rows >= len(column):
            return sample
        rows *= 10


def parse_times(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Timestamps as datetime64 (time zones converted to UTC) and a mask of unparseable cells."""
    text = raw.fillna("").str.strip()
    try:
        times = pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError):
        # Mixed UTC offsets (daylight saving) cannot share one zone; compare them in UTC.
        times = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times, times.isna()


def parse_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers as float64 and a mask of cells that are neither numbers nor missing-value tokens."""
    # Most cells are plain numbers, which to_numeric reads with their spaces; only the rest are
    # stripped and compared with the missing-value tokens (string methods run cell by cell).
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    missing = pd.Series(False, index=raw.index)
    unread = numbers.isna()
    if unread.any():
        text = raw[unread].fillna("").str.strip()
        missing[unread] = text.str.lower().isin(NA_TOKENS)
        numbers[unread] = pd.to_numeric(text.where(~missing[unread]), errors="coerce")
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers, numbers.isna() & ~missing


def _numeric_columns(raw: pd.DataFrame, time_col: str | None) -> tuple[list[str], tuple[str, ...]]:
    numeric, ignored = [], []
    for col in raw.columns:
        if col == time_col:
            continue
        numbers, junk = parse_numbers(raw[col])
        filled = numbers.notna().sum() + junk.sum()
        if filled and numbers.notna().sum() / filled >= _NUMERIC_SHARE:
            numeric.append(col)
        elif filled == 0:
            numeric.append(col)  # all empty: kept so that the all-NaN check can name it
        else:
            ignored.append(col)
    return numeric, tuple(ignored)


def _select_columns(
    path: Path,
    raw: pd.DataFrame,
    time_col: str | None,
    numeric: list[str],
    config: DataConfig,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    def check(names: Sequence[str], option: str) -> None:
        for name in names:
            if name not in raw.columns:
                raise DataError(
                    f"column '{name}' not found in {path}; columns are: "
                    f"{', '.join(raw.columns)}. Pass {option} with one of them"
                )
            if name == time_col:
                raise DataError(
                    f"column '{name}' in {path} is the timestamp column; pass {option} with a "
                    f"sensor column: {', '.join(numeric)}"
                )
            if name not in numeric:
                raise DataError(
                    f"column '{name}' in {path} is not numeric (e.g. row "
                    f"{_first_text_row(raw[name])}); pass {option} with a numeric column: "
                    f"{', '.join(numeric)}"
                )

    check(config.targets, "--target")
    check(config.features, "--features")
    features = list(config.features or numeric)
    features += [t for t in config.targets if t not in features]
    if not features:
        raise DataError(
            f"{path} has no numeric sensor columns; columns are: {', '.join(raw.columns)}"
        )
    return tuple(features), tuple(config.targets)


def _first_text_row(raw: pd.Series) -> int:
    _, junk = parse_numbers(raw)
    return file_row(junk.idxmax()) if junk.any() else 0


def _reject_or_flag(
    path: Path, raw: pd.DataFrame, col: str, bad: pd.Series, config: DataConfig, kind: str
) -> None:
    if not bad.any() or config.bad_rows == "drop":
        return
    index = bad.idxmax()
    value = raw.at[index, col]
    what = "an unparseable timestamp" if kind == "timestamp" else "a value that is not a number"
    more = f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else ""
    raise DataError(
        f"{path} row {file_row(index)}, column '{col}': {what}: {value!r}{more}; fix the file "
        "or pass --bad-rows drop to skip such rows"
    )


def _to_grid(
    path: str,
    raw: pd.DataFrame,
    times: pd.Series,
    values: pd.DataFrame,
    config: DataConfig,
    report: LoadReport,
) -> tuple[pd.DataFrame, pd.Timedelta | None]:
    stamps = times.to_numpy()
    report.out_of_order = int((stamps[1:] < stamps[:-1]).sum())
    if report.out_of_order:
        report.warnings.append(
            f"{report.out_of_order} row(s) of {path} have an earlier timestamp than the row "
            "above them; sorted the rows by time"
        )
    order = np.argsort(stamps, kind="stable")
    times = times.iloc[order]
    values = values.iloc[order]
    dup = times.duplicated(keep=False)
    if dup.any():
        report.duplicates = int(times.duplicated().sum())
        if config.dedupe == "error":
            first = times[dup].iloc[0]
            rows = sorted(file_row(i) for i in times.index[times == first][:2])
            fix = "pass --dedupe mean or --dedupe last to merge them"
            if report.ignored_columns and config.id_col is None:
                # A long file read as one series repeats every timestamp once per series.
                text = report.ignored_columns[0]
                fix = (
                    f"if column '{text}' names each row's series, pass --id-col {text}; else {fix}"
                )
            raise DataError(
                f"{path} has {report.duplicates} duplicate timestamp(s), first {first} at rows "
                f"{rows[0]} and {rows[1]}; {fix}"
            )
        keep = "mean" if config.dedupe == "mean" else "last"
        values = values.groupby(times.to_numpy(), sort=True).agg(keep)
        times = pd.Series(values.index, index=values.index)
        report.warnings.append(
            f"merged {report.duplicates} duplicate timestamp(s) with --dedupe {config.dedupe}"
        )
    # asi8 is in the index's own unit (pandas 3 defaults to microseconds); work in nanoseconds.
    unique = pd.DatetimeIndex(times.to_numpy()).as_unit("ns")
    if len(unique) < 2:
        frame = pd.DataFrame(values.to_numpy(), index=unique, columns=values.columns)
        return frame, None
    diffs = np.diff(unique.asi8)
    steps, counts = np.unique(diffs, return_counts=True)
    step = int(steps[np.argmax(counts)])
    if counts.max() * 2 < len(diffs):
        # No step dominates (jittery clocks): the median, to the second, is the sampling step.
        step = max(round(float(np.median(diffs)) / 1e9), 1) * 10**9
    _refuse_calendar_months(path, diffs, step)
    offsets = (unique.asi8 - unique.asi8[0]) / step
    slots = np.rint(offsets).astype(np.int64)
    report.off_grid = int((np.abs(offsets - slots) > 0.01).sum())
    length = int(slots[-1]) + 1
    if length > _MAX_GRID_GROWTH * len(unique) + 10:
        raise DataError(
            f"{path} is too irregular to put on one time grid: the most common step is "
            f"{pd.Timedelta(step)} but the timestamps span {length} such steps for "
            f"{len(unique)} rows; resample the file to a regular interval first"
        )
    if report.off_grid:
        report.warnings.append(
            f"{report.off_grid} timestamp(s) are off the {pd.Timedelta(step)} grid and were "
            "moved to the nearest step"
        )
    grid = pd.date_range(unique[0], periods=length, freq=pd.Timedelta(step))
    data = pd.DataFrame(values.to_numpy(), columns=values.columns)
    data = data.groupby(slots).mean()  # snapping can put two readings on one step
    frame = data.reindex(range(length))
    frame.index = grid
    report.missing_timestamps = length - len(data)
    return frame, pd.Timedelta(step)


_DAY_NS = 86_400 * 10**9


def _refuse_calendar_months(path: str, diffs: np.ndarray, step: int) -> None:
    """Monthly or quarterly timestamps have no fixed step; snapping them would merge readings."""
    for name, low, high in (("monthly", 28, 31), ("quarterly", 89, 92)):
        if low * _DAY_NS <= step <= high * _DAY_NS:
            common = (diffs >= low * _DAY_NS) & (diffs <= high * _DAY_NS)
            if common.mean() > 0.5 and len(np.unique(diffs[common])) > 1:
                raise DataError(
                    f"{path} looks {name} (steps of {low}-{high} days): calendar months vary in "
                    "length and forecaster needs a fixed sampling step; resample the file to a "
                    "fixed interval (daily, weekly or 30 days) first"
                )


def nan_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a 1-D boolean mask."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e - s)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def fill_gaps(
    frame: pd.DataFrame, max_gap: int, report: LoadReport
) -> tuple[pd.DataFrame, tuple[tuple[int, int], ...]]:
    """Interpolate NaN runs up to `max_gap` rows long; return the frame and its complete segments.

    Runs touching either end are left as they are ("trimmed"); longer runs split the series.
    """
    frame = frame.copy()
    n = len(frame)
    found: dict[tuple[int, int, str], list[str]] = {}
    for col in frame.columns:
        series = frame[col]
        runs = nan_runs(series.isna().to_numpy())
        if not runs:
            continue
        filled = series.interpolate(method="linear", limit_area="inside")
        for start, length in runs:
            if start == 0 or start + length == n:
                handling = "trimmed"
            elif length <= max_gap:
                handling = "interpolated"
            else:
                handling = "split"
            if handling != "interpolated":
                filled.iloc[start : start + length] = np.nan
            found.setdefault((start, length, handling), []).append(col)
        frame[col] = filled
    for (start, length, handling), cols in sorted(found.items()):
        # A run missing in every column (usually missing timestamps) is one gap, not one per column.
        names = [ALL_COLUMNS] if len(cols) == len(frame.columns) > 1 else cols
        report.gaps.extend(Gap(c, start, length, handling) for c in names)
    complete = frame.notna().all(axis=1).to_numpy()
    segments = tuple((s, s + length) for s, length in nan_runs(complete))
    return frame, segments
