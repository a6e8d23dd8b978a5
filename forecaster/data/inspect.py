"""A plain summary of a loaded sensor file or fleet: what `forecaster data inspect` shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.data.fleet import Fleet
from forecaster.data.load import SensorData

_MAX_GAP_ROWS = 20


def describe_freq(freq: pd.Timedelta | None) -> str:
    """A sampling step as a person writes it ('1h', '30min'), or 'row index'."""
    if freq is None:
        return "row index (no timestamps)"
    text = str(pd.tseries.frequencies.to_offset(freq).freqstr)
    return text if text[0].isdigit() else f"1{text}"


def position_label(data: SensorData, row: int) -> str:
    """The timestamp of a grid row, or its number when the file has no timestamps."""
    index = data.frame.index
    return str(index[row]) if isinstance(index, pd.DatetimeIndex) else f"row {row}"


def summarize(data: SensorData, train_rows: tuple[int, int] | None = None) -> dict[str, Any]:
    """Overview, per-column statistics, gaps and seasons of a loaded file, as plain values.

    The seasons are checked on `train_rows` [start, stop), the training part (default: all).
    """
    from forecaster.data.seasons import training_seasons

    report = data.report
    index = data.frame.index
    longest = max((stop - start for start, stop in data.segments), default=0)
    overview: dict[str, Any] = {
        "rows in file": report.rows_read,
        "rows on time grid": data.n_rows,
        "time column": describe_time_column(data),
        "frequency": describe_freq(data.freq),
    }
    if isinstance(index, pd.DatetimeIndex) and len(index):
        overview["start"] = str(index[0])
        overview["end"] = str(index[-1])
        overview["span"] = str(index[-1] - index[0])
    overview |= {
        "junk rows dropped": report.rows_dropped,
        "rows out of time order": report.out_of_order,
        "duplicate timestamps": report.duplicates,
        "off-grid timestamps": report.off_grid,
        "missing timestamps": report.missing_timestamps,
        "gaps interpolated": report.count("interpolated"),
        "gaps that split the series": report.count("split"),
        "gaps trimmed at the ends": report.count("trimmed"),
        "segments": f"{len(data.segments)} (longest {longest} rows)",
    }
    if report.ignored_columns:
        overview["ignored text columns"] = ", ".join(report.ignored_columns)

    columns = []
    for col in data.features:
        values = data.frame[col].to_numpy(dtype=np.float64)
        finite = values[~np.isnan(values)]
        columns.append(
            {
                "column": col,
                "role": "target" if col in data.targets else "feature",
                "dtype": str(data.frame[col].dtype),
                "min": f"{finite.min():.4g}" if finite.size else "-",
                "max": f"{finite.max():.4g}" if finite.size else "-",
                "mean": f"{finite.mean():.4g}" if finite.size else "-",
                "NaN in file": report.nan_in_file.get(col, 0),
            }
        )
    for col in report.ignored_columns:
        columns.append(
            {
                "column": col,
                "role": "ignored",
                "dtype": "text",
                "min": "-",
                "max": "-",
                "mean": "-",
                "NaN in file": "-",
            }
        )

    gaps: list[dict[str, Any]] = [
        {
            "column": gap.column,
            "from": position_label(data, gap.start),
            "steps": gap.length,
            "handling": gap.handling,
        }
        for gap in sorted(report.gaps, key=lambda g: (g.start, g.column))
    ]
    if len(gaps) > _MAX_GAP_ROWS:
        more = len(gaps) - _MAX_GAP_ROWS
        gaps = [
            *gaps[:_MAX_GAP_ROWS],
            {"column": f"... {more} more", "from": "", "steps": "", "handling": ""},
        ]
    checks = training_seasons(data, train_rows or (0, data.n_rows))
    seasons = [
        {
            "season": f"{check.steps} steps ({check.name})",
            "kept": "yes" if check.kept else "no",
            "why": check.reason,
        }
        for check in checks
    ]
    used = [f"{check.steps} steps ({check.name})" for check in checks if check.kept]
    return {
        "overview": overview,
        "columns": columns,
        "gaps": gaps,
        "seasons": seasons,
        "seasons used": ", ".join(used) or "none found",
    }


def describe_time_column(data: SensorData) -> str:
    """The time column and whether it was named (--time-col) or found by its name and values."""
    if data.time_col is None:
        return "none (the row number is the time)"
    return f"{data.time_col} ({'given' if data.config.time_col else 'found'})"


def count_origins(segments: tuple[tuple[int, int], ...], rows: tuple[int, int], span: int) -> int:
    """Windows of `span` rows (window + horizon) inside `rows` [start, stop) crossing no long gap.

    Per gap-free stretch: its length less the span, plus one, and never below zero; the windowing
    that trains and evaluates a model cuts the same ones.
    """
    start, stop = rows
    return sum(
        max(0, min(s_stop, stop) - max(s_start, start) - span + 1) for s_start, s_stop in segments
    )


def split_parts(
    data: SensorData, parts: dict[str, tuple[int, int]], span: int
) -> list[dict[str, Any]]:
    """Each part of the split: its rows, the time of its first and last row, and its windows."""
    rows = []
    for name, (start, stop) in parts.items():
        empty = stop <= start
        rows.append(
            {
                "part": name,
                "rows": stop - start,
                "first": "-" if empty else position_label(data, start),
                "last": "-" if empty else position_label(data, stop - 1),
                "windows": count_origins(data.segments, (start, stop), span),
            }
        )
    return rows


NO_STEP = "-"
# The [start, stop) rows of a series' training, validation and test parts, from its length.
PartsOf = Callable[[int], Sequence[tuple[int, int]]]


@dataclass(frozen=True)
class SeriesSummary:
    """One series of a long file: its grid, what loading found in it, its windows per part."""

    id: str
    rows: int  # on its own time grid, gaps included
    first: str  # its first row's time, to the minute ("row 0" without timestamps)
    span: str  # first to last row: "364d 23h", or "120 rows" without timestamps
    step: str  # "-" for a single timestamp, which has none
    missing: int  # timestamps missing from its grid
    gaps: int  # runs of missing values, however handled
    split_gaps: int  # runs longer than --max-gap, which cut the series
    duplicates: int  # duplicate timestamps merged (--dedupe mean or last)
    nans: int  # empty cells in the file, over all columns
    out_of_order: int
    off_grid: int
    windows: tuple[int, ...]  # origins in the training, validation and test parts

    @property
    def too_short(self) -> bool:
        """A part without a single window: training would skip this series."""
        return 0 in self.windows

    @property
    def flawed_share(self) -> float:
        """Missing timestamps and empty cells, as a share of its grid's rows."""
        return (self.missing + self.nans) / max(self.rows, 1)

    def notes(self, common_step: str) -> str:
        """What sets this series apart, in a few words."""
        notes = ["too short"] if self.too_short else []
        if self.split_gaps:
            notes.append(f"{self.split_gaps} long gap{'s' if self.split_gaps > 1 else ''}")
        if self.step not in (common_step, NO_STEP):
            notes.append(f"step {self.step}")
        if self.out_of_order:
            notes.append(f"{self.out_of_order} out of order")
        if self.off_grid:
            notes.append(f"{self.off_grid} off grid")
        return ", ".join(notes)


