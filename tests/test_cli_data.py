"""`forecaster data inspect` through the real CLI, including every bad input's one-line error."""

from __future__ import annotations

import pytest

from forecaster.cli.app import app
from forecaster.data.synthetic import make_series, write_csv


def test_inspect_shows_overview_columns_and_gaps(runner, sensor_csv):
    path = sensor_csv(rows=500, gaps=2, gap_length=5, nan_fraction=0.01, seed=2)
    result = runner.invoke(app, ["data", "inspect", str(path), "--target", "temp"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "rows on time grid" in out and "500" in out
    assert "frequency" in out and "1h" in out
    assert "2024-01-01 00:00:00" in out
    assert "target" in out and "feature" in out
    assert "Gaps (max gap 3 steps)" in out
    assert "(all columns)" in out and "split" in out and "interpolated" in out
    assert result.stderr == ""


def test_inspect_of_clean_file_says_no_gaps(runner, sensor_csv):
    result = runner.invoke(app, ["data", "inspect", str(sensor_csv(rows=100))])
    assert result.exit_code == 0
    assert "No gaps or missing values." in result.stdout


def test_inspect_warns_about_missing_timestamps(runner, write_text):
    path = write_text("a,b\n1,2\n3,4\n")
    result = runner.invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: ")
    assert "no timestamp column" in result.stderr


def one_line_error(result, code: int = 1) -> str:
    """The one `Error:` line of a failed command (exit 1: data or files; 2: a bad option)."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("", [], "Error: {path} is empty; pass a CSV with a header line and data rows"),
        (
            "2024-01-01 00:00,1,2\n2024-01-01 01:00,2,3\n",
            [],
            "Error: {path} has no header row: its first line (2024-01-01 00:00, 1, 2, ...) "
            "looks like data; add a header line naming the columns, e.g. time,temp",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n",
            ["--target", "y"],
            "Error: column 'y' not found in {path}; columns are: time, x. "
            "Pass --target with one of them",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n",
            ["--features", "z"],
            "Error: column 'z' not found in {path}; columns are: time, x. "
            "Pass --features with one of them",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n2024-01-01 01:00,abc\n",
            [],
            "Error: {path} row 3, column 'x': a value that is not a number: 'abc'; fix the "
            "file or pass --bad-rows drop to skip such rows",
        ),
        (
            "time,x,y\n2024-01-01 00:00,,1\n2024-01-01 01:00,,2\n",
            [],
            "Error: column 'x' in {path} has no numeric values; fix the file or leave the "
            "column out with --features",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n",
            [],
            "Error: {path} has 1 duplicate timestamp(s), first 2024-01-01 00:00:00 at rows 2 "
            "and 3; pass --dedupe mean or --dedupe last to merge them",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n2024-01-01 01:00,2\nsoon,3\n",
            [],
            "Error: {path} row 4, column 'time': an unparseable timestamp: 'soon'; fix the "
            "file or pass --bad-rows drop to skip such rows",
        ),
        (
            "time,x\n2024-01-01 00:00,1\n",
            ["--time-col", "when"],
            "Error: time column 'when' not found in {path}; columns are: time, x. "
            "Pass --time-col with one of them",
        ),
    ],
)
def test_bad_input_gives_one_line_error(runner, write_text, text, args, expected):
    path = write_text(text)
    result = runner.invoke(app, ["data", "inspect", str(path), *args])
    assert one_line_error(result) == expected.format(path=path)


def test_missing_file_is_a_one_line_error(runner, tmp_path):
    path = tmp_path / "absent.csv"
    result = runner.invoke(app, ["data", "inspect", str(path)])
    assert one_line_error(result) == f"Error: {path} does not exist; check the path"


@pytest.mark.parametrize(
    "args", [["--dedupe", "first"], ["--bad-rows", "skip"], ["--max-gap", "-1"]]
)
def test_bad_options_are_usage_errors(runner, sensor_csv, args):
    result = runner.invoke(app, ["data", "inspect", str(sensor_csv()), *args])
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "forecaster", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "data" in done.stdout


def table_row(out: str, first: str) -> list[str]:
    """The cells of the rich table row whose first cell is `first`."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{out}")


def test_inspect_says_what_training_would_do(runner, sensor_csv):
    path = sensor_csv(rows=1000)  # hourly from 2024-01-01 00:00, a daily cycle
    result = runner.invoke(app, ["data", "inspect", str(path), "--target", "temp"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert table_row(out, "time column") == ["time column", "time (found)"]
    assert table_row(out, "frequency") == ["frequency", "1h"]
    assert "Split 0.7,0.15,0.15, windows of 48 steps + 12 to forecast" in out
    # 700 / 150 / 150 rows; windows: rows - (48 + 12) + 1.
    assert table_row(out, "training") == [
        "training", "700", "2024-01-01 00:00:00", "2024-01-30 03:00:00", "641"
    ]  # fmt: skip
    assert table_row(out, "validation") == [
        "validation", "150", "2024-01-30 04:00:00", "2024-02-05 09:00:00", "91"
    ]  # fmt: skip
    assert table_row(out, "test") == [
        "test", "150", "2024-02-05 10:00:00", "2024-02-11 15:00:00", "91"
    ]  # fmt: skip
    assert "Seasons used: 24 steps (day)\n" in out
    assert "Test origins: 91 (each forecast 12 steps from the 48 before it)" in out
    assert f"Next: forecaster run {path} --target temp\n" in out
    assert result.stderr == ""


def test_inspect_counts_test_origins_per_stretch_between_long_gaps(runner, tmp_path):
    frame = make_series(rows=1000)
    frame = frame.drop(index=range(900, 910))  # 10 missing hours: a gap that splits the series
    path = write_csv(frame, tmp_path / "gappy.csv")
    args = ["--split", "0.6,0.2,0.2", "--window", "24", "--horizon", "6", "-t", "temp"]
    result = runner.invoke(app, ["data", "inspect", str(path), *args])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Split 0.6,0.2,0.2, windows of 24 steps + 6 to forecast" in out
    # The test part is rows 800-999, cut by the gap at 900-909 into 100 and 90 rows:
    # (100 - 30 + 1) + (90 - 30 + 1) = 71 + 61 origins.
    assert table_row(out, "test") == [
        "test", "200", "2024-02-03 08:00:00", "2024-02-11 15:00:00", "132"
    ]  # fmt: skip
    assert "Test origins: 132 (each forecast 6 steps from the 24 before it)" in out
    assert f"Next: forecaster run {path} --target temp --split 0.6,0.2,0.2 --horizon 6\n" in out


def test_inspect_without_target_says_which_columns_to_choose_from(runner, sensor_csv):
    path = sensor_csv(rows=300)
    result = runner.invoke(app, ["data", "inspect", str(path), "--max-gap", "5"])
    assert result.exit_code == 0, result.output
    assert f"Next: forecaster run {path} --target COLUMN --max-gap 5\n" in result.stdout
    assert "COLUMN: the column to forecast, one of temp, humidity, load" in result.stdout


def test_inspect_says_when_the_test_part_has_no_origins(runner, sensor_csv):
    path = sensor_csv(rows=300)  # a test part of 45 rows, shorter than 48 + 12
    result = runner.invoke(app, ["data", "inspect", str(path), "-t", "temp"])
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "test")[-1] == "0"
    assert "Test origins: 0: the test part has no 60 rows without a long gap" in result.stdout
