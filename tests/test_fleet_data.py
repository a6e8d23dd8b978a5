"""Long files of many series: the generated fleet, `load_fleet`, and `data inspect --id-col`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.cli.app import app
from forecaster.config import DataConfig, SplitConfig
from forecaster.data.fleet import load_fleet
from forecaster.data.inspect import summarize_fleet
from forecaster.data.load import load_csv
from forecaster.data.synthetic import make_fleet, write_csv
from forecaster.errors import DataError, UsageError
from forecaster.model.windows import PARTS, split_rows
from tests.test_cli_data import one_line_error, table_row


def series_row(out: str, series: str) -> list[str]:
    """The words of the per-series table's row for `series` (the table has no column rules)."""
    for line in out.splitlines():
        if line.split()[:1] == [series]:
            return line.split()
    raise AssertionError(f"no row {series!r} in:\n{out}")


def parts_of(rows: int) -> list[tuple[int, int]]:
    return [split_rows(rows, SplitConfig()).part(p) for p in PARTS]


# --- the generated fleet ---------------------------------------------------------------------


def test_make_fleet_is_a_time_sorted_long_frame_repeatable_from_its_seed():
    frame = make_fleet(12, 300, seed=3, humidity=True)
    assert list(frame.columns) == ["time", "sensor", "value", "humidity"]
    assert len(frame) == 12 * 300
    assert frame["time"].is_monotonic_increasing
    assert list(frame["sensor"].iloc[:12]) == [f"s{i:02d}" for i in range(12)]
    assert frame.equals(make_fleet(12, 300, seed=3, humidity=True))
    assert not frame.equals(make_fleet(12, 300, seed=4, humidity=True))
    one = frame[frame["sensor"] == "s05"]
    later = np.corrcoef(one["value"].to_numpy()[:-1], one["humidity"].to_numpy()[1:])[0, 1]
    assert later < -0.5  # humidity falls as the value rises, a step later


def test_make_fleet_series_differ_in_level_amplitude_and_phase():
    frame = make_fleet(20, 24 * 14, seed=1)
    wide = frame.pivot(index="time", columns="sensor", values="value")
    hour_of_peak = wide.groupby(pd.DatetimeIndex(wide.index).hour).mean().idxmax()
    assert wide.mean().std() > 3  # levels drawn from 5..35
    assert (wide.max() - wide.min()).std() > 1  # amplitudes from 1..8
    assert hour_of_peak.nunique() > 5  # phases spread over the day


def test_make_fleet_makes_short_series_gaps_and_nans_on_request():
    frame = make_fleet(30, 200, seed=2, short=3, short_rows=20, gaps=2, gap_length=5)
    sizes = frame.groupby("sensor").size()
    short = sizes[sizes <= 20].index  # 20 rows, fewer if a gap fell in them too
    assert len(short) == 3
    # Installed late: their rows are the fleet's last ones.
    assert (frame.groupby("sensor")["time"].min()[short] >= pd.Timestamp("2024-01-08 12:00")).all()
    assert sizes.max() <= 200 - 5  # at least one run of 5 rows gone from every series
    holes = make_fleet(30, 200, seed=2, nan_fraction=0.05)["value"].isna().mean()
    assert 0.03 < holes < 0.07


def test_make_fleet_builds_a_thousand_series_of_two_thousand_rows():
    frame = make_fleet(1000, 2000, seed=0, humidity=True)
    assert len(frame) == 2_000_000
    assert frame["sensor"].nunique() == 1000
    assert not frame[["value", "humidity"]].isna().any().any()


# --- load_fleet --------------------------------------------------------------------------------


@pytest.fixture
def fleet_csv(tmp_path):
    """b (hourly, with a 5-hour hole), c (hourly), a (half-hourly, from day 2), sorted by time."""
    b = make_fleet(1, 100, seed=1).assign(sensor="b")
    b = b.drop(index=range(40, 45))
    a = make_fleet(1, 80, seed=2, freq="30min", start="2024-01-02").assign(sensor="a")
    c = make_fleet(1, 90, seed=3).assign(sensor="c")
    frame = pd.concat([b, a, c]).sort_values("time", kind="stable")
    return write_csv(frame, tmp_path / "fleet.csv")


