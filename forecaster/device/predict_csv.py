"""Batch prediction over CSV files on the device: stream, forecast, write one CSV atomically."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from forecaster.config import DEFAULT_ADAPT, PredictMode, UnknownPolicy
from forecaster.device.adapt import RecentErrors
from forecaster.device.ahead import worked_ahead
from forecaster.device.fleet_stream import FleetReport, stream_fleet
from forecaster.device.predictor import Predictor
from forecaster.device.stream import OriginBatch, StreamReport, stream_origins
from forecaster.device.text import ForecastLines, padded
from forecaster.errors import UsageError
from forecaster.files import atomic_path
from forecaster.intervals import IntervalForecast, level_name, refresh_every, with_intervals

# Called with (file, rows read so far in that file) after every chunk.
ProgressCallback = Callable[[Path, int], None]


@dataclass
class PredictSummary:
    """What a batch prediction did."""

    files: int = 0
    rows: int = 0
    forecasts: int = 0  # origins forecast
    series: int = 0  # a fleet bundle: series forecast (in any file)
    origins_skipped: int = 0
    out_of_range: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def predict_files(
    predictor: Predictor,
    files: Sequence[Path],
    out: Path | None,
    *,
    mode: PredictMode = "last",
    chunk_rows: int = 20_000,
    progress: ProgressCallback | None = None,
    levels: tuple[float, ...] = (),
    adapt: int | None = None,
    unknown: UnknownPolicy = "error",
) -> PredictSummary:
    """Forecast every file and write one long CSV: origin, timestamp, step, one column per target.

    `origin` is the time of the last observed row; `timestamp` the time forecast. With several
    files a leading `file` column says which. Without `out`, the CSV goes to standard output.
    Each level in `levels` (fractions) adds `<target>_lower_<level>` and `<target>_upper_<level>`
    columns after each target's, recalibrated from the errors of the file's own earlier forecasts
    (in each series of it, for a fleet): the last `adapt` per step, DEFAULT_ADAPT unless given;
    0 keeps the bundle's. In `last` mode those are forecasts from the origins before the last.

    For a fleet bundle each file is a long CSV with the bundle's id column, which leads each
    output row (after `file`); `unknown="skip"` skips the rows of series the model was not
    trained on instead of refusing the file.
    """
    summary = PredictSummary()
    bundle = predictor.bundle
    if levels:
        summary.warnings.extend(predictor.interval_notes(levels))
    if unknown != "error" and bundle.fleet is None:
        raise UsageError(
            "--unknown is for a bundle trained on many series (--id-col); this bundle's model "
            "was trained on one series, so leave --unknown out"
        )
    if adapt is None:
        adapt = DEFAULT_ADAPT if levels else 0
    options = _Options(mode, chunk_rows, levels, adapt, unknown)
    if out is None:
        # The lines are UTF-8 bytes already: they go to stdout's binary buffer. A stdout
        # replaced by a text-only stream gets the whole output at the end instead.
        sys.stdout.flush()
        stdout: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
        # `last` output is small: hold it back so an error in a later file prints no rows.
        if stdout is not None and mode == "rolling":
            _write_all(predictor, files, stdout, options, summary, progress)
        else:
            held = io.BytesIO()
            _write_all(predictor, files, held, options, summary, progress)
            if stdout is None:
                sys.stdout.write(held.getvalue().decode())
            else:
                stdout.write(held.getvalue())
        sys.stdout.flush()
        return summary
    with atomic_path(out) as tmp, tmp.open("wb") as handle:
        _write_all(predictor, files, handle, options, summary, progress)
    for column, count in summary.out_of_range.items():
        if count and bundle.fleet is not None:
            summary.warnings.append(
                f"{count} value(s) of {column} are outside their series' training range; "
                "forecasts there are extrapolations"
            )
        elif count:
            i = bundle.scaler.columns.index(column)
            summary.warnings.append(
                f"{count} value(s) of {column} are outside the training range "
                f"[{bundle.scaler.data_min[i]:g}, {bundle.scaler.data_max[i]:g}]; forecasts "
                "there are extrapolations"
            )
    return summary


def _csv_field(text: str) -> str:
    """One value as the csv module quotes it (a path with a comma or a quote)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([text])
    return buffer.getvalue().rstrip("\r\n")


