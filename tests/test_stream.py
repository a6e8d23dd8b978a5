"""Streaming CSVs in chunks gives exactly the windows of the whole-file loader."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.bundle import DataSpec
from forecaster.config import DataConfig
from forecaster.data.load import load_csv
from forecaster.device.stream import StreamReport, stream_origins
from forecaster.errors import DataError

WINDOW = 24


def spec_for(data, **changes) -> DataSpec:
    fields = {
        "source": "s.csv",
        "source_sha256": "",
        "time_col": data.time_col,
        "features": data.features,
        "targets": data.targets,
        "step_seconds": 3600.0,
        "freq": "1h",
        "max_gap": 3,
        "dedupe": "error",
        "bad_rows": "error",
        "split": (0.7, 0.15, 0.15),
        "train_start": "",
        "train_end": "",
        "season": 24,
        "mase_scale": (1.0,),
    } | changes
    return DataSpec(**fields)


@pytest.fixture
def gappy(sensor_csv):
    path = sensor_csv(rows=800, gaps=4, gap_length=5, nan_fraction=0.01, seed=3)
    return path, load_csv(path, DataConfig(targets=("temp",)))


@pytest.mark.parametrize("chunk_rows", [3, 37, 5000])
def test_rolling_windows_match_the_whole_file_loader(gappy, chunk_rows):
    path, data = gappy
    values = data.values()
    expected = [o for s, e in data.segments for o in range(s + WINDOW, e + 1)]
    report = StreamReport()
    batches = list(
        stream_origins(path, spec_for(data), WINDOW, chunk_rows=chunk_rows, report=report)
    )
    x = np.concatenate([b.x for b in batches])
    times = np.concatenate([b.last_times for b in batches])
    assert len(x) == len(expected)
    np.testing.assert_allclose(x, np.stack([values[o - WINDOW : o] for o in expected]))
    assert list(times) == list(data.frame.index[[o - 1 for o in expected]].to_numpy())
    assert report.rows == 800 - 4 * 5
    assert report.origins_skipped > 0
    # Origins are settled chunk by chunk (bounded memory), not all held back to the end.
    assert len(batches) >= min(800 // chunk_rows, 20) // 2


def test_last_mode_gives_one_window_at_the_end(sensor_csv):
    path = sensor_csv(rows=300, gaps=2, gap_length=5, seed=1)
    data = load_csv(path, DataConfig(targets=("temp",)))
    batches = list(stream_origins(path, spec_for(data), WINDOW, mode="last", chunk_rows=64))
    assert len(batches) == 1
    np.testing.assert_allclose(batches[0].x[0], data.values()[-WINDOW:])
    assert batches[0].last_times[0] == data.frame.index[-1].to_datetime64()


@pytest.mark.parametrize("chunk_rows", [3, 7, 5000])
def test_last_mode_fills_a_short_gap_in_the_last_window_whatever_the_chunks(
    write_text, sensor_csv, chunk_rows
):
    """Between chunks last mode keeps only the rows the end can read: still enough to fill
    a gap of --max-gap rows inside the last window as the whole-file loader does."""
    lines = sensor_csv(rows=120, nan_fraction=0.05, seed=2).read_text().splitlines()
    path = write_text("\n".join(lines[:-12] + lines[-9:]) + "\n", name="gap.csv")
    data = load_csv(path, DataConfig(targets=("temp",)))
    assert data.report.count("interpolated") > 0
    (batch,) = stream_origins(path, spec_for(data), WINDOW, mode="last", chunk_rows=chunk_rows)
    np.testing.assert_allclose(batch.x[0], data.values()[-WINDOW:])


def test_last_mode_refuses_an_incomplete_end(write_text, sensor_csv):
    path = sensor_csv(rows=100)
    data = load_csv(path, DataConfig(targets=("temp",)))
    lines = path.read_text().splitlines()
    cut = write_text("\n".join(lines[:-10] + lines[-2:]) + "\n", name="cut.csv")
    with pytest.raises(DataError, match=r"the last 24 rows of .*cut.csv are not complete"):
        list(stream_origins(cut, spec_for(data), WINDOW, mode="last"))


def test_missing_columns_extra_columns_and_time_going_back(write_text, sensor_csv):
    data = load_csv(sensor_csv(rows=50), DataConfig(targets=("temp",)))
    spec = spec_for(data)
    missing = write_text("time,temp\n2024-01-01 00:00,1\n", name="m.csv")
    with pytest.raises(DataError, match=r"lacks column\(s\) humidity, load that the model needs"):
        list(stream_origins(missing, spec, WINDOW))
    rows = [f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00,1,2,3,x" for h in range(30)]
    rows[20], rows[21] = rows[21], rows[20]
    extra = write_text("time,temp,humidity,load,note\n" + "\n".join(rows) + "\n", name="e.csv")
    report = StreamReport()
    with pytest.raises(DataError, match=r"e.csv row 23: time goes backwards"):
        list(stream_origins(extra, spec, WINDOW, chunk_rows=7, report=report))
    assert report.ignored_columns == ("note",)