def test_load_fleet_keeps_the_series_in_file_order_each_on_its_own_grid(fleet_csv):
    fleet = load_fleet(fleet_csv, DataConfig(targets=("value",), id_col="sensor", max_gap=3))
    assert fleet.ids == ("b", "c", "a")  # as they first appear, not sorted
    b, c, a = fleet.series
    assert (b.n_rows, a.n_rows, c.n_rows) == (100, 80, 90)
    assert (b.freq, a.freq, c.freq) == (
        pd.Timedelta("1h"),
        pd.Timedelta("30min"),
        pd.Timedelta("1h"),
    )
    assert a.frame.index[0] == pd.Timestamp("2024-01-02")
    assert b.report.missing_timestamps == 5 and b.segments == ((0, 40), (45, 100))
    assert a.segments == ((0, 80),) and a.name == f"{fleet_csv} series 'a'"


def test_a_duplicate_inside_one_series_names_that_series(fleet_csv):
    frame = pd.read_csv(fleet_csv)
    again = frame[frame["sensor"] == "c"].iloc[[7]]
    write_csv(pd.concat([frame, again]), fleet_csv)
    with pytest.raises(DataError) as error:
        load_fleet(fleet_csv, DataConfig(id_col="sensor"))
    assert str(error.value).startswith(f"{fleet_csv} series 'c' has 1 duplicate timestamp(s)")
    merged = load_fleet(fleet_csv, DataConfig(id_col="sensor", dedupe="mean"))
    assert [s.report.duplicates for s in merged] == [0, 1, 0]


@pytest.mark.parametrize(
    ("text", "config", "expected"),
    [
        (
            "time,sensor,value\n2024-01-01 00:00,a,1\n",
            DataConfig(id_col="station"),
            "id column 'station' not found in {path}; columns are: time, sensor, value. "
            "Pass --id-col with one of them",
        ),
        (
            "time,sensor,value\n2024-01-01 00:00,a,1\n2024-01-01 00:00, ,2\n",
            DataConfig(id_col="sensor"),
            "{path} row 3, column 'sensor': no series id (1 such rows); fill it in or pass "
            "--bad-rows drop to skip such rows",
        ),
        (
            "time,sensor,value\n2024-01-01 00:00,1,1\n",
            DataConfig(targets=("sensor",), id_col="sensor"),
            "column 'sensor' of {path} is the id column (--id-col), so it cannot also be "
            "--target; pass --target with another column",
        ),
        (
            "time,sensor,value\n2024-01-01 00:00,1,1\n",
            DataConfig(id_col="time"),
            "column 'time' of {path} holds timestamps: it is the time column, not the series "
            "id; pass --id-col with the column naming each row's series",
        ),
        (
            "time,sensor,value\n2024-01-01 00:00,,1\n",
            DataConfig(id_col="sensor", bad_rows="drop"),
            "{path} has no row with a series id in column 'sensor'; fill the column in, or pass "
            "--id-col with the column naming each row's series",
        ),
    ],
    ids=["missing id column", "blank id", "id as target", "id is the time", "no id at all"],
)
def test_load_fleet_refuses_a_bad_id_column(write_text, text, config, expected):
    path = write_text(text)
    with pytest.raises(DataError) as error:
        load_fleet(path, config)
    assert str(error.value) == expected.format(path=path)


def test_rows_without_an_id_are_dropped_on_request(write_text):
    path = write_text("time,sensor,value\n2024-01-01 00:00,a,1\n2024-01-01 01:00,,2\n")
    fleet = load_fleet(path, DataConfig(id_col="sensor", bad_rows="drop"))
    assert fleet.ids == ("a",) and fleet.series[0].n_rows == 1


def test_load_csv_refuses_an_id_column_rather_than_mixing_the_series(fleet_csv):
    from forecaster.data.load import load_csv

    with pytest.raises(UsageError, match="--id-col sensor names the series of a long file"):
        load_csv(fleet_csv, DataConfig(id_col="sensor"))


# --- the summary and data inspect --id-col -------------------------------------------------------


def test_the_fleet_summary_ranks_too_short_and_gappy_series_first(fleet_csv):
    fleet = load_fleet(fleet_csv, DataConfig(id_col="sensor", max_gap=3))
    summary = summarize_fleet(fleet, span=12, parts_of=parts_of)
    b, _, a = summary.series
    assert (b.rows, b.missing, b.gaps, b.split_gaps) == (100, 5, 1, 1)
    assert (a.step, a.span, summary.step) == ("30min", "1d 15h", "1h")
    assert summary.other_steps == (a,) and summary.with_gaps == (b,)
    # b's 5-hour hole cuts its training part (rows 0-70): 29 windows before it, 14 after.
    assert b.windows == (43, 4, 4) and not b.too_short
    assert summary.shortest is a and summary.rows == 270
    assert summary.worst(1) == (b,)
    short = summarize_fleet(fleet, span=16, parts_of=parts_of)  # b's validation part: 15 rows
    assert [s.id for s in short.too_short] == ["b", "c", "a"]