@dataclass(frozen=True)
class _Options:
    mode: PredictMode
    chunk_rows: int
    levels: tuple[float, ...]
    adapt: int
    unknown: UnknownPolicy


def target_columns(targets: tuple[str, ...], levels: tuple[float, ...]) -> list[str]:
    """The forecast columns: each target, then its lower and upper bound per level."""
    columns = []
    for target in targets:
        columns.append(target)
        for level in levels:
            name = level_name(level)
            columns += [f"{target}_lower_{name}", f"{target}_upper_{name}"]
    return columns


def _write_all(
    predictor: Predictor,
    files: Sequence[Path],
    handle: IO[bytes],
    options: _Options,
    summary: PredictSummary,
    progress: ProgressCallback | None,
) -> None:
    bundle = predictor.bundle
    spec = bundle.data
    fleet = bundle.fleet
    levels = options.levels
    many = len(files) > 1
    names = target_columns(spec.targets, levels)
    keys = (["file"] if many else []) + ([fleet.id_col] if fleet is not None else [])
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([*keys, "origin", "timestamp", "step", *names])
    handle.write(header.getvalue().encode())
    step = np.timedelta64(round((spec.step_seconds or 1.0) * 1e9), "ns")
    times = bool(spec.time_col)
    out_of_range = np.zeros(len(spec.features), np.int64)
    target_index = [spec.features.index(t) for t in spec.targets]
    # Each series id as the csv module writes it, once: ids are repeated on every output row.
    id_text = None if fleet is None else padded([_csv_field(i) + "," for i in fleet.ids])
    fleet_ids = None if fleet is None else np.array(fleet.ids)
    seen = np.zeros(0 if fleet is None else len(fleet.series), bool)
    for path in files:
        report: StreamReport
        prefix = _csv_field(str(path)) + "," if many else ""
        lines = ForecastLines(
            prefix, predictor.horizon, int(step.astype(np.int64)) if times else 1, times
        )
        recent: dict[int, RecentErrors] = {}  # per series position (-1: a one-series bundle)
        # `last` mode learns its intervals from the forecasts of the origins just before: the
        # ring of the first origin of the last one's stretch needs `adapt` errors of each step.
        tail = 0
        if options.adapt and options.mode == "last":
            tail = options.adapt + predictor.horizon + refresh_every(options.adapt) - 2
        if fleet is not None:
            report = FleetReport()
            batches = stream_fleet(
                path,
                spec,
                fleet,
                predictor.history,
                mode=options.mode,
                chunk_rows=options.chunk_rows,
                report=report,
                unknown=options.unknown,
                tail=tail,
            )
        else:
            report = StreamReport()
            batches = stream_origins(
                path,
                spec,
                predictor.history,
                mode=options.mode,
                chunk_rows=options.chunk_rows,
                report=report,
                tail=tail,
            )

        def forecast(batch: OriginBatch) -> _Forecasts:
            ids = None if fleet_ids is None or batch.series is None else fleet_ids[batch.series]
            x, last = batch.x, batch.last_times
            made: np.ndarray | IntervalForecast
            if levels and not options.adapt:
                made = predictor.forecast_intervals(x, last, levels, series=ids)
            else:
                made = predictor.forecast_windows(x, last, ids)
            # A copy of the last rows: a view would keep every window alive.
            return _Forecasts(last, batch.series, x[:, -1, :].copy(), made)

        # The model forecasts the next batch while this one's intervals and lines are made, on
        # another core; with one (--threads 1) they take turns.
        ahead = predictor.num_threads > 1
        for done in worked_ahead(batches, forecast) if ahead else map(forecast, batches):
            index, last, forecasts = done.series, done.last_times, done.forecasts
            final: slice | np.ndarray = slice(None)
            if tail:
                final = _last_of_each(index, len(last))
            # Each window's last row is new data exactly once, in either mode.
            if predictor.fleet is not None and index is not None:
                out_of_range += predictor.fleet.out_of_range(done.last_rows[final], index[final])
                seen[index] = True
            else:
                out_of_range += bundle.scaler.out_of_range(done.last_rows[final])
            if isinstance(forecasts, IntervalForecast):  # the bundle's fixed intervals
                result = forecasts
            else:
                widths = np.empty((0, *forecasts.shape[1:]))  # no levels, no bounds
                if levels:
                    slots = np.asarray(last).astype(np.int64)
                    if spec.time_col:
                        slots = slots // step.astype(np.int64)
                    actual = done.last_rows[:, target_index]
                    widths = _adapted(
                        predictor, recent, options, index, slots, actual, forecasts, final
                    )
                    if options.mode == "last":  # a series' windows come in one batch
                        recent.clear()
                result = with_intervals(forecasts, widths, levels)
            # Each target's point, then its bound pair per level: the CSV's columns.
            bounds = [b for pair in zip(result.lower, result.upper, strict=True) for b in pair]
            parts = [result.point, *bounds]
            columns = [part[final, :, t] for t in range(len(spec.targets)) for part in parts]
            last = last[final]
            index = None if index is None else index[final]
            lead = None if id_text is None or index is None else id_text[index]
            for text in lines.text(last, columns, lead):
                handle.write(text)
            summary.forecasts += len(last)
            if progress is not None:
                progress(path, report.rows)
        summary.files += 1
        summary.rows += report.rows
        summary.origins_skipped += report.origins_skipped
        summary.warnings.extend(report.warnings)
        if report.rows_dropped:
            summary.warnings.append(f"{path}: dropped {report.rows_dropped} junk row(s)")
        if isinstance(report, FleetReport):
            summary.warnings.extend(report.fleet_warnings(path))
    summary.series = int(seen.sum())
    summary.out_of_range = dict(zip(spec.features, (int(v) for v in out_of_range), strict=True))


