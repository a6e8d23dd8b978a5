"""Prediction over a fleet on the device: each series scaled with its own numbers, one batch.

The fleet bundle is a real exported one-series bundle given a `FleetSpec` whose series have
different scalers and intervals, so every fleet forecast must equal the one-series predictor's
forecast of that series with that series' numbers.
"""

from __future__ import annotations

import dataclasses
import io
import shutil

import numpy as np
import pandas as pd
import pytest

from forecaster.bundle import Bundle, FleetSpec, SeriesSpec
from forecaster.cli.app import app
from forecaster.config import DataConfig, ModelConfig, TrainConfig, WindowConfig
from forecaster.data.synthetic import make_series
from forecaster.device.predict_csv import predict_files
from forecaster.device.predictor import Predictor
from forecaster.errors import BundleError, DataError
from forecaster.scaling import MinMaxParams
from tests.test_cli_data import one_line_error

WINDOW, HORIZON, ROWS = 24, 6, 80
FEATURES = ("temp", "humidity", "load")
# Per series: how its values are stretched and moved from the generated ones, and how much
# wider its intervals are than the exported bundle's.
SERIES = {"north": (1.0, 0.0, 1.0), "south": (3.0, -40.0, 2.0), "east,1": (0.5, 7.0, 0.5)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A tiny exported GRU, the same bundle as a fleet of three series, and their frames."""
    from forecaster.data.synthetic import write_csv
    from forecaster.export.ship import export
    from forecaster.runs.train import train

    root = tmp_path_factory.mktemp("fleet")
    csv = write_csv(make_series(rows=200, seed=4), root / "train.csv")
    run = train(
        csv,
        DataConfig(targets=("temp",)),
        window=WindowConfig(WINDOW, HORIZON),
        model=ModelConfig("gru", units=4),
        training=TrainConfig(epochs=1, batch_size=32),
        out=root / "run",
    )
    single = export(run.run_dir, quantize="none", out=root / "single").bundle_dir
    bundle = Bundle.load(single)
    assert bundle.intervals is not None
    frames, specs = {}, []
    for seed, (name, (stretch, shift, wider)) in enumerate(SERIES.items()):
        frame = make_series(rows=ROWS, seed=10 + seed)
        frame[list(FEATURES)] = (frame[list(FEATURES)] * stretch + shift).round(4)
        frames[name] = frame
        values = frame[list(FEATURES)].to_numpy()
        low, high = values.min(axis=0), values.max(axis=0)
        scale = 1 / (high - low)
        scaler = MinMaxParams(FEATURES, tuple(low), tuple(high), tuple(scale), tuple(-low * scale))
        widths = np.asarray(bundle.intervals.half_widths) * wider
        intervals = dataclasses.replace(bundle.intervals, half_widths=widths.tolist())
        specs.append(SeriesSpec(name, scaler, "", "", (1.0,), ROWS, intervals))
    directory = root / "fleet"
    shutil.copytree(single, directory)
    bundle.replace(fleet=FleetSpec("sensor", tuple(specs))).save(directory)
    return directory, frames, root


def one_series(directory, name: str) -> Predictor:
    """The one-series predictor of the fleet's model with series `name`'s scaler and intervals."""
    bundle = Bundle.load(directory)
    assert bundle.fleet is not None and bundle.export is not None
    member = bundle.fleet.member(name)
    alone = bundle.replace(fleet=None, scaler=member.scaler, intervals=member.intervals)
    return Predictor(alone, directory / bundle.export.file, num_threads=1)


def long_csv(frames, path, order: str = "interleaved", padded: bool = False):
    """The series in one long file: rows of every series in time order, or series by series;
    `padded` writes every other row's id with trailing spaces, as hand-edited logs have."""
    parts = [f.assign(sensor=name) for name, f in frames.items()]
    frame = pd.concat(parts, ignore_index=True)
    if order == "interleaved":
        frame = frame.sort_values("time", kind="stable")
    if padded:
        frame["sensor"] = [f"{i}  " if k % 2 else i for k, i in enumerate(frame["sensor"])]
    frame = frame[["time", "sensor", *FEATURES]]
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def test_each_window_is_scaled_with_its_own_series_numbers(fleet):
    directory, frames, _ = fleet
    predictor = Predictor.load(directory, num_threads=1)
    names = list(frames)
    windows = np.concatenate([frames[n][list(FEATURES)].to_numpy()[None, -WINDOW:] for n in names])
    # A window per series, twice, the ids shuffled: one call for all of them.
    order = np.array([2, 0, 1, 1, 2, 0])
    ids = np.array(names)[order]
    point = predictor.forecast_windows(windows[order], series=ids)
    banded = predictor.forecast_intervals(windows[order], levels=(0.8,), series=ids)
    np.testing.assert_array_equal(banded.point, point)
    for i, name in enumerate(ids):
        alone = one_series(directory, name)
        expected = alone.forecast_windows(windows[order[i] : order[i] + 1])
        np.testing.assert_allclose(point[i : i + 1], expected, rtol=1e-6)
        upper = banded.interval(0.8)[1]
        half = alone.forecast_intervals(windows[order[i] : order[i] + 1], levels=(0.8,))
        np.testing.assert_allclose(upper[i] - point[i], half.upper[0, 0] - half.point[0])
    # Scaled with another series' numbers, the same window forecasts otherwise.
    assert not np.allclose(point[0], one_series(directory, names[0]).forecast_windows(windows[2:3]))
    with pytest.raises(DataError, match=r"series '0' \(sensor\) was not in the data"):
        predictor.forecast_windows(windows[:1], series=np.array([0]))  # an id, not a position
    with pytest.raises(BundleError, match=r"trained on 3 series .* pass series= with each"):
        predictor.forecast_windows(windows)
    with pytest.raises(BundleError, match="trained on one series, so it takes no series ids"):
        one_series(directory, names[0]).forecast_windows(windows, series="north")


@pytest.mark.parametrize("mode", ["last", "rolling"])
def test_predict_over_interleaved_rows_equals_each_series_alone(
    fleet, runner, tmp_path, mode, monkeypatch
):
    """Rows of all series in time order, as a gateway logs them (some ids with trailing
    spaces), in chunks that cut series, a chunk's windows forecast in several batches."""
    from forecaster.device import fleet_stream

    monkeypatch.setattr(fleet_stream, "JOINED_WINDOWS", 20)
    directory, frames, _ = fleet
    path = long_csv(frames, tmp_path / "fleet.csv", padded=True)
    out = tmp_path / "out.csv"
    args = ["predict", str(directory), str(path), "--mode", mode, "--chunk-rows", "50"]
    result = runner.invoke(app, [*args, "--out", str(out), "--level", "80", "--adapt", "20"])
    assert result.exit_code == 0, result.output
    forecasts = (ROWS - WINDOW + 1) * len(frames) if mode == "rolling" else len(frames)
    assert f"{forecasts} forecast(s) of 3 series of {HORIZON} steps from 240 rows" in result.stdout
    got = pd.read_csv(out, dtype={"sensor": str})
    assert list(got.columns) == [
        "sensor",
        "origin",
        "timestamp",
        "step",
        "temp",
        "temp_lower_80",
        "temp_upper_80",
    ]
    for name, frame in frames.items():
        alone = tmp_path / f"{name}.csv"
        frame.to_csv(alone, index=False, date_format="%Y-%m-%d %H:%M:%S")
        expected_out = tmp_path / f"{name}-out.csv"
        predict_files(
            one_series(directory, name),
            [alone],
            expected_out,
            mode=mode,
            levels=(0.8,),
            adapt=20,
        )
        expected = pd.read_csv(expected_out)
        mine = got[got["sensor"] == name].drop(columns="sensor").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, expected, rtol=1e-5)


