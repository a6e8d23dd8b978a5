"""Streaming a sensor CSV in chunks onto the model's time grid, yielding forecast origins.

Memory stays bounded by the chunk size: only the last `window + max_gap + 1` grid rows are
carried from one chunk to the next. Gaps and duplicates follow the policy the model was trained
with (from the bundle), so the device sees the data exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.bundle import DataSpec
from forecaster.config import PredictMode
from forecaster.data.load import LoadReport, file_row, fill_gaps, parse_numbers, parse_times
from forecaster.errors import DataError


@dataclass
class StreamReport:
    """What streaming a file found: rows, dropped junk, origins skipped for gaps, extra columns."""

    rows: int = 0
    rows_dropped: int = 0
    origins_skipped: int = 0
    ignored_columns: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OriginBatch:
    """Windows ending at a run of forecast origins, in original units."""

    last_times: np.ndarray  # time of the last observed row of each window (or its row number)
    x: np.ndarray  # (n, window, features), read-only: often views of the same rows
    series: np.ndarray | None = None  # a fleet's windows: each one's series position


def stream_origins(
    path: Path,
    spec: DataSpec,
    window: int,
    *,
    mode: PredictMode = "rolling",
    chunk_rows: int = 20_000,
    report: StreamReport | None = None,
    tail: int = 0,
) -> Iterator[OriginBatch]:
    """Yield the windows of every origin (`rolling`) or of the one after the last row (`last`).

    An origin is the grid slot of the first forecast step; its window is the `window` rows
    before it, all complete after gap filling. In `last` mode `tail` adds the (complete)
    origins among the `tail` before the last one, for intervals that learn from their errors.
    """
    stream = FileStream(
        path, spec, window, report if report is not None else StreamReport(), tail=tail
    )
    chunks = read_chunks(path, spec, chunk_rows, stream.report)
    current = next(chunks, None)
    if current is None:
        raise DataError(f"{path} has no data rows; add rows below the header line")
    while current is not None:
        following = next(chunks, None)
        batch = stream.feed(current, final=following is None, mode=mode)
        if batch is not None:
            yield batch
        current = following


class ShortSeries(DataError):
    """A file (or a fleet's series) too short, or too gappy at its end, for a `last` forecast."""


@dataclass(frozen=True)
class ParsedRows:
    """A chunk's good rows: timestamps (ns, or row numbers), values and their file rows."""

    stamps: np.ndarray  # int64
    values: np.ndarray  # (rows, features) float64
    rows: np.ndarray  # the chunk's index labels, for messages naming a file row
    kept: np.ndarray  # positions of these rows in their chunk (junk rows dropped)

    def take(self, index: np.ndarray) -> ParsedRows:
        """The rows at positions `index`."""
        return ParsedRows(
            self.stamps[index], self.values[index], self.rows[index], self.kept[index]
        )


def parse_rows(path: Path, spec: DataSpec, chunk: pd.DataFrame, report: StreamReport) -> ParsedRows:
    """The features and timestamps of a chunk, junk rows refused or dropped as in training.

    `report.rows_dropped` counts the dropped rows; without a time column the stamps are the
    rows' positions in the file.
    """
    bad = np.zeros(len(chunk), bool)
    columns = []
    for col in spec.features:
        numbers, junk = parse_numbers(chunk[col])
        _refuse(path, spec, chunk, col, junk.to_numpy(), "a value that is not a number")
        bad |= junk.to_numpy()
        columns.append(numbers.to_numpy(np.float64))
    values = np.column_stack(columns) if columns else np.empty((len(chunk), 0))
    if spec.time_col:
        times, bad_time = parse_times(chunk[spec.time_col])
        _refuse(path, spec, chunk, spec.time_col, bad_time.to_numpy(), "an unparseable timestamp")
        bad |= bad_time.to_numpy()
        stamps = pd.DatetimeIndex(times.to_numpy()).as_unit("ns").asi8
    else:
        stamps = chunk.index.to_numpy(np.int64)
    rows = chunk.index.to_numpy()
    kept = np.arange(len(chunk))
    if bad.any():
        report.rows_dropped += int(bad.sum())
        stamps, values, rows, kept = stamps[~bad], values[~bad], rows[~bad], kept[~bad]
    return ParsedRows(np.asarray(stamps, np.int64), values, rows, kept)


class FileStream:
    """The state carried between chunks of one file, or of one series of a long file.

    `series` is its id when it is one series of a long file: messages name it, and rows
    without a time column are numbered within the series rather than by their file position.
    """

    def __init__(
        self,
        path: Path,
        spec: DataSpec,
        window: int,
        report: StreamReport,
        *,
        series: str | None = None,
        tail: int = 0,
    ):
        self.path, self.spec, self.window, self.report = path, spec, window, report
        self.series = series
        self.tail = tail  # `last` mode: origins before the last one to yield too
        self.name = str(path) if series is None else f"{path} series '{series}'"
        self.kind = "file" if series is None else "series"
        self.rows = 0  # rows received, junk included
        self.step = round((spec.step_seconds or 1.0) * 1e9) if spec.time_col else 1
        self.first_stamp: int | None = None
        self.last_slot = -1
        self.next_origin = window
        self.forecasts = 0
        self.slots = np.empty(0, np.int64)
        self.values = np.empty((0, len(spec.features)))

    def feed(self, chunk: pd.DataFrame, *, final: bool, mode: PredictMode) -> OriginBatch | None:
        """Add a chunk; return the windows of the origins it settles."""
        self.rows += len(chunk)
        return self.feed_rows(
            parse_rows(self.path, self.spec, chunk, self.report), final=final, mode=mode
        )

    def feed_rows(
        self, parsed: ParsedRows, *, final: bool, mode: PredictMode
    ) -> OriginBatch | None:
        """Add parsed rows; return the windows of the origins they settle."""
        slots, values = self._to_slots(parsed)
        all_slots = np.concatenate([self.slots, slots])
        all_values = np.concatenate([self.values, values])
        if len(all_slots) == 0:
            return None
        if mode == "last" and not final:
            # Only the end matters: keep the rows the last window and its gap filling can read
            # (no grid until then, which a fleet's many small feeds would each pay for).
            if self.spec.dedupe == "error" and (all_slots[1:] == all_slots[:-1]).any():
                _grid(self.name, self.spec, all_slots, all_values)  # raises, naming the file
            reach = self.window + self.tail + self.spec.max_gap + 1
            # Slots never decrease (_to_slots), so the rows kept are the ones from `start` on.
            start = int(np.searchsorted(all_slots, all_slots[-1] - reach))
            self.slots, self.values = all_slots[start:], all_values[start:]
            return None
        grid_start = int(all_slots[0])
        grid_values = _grid(self.name, self.spec, all_slots - grid_start, all_values)
        complete = ~np.isnan(grid_values).any(axis=1)
        if not complete.all():
            frame = pd.DataFrame(grid_values, columns=list(self.spec.features))
            filled, _ = fill_gaps(frame, self.spec.max_gap, LoadReport())
            grid_values = filled.to_numpy(np.float64)
            complete = ~np.isnan(grid_values).any(axis=1)
        end = grid_start + len(grid_values)  # one past the last grid slot
        if final:
            limit = end
        else:
            # The last row may still merge with a duplicate in the next chunk, and a trailing
            # gap may still be interpolated: origins after either wait for more data.
            settled = grid_start + len(complete) - _trailing_false(complete)
            limit = min(end - 1, settled)
        batch = None
        if mode == "rolling" or final:
            first = self.next_origin if mode == "rolling" else end - self.tail
            found = _windows(grid_values, complete, grid_start, first, limit, self.window)
            if mode == "rolling":
                self.report.origins_skipped += found[2]
            origins, x, _ = found
            if mode == "last" and end < self.window:
                raise ShortSeries(
                    f"{self.name} has {self.rows} rows, fewer than the {self.window} the "
                    f"model needs: a forecast reads the last {self.window} rows ({self._reads()}); "
                    f"pass a {self.kind} with at least {self.window} rows"
                )
            if mode == "last" and (len(origins) == 0 or origins[-1] != end):
                raise ShortSeries(
                    f"the last {self.window} rows of {self.name} are not complete (a gap or NaN "
                    f"longer than --max-gap {self.spec.max_gap}); a forecast needs "
                    f"{self.window} complete rows at the end of the {self.kind}"
                )
            if len(origins):
                batch = OriginBatch(self._times(origins - 1), x)
                self.forecasts += len(origins)
        self.next_origin = max(self.next_origin, limit + 1)
        keep = all_slots >= limit - (self.window + self.spec.max_gap + 1)
        self.slots, self.values = all_slots[keep], all_values[keep]
        return batch

    def _reads(self) -> str:
        """What the rows a forecast reads are for."""
        if not self.spec.lags:
            return "its window"
        return (
            f"its window and, for its seasonal lags, the value {max(self.spec.lags)} steps "
            "before each forecast step"
        )

    def _times(self, slots: np.ndarray) -> np.ndarray:
        """Grid slots as datetime64 timestamps, or as row numbers without a time column."""
        if not self.spec.time_col or self.first_stamp is None:
            return slots
        return (self.first_stamp + slots * self.step).astype("datetime64[ns]")

    def _to_slots(self, parsed: ParsedRows) -> tuple[np.ndarray, np.ndarray]:
        """Grid slot of every row (relative to the stream's first timestamp) and its values."""
        stamps, values = parsed.stamps, parsed.values
        if len(stamps) == 0:
            return np.empty(0, np.int64), values
        if self.series is not None and not self.spec.time_col:
            start = self.last_slot + 1
            stamps = np.arange(start, start + len(stamps), dtype=np.int64)
        if self.first_stamp is None:
            self.first_stamp = int(stamps[0])
        slots = np.rint((stamps - self.first_stamp) / self.step).astype(np.int64)
        # Checked in two comparisons first: a fleet's series take many small feeds.
        if slots[0] < self.last_slot or (slots[1:] < slots[:-1]).any():
            back = np.flatnonzero(np.diff(np.concatenate([[self.last_slot], slots])) < 0)
            where = "" if self.series is None else f" (series '{self.series}')"
            raise DataError(
                f"{self.path} row {file_row(parsed.rows[back[0]])}{where}: time goes backwards; "
                "predict streams files in time order, so sort the file by time first"
            )
        self.last_slot = int(slots[-1])
        return slots, values


def read_chunks(
    path: Path, spec: DataSpec, chunk_rows: int, report: StreamReport, id_col: str | None = None
) -> Iterator[pd.DataFrame]:
    """The file's rows as text, `chunk_rows` at a time, its columns checked on the first chunk.

    `id_col` names a fleet's series column, which the file must have too.
    """
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path")
    try:
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, chunksize=chunk_rows
        )
        for i, chunk in enumerate(reader):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            if i == 0:
                _check_columns(path, spec, list(chunk.columns), report, id_col)
            report.rows += len(chunk)
            yield chunk
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; pass a CSV with a header line and data rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path} is not a well-formed CSV ({detail}); fix that line") from None


