"""Small and awkward files: each stage works on them, or refuses before training with the numbers.

The fast tests check the library's choices (the season, the baselines, the plots); the slow ones
drive `train`, `evaluate` and `export` through the CLI on the files users met trouble with, and a
property test runs them over file lengths, windows and horizons.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from forecaster.cli import app
from forecaster.config import DataConfig, SplitConfig, WindowConfig
from forecaster.data.load import load_csv
from forecaster.data.synthetic import make_series, write_csv
from forecaster.errors import DataError
from forecaster.model.windows import prepare
from forecaster.runs.train import fit_baselines

TARGET = DataConfig(targets=("temp",))
RUN_FILES = {
    "model.keras",
    "training_file.json",
    "bundle.json",
    "metrics.json",
    "history.csv",
    "loss.png",
    "forecast.png",
    "error_by_step.png",
}
BUNDLE_FILES = {"bundle.json", "model.tflite"}
TINY = ["--units", "4", "--epochs", "1", "--batch-size", "32"]


def write_awkward(path: Path, rows: int, freq: str, kind: str = "plain", seed: int = 1) -> Path:
    """A generated sensor CSV: plain, with a constant target, shuffled, or with a BOM."""
    frame = make_series(rows=rows, freq=freq, seed=seed)
    if kind == "constant":
        frame["temp"] = 21.5
    elif kind == "unsorted":
        frame = frame.sample(frac=1, random_state=seed)
    write_csv(frame, path)
    if kind == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


def prepared_of(path: Path, window: int = 6, horizon: int = 2):
    data = load_csv(path, TARGET)
    return data, prepare(data, SplitConfig(), WindowConfig(window, horizon))


def scored(data, prepared, seasons=None):
    return fit_baselines(data, prepared.split, prepared.window, seasons)


def test_a_file_shorter_than_two_days_is_scored_with_season_1(tmp_path):
    # A day of 10-minute rows: its training part holds less than two cycles of the day.
    path = write_awkward(tmp_path / "day.csv", 144, "10min")
    data, prepared = prepared_of(path)
    baselines = scored(data, prepared)
    assert baselines.fitted.seasons == (1,) and baselines.warnings == ()
    assert baselines.fitted.holt_winters[0]["seasonal_periods"] is None
    assert np.isfinite(baselines.mase_scale).all()


def test_a_file_long_enough_for_its_season_keeps_it(tmp_path):
    data, prepared = prepared_of(write_awkward(tmp_path / "days.csv", 500, "1h"))
    baselines = scored(data, prepared)
    assert baselines.fitted.seasons == (24,) and baselines.warnings == ()
    assert baselines.fitted.holt_winters[0]["seasonal_periods"] == 24


def test_a_season_asked_for_that_the_file_cannot_hold_is_refused_with_the_numbers(tmp_path):
    path = write_awkward(tmp_path / "day.csv", 144, "10min")
    data, prepared = prepared_of(path)
    with pytest.raises(DataError) as err:
        scored(data, prepared, seasons=(144,))
    assert str(err.value) == (
        f"the test part of {path} has 15 origin(s) (rows 128-142), but the baselines forecast "
        "only from row 144 on (seasonal naive with season 144 needs 144 rows before an origin, "
        "Holt-Winters 10 complete rows); pass a smaller --season or use a file with more rows"
    )


def test_gaps_everywhere_are_refused_before_training(tmp_path):
    # Every fifth reading missing, and no interpolation: no 10 complete rows for Holt-Winters.
    frame = make_series(rows=200, freq="1h")
    frame = frame[np.arange(200) % 5 != 4]
    path = write_csv(frame, tmp_path / "holes.csv")
    data = load_csv(path, DataConfig(targets=("temp",), max_gap=0))
    prepared = prepare(data, SplitConfig(), WindowConfig(2, 1))
    with pytest.raises(DataError) as err:
        scored(data, prepared)
    assert str(err.value) == (
        f"the test part of {path}: the series has no 10 consecutive complete rows for the "
        "Holt-Winters baseline to start from; use a file with fewer gaps or a larger --max-gap"
    )


def test_a_constant_target_is_fitted_and_named(tmp_path):
    path = write_awkward(tmp_path / "flat.csv", 500, "1h", "constant")
    data, prepared = prepared_of(path)
    baselines = scored(data, prepared)
    assert baselines.mase_scale.tolist() == [1.0]
    assert baselines.warnings == (
        f"target 'temp' is constant (21.5) in the training part of {path}; the naive "
        "baselines forecast it exactly and the model cannot beat them",
    )
    scaler = prepared.scaler
    assert scaler.scale[0] == 1.0 and np.isfinite(prepared.scaled).all()


def test_plots_of_nothing_and_of_a_zero_loss_are_drawn(tmp_path):
    import warnings

    from forecaster.evaluation.baselines import fit_holt_winters
    from forecaster.evaluation.rolling import FittedBaselines, evaluate_forecasts
    from forecaster.report.plots import plot_error_by_step, plot_forecasts, plot_history

    series = np.full((40, 1), 3.0)
    hw = [fit_holt_winters(series[:30, 0], 1)]
    none = np.empty(0, dtype=np.int64)
    evaluation = evaluate_forecasts(
        series,
        none,
        np.empty((0, 2, 1)),
        targets=("t",),
        labels=[],
        baselines=FittedBaselines((1,), hw),
        mase_scale=np.ones(1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_forecasts(evaluation, series, tmp_path / "forecast.png")
        plot_error_by_step(evaluation, tmp_path / "error.png")
        plot_history({"loss": [0.0, 0.0], "val_loss": [0.0, 0.0]}, 1, tmp_path / "zero.png")
        plot_history({}, 0, tmp_path / "empty.png")
    assert all((tmp_path / n).stat().st_size > 0 for n in ("forecast.png", "error.png"))
    assert (tmp_path / "zero.png").exists() and (tmp_path / "empty.png").exists()


def invoke(*args: str | int | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_error_line(result) -> str:
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "constant", "unsorted", "bom"])
def test_a_day_of_10_minute_readings_trains_evaluates_and_exports(tmp_path, kind):
    csv = write_awkward(tmp_path / "day.csv", 144, "10min", kind)
    out = tmp_path / "run"
    result = invoke(
        "train", csv, "--target", "temp", "--window", 6, "--horizon", 2, *TINY, "--out", out
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert "Test part: 15 origins, horizon 2, seasons 1" in result.stdout
    result = invoke("evaluate", out)
    assert result.exit_code == 0, result.output
    result = invoke("export", out, "--quantize", "dynamic")
    assert result.exit_code == 0, result.output
    assert {p.name for p in (out / "bundle").iterdir()} == BUNDLE_FILES
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_run_keeps_what_loading_and_scoring_worked_around(tmp_path):
    from forecaster.config import ModelConfig, TrainConfig
    from forecaster.runs.train import train

    csv = write_awkward(tmp_path / "day.csv", 144, "10min", "unsorted")
    outcome = train(
        csv,
        TARGET,
        window=WindowConfig(6, 2),
        model=ModelConfig(units=4),
        training=TrainConfig(epochs=1),
        out=tmp_path / "run",
    )
    assert len(outcome.warnings) == 1
    assert (
        "earlier timestamp than the row above them; sorted the rows by time"
        in (outcome.warnings[0])
    )
    assert outcome.bundle.data.season == 1 and outcome.bundle.model.season == 1
    assert len(outcome.evaluation.origins) == 15


@pytest.mark.slow
def test_evaluate_reads_another_file_whose_bom_sits_on_the_target_column(tmp_path):
    csv = write_awkward(tmp_path / "day.csv", 144, "10min")
    out = tmp_path / "run"
    result = invoke(
        "train", csv, "--target", "temp", "--window", 6, "--horizon", 2, *TINY, "--out", out
    )
    assert result.exit_code == 0, result.output
    other = make_series(rows=60, freq="10min", seed=4)[["temp", "time", "humidity", "load"]]
    other_csv = tmp_path / "excel.csv"
    other.to_csv(other_csv, index=False, encoding="utf-8-sig", date_format="%Y-%m-%d %H:%M:%S")
    result = invoke("evaluate", out, other_csv)
    assert result.exit_code == 0, result.output
    assert (out / "metrics_excel.json").exists() and (out / "forecast_excel.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--window", "48", "--horizon", "12"],
            "has too few rows for window 48 and horizon 12, which need 60 consecutive complete "
            "rows per origin: the training part (rows 0-100) leaves 42, the validation part "
            "(rows 101-121) leaves 0 and the test part (rows 122-143) leaves 0 origins; use a "
            "smaller --window or --horizon, or a file with at least 400 rows (it has 144)",
        ),
        (
            ["--window", "6", "--horizon", "2", "--season", "144"],
            "but the baselines forecast only from row 144 on (seasonal naive with season 144 "
            "needs 144 rows before an origin, Holt-Winters 10 complete rows); pass a smaller "
            "--season or use a file with more rows",
        ),
    ],
)
def test_too_little_data_is_refused_before_training(tmp_path, monkeypatch, args, expected):
    import forecaster.model.fit

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(forecaster.model.fit, "train_model", no_training)
    csv = write_awkward(tmp_path / "day.csv", 144, "10min")
    out = tmp_path / "run"
    result = invoke("train", csv, "--target", "temp", *args, *TINY, "--out", out)
    line = assert_one_error_line(result)
    assert line.startswith("Error: ") and line.endswith(expected)
    assert result.exit_code == 1
    assert_nothing_left(out)


@st.composite
def shapes(draw: st.DrawFn) -> tuple[int, int, int]:
    """Rows, window and horizon; half the time a window the test part (15%) can hold."""
    rows = draw(st.integers(20, 400))
    horizon = draw(st.integers(1, 12))
    fitting = max(1, min(48, int(rows * 0.15) - horizon))
    window = draw(st.integers(1, fitting) | st.integers(1, 48))
    return rows, window, horizon


@pytest.mark.slow
@settings(
    max_examples=5,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    shape=shapes(),
    freq=st.sampled_from(["10min", "1h"]),
    kind=st.sampled_from(["plain", "constant", "unsorted", "bom"]),
)
def test_every_stage_works_or_refuses_in_one_line(shape, freq, kind):
    rows, window, horizon = shape
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = write_awkward(root / "sensors.csv", rows, freq, kind)
        out = root / "run"
        result = invoke(
            "train",
            csv,
            "--target",
            "temp",
            "--window",
            window,
            "--horizon",
            horizon,
            *TINY,
            "--out",
            out,
        )
        if result.exit_code != 0:
            line = assert_one_error_line(result)
            event("train refused: " + ("too few rows" if "too few rows" in line else "other"))
            assert_nothing_left(out)
            return
        event("trained")
        assert {p.name for p in out.iterdir()} == RUN_FILES
        assert not [p for p in root.iterdir() if p.name.startswith(".")]
        result = invoke("evaluate", out)
        assert result.exit_code == 0, result.output
        result = invoke("export", out, "--quantize", "none")
        if result.exit_code != 0:
            event("export refused")
            assert_one_error_line(result)
            assert_nothing_left(out / "bundle")
            return
        event("exported")
        assert {p.name for p in (out / "bundle").iterdir()} == BUNDLE_FILES