@dataclass(frozen=True)
class _Forecasts:
    """A batch's forecasts and what writing them needs of its windows (not the windows)."""

    last_times: np.ndarray
    series: np.ndarray | None
    last_rows: np.ndarray  # (n, features): each window's last row
    forecasts: np.ndarray | IntervalForecast  # IntervalForecast: the bundle's fixed intervals


def _last_of_each(index: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of each series' last window in a batch (the last one for a single series)."""
    if index is None:
        return np.array([n - 1])
    _, from_end = np.unique(index[::-1], return_index=True)
    return np.sort(n - 1 - from_end)


def _adapted(
    predictor: Predictor,
    recent: dict[int, RecentErrors],
    options: _Options,
    index: np.ndarray | None,
    slots: np.ndarray,
    actual: np.ndarray,
    forecast: np.ndarray,
    final: slice | np.ndarray,
) -> np.ndarray:
    """Half-widths (levels, n, horizon, targets) from each series' own recent errors, filled
    at the `final` positions (the ones written)."""
    levels = options.levels

    def ring(position: int) -> RecentErrors:
        if position not in recent:
            if predictor.fleet is not None:
                base = predictor.fleet.widths(levels)[position]
            else:
                assert predictor.bundle.intervals is not None
                base = predictor.bundle.intervals.widths(levels)
            recent[position] = RecentErrors(base, levels, options.adapt)
        return recent[position]

    written = None if isinstance(final, slice) else final
    if index is None:
        return ring(-1).run(slots, actual, forecast, written)
    widths = np.empty((len(levels), *forecast.shape))
    kept = None
    if written is not None:
        kept = np.zeros(len(index), bool)
        kept[written] = True
    # Each series' windows, in their order: one sort, not a scan of the batch per series.
    order = np.argsort(index, kind="stable")
    starts = np.flatnonzero(np.diff(index[order], prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(order)], strict=True):
        mine = order[start:stop]
        wanted = None if kept is None else np.flatnonzero(kept[mine])
        widths[:, mine] = ring(int(index[mine[0]])).run(
            slots[mine], actual[mine], forecast[mine], wanted
        )
    return widths