def _check_columns(
    path: Path, spec: DataSpec, columns: list[str], report: StreamReport, id_col: str | None
) -> None:
    needed = ([id_col] if id_col else []) + ([spec.time_col] if spec.time_col else [])
    needed += list(spec.features)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)} that the model needs (inputs: "
            f"{', '.join(spec.features)}); pass a CSV with those columns"
        )
    report.ignored_columns = tuple(c for c in columns if c not in needed)
    if report.ignored_columns:
        report.warnings.append(
            f"{path}: ignoring column(s) the model does not use: "
            + ", ".join(report.ignored_columns)
        )


def _refuse(
    path: Path, spec: DataSpec, chunk: pd.DataFrame, col: str, bad: np.ndarray, what: str
) -> None:
    if bad.any() and spec.bad_rows != "drop":
        index = chunk.index[int(np.argmax(bad))]
        raise DataError(
            f"{path} row {file_row(index)}, column '{col}': {what}: {chunk.at[index, col]!r}; "
            "fix the file (the model was trained with --bad-rows error)"
        )


def _grid(name: str, spec: DataSpec, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows placed on their grid slots (0-based), duplicates merged, missing slots as NaN."""
    duplicated = np.diff(slots) == 0
    if duplicated.any():
        if spec.dedupe == "error":
            raise DataError(
                f"{name} has duplicate timestamps; the model was trained with --dedupe error, "
                "so remove them or retrain with --dedupe mean or last"
            )
        frame = pd.DataFrame(values, columns=list(spec.features))
        merged = frame.groupby(slots).agg("mean" if spec.dedupe == "mean" else "last")
        return merged.reindex(range(int(slots[-1]) + 1)).to_numpy(np.float64)
    # No duplicates (the usual case): numpy only, so a fleet's many small feeds stay cheap.
    grid = np.full((int(slots[-1]) + 1, values.shape[1]), np.nan)
    grid[slots] = values
    return grid


def _trailing_false(mask: np.ndarray) -> int:
    """How many False values end the mask."""
    trues = np.flatnonzero(mask)
    return len(mask) - (int(trues[-1]) + 1) if len(trues) else len(mask)


def _windows(
    values: np.ndarray, complete: np.ndarray, grid_start: int, first: int, limit: int, window: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Origins in [first, limit] (global slots) whose previous `window` rows are complete.

    Returns the origins, their windows, and how many candidates a gap ruled out.
    """
    lo = max(first, grid_start + window)
    hi = min(limit, grid_start + len(values))
    candidates = np.arange(lo, hi + 1)
    incomplete = np.concatenate([[0], np.cumsum(~complete)])
    local = candidates - grid_start
    ok = incomplete[local] - incomplete[local - window] == 0
    origins = candidates[ok]
    skipped = int((~ok).sum())
    if len(origins) == 0:
        return origins, np.empty((0, window, values.shape[1])), skipped
    # Windows as a read-only view of the grid rows: a copy would cost `window` times the rows.
    views = np.lib.stride_tricks.sliding_window_view(values, (window, values.shape[1]))[:, 0]
    starts = origins - grid_start - window
    if starts[-1] - starts[0] == len(starts) - 1:  # no gap among them: a slice, still a view
        return origins, views[starts[0] : starts[-1] + 1], skipped
    return origins, views[starts], skipped
