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
import pandas as pd

from forecaster.config import PredictMode
from forecaster.device.predictor import Predictor
from forecaster.device.stream import StreamReport, stream_origins
from forecaster.files import atomic_path

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Called with (file, rows read so far in that file) after every chunk.
ProgressCallback = Callable[[Path, int], None]


@dataclass
class PredictSummary:
    """What a batch prediction did."""

    files: int = 0
    rows: int = 0
    forecasts: int = 0  # origins forecast
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
) -> PredictSummary:
    """Forecast every file and write one long CSV: origin, timestamp, step, one column per target.

    `origin` is the time of the last observed row; `timestamp` the time forecast. With several
    files a leading `file` column says which. Without `out`, the CSV goes to standard output.
    """
    summary = PredictSummary()
    bundle = predictor.bundle
    if out is None:
        # `last` output is small: hold it back so an error in a later file prints no rows.
        sink = io.StringIO() if mode == "last" else sys.stdout
        _write_all(predictor, files, sink, mode, chunk_rows, summary, progress)
        if isinstance(sink, io.StringIO):
            sys.stdout.write(sink.getvalue())
        return summary
    with atomic_path(out) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        _write_all(predictor, files, handle, mode, chunk_rows, summary, progress)
    for column, count in summary.out_of_range.items():
        if count:
            i = bundle.scaler.columns.index(column)
            summary.warnings.append(
                f"{count} value(s) of {column} are outside the training range "
                f"[{bundle.scaler.data_min[i]:g}, {bundle.scaler.data_max[i]:g}]; forecasts "
                "there are extrapolations"
            )
    return summary


def _write_all(
    predictor: Predictor,
    files: Sequence[Path],
    handle: IO[str],
    mode: PredictMode,
    chunk_rows: int,
    summary: PredictSummary,
    progress: ProgressCallback | None,
) -> None:
    bundle = predictor.bundle
    spec = bundle.data
    writer = csv.writer(handle)
    many = len(files) > 1
    writer.writerow([*(["file"] if many else []), "origin", "timestamp", "step", *spec.targets])
    step = np.timedelta64(round((spec.step_seconds or 1.0) * 1e9), "ns")
    steps = np.arange(1, predictor.horizon + 1)
    out_of_range = np.zeros(len(spec.features), np.int64)
    for path in files:
        report = StreamReport()
        for batch in stream_origins(
            path, spec, predictor.history, mode=mode, chunk_rows=chunk_rows, report=report
        ):
            # Each window's last row is new data exactly once in rolling mode.
            out_of_range += bundle.scaler.out_of_range(batch.x[:, -1, :])
            forecast = predictor.forecast_windows(batch.x, batch.last_times)
            last = batch.last_times
            if spec.time_col:
                stamps = (last[:, None] + steps[None, :] * step).reshape(-1)
                origin_text = pd.DatetimeIndex(last).strftime(TIME_FORMAT).to_numpy()
                stamp_text = pd.DatetimeIndex(stamps).strftime(TIME_FORMAT).to_numpy()
            else:
                origin_text = last
                stamp_text = (last[:, None] + steps[None, :]).reshape(-1)
            columns: dict[str, object] = {"file": str(path)} if many else {}
            columns |= {
                "origin": np.repeat(origin_text, predictor.horizon),
                "timestamp": stamp_text,
                "step": np.tile(steps, len(last)),
            }
            flat = forecast.reshape(-1, len(spec.targets))
            columns |= {t: flat[:, j] for j, t in enumerate(spec.targets)}
            pd.DataFrame(columns).to_csv(handle, header=False, index=False, float_format="%.6g")
            summary.forecasts += len(last)
            if progress is not None:
                progress(path, report.rows)
        summary.files += 1
        summary.rows += report.rows
        summary.origins_skipped += report.origins_skipped
        summary.warnings.extend(report.warnings)
        if report.rows_dropped:
            summary.warnings.append(f"{path}: dropped {report.rows_dropped} junk row(s)")
    summary.out_of_range = dict(zip(spec.features, (int(v) for v in out_of_range), strict=True))