def test_an_unknown_id_is_refused_naming_it_or_skipped(fleet, runner, tmp_path):
    directory, frames, _ = fleet
    frames = frames | {"west": frames["north"]}
    path = long_csv(frames, tmp_path / "fleet.csv")
    line = one_line_error(runner.invoke(app, ["predict", str(directory), str(path)]))
    # Line 1 is the header, then one row of each of the three series before west's first.
    assert line == (
        f"Error: {path} row 5: series 'west' (sensor) was not in the data this "
        "model was trained on (3 series: north, south, east,1); its scaler is unknown, so train "
        "a model that includes it or leave its rows out (or pass --unknown skip)"
    )
    result = runner.invoke(app, ["predict", str(directory), str(path), "--unknown", "skip"])
    assert result.exit_code == 0, result.output
    assert f"{path}: skipped {ROWS} row(s) of 1 series the model was not trained on: 'west'" in (
        result.stderr
    )
    got = pd.read_csv(io.StringIO(result.stdout))
    assert sorted(set(got["sensor"])) == ["east,1", "north", "south"]
    # A series the training left out (too short then) is known: its rows are skipped, warned.
    left = tmp_path / "left"
    shutil.copytree(directory, left)
    bundle = Bundle.load(left)
    assert bundle.fleet is not None
    skipped = dataclasses.replace(bundle.fleet, skipped=(("west", "too few rows"),))
    bundle.replace(fleet=skipped).save(left)
    result = runner.invoke(app, ["predict", str(left), str(path), "--level", "none"])
    assert result.exit_code == 0, result.output
    assert (
        f"{path}: skipped {ROWS} row(s) of 1 series the model left out of its training (too "
        "short or unusable then): 'west'"
    ) in result.stderr


