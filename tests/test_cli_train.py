"""`forecaster train` and `forecaster evaluate` through the real CLI, on tiny data."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from forecaster.bundle import Bundle
from forecaster.cli.app import app
from tests.test_cli_data import one_line_error

pytestmark = pytest.mark.slow

TINY = ["--window", "24", "--horizon", "6", "--units", "4", "--epochs", "2", "--batch-size", "64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the tests that only read it."""
    from forecaster.data.synthetic import make_series, write_csv

    root = tmp_path_factory.mktemp("run")
    csv = write_csv(make_series(rows=500, seed=5, gaps=1, gap_length=5), root / "sensors.csv")
    out = root / "run"
    result = CliRunner().invoke(
        app, ["train", str(csv), "--target", "temp", *TINY, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return csv, out, result


def test_train_writes_a_complete_run(trained):
    _, out, result = trained
    names = {p.name for p in out.iterdir()}
    assert {"model.keras", "bundle.json", "metrics.json", "history.csv", "loss.png"} <= names
    assert {"forecast.png", "error_by_step.png"} <= names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    bundle = Bundle.load(out)
    assert bundle.model.cell == "gru" and bundle.model.window == 24
    assert bundle.data.targets == ("temp",)
    assert bundle.data.features == ("temp", "humidity", "load")
    assert bundle.training is not None and bundle.training.epochs_run == 2
    assert bundle.data.season == 24 and bundle.data.seasons == (24,)  # a day, not a week
    assert set(bundle.metrics["test"]["scores"]) == {
        "model",
        "naive",
        "seasonal_naive",
        "holt_winters",
        "decomposition",
    }
    assert "Trained GRU" in result.stdout
    first = bundle.training.shrinkage[0][0]
    assert 0 <= first <= 1 and len(bundle.training.shrinkage) == 6
    assert (
        f"correction to the reference (fitted on the validation part): {first:.2f} at step 1"
        in (" ".join(result.stdout.split()))
    )
    for label in ("naive", "seasonal naive (24)", "Holt-Winters", "STL + ETS", "MASE"):
        assert label in result.stdout
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss") and len(history) == 3


def test_evaluate_reproduces_the_training_metrics(trained, runner):
    _, out, _ = trained
    before = json.loads((out / "metrics.json").read_text())
    result = runner.invoke(app, ["evaluate", str(out)])
    assert result.exit_code == 0, result.output
    after = json.loads((out / "metrics.json").read_text())
    assert after["scores"]["model"]["mae"] == pytest.approx(before["scores"]["model"]["mae"])
    assert after["origins"] == before["origins"] > 0
    assert "Holt-Winters" in result.stdout
    # Every method's intervals, calibrated on the validation origins, scored on the test ones.
    assert after["intervals"] == before["intervals"]
    assert set(after["intervals"]) == {*after["scores"], "holt_winters_conformal", "model_adapting"}
    assert after["calibration_origins"] > 19
    for method, levels in after["intervals"].items():
        assert [s["level"] for s in levels] == [0.8, 0.95]
        assert levels[0]["width"] < levels[1]["width"], method
        assert len(levels[0]["coverage_by_step"][0]) == 6
    # Seasonal naive's errors hardly change from the validation part to the test part.
    naive_80 = after["intervals"]["seasonal_naive"][0]["coverage"]
    assert abs(naive_80 - 0.8) < 0.1
    # As predict recalibrates them from recent errors: the same forecasts, other widths.
    fixed, adapting = after["intervals"]["model"][0], after["intervals"]["model_adapting"][0]
    assert adapting["width"] != pytest.approx(fixed["width"], rel=1e-6)
    assert "Prediction intervals on the" in result.stdout and "Winkler" in result.stdout
    assert "model, adapting" in result.stdout


def test_evaluate_on_another_file(trained, runner, tmp_path):
    from forecaster.data.synthetic import make_series, write_csv

    _, out, _ = trained
    other = write_csv(make_series(rows=200, seed=9), tmp_path / "other.csv")
    result = runner.invoke(app, ["evaluate", str(out), str(other)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics_other.json").read_text())
    assert metrics["origins"] + metrics["skipped_origins"] == 200 - 30 + 1
    # Another file has no validation part: only the model's stored intervals are scored, and
    # as predict adapts them from the file's own errors.
    assert set(metrics["intervals"]) == {"model", "model_adapting"}
    assert metrics["calibration_origins"] == 0


def test_evaluate_file_with_other_columns(trained, runner, write_text):
    _, out, _ = trained
    path = write_text("time,temp\n2024-01-01 00:00,1\n")
    assert one_line_error(runner.invoke(app, ["evaluate", str(out), str(path)])) == (
        f"Error: {path} lacks column(s) humidity, load that the model was trained on "
        "(inputs: temp, humidity, load); pass a CSV with those columns"
    )


def test_existing_output_is_refused_without_overwrite(trained, runner):
    csv, out, _ = trained
    result = runner.invoke(app, ["train", str(csv), "-t", "temp", *TINY, "--out", str(out)])
    assert one_line_error(result) == (
        f"Error: {out} already exists; pass --overwrite to replace it or choose --out"
    )


def test_not_a_run(runner, tmp_path):
    assert one_line_error(runner.invoke(app, ["evaluate", str(tmp_path)])) == (
        f"Error: {tmp_path} is not a forecaster run or bundle: bundle.json is missing; pass the "
        "directory written by `forecaster train` or `forecaster export`"
    )


def test_corrupt_and_newer_bundles(trained, runner, tmp_path):
    _, out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    raw = json.loads((copy / "bundle.json").read_text())
    raw["schema_version"] = 99
    (copy / "bundle.json").write_text(json.dumps(raw))
    assert "newer than this forecaster" in one_line_error(
        runner.invoke(app, ["evaluate", str(copy)])
    )
    (copy / "bundle.json").write_text("[1, 2")
    assert "is corrupt" in one_line_error(runner.invoke(app, ["evaluate", str(copy)]))


def test_window_too_large_for_the_data(runner, sensor_csv, tmp_path):
    path = sensor_csv(rows=200)
    out = tmp_path / "never"
    result = runner.invoke(
        app, ["train", str(path), "-t", "temp", "--window", "60", "--out", str(out)]
    )
    line = one_line_error(result)
    assert line == (
        f"Error: {path} has too few rows for window 60 and horizon 12, which need 72 "
        "consecutive complete rows per origin: the training part (rows 0-139) leaves 69, the "
        "validation part (rows 140-169) leaves 0 and the test part (rows 170-199) leaves 0 "
        "origins; use a smaller --window or --horizon, or a file with at least 480 rows "
        "(it has 200)"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [["--cell", "rnn"], ["--epochs", "0"], ["--window", "0"], ["--horizon", "-1"]],
)
def test_bad_training_options_are_usage_errors(runner, sensor_csv, args):
    result = runner.invoke(app, ["train", str(sensor_csv()), "-t", "temp", *args])
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_train_needs_a_target(runner, sensor_csv, tmp_path):
    path = sensor_csv()
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"Error: no target column chosen for {path}; its numeric columns are: temp, humidity, "
        "load. Pass --target with one of them, e.g. --target temp\n"
    )
    assert not (tmp_path / "x").exists()


def test_evaluate_on_a_file_shorter_than_a_window(trained, runner, sensor_csv):
    _, out, _ = trained
    short = sensor_csv("short.csv", rows=19)
    assert one_line_error(runner.invoke(app, ["evaluate", str(out), str(short)])) == (
        f"Error: {short} has 19 rows, fewer than the window + horizon = 24 + 6 = 30 rows one "
        "forecast origin needs; pass a file with at least 30 rows"
    )


def test_evaluate_finds_the_training_file_where_the_run_recorded_it(trained, runner, tmp_path):
    _, out, _ = trained
    copy = tmp_path / "moved-run"
    shutil.copytree(out, copy)  # a run directory moved elsewhere still finds its training file
    assert runner.invoke(app, ["evaluate", str(copy)]).exit_code == 0
    record = copy / "training_file.json"
    record.write_text(json.dumps({"path": str(tmp_path / "gone.csv")}))
    assert one_line_error(runner.invoke(app, ["evaluate", str(copy)])) == (
        f"Error: the training file {tmp_path / 'gone.csv'} is missing or changed since training; "
        "restore it, or evaluate on another CSV with: forecaster evaluate RUN_DIR FILE"
    )
