"""`forecaster run --id-col`: a fleet searched, exported, checked on the device and reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecaster.bundle import Bundle
from forecaster.cli.app import app
from forecaster.config import DataConfig
from forecaster.job import JobOutcome, JobRequest, run_job
from forecaster.records import read_record
from tests.test_fleet_train import fleet_frame

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, JobOutcome]:
    from forecaster.tune.config import TuneConfig
    from forecaster.tune.space import SpaceOverrides

    root = tmp_path_factory.mktemp("fleet-job")
    csv = root / "fleet.csv"
    fleet_frame(n_series=3, rows=400).to_csv(csv, index=False)
    request = JobRequest(
        csv,
        DataConfig(targets=("temp",), id_col="sensor"),
        horizon=6,
        space=SpaceOverrides.from_options(units="4:8", windows="24"),
        tune=TuneConfig(tuner="random", max_trials=1, max_epochs=2),
        quantize="float16",
        out=root / "run",
        command=f"forecaster run {csv} --target temp --id-col sensor",
    )
    return csv, run_job(request)


def test_a_fleet_run_ships_one_model_with_every_series_scaler(
    fleet_job: tuple[Path, JobOutcome],
) -> None:
    _, outcome = fleet_job
    bundle = Bundle.load(outcome.bundle_dir)
    assert bundle.fleet is not None and bundle.export is not None
    assert bundle.fleet.ids == ("s0", "s1", "s2")
    assert [series for series, _ in bundle.fleet.skipped] == ["s3"]
    assert all(s.intervals is not None for s in bundle.fleet.series)


def test_the_device_check_runs_the_series_and_the_report_leads_with_the_fleet(
    fleet_job: tuple[Path, JobOutcome],
) -> None:
    from forecaster.job.device_check import DeviceCheck

    _, outcome = fleet_job
    check = read_record(outcome.out / "device_check.json", DeviceCheck)
    assert check.passed and check.series == ("s0", "s1", "s2") and check.origins > 0
    report = outcome.report_md.read_text()
    lines = report.splitlines()
    assert lines[0] == "# forecaster run: fleet.csv, 3 series, target temp"
    assert "over every series' test origins its MASE is" in report
    assert "## Across the fleet: 3 series" in report
    assert "fleet_mase.png" in report
    assert "s3" in (outcome.out / "data_summary.json").read_text()


def test_predict_forecasts_every_series_of_the_long_file(
    fleet_job: tuple[Path, JobOutcome], tmp_path: Path
) -> None:
    csv, outcome = fleet_job
    out = tmp_path / "forecasts.csv"
    done = CliRunner().invoke(
        app, ["predict", str(outcome.bundle_dir), str(csv), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    forecasts = pd.read_csv(out)
    assert list(forecasts.columns[:4]) == ["sensor", "origin", "timestamp", "step"]
    assert sorted(forecasts["sensor"].unique()) == ["s0", "s1", "s2"]
    assert "s3" in done.output  # skipped in training: its rows are skipped with a warning
    level = forecasts.groupby("sensor")["temp"].mean()
    # Each series at its own level (50 apart): scaled back with its own numbers.
    assert level["s2"] - level["s0"] > 60
