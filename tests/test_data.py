"""Loading sensor CSVs: time index, grid, duplicates, gaps, NaNs and junk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.config import DataConfig
from forecaster.data.load import ALL_COLUMNS, load_csv, nan_runs
from forecaster.errors import ConfigError, DataError


def test_loads_regular_series_with_detected_time_column(sensor_csv):
    data = load_csv(sensor_csv(rows=300), DataConfig(targets=("temp",)))
    assert data.time_col == "time"
    assert data.freq == pd.Timedelta("1h")
    assert data.features == ("temp", "humidity", "load")
    assert data.targets == ("temp",)
    assert data.segments == ((0, 300),)
    assert data.n_rows == 300
    assert data.report.gaps == []


def test_unsorted_rows_are_sorted_by_time(write_text):
    path = write_text("time,x\n2024-01-01 02:00,3\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    data = load_csv(path)
    assert data.frame["x"].tolist() == [1.0, 2.0, 3.0]
    assert data.report.out_of_order == 1
    assert data.report.warnings == [
        f"1 row(s) of {path} have an earlier timestamp than the row above them; sorted the "
        "rows by time"
    ]


def test_a_shuffled_file_loads_like_the_sorted_one(sensor_csv):
    from forecaster.data.synthetic import make_series, write_csv

    frame = make_series(rows=144, freq="10min", seed=1)
    sorted_path = sensor_csv("sorted.csv", rows=144, freq="10min", seed=1)
    shuffled = write_csv(frame.sample(frac=1, random_state=3), sorted_path.with_name("mixed.csv"))
    config = DataConfig(targets=("temp",))
    expected, data = load_csv(sorted_path, config), load_csv(shuffled, config)
    pd.testing.assert_frame_equal(data.frame, expected.frame)
    assert data.freq == expected.freq and data.segments == expected.segments
    assert expected.report.out_of_order == 0 and expected.report.warnings == []
    assert 0 < data.report.out_of_order < 144


@pytest.mark.parametrize(
    "text",
    [
        "time,temp\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 02:00,3\n",
        '"time","temp"\r\n2024-01-01 00:00,1\r\n2024-01-01 01:00,2\r\n2024-01-01 02:00,3\r\n',
        "temp,time\n1,2024-01-01 00:00\n2,2024-01-01 01:00\n3,2024-01-01 02:00\n",
    ],
    ids=["plain", "quoted-crlf", "target-first"],
)
@pytest.mark.parametrize("time_col", [None, "time"])
def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path, text, time_col):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = load_csv(path, DataConfig(targets=("temp",), time_col=time_col))
    assert data.time_col == "time" and data.features == ("temp",)
    assert data.frame["temp"].tolist() == [1.0, 2.0, 3.0]
    assert data.freq == pd.Timedelta("1h")


def test_targets_are_always_inputs(sensor_csv):
    data = load_csv(sensor_csv(), DataConfig(targets=("temp",), features=("load",)))
    assert data.features == ("load", "temp")
    assert data.target_index == (1,)


def test_short_gap_is_interpolated_long_gap_splits(write_text):
    rows = [f"2024-01-01 {h:02d}:00,{h}" for h in range(24) if h not in (5, 12, 13, 14, 15)]
    data = load_csv(write_text("time,x\n" + "\n".join(rows) + "\n"), DataConfig(max_gap=2))
    assert data.frame["x"].iloc[5] == pytest.approx(5.0)
    assert np.isnan(data.frame["x"].iloc[12:16]).all()
    assert data.segments == ((0, 12), (16, 24))
    assert data.report.missing_timestamps == 5
    handled = {(g.start, g.length, g.handling) for g in data.report.gaps}
    assert handled == {(5, 1, "interpolated"), (12, 4, "split")}


def test_nan_cells_follow_the_gap_rule_and_edges_are_trimmed(write_text):
    text = "time,a,b\n" + "\n".join(
        f"2024-01-01 {h:02d}:00,{'' if h in (0, 7) else h},{'NaN' if 10 <= h <= 13 else h}"
        for h in range(20)
    )
    data = load_csv(write_text(text + "\n"), DataConfig(max_gap=3))
    assert data.frame["a"].iloc[7] == pytest.approx(7.0)
    assert data.segments == ((1, 10), (14, 20))
    kinds = {(g.column, g.handling) for g in data.report.gaps}
    assert kinds == {("a", "trimmed"), ("a", "interpolated"), ("b", "split")}
    assert data.report.nan_in_file == {"a": 2, "b": 4}


def test_rows_missing_everywhere_are_reported_once(sensor_csv):
    data = load_csv(sensor_csv(rows=400, gaps=2, gap_length=8, seed=3))
    splits = [g for g in data.report.gaps if g.handling == "split"]
    assert len(splits) == 2
    assert all(g.column == ALL_COLUMNS for g in splits)


def test_duplicates_are_an_error_by_default(write_text):
    path = write_text("time,x\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 01:00,4\n")
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == (
        f"{path} has 1 duplicate timestamp(s), first 2024-01-01 01:00:00 at rows 3 and 4; "
        "pass --dedupe mean or --dedupe last to merge them"
    )


@pytest.mark.parametrize(("policy", "expected"), [("mean", 3.0), ("last", 4.0)])
def test_duplicates_merged_by_policy(write_text, policy, expected):
    path = write_text("time,x\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 01:00,4\n")
    data = load_csv(path, DataConfig(dedupe=policy))
    assert data.frame["x"].tolist() == [1.0, expected]
    assert data.report.duplicates == 1


def test_non_numeric_cell_names_row_and_column(write_text):
    path = write_text("time,x,y\n2024-01-01 00:00,1,2\n2024-01-01 01:00,oops,3\n")
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == (
        f"{path} row 3, column 'x': a value that is not a number: 'oops'; fix the file or "
        "pass --bad-rows drop to skip such rows"
    )


def test_junk_rows_dropped_on_request(write_text):
    path = write_text(
        "time,x\n2024-01-01 00:00,1\ntime,x\n2024-01-01 01:00,2\n2024-01-01 02:00,3\n"
    )
    with pytest.raises(DataError, match=r"row 3, column 'time': an unparseable timestamp"):
        load_csv(path)
    data = load_csv(path, DataConfig(bad_rows="drop"))
    assert data.frame["x"].tolist() == [1.0, 2.0, 3.0]
    assert data.report.rows_dropped == 1


def test_text_columns_are_ignored_unless_asked_for(write_text):
    path = write_text("time,x,label\n2024-01-01 00:00,1,rain\n2024-01-01 01:00,2,sun\n")
    data = load_csv(path)
    assert data.features == ("x",)
    assert data.report.ignored_columns == ("label",)
    with pytest.raises(DataError, match=r"column 'label' .* is not numeric \(e.g. row 2\)"):
        load_csv(path, DataConfig(targets=("label",)))


def test_file_without_timestamps_uses_row_index(write_text):
    data = load_csv(write_text("a,b\n1,2\n3,4\n5,6\n"))
    assert data.time_col is None
    assert data.freq is None
    assert data.frame.index.tolist() == [0, 1, 2]
    assert "no timestamp column" in data.report.warnings[0]


def test_off_grid_timestamps_snap_to_the_grid(write_text):
    path = write_text(
        "time,x\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2\n"
        "2024-01-01 02:10:00,3\n2024-01-01 03:00:00,4\n"
    )
    data = load_csv(path)
    assert data.freq == pd.Timedelta("1h")
    assert data.report.off_grid == 1
    assert data.frame.index[2] == pd.Timestamp("2024-01-01 02:00")


def test_mixed_utc_offsets_are_read_in_utc(write_text):
    path = write_text(
        "time,x\n2022-03-27T00:00:00+01:00,1\n2022-03-27T01:00:00+01:00,2\n"
        "2022-03-27T03:00:00+02:00,3\n2022-03-27T04:00:00+02:00,4\n"
    )
    data = load_csv(path)
    assert data.frame.index[0] == pd.Timestamp("2022-03-26 23:00")
    assert data.segments == ((0, 4),)


def test_wildly_irregular_timestamps_are_refused(write_text):
    rows = ["2024-01-01 00:00:00,1", "2024-01-01 00:00:01,2", "2024-01-01 00:00:02,3"]
    path = write_text("time,x\n" + "\n".join([*rows, "2024-06-01 00:00:00,4"]) + "\n")
    with pytest.raises(DataError, match=r"too irregular .* resample the file"):
        load_csv(path)


@pytest.mark.parametrize(
    ("freq", "kind"), [("MS", "monthly"), ("ME", "monthly"), ("QS", "quarterly")]
)
def test_calendar_months_are_refused_not_merged(write_text, freq, kind):
    # Snapped to the commonest step (31 days), months would drift into each other and merge.
    stamps = pd.date_range("2000-01-01", periods=60, freq=freq)
    path = write_text("time,x\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
    with pytest.raises(DataError, match=rf"looks {kind} .* resample the file to a fixed interval"):
        load_csv(path)


def test_weekly_and_daily_steps_are_fixed_steps(write_text):
    for freq in ("W", "D", "30D"):
        stamps = pd.date_range("2000-01-01", periods=60, freq=freq)
        path = write_text("time,x\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
        assert len(load_csv(path).frame) == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; pass a CSV with a header line and data rows"),
        ("time,x\n", "has a header but no data rows"),
        ("2024-01-01 00:00,1.5,2\n2024-01-01 01:00,1.6,3\n", "has no header row"),
        ("time,x\n2024-01-01 00:00,\n2024-01-01 01:00,\n", "column 'x' in .* has no numeric"),
    ],
)
def test_unusable_files(write_text, text, message):
    with pytest.raises(DataError, match=message):
        load_csv(write_text(text))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv does not exist; check the path"):
        load_csv(tmp_path / "nope.csv")


def test_unknown_target_lists_the_columns(sensor_csv):
    path = sensor_csv()
    with pytest.raises(DataError) as err:
        load_csv(path, DataConfig(targets=("tmp",)))
    assert str(err.value) == (
        f"column 'tmp' not found in {path}; columns are: time, temp, humidity, load. "
        "Pass --target with one of them"
    )


def test_config_rejects_bad_policies():
    with pytest.raises(ConfigError, match="--dedupe must be error, mean or last"):
        DataConfig(dedupe="first")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--max-gap must be 0 or more"):
        DataConfig(max_gap=-1)


def test_nan_runs():
    mask = np.array([True, False, True, True, False, False, True])
    assert nan_runs(mask) == [(0, 1), (2, 2), (6, 1)]
    assert nan_runs(np.zeros(3, bool)) == []
