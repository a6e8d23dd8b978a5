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


def summarize(data: SensorData) -> dict[str, Any]:
    """Overview, per-column statistics and gap list of a loaded file, as plain values."""
    report = data.report
    index = data.frame.index
    longest = max((stop - start for start, stop in data.segments), default=0)
    overview: dict[str, Any] = {
        "rows in file": report.rows_read,
        "rows on time grid": data.n_rows,
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
    return {"overview": overview, "columns": columns, "gaps": gaps}
