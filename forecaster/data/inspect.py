"""A plain summary of a loaded sensor file: what `forecaster data inspect` shows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