def test_inspect_id_col_shows_the_fleet_and_a_row_per_series(runner, fleet_csv):
    result = runner.invoke(app, ["data", "inspect", str(fleet_csv), "--id-col", "sensor"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert table_row(out, "series")[:2] == ["series", "3"]
    assert "1h (1 series differs: a)" in out
    assert table_row(out, "series with gaps") == ["series with gaps", "1: b"]
    assert series_row(out, "b")[:9] == [
        "b",
        "100",
        "2024-01-01",
        "00:00",
        "4d",
        "3h",
        "5",
        "1",
        "0",
    ]
    assert series_row(out, "a")[:2] == ["a", "80"] and "short," in series_row(out, "a")
    assert "Too short to train on: 3 series" in out
    assert (
        out.splitlines()[-2] == f"Next: forecaster run {fleet_csv} --target COLUMN --id-col sensor"
    )


def test_inspect_lists_the_worst_series_of_a_long_fleet(runner, tmp_path):
    frame = make_fleet(40, 120, seed=5, gaps=1, gap_length=2)
    frame = frame[~((frame["sensor"] == "s17") & (frame["time"] < "2024-01-04"))]
    path = write_csv(frame, tmp_path / "many.csv")
    args = ["data", "inspect", str(path), "--id-col", "sensor", "--show", "3", "--window", "6"]
    result = runner.invoke(app, [*args, "--horizon", "2"])
    assert result.exit_code == 0, result.output
    assert "Series (the 3 worst of 40)" in result.stdout
    words = " ".join(result.stdout.split())
    assert "... and 37 more (too short, cut by long gaps, then most missing first)" in words
    assert "pass --show 40 to list them all" in words
    # s17 lost its first 72 rows: its 48 leave its validation and test parts no window.
    assert series_row(result.stdout, "s17")[:2] == ["s17", "48"]


def test_inspect_id_col_errors_are_one_line(runner, write_text):
    path = write_text("time,sensor,value\n2024-01-01 00:00,a,1\n2024-01-01 00:00,a,2\n")
    args = ["data", "inspect", str(path), "--id-col", "sensor"]
    assert one_line_error(runner.invoke(app, args)) == (
        f"Error: {path} series 'a' has 1 duplicate timestamp(s), first 2024-01-01 00:00:00 at "
        "rows 2 and 3; pass --dedupe mean or --dedupe last to merge them"
    )
    assert one_line_error(runner.invoke(app, [*args[:3], "--id-col", "site"])).startswith(
        f"Error: id column 'site' not found in {path}"
    )
    assert "--show" in one_line_error(runner.invoke(app, [*args, "--show", "0"]), code=2)


def test_reading_one_series_refuses_id_col(fleet_csv):
    with pytest.raises(UsageError, match="--id-col sensor names the series of a long file"):
        load_csv(fleet_csv, DataConfig(targets=("value",), id_col="sensor"))


def test_the_fleet_values_are_what_was_written(fleet_csv):
    fleet = load_fleet(fleet_csv, DataConfig(id_col="sensor"))
    written = pd.read_csv(fleet_csv)
    c = written[written["sensor"] == "c"]["value"].to_numpy()
    np.testing.assert_allclose(fleet.series[1].frame["value"].to_numpy(), c)


def test_a_long_file_read_without_id_col_suggests_it(runner, fleet_csv):
    result = runner.invoke(app, ["data", "inspect", str(fleet_csv)])
    assert one_line_error(result).endswith(
        "; if column 'sensor' names each row's series, pass --id-col sensor; else pass "
        "--dedupe mean or --dedupe last to merge them"
    )


def test_a_series_of_one_row_has_no_step_rather_than_another_one(write_text):
    rows = ["2024-01-01 00:00,a,1", *(f"2024-01-01 0{h}:00,b,{h}" for h in range(3))]
    path = write_text("\n".join(["time,sensor,value", *rows]) + "\n")
    summary = summarize_fleet(load_fleet(path, DataConfig(id_col="sensor")), 2, parts_of)
    a, b = summary.series
    assert (a.step, a.span, b.step, b.span, summary.step) == ("-", "0s", "1h", "2h", "1h")
    assert summary.other_steps == () and a.notes(summary.step) == "too short"
