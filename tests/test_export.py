"""Real conversions run by the real LiteRT interpreter: every mode, parity, gate, tampering."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.bundle import Bundle
from forecaster.cli.app import app
from forecaster.cli.options import parse_max_accuracy_loss
from forecaster.config import Cell, DataConfig, ModelConfig, TrainConfig, WindowConfig
from forecaster.device.predictor import Predictor
from forecaster.errors import BundleError, ExportError
from forecaster.export.gate import ModeResult, choose, judge
from forecaster.export.ship import export
from forecaster.intervals import with_intervals
from forecaster.runs.load import load_keras_model, load_training_data
from forecaster.runs.train import train
from tests.test_cli_data import one_line_error
from tests.test_text import percent_g

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["gru", "lstm"])
def exported(request, tmp_path_factory):
    """A tiny trained run per cell, exported in every mode."""
    from forecaster.data.synthetic import make_series, write_csv

    root = tmp_path_factory.mktemp(request.param)
    csv = write_csv(make_series(rows=500, seed=6), root / "sensors.csv")
    run = train(
        csv,
        DataConfig(targets=("temp",)),
        window=WindowConfig(24, 6),
        model=ModelConfig(request.param, units=8),
        training=TrainConfig(epochs=2, batch_size=32),
        out=root / "run",
    )
    outcome = export(run.run_dir, quantize="all")
    return csv, run, outcome


def test_every_mode_converts_builtin_only_and_runs(exported):
    _, run, outcome = exported
    modes = {r.mode: r for r in outcome.results}
    assert set(modes) == {"float32", "dynamic", "float16", "int8", "int16x8"}
    for result in modes.values():
        assert result.error is None, result.error
        assert result.builtin_only
        assert "LiteRT CPU" in result.runs_on
        assert result.recipe
        assert result.size_bytes > 0
        assert len(result.worst_vs_keras) == len(result.worst_bound) == 1
    for mode in ("float32", "dynamic", "float16", "int8"):
        assert "WHILE" in modes[mode].ops
    # float32 is the Keras model to float precision; float16 and int8 lose a little.
    assert modes["float32"].max_abs_vs_keras < 1e-4
    assert modes["float16"].max_abs_vs_keras < 0.05
    assert modes["int8"].mean_abs_vs_keras < 0.25  # temp spans ~10 degrees: < 2.5% of range
    # Full integer: no loop, no float tensor, and close to Keras everywhere.
    full = modes["int16x8"]
    assert "WHILE" not in full.ops
    assert "integer-only" in full.runs_on
    assert "ai-edge-quantizer" in full.recipe
    if run.bundle.model.cell == "lstm":
        # One fused LSTM op in int8 with an int16 cell state (test_fused_lstm.py), smaller than
        # the float32 loop file; the gate passes it.
        assert full.recipe.startswith("fused-LSTM") and full.refused_recipes == []
        assert full.ops["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1
        assert full.size_bytes < modes["float32"].size_bytes
        assert full.passed and full.max_abs_vs_keras < 0.1 and abs(full.mae_change) < 0.02
    else:  # int16 activations, unrolled
        assert full.recipe.startswith("unrolled twin")
        assert full.max_abs_vs_keras < 0.05
        assert abs(full.mae_change) < 0.01
    assert "integer-only" not in modes["dynamic"].runs_on  # float activations


# One cell keeps the suite fast; `make bench` exports both cells to TFLite Micro.
@pytest.mark.parametrize("exported", ["lstm"], indirect=True)
def test_micro_export_runs_in_tflite_micro_like_keras(exported, runner, tmp_path):
    """--runtime micro: a batch-1 full-integer file TFLite Micro's own interpreter runs."""
    from forecaster.export.micro import run_micro

    _, run, _ = exported
    assert run.bundle.model.cell == "lstm"
    refused = runner.invoke(
        app, ["export", str(run.run_dir), "--runtime", "micro", "--quantize", "int8"]
    )
    assert refused.exit_code == 1
    assert "--runtime micro exports one full-integer model" in one_line_error(refused)
    out = tmp_path / "micro"
    result = runner.invoke(
        app, ["export", str(run.run_dir), "--runtime", "micro", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    bundle = Bundle.load(out)
    assert bundle.export is not None
    # The table's worst column: the largest change against Keras as a share of its bound.
    shipped_mode = bundle.metrics["export"]["modes"][0]
    share = max(shipped_mode["worst_vs_keras"][0] / shipped_mode["worst_bound"][0], 0)
    row = next(line for line in result.stdout.splitlines() if line.lstrip("│ ").startswith("micro"))
    assert f"{share:.0%}" in row and "of Keras' own test MAE" in " ".join(result.stdout.split())
    assert (bundle.export.runtime, bundle.export.quantization, bundle.export.batch) == (
        "micro",
        "micro",
        1,
    )
    assert bundle.export.arena_bytes is not None and bundle.export.arena_bytes > 1000
    shipped = bundle.metrics["export"]["modes"][0]
    assert shipped["runs_on"] == ["LiteRT CPU", "integer-only", "TFLite Micro"]
    assert "WHILE" not in shipped["ops"]
    # Run the file again in TFLite Micro, apart from export, and compare with Keras.
    test = load_training_data(bundle, run_dir=run.run_dir).windows["test"]
    windows = test.x[:: max(1, len(test.x) // 40)]
    keras_pred = load_keras_model(run.run_dir).predict(windows, verbose=0)
    micro = run_micro(out / "model.tflite", windows)
    assert micro.arena_bytes == bundle.export.arena_bytes
    # The fused LSTM op (int8, int16 cell state) and the int16 ops around it stay within 1% of
    # the scaled range (0..1 over the training range) of Keras, and near LiteRT's kernels.
    assert shipped["recipe"].startswith("fused-LSTM")
    assert shipped["ops"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1
    assert np.abs(micro.forecast - keras_pred).max() < 0.01
    litert = Predictor.load(out, num_threads=1).predict_scaled(windows)
    np.testing.assert_allclose(micro.forecast, litert, atol=0.005)


@pytest.mark.parametrize("exported", ["lstm"], indirect=True)
def test_a_refused_fused_lstm_file_falls_back_to_the_unrolled_one(exported, tmp_path):
    """The gate refuses the fused file (no file can be 100% better than Keras), so the unrolled
    recipe is converted and judged too, and the mode's result says why the fused one was not."""
    _, run, _ = exported
    outcome = export(
        run.run_dir, quantize="int16", max_accuracy_loss=-1.0, force=True, out=tmp_path / "b"
    )
    (result,) = outcome.results
    assert result.recipe.startswith("unrolled twin") and not result.passed
    (refused,) = result.refused_recipes
    assert refused.startswith("fused-LSTM twin at batch 1") and ": MAE " in refused
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in result.ops
    bundle = Bundle.load(outcome.bundle_dir)
    assert bundle.export is not None and bundle.export.recipe == result.recipe
    assert bundle.metrics["export"]["modes"][0]["refused_recipes"] == [refused]


def test_float32_scores_match_the_keras_evaluation(exported):
    _, run, outcome = exported
    float32 = next(r for r in outcome.results if r.mode == "float32")
    evaluation = json.loads((run.run_dir / "metrics.json").read_text())
    assert evaluation["skipped_origins"] == 0  # so both scored the same test windows
    keras = evaluation["scores"]["model"]
    assert float32.mase == pytest.approx(keras["mase"], rel=1e-4)
    assert float32.mase_1step == pytest.approx(keras["per_step"]["mase"][0][0], rel=1e-4)
    assert float32.mase_1step < float32.mase  # one step ahead is the easy end of the horizon


def test_bundle_describes_the_shipped_model(exported):
    _, run, outcome = exported
    bundle = Bundle.load(outcome.bundle_dir)
    assert outcome.bundle_dir == run.run_dir / "bundle"
    assert sorted(p.name for p in outcome.bundle_dir.iterdir()) == ["bundle.json", "model.tflite"]
    assert bundle.export is not None
    assert bundle.export.quantization == outcome.shipped
    assert bundle.export.size_bytes == (outcome.bundle_dir / "model.tflite").stat().st_size
    assert bundle.metrics["export"]["shipped"] == outcome.shipped
    assert len(bundle.metrics["export"]["modes"]) == 5
    assert bundle.export.runtime == "litert"
    assert bundle.export.arena_bytes is None
    # A loop mode ships, its batch resizable: an LSTM's fused full-integer file may be smaller,
    # but it forecasts one window at a time, many times slower, so `all` passes it over.
    assert bundle.export.batch is None
    assert bundle.export.recipe.startswith("WHILE-loop twin")
    full = next(r for r in outcome.results if r.mode == "int16x8")
    assert full.resizable == (run.bundle.model.cell == "gru")  # the fused LSTM takes one window
    if full.passed and full.size_bytes < bundle.export.size_bytes:
        assert "one window per call" in bundle.metrics["export"]["reason"]
    if bundle.export.quantization == "int8":
        assert bundle.export.input_scale is not None


def test_predictor_matches_keras_batched_and_one_at_a_time(exported):
    _, run, outcome = exported
    bundle = Bundle.load(run.run_dir)
    test = load_training_data(bundle, run_dir=run.run_dir).windows["test"]
    keras_pred = load_keras_model(run.run_dir).predict(test.x, verbose=0)
    predictor = Predictor.load(outcome.bundle_dir, num_threads=1)
    batched = predictor.predict_scaled(test.x)
    single = np.concatenate([predictor.predict_scaled(test.x[i : i + 1]) for i in range(20)])
    np.testing.assert_allclose(single, batched[:20], atol=1e-6)
    tolerance = {"float32": 1e-5, "dynamic": 0.02, "float16": 0.01, "int8": 0.05, "int16x8": 0.01}
    assert np.abs(batched - keras_pred).max() < tolerance[outcome.shipped]


def test_threads_share_a_large_batch_without_changing_the_forecast(exported):
    _, run, outcome = exported
    bundle = Bundle.load(run.run_dir)
    windows = load_training_data(bundle, run_dir=run.run_dir).windows["train"].x
    assert len(windows) > 3 * 32  # enough for three threads to get a share each
    alone = Predictor.load(outcome.bundle_dir, num_threads=1).predict_scaled(windows)
    shared = Predictor.load(outcome.bundle_dir, num_threads=3)
    np.testing.assert_allclose(shared.predict_scaled(windows), alone, atol=1e-6)
    np.testing.assert_allclose(shared.predict_scaled(windows[:5]), alone[:5], atol=1e-6)
    assert shared.describe()["num_threads"] == 3


def test_a_large_batch_is_forecast_a_slice_at_a_time_with_the_same_result(exported, monkeypatch):
    from forecaster.device import predictor as predictor_module
    from forecaster.device.stream import stream_origins

    csv, _, outcome = exported
    predictor = Predictor.load(outcome.bundle_dir, num_threads=2)
    spec = predictor.bundle.data
    batch = next(stream_origins(csv, spec, predictor.history, mode="rolling"))
    assert len(batch.x) > 300
    whole = predictor.forecast_windows(batch.x, batch.last_times)
    monkeypatch.setattr(predictor_module, "WINDOWS_AT_ONCE", 100)
    sliced = predictor.forecast_windows(batch.x, batch.last_times)
    assert sliced.shape == whole.shape == (len(batch.x), predictor.horizon, 1)
    np.testing.assert_allclose(sliced, whole, rtol=1e-6)


def test_quantized_files_of_a_real_size_model_are_small(tmp_path):
    """GRU(64)/LSTM(64) over 48x3: the size targets, measured on real conversions."""
    import keras

    from forecaster.export.convert import convert
    from forecaster.model.build import build_model

    rng = np.random.default_rng(0)
    calibration = rng.random((64, 48, 3), dtype=np.float32)
    cells: tuple[Cell, ...] = ("gru", "lstm")
    for cell in cells:
        keras.utils.set_random_seed(0)
        model = build_model(
            ModelConfig(cell, units=64), window=48, n_features=3, horizon=12, n_targets=1
        )
        sizes = {m: len(convert(model, m, calibration)) for m in ("float32", "float16", "int8")}
        assert sizes["float16"] <= 0.55 * sizes["float32"], sizes
        assert sizes["int8"] <= 0.35 * sizes["float32"], sizes


@pytest.mark.parametrize("residual", ["last", "seasonal", "last_seasonal"])
def test_every_anchor_survives_conversion(residual):
    """The reference is part of the graph: LiteRT forecasts what Keras does, in every mode."""
    import keras

    from forecaster.device.predictor import interpreter_class
    from forecaster.export.convert import convert
    from forecaster.model.build import GAIN_SCALE, build_model

    keras.utils.set_random_seed(2)
    # A wandering level under a 6-step cycle, so every anchor reads different values.
    steps = np.arange(400)
    series = np.sin(2 * np.pi * steps / 6) + np.cumsum(np.random.default_rng(2).normal(0, 0.2, 400))
    series = (series - series.min()) / np.ptp(series)
    x = np.lib.stride_tricks.sliding_window_view(series, 16)[:, :, None].astype(np.float32)
    config = ModelConfig("gru", units=8, residual=residual, normalize="last", season=6)
    model = build_model(config, window=16, n_features=1, horizon=4, n_targets=1)
    if residual == "last_seasonal":  # a learned gain, not its start of ones
        gain = np.array([[0.2], [0.7], [1.3], [-0.4]])
        model.get_layer("forecast").set_weights([gain / GAIN_SCALE])
    expected = model.predict(x, verbose=0)
    for mode, tolerance in (
        ("float32", 1e-5),
        ("float16", 1e-2),
        ("int8", 0.05),
        ("int16x8", 0.01),
    ):
        # Calibrate on every 5th window: a stride of 3 would see two phases of the 6-step cycle.
        interpreter = interpreter_class()(model_content=convert(model, mode, x[::5]))
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
        interpreter.allocate_tensors()
        (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
        feed = x
        if given["dtype"] != np.float32:
            scale, zero = given["quantization"]
            info = np.iinfo(given["dtype"])
            feed = np.clip(np.round(x / scale + zero), info.min, info.max).astype(given["dtype"])
        interpreter.set_tensor(given["index"], feed)
        interpreter.invoke()
        got = interpreter.get_tensor(taken["index"]).astype(np.float32)
        if taken["dtype"] != np.float32:
            scale, zero = taken["quantization"]
            got = (got - zero) * scale
        assert np.abs(got - expected).max() < tolerance, (mode, np.abs(got - expected).max())


def test_int8_leaves_room_for_windows_unlike_the_calibration():
    """Windows wilder than the calibration ones (a new season) are not clipped in the int8 twin."""
    import keras

    from forecaster.export.twin import build_twin
    from forecaster.model.build import build_model

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    calm = (0.5 + 0.05 * rng.standard_normal((64, 16, 1))).astype(np.float32)
    wild = (0.5 + 0.065 * rng.standard_normal((64, 16, 1))).astype(np.float32)
    model = build_model(
        ModelConfig("gru", units=8, residual="last", normalize="last"),
        window=16,
        n_features=1,
        horizon=4,
        n_targets=1,
    )
    expected = model.predict(wild, verbose=0)
    int8_twin = build_twin(model, calibration=calm)
    float_twin = build_twin(model)
    lo, hi = int8_twin.get_layer("rnn_loop").ranges["y"]
    wild_y = build_twin(model, calibration=wild).get_layer("rnn_loop").ranges["y"]
    assert wild_y[1] - wild_y[0] > 1.2 * (hi - lo)  # the forecast change leaves the calibrated span
    np.testing.assert_allclose(float_twin.predict(wild, verbose=0), expected, atol=1e-5)
    # Clipping the forecast change to its calibrated span put the worst window 0.014 off; 0.007
    # with the margin.
    assert np.abs(int8_twin.predict(wild, verbose=0) - expected).max() < 0.01


def test_tampered_model_is_refused(exported, tmp_path, runner):
    import shutil

    csv, _, outcome = exported
    copy = tmp_path / "bundle"
    shutil.copytree(outcome.bundle_dir, copy)
    data = bytearray((copy / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"does not match the checksum in bundle\.json"):
        Predictor.load(copy)
    line = one_line_error(runner.invoke(app, ["predict", str(copy), str(csv)]))
    assert line.startswith(f"Error: {copy / 'model.tflite'} does not match the checksum")
    (copy / "model.tflite").unlink()
    assert "model.tflite is missing; re-export" in one_line_error(
        runner.invoke(app, ["inspect", str(copy)])
    )


def test_edited_bundle_json_is_refused_and_an_untouched_one_loads(exported, tmp_path, runner):
    import shutil

    csv, _, outcome = exported
    copy = tmp_path / "bundle"
    shutil.copytree(outcome.bundle_dir, copy)
    for command in (["predict", str(copy), str(csv)], ["inspect", str(copy)]):
        assert runner.invoke(app, command).exit_code == 0  # untouched: loads
    raw = json.loads((copy / "bundle.json").read_text())
    assert raw["checksum"].startswith("sha256:")
    raw["scaler"]["scale"][0] *= 1.01  # a plausible hand edit: wrong forecasts, no crash
    (copy / "bundle.json").write_text(json.dumps(raw, indent=2))
    expected = (
        f"Error: {copy / 'bundle.json'} was changed after forecaster wrote it (its content does "
        "not match its checksum); re-export it (forecaster export RUN_DIR --overwrite) or copy "
        "the bundle again"
    )
    for command in (["predict", str(copy), str(csv)], ["inspect", str(copy)]):
        assert one_line_error(runner.invoke(app, command)) == expected
    with pytest.raises(BundleError, match="was changed after forecaster wrote it"):
        Predictor.load(copy)
    del raw["checksum"]  # dropping the checksum does not make an edited bundle acceptable
    (copy / "bundle.json").write_text(json.dumps(raw, indent=2))
    assert one_line_error(runner.invoke(app, ["inspect", str(copy)])) == (
        f"Error: {copy / 'bundle.json'} has no checksum, so its content cannot be trusted; "
        "re-export it (forecaster export RUN_DIR --overwrite) or copy the bundle again"
    )


def test_the_shipped_bundle_names_the_training_file_without_its_path(exported, runner):
    from forecaster.files import sha256_of

    csv, run, outcome = exported
    text = (outcome.bundle_dir / "bundle.json").read_text()
    assert str(csv.parent) not in text
    data = json.loads(text)["data"]
    assert (data["source"], data["source_sha256"]) == ("sensors.csv", sha256_of(csv))
    # The run directory keeps the path, so export and evaluate read the file again.
    record = json.loads((run.run_dir / "training_file.json").read_text())
    assert record == {"path": str(csv.resolve())}
    assert str(csv.parent) not in (run.run_dir / "bundle.json").read_text()
    result = runner.invoke(app, ["evaluate", str(run.run_dir)])
    assert result.exit_code == 0, result.output


def test_a_run_is_not_a_bundle(exported, runner):
    csv, run, _ = exported
    line = one_line_error(runner.invoke(app, ["predict", str(run.run_dir), str(csv)]))
    assert line == (
        f"Error: {run.run_dir} is a training run, not an exported bundle; run "
        f"`forecaster export {run.run_dir}` first"
    )


def test_predict_cli_last_and_rolling(exported, runner, tmp_path):
    csv, _, outcome = exported
    result = runner.invoke(app, ["predict", str(outcome.bundle_dir), str(csv)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"origin,timestamp,step,temp,{INTERVAL_COLUMNS}"
    assert len(lines) == 1 + 6
    assert lines[1].startswith("2024-01-21 19:00:00,2024-01-21 20:00:00,1,")
    out = tmp_path / "rolling.csv"
    args = ["predict", str(outcome.bundle_dir), str(csv), str(csv), "--mode", "rolling"]
    result = runner.invoke(app, [*args, "--out", str(out), "--level", "none"])
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()
    assert rows[0] == "file,origin,timestamp,step,temp"
    assert len(rows) == 1 + 2 * (500 - 24 + 1) * 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # To stdout (its binary buffer, as the rows stream) the same bytes.
    result = runner.invoke(app, [*args, "--level", "none"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == out.read_bytes()


INTERVAL_COLUMNS = "temp_lower_80,temp_upper_80,temp_lower_95,temp_upper_95"


def test_the_bundle_carries_the_shipped_files_own_intervals(exported):
    _, run, outcome = exported
    bundle = Bundle.load(outcome.bundle_dir)
    keras_intervals = Bundle.load(run.run_dir).intervals
    intervals = bundle.intervals
    assert intervals is not None and keras_intervals is not None
    assert keras_intervals.source == "the Keras model on the validation part"
    assert intervals.source == f"the {outcome.shipped} LiteRT file on the validation part"
    val = load_training_data(bundle, run_dir=run.run_dir).windows["val"]
    assert intervals.origins == len(val) > 19 and intervals.short_levels == (0.99,)
    predictor = Predictor.load(outcome.bundle_dir, num_threads=1)
    truth = bundle.scaler.inverse(val.y, bundle.data.targets)
    forecast = bundle.scaler.inverse(predictor.predict_scaled(val.x), bundle.data.targets)
    errors = np.abs(truth - forecast)
    for level, widths in zip(intervals.levels, intervals.widths(), strict=True):
        covered = (errors <= widths + 1e-9).mean(axis=0)
        # The conformal rank covers ceil((n + 1) level) of the n errors, at most n.
        assert (covered >= min(np.ceil((len(val) + 1) * level), len(val)) / len(val) - 1e-9).all()
        assert (covered <= level + 2 / len(val)).all() or level == 0.99
    values = bundle.scaler.inverse(val.x[:5], bundle.data.features)  # original units
    result = predictor.forecast_intervals(values, None, (0.8, 0.95))
    assert result.levels == (0.8, 0.95) and result.lower.shape == (2, 5, 6, 1)
    lower, upper = result.interval(0.95)
    np.testing.assert_allclose(
        upper - result.point, np.broadcast_to(intervals.widths((0.95,))[0], upper.shape)
    )
    assert (lower < result.point).all() and (result.interval(0.8)[1] <= upper).all()


def rows_as_written_one_at_a_time(predictor, files, levels, adapt, chunk_rows):
    """predict's rolling CSV as it was written before numpy formatted it: a %-format per row,
    strftime for the times, each batch forecast before the next is read."""
    from forecaster.device.adapt import RecentErrors
    from forecaster.device.predict_csv import target_columns
    from forecaster.device.stream import stream_origins

    spec, horizon = predictor.bundle.data, predictor.horizon
    names = target_columns(spec.targets, levels)
    lines = [",".join(["file"] * (len(files) > 1) + ["origin", "timestamp", "step", *names])]
    for path in files:
        prefix = f"{path}," if len(files) > 1 else ""
        recent = None
        batches = stream_origins(
            path, spec, predictor.history, mode="rolling", chunk_rows=chunk_rows
        )
        for batch in batches:
            last = batch.last_times
            if not levels:
                table = predictor.forecast_windows(batch.x, last)[..., None]
            else:
                result = predictor.forecast_intervals(batch.x, last, levels)
                if adapt:
                    assert predictor.bundle.intervals is not None
                    base = predictor.bundle.intervals.widths(levels)
                    recent = recent or RecentErrors(base, levels, adapt)
                    slots = last.astype(np.int64) // round(spec.step_seconds * 1e9)
                    actual = batch.x[:, -1, [spec.features.index(t) for t in spec.targets]]
                    widths = recent.run(slots, actual, result.point)
                    result = with_intervals(result.point, widths, levels)
                parts = [result.point[..., None]]
                for i in range(len(levels)):
                    parts += [result.lower[i][..., None], result.upper[i][..., None]]
                table = np.concatenate(parts, axis=-1)
            for i, origin in enumerate(pd.DatetimeIndex(last)):
                for k in range(horizon):
                    stamp = origin + pd.Timedelta(seconds=(k + 1) * spec.step_seconds)
                    cells = ",".join(map(percent_g, table[i, k].reshape(-1).tolist()))
                    times = f"{origin:%Y-%m-%d %H:%M:%S},{stamp:%Y-%m-%d %H:%M:%S}"
                    lines.append(f"{prefix}{times},{k + 1},{cells}")
    return "\n".join(lines) + "\n"


def test_predict_writes_the_bytes_a_format_per_row_wrote(exported, tmp_path):
    from forecaster.device.predict_csv import predict_files

    csv, _, outcome = exported
    # Two threads: a batch is forecast ahead while the one before is written.
    predictor = Predictor.load(outcome.bundle_dir, num_threads=2)
    other = tmp_path / "second, 100%.csv"
    shutil.copy(csv, other)
    # 97-row chunks: many batches.
    for files, levels, adapt, chunk in (
        ([csv], (), 0, 20_000),
        ([csv], (0.8, 0.95), 0, 97),
        ([csv, other], (0.5, 0.95), 30, 97),
    ):
        out = tmp_path / "out.csv"
        predict_files(
            predictor, files, out, mode="rolling", levels=levels, adapt=adapt, chunk_rows=chunk
        )
        expected = rows_as_written_one_at_a_time(predictor, files, levels, adapt, chunk)
        assert out.read_bytes() == expected.replace(f"{other},", f'"{other}",').encode()
    # One thread: the model and the text take turns, and write what they wrote in turn.
    one = Predictor.load(outcome.bundle_dir, num_threads=1)
    predict_files(one, files, out, mode="rolling", levels=levels, adapt=adapt, chunk_rows=chunk)
    expected = rows_as_written_one_at_a_time(one, files, levels, adapt, chunk)
    assert out.read_bytes() == expected.replace(f"{other},", f'"{other}",').encode()


def test_predict_writes_each_levels_bounds_beside_the_forecast(exported, runner, tmp_path):
    csv, _, outcome = exported
    out = tmp_path / "levels.csv"
    args = ["predict", str(outcome.bundle_dir), str(csv), "--mode", "rolling", "--out", str(out)]
    result = runner.invoke(app, [*args, "--level", "95,50", "--adapt", "0"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns)[3:] == [
        "temp",
        "temp_lower_50",
        "temp_upper_50",
        "temp_lower_95",
        "temp_upper_95",
    ]
    intervals = Bundle.load(outcome.bundle_dir).intervals
    assert intervals is not None
    widths = intervals.widths((0.5, 0.95))[:, :, 0]
    for i, level in enumerate(("50", "95")):
        half = (frame[f"temp_upper_{level}"] - frame["temp"]).to_numpy()
        np.testing.assert_allclose(half, widths[i][frame["step"] - 1], rtol=1e-4, atol=1e-4)
    # By default the bounds follow the file's own recent errors.
    adapted = tmp_path / "adapted.csv"
    args[-1] = str(adapted)
    assert runner.invoke(app, [*args, "--level", "95,50", "--adapt", "50"]).exit_code == 0
    moved = pd.read_csv(adapted)
    np.testing.assert_allclose(moved["temp"], frame["temp"], rtol=1e-6)
    assert not np.allclose(moved["temp_upper_95"], frame["temp_upper_95"])
    # `last` mode learns from the origins before the last one: its bounds are rolling mode's
    # at the file's last origin, and not the bundle's.
    last = tmp_path / "last.csv"
    last_args = ["predict", str(outcome.bundle_dir), str(csv), "--out", str(last)]
    assert runner.invoke(app, [*last_args, "--level", "95,50", "--adapt", "50"]).exit_code == 0
    ending = moved[moved["origin"] == moved["origin"].iloc[-1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_csv(last), ending, rtol=1e-6)
    assert not np.allclose(ending["temp_upper_95"], frame["temp_upper_95"].iloc[-len(ending) :])
    line = one_line_error(
        runner.invoke(app, ["predict", str(outcome.bundle_dir), str(csv), "--level", "85"]), 2
    )
    assert line == (
        "Error: the bundle has intervals for levels 50, 80, 90, 95, 99, not 85; pass --level "
        "with some of those"
    )
    refused = runner.invoke(app, ["predict", str(outcome.bundle_dir), str(csv), "--level", "120"])
    assert refused.exit_code == 2 and "not a percent between 0 and 100" in refused.stderr


def test_a_bundle_without_intervals_predicts_as_before(exported, runner, tmp_path):
    csv, _, outcome = exported
    old = tmp_path / "old"
    shutil.copytree(outcome.bundle_dir, old)
    Bundle.load(old).replace(intervals=None).save(old)  # as exported before intervals existed
    result = runner.invoke(app, ["predict", str(old), str(csv)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "origin,timestamp,step,temp"
    assert "has no prediction intervals" in result.stderr
    assert "re-export it, or pass --level none" in one_line_error(
        runner.invoke(app, ["predict", str(old), str(csv), "--level", "95"])
    )


def test_predict_refuses_missing_columns_and_short_files(exported, runner, write_text):
    _, _, outcome = exported
    path = write_text("time,temp\n2024-01-01 00:00,1\n")
    assert "lacks column(s) humidity, load that the model needs" in one_line_error(
        runner.invoke(app, ["predict", str(outcome.bundle_dir), str(path)])
    )
    short = write_text(
        "time,temp,humidity,load\n" + "".join(f"2024-01-01 {h:02d}:00,1,2,3\n" for h in range(19)),
        name="short.csv",
    )
    assert one_line_error(runner.invoke(app, ["predict", str(outcome.bundle_dir), str(short)])) == (
        f"Error: {short} has 19 rows, fewer than the 24 the model needs: a forecast reads the last "
        "24 rows (its window); pass a file with at least 24 rows"
    )
    gappy = write_text(
        "time,temp,humidity,load\n"
        + "".join(f"2024-01-{d:02d} {h:02d}:00,1,2,3\n" for d in (1, 2) for h in range(24))
        + "2024-01-03 05:00,1,2,3\n",  # long enough, but its last rows follow a long gap
        name="gappy.csv",
    )
    assert "the last 24 rows of" in one_line_error(
        runner.invoke(app, ["predict", str(outcome.bundle_dir), str(gappy)])
    )


def test_export_refuses_an_existing_bundle_and_inspect_shows_it(exported, runner):
    _, run, outcome = exported
    line = one_line_error(runner.invoke(app, ["export", str(run.run_dir)]))
    assert line == (
        f"Error: {outcome.bundle_dir} already exists; pass --overwrite to replace it or "
        "choose --out"
    )
    result = runner.invoke(app, ["inspect", str(outcome.bundle_dir)])
    assert result.exit_code == 0
    assert "resizable batch" in result.stdout and "WHILE" in result.stdout
    assert "levels 50, 80, 90, 95, 99%" in result.stdout


def test_converter_crash_is_a_clear_error(exported, tmp_path, monkeypatch):
    _, run, _ = exported
    crasher = tmp_path / "python"
    crasher.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crasher.chmod(crasher.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("forecaster.export.ship.sys.executable", str(crasher))
    with pytest.raises(ExportError, match=r"float32 conversion failed: .*crashed \(signal 11\)"):
        export(run.run_dir, quantize="none", out=tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_gate_refuses_a_mode_that_loses_too_much():
    lossy = ModeResult("int8", size_bytes=10, mae_change=0.05, builtin_only=True, passed=False)
    fine = ModeResult("float32", size_bytes=40, mae_change=0.0, builtin_only=True, passed=True)
    with pytest.raises(ExportError, match=r"int8 fails the accuracy gate \(MAE \+5.0%.*--force"):
        choose([lossy], "int8", 0.02, force=False)
    assert choose([lossy], "int8", 0.02, force=True)[0] == "int8"
    mode, why = choose([fine, lossy], "all", 0.02, force=False)
    assert mode == "float32"
    assert "refused: int8" in why


def test_all_passes_over_a_smaller_file_that_forecasts_one_window_per_call():
    def mode(name: str, size: int, resizable: bool) -> ModeResult:
        return ModeResult(
            name, size_bytes=size, resizable=resizable, builtin_only=True, passed=True
        )

    dynamic, fused = mode("dynamic", 32_000, True), mode("int16x8", 24_000, False)
    shipped, why = choose([dynamic, fused], "all", 0.02, force=False)
    assert shipped == "dynamic"
    assert "one window per call, shipped only when asked for: int16x8 (24,000 bytes)" in why
    # Asked for by name it ships; and a smaller file of any batch wins as before.
    assert choose([fused], "int16", 0.02, force=False)[0] == "int16x8"
    assert choose([dynamic, mode("int16x8", 24_000, True)], "all", 0.02, force=False)[0] == (
        "int16x8"
    )


def test_gate_bounds_every_targets_worst_origin_by_its_test_mae():
    def mode(worst: list[float]) -> ModeResult:
        result = ModeResult("int8", size_bytes=10, mae=1.0, builtin_only=True)
        result.worst_vs_keras = worst
        return result

    # The mean is fine (+0.5%), but one origin of the second target moves 3.1 > its MAE of 3.
    spike = mode([0.1, 3.1])
    judge(spike, keras_mae=1 / 1.005, bounds=[0.5, 3.0], max_loss=0.02)
    assert spike.mae_change == pytest.approx(0.005)
    assert not spike.passed
    with pytest.raises(
        ExportError, match=r"worst origin off by 3.1 on load, more than its test MAE 3"
    ):
        choose([spike], "int8", 0.02, force=False, targets=("temp", "load"))
    within = mode([0.5, 2.9])  # at the bound passes
    judge(within, keras_mae=1.0, bounds=[0.5, 3.0], max_loss=0.02)
    assert within.passed


@pytest.mark.parametrize(("text", "value"), [("2%", 0.02), ("0.5%", 0.005), ("0.1", 0.1)])
def test_accuracy_loss_parsing(text, value):
    assert parse_max_accuracy_loss(text) == pytest.approx(value)


def test_predictor_imports_no_tensorflow(exported, tmp_path):
    csv, _, outcome = exported
    probe = (
        "import sys\n"
        "from forecaster.device.predictor import Predictor\n"
        "from forecaster.device.predict_csv import predict_files\n"
        "from pathlib import Path\n"
        f"p = Predictor.load({str(outcome.bundle_dir)!r})\n"
        f"predict_files(p, [Path({str(csv)!r})], Path({str(tmp_path / 'o.csv')!r}))\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'sklearn', 'keras_tuner', 'matplotlib', 'statsmodels')]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert json.loads((outcome.bundle_dir / "bundle.json").read_text())["export"]