def test_a_short_series_is_warned_not_fatal_and_time_going_back_is_refused(fleet, runner, tmp_path):
    directory, frames, _ = fleet
    # Series by series, in another order than the bundle's: the output follows the file's.
    short = {"east,1": frames["east,1"], "south": frames["south"].iloc[:10]}
    short["north"] = frames["north"]
    path = long_csv(short, tmp_path / "short.csv", order="by series")
    result = runner.invoke(app, ["predict", str(directory), str(path), "--level", "none"])
    assert result.exit_code == 0, result.output
    assert (
        f"{path}: no forecast for 1 series: 'south' (10 rows, fewer than the {WINDOW} a "
        "forecast reads)"
    ) in result.stderr
    got = pd.read_csv(io.StringIO(result.stdout))
    assert list(got["sensor"]) == ["east,1"] * HORIZON + ["north"] * HORIZON
    backwards = frames | {"north": frames["north"].iloc[::-1]}
    path = long_csv(backwards, tmp_path / "back.csv", order="by series")
    line = one_line_error(runner.invoke(app, ["predict", str(directory), str(path)]))
    assert line == (
        f"Error: {path} row 3 (series 'north'): time goes backwards; predict streams "
        "files in time order, so sort the file by time first"
    )


def test_inspect_names_the_series_and_unknown_is_for_fleets_only(fleet, runner, tmp_path):
    directory, frames, root = fleet
    from forecaster.device.summary import summarize_bundle

    rows = summarize_bundle(directory).rows()
    assert rows["series"] == "3 by column 'sensor' (north, south, east,1), each scaled alone"
    shown = runner.invoke(app, ["inspect", str(directory)])
    assert shown.exit_code == 0, shown.output
    assert "│ series " in shown.stdout
    path = long_csv(frames, tmp_path / "fleet.csv")
    line = one_line_error(
        runner.invoke(app, ["predict", str(root / "single"), str(path), "--unknown", "skip"]), 2
    )
    assert line == (
        "Error: --unknown is for a bundle trained on many series (--id-col); this bundle's model "
        "was trained on one series, so leave --unknown out"
    )