@dataclass(frozen=True)
class FleetSummary:
    """A long file's series, each summarized, and what they have in common."""

    path: Path
    id_col: str
    features: tuple[str, ...]
    series: tuple[SeriesSummary, ...]  # in the order their ids first appear in the file
    step: str  # the step most series have
    warnings: tuple[str, ...]  # about the whole file (junk rows dropped, no timestamps, ...)

    @property
    def rows(self) -> int:
        """Rows on all the series' grids together."""
        return sum(s.rows for s in self.series)

    @property
    def other_steps(self) -> tuple[SeriesSummary, ...]:
        """Series whose step is not the common one."""
        return tuple(s for s in self.series if s.step not in (self.step, NO_STEP))

    @property
    def with_gaps(self) -> tuple[SeriesSummary, ...]:
        """Series with at least one run of missing values."""
        return tuple(s for s in self.series if s.gaps)

    @property
    def too_short(self) -> tuple[SeriesSummary, ...]:
        """Series training would skip: a part of their split has no window."""
        return tuple(s for s in self.series if s.too_short)

    @property
    def shortest(self) -> SeriesSummary:
        """The series with the fewest rows on its grid (the first such in the file)."""
        return min(self.series, key=lambda s: s.rows)

    def worst(self, n: int) -> tuple[SeriesSummary, ...]:
        """The `n` series most in need of a look: too short, cut by gaps, then most missing."""
        ranked = sorted(
            self.series,
            key=lambda s: (not s.too_short, -s.split_gaps, -s.flawed_share, -s.duplicates),
        )
        return tuple(ranked[:n])


def describe_span(index: pd.Index) -> str:
    """From the first row to the last in its two largest units ('364d 23h', '5h 30min')."""
    if not isinstance(index, pd.DatetimeIndex):
        return f"{len(index)} rows"
    seconds = int((index[-1] - index[0]).total_seconds())
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count}{name}")
    parts = parts[:2]
    while len(parts) > 1 and parts[-1][0] == "0":
        parts.pop()
    return " ".join(parts) or "0s"


def summarize_fleet(fleet: Fleet, span: int, parts_of: PartsOf) -> FleetSummary:
    """Each series of a fleet summarized, with the windows of `span` rows each part would give."""
    series = []
    for data in fleet:
        report = data.report
        index = data.frame.index
        series.append(
            SeriesSummary(
                id=data.series or "",
                rows=data.n_rows,
                first=position_label(data, 0)[:16],
                span=describe_span(index),
                step=NO_STEP
                if data.freq is None and isinstance(index, pd.DatetimeIndex)
                else describe_freq(data.freq),
                missing=report.missing_timestamps,
                gaps=len({(g.start, g.length) for g in report.gaps}),
                split_gaps=len({(g.start, g.length) for g in report.gaps if g.handling == "split"}),
                duplicates=report.duplicates,
                nans=sum(report.nan_in_file.values()),
                out_of_order=report.out_of_order,
                off_grid=report.off_grid,
                windows=tuple(
                    count_origins(data.segments, part, span) for part in parts_of(len(index))
                ),
            )
        )
    steps = Counter(s.step for s in series if s.step != NO_STEP) or Counter([NO_STEP])
    shared = [
        w for w in fleet.series[0].report.warnings if all(w in d.report.warnings for d in fleet)
    ]
    return FleetSummary(
        path=fleet.path,
        id_col=fleet.id_col,
        features=fleet.features,
        series=tuple(series),
        step=steps.most_common(1)[0][0],
        warnings=tuple(shared),
    )
