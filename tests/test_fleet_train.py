"""One global model over a fleet: pooled windows, per-series scalers, sampled epochs, export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecaster.bundle import Bundle
from forecaster.cli.app import app
from forecaster.config import DataConfig, ModelConfig, SplitConfig, TrainConfig, WindowConfig
from forecaster.data.fleet import load_fleet
from forecaster.data.synthetic import make_series
from forecaster.model.windows import Windows, fit_scaler, split_rows

WINDOW = WindowConfig(24, 6)


def fleet_frame(n_series: int = 3, rows: int = 500, short: int = 1) -> pd.DataFrame:
    """Series of one kind at very different levels and ranges, plus `short` too short to use."""
    frames = []
    for k in range(n_series + short):
        frame = make_series(rows if k < n_series else 40, seed=k, noise=0.05)
        frame["temp"] = frame["temp"] * (1 + k) + 50 * k
        frame["sensor"] = f"s{k}"
        frames.append(frame[["time", "sensor", "temp"]])
    return pd.concat(frames).sort_values("time", kind="stable")


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A long CSV and a global GRU trained on it (tiny: 2 epochs, 8 units)."""
    from forecaster.runs.fleet import train_fleet

    folder = tmp_path_factory.mktemp("fleet")
    csv = folder / "fleet.csv"
    fleet_frame().to_csv(csv, index=False)
    fleet = load_fleet(csv, DataConfig(targets=("temp",), id_col="sensor"))
    train_fleet(
        fleet,
        window=WINDOW,
        model=ModelConfig(units=8),
        training=TrainConfig(epochs=2, windows_per_epoch=256, seed=3),
        out=folder / "run",
    )
    return csv, folder / "run"


def test_each_series_keeps_its_own_scaler_and_short_ones_are_skipped(
    fleet_run: tuple[Path, Path],
) -> None:
    csv, run = fleet_run
    bundle = Bundle.load(run)
    assert bundle.fleet is not None
    assert bundle.fleet.ids == ("s0", "s1", "s2")
    assert [s for s, _ in bundle.fleet.skipped] == ["s3"]
    assert "rows" in bundle.fleet.skipped[0][1]
    fleet = load_fleet(csv, DataConfig(targets=("temp",), id_col="sensor"))
    for spec, data in zip(bundle.fleet.series, fleet.series, strict=False):
        own = fit_scaler(data, split_rows(data.n_rows, SplitConfig()))
        assert spec.scaler == own  # fitted on that series' training part only
        assert spec.intervals is not None and spec.intervals.origins > 0
    # Levels 0, 50 and 100 apart: one shared scaler would squeeze each into a third of [0, 1].
    mins = [s.scaler.data_min[0] for s in bundle.fleet.series]
    assert mins[2] - mins[0] > 50
    assert bundle.training is not None and bundle.training.windows_per_epoch == 256


def test_every_series_is_scored_beside_its_own_baselines(fleet_run: tuple[Path, Path]) -> None:
    from forecaster.evaluation.fleet import FleetEvaluation

    _, run = fleet_run
    figures = FleetEvaluation.read(run)
    assert [s.id for s in figures.series] == ["s0", "s1", "s2"]
    assert all(math.isfinite(s.mase["model"]) for s in figures.series)
    assert all({"naive", "holt_winters", "decomposition"} <= set(s.mase) for s in figures.series)
    assert figures.wins + figures.ties + figures.losses == 3
    assert (run / "fleet.md").exists() and (run / "fleet_mase.png").exists()
    # Coverage pooled over the series, fixed and as predict adapts each series' intervals.
    assert {"model", "model_adapting"} <= set(figures.coverage)
    assert [c.series for c in figures.coverage["model_adapting"]] == [3, 3]
    assert "model, adapting" in (run / "fleet.md").read_text()
    metrics = Bundle.load(run).metrics["fleet"]
    assert metrics["series"] == 3 and metrics["skipped"] == 1


def test_an_epoch_draws_a_fresh_seeded_sample_of_windows() -> None:
    from forecaster.model.fit import sampled_windows

    n = 1000
    x = np.arange(n, dtype=np.float32).reshape(n, 1, 1)
    windows = Windows(x, x.copy(), np.arange(n))
    config = TrainConfig(batch_size=64, seed=5)
    data = sampled_windows(windows, 200, config)
    assert len(data) == math.ceil(200 / 64)

    def epoch() -> np.ndarray:
        seen = np.concatenate([data[i][0].ravel() for i in range(len(data))])
        data.on_epoch_end()
        return seen

    first, second = epoch(), epoch()
    assert len(first) == 200 == len(np.unique(first))  # without replacement
    assert set(first) != set(second)
    again = sampled_windows(windows, 200, config)
    assert np.array_equal(np.concatenate([again[i][0].ravel() for i in range(len(again))]), first)


def test_baselines_fitted_in_child_processes_match_one_process() -> None:
    from forecaster.evaluation.fit_many import MIN_SERIES_PER_CHILD, fit_many

    rng = np.random.default_rng(0)
    phase = np.sin(np.arange(120) * 2 * np.pi / 12)
    inputs = [(phase * (k + 1) + rng.normal(0, 0.1, 120))[:, None] for k in range(16)]
    inputs.append(np.full((120, 1), np.nan))  # no complete row: fitted with a note, not fatal
    assert len(inputs) >= 2 * MIN_SERIES_PER_CHILD
    alone = fit_many(inputs, (12,), workers=1)
    spread = fit_many(inputs, (12,), workers=2)
    assert spread == alone
    last = alone[-1]
    assert not isinstance(last, str) and "no 10 consecutive complete rows" in str(last)


def test_pooled_tuning_data_draws_from_every_series(tmp_path: Path) -> None:
    from forecaster.tune.data import prepare_pooled_tuning_data

    csv = tmp_path / "fleet.csv"
    fleet_frame(short=0).to_csv(csv, index=False)
    fleet = load_fleet(csv, DataConfig(targets=("temp",), id_col="sensor"))
    pooled = prepare_pooled_tuning_data(fleet.series, 6, 48, SplitConfig(), (24,), 90, seed=1)
    train = pooled.train(24)
    assert len(train) == 90  # 30 from each series
    assert train.x.shape[1:] == (24, pooled.n_features("last", 24))
    assert np.isfinite(train.x).all() and train.y.min() >= 0 and train.y.max() <= 1.5
    assert len(pooled.val(24)) == 90 and len(pooled.val(48)) == 90
    named = prepare_pooled_tuning_data(
        fleet.series, 6, 48, SplitConfig(), (24,), 90, seed=1, series_ids=True
    )
    with_ids = named.train(24)
    assert named.n_features("last", 24) == pooled.n_features("last", 24) + 3
    ids = with_ids.x[:, :, 1:4]  # after the one sensor: one-hot, constant over each window
    assert np.array_equal(ids.sum(axis=2), np.ones(ids.shape[:2]))
    assert [int(i) for i in ids[:, 0].argmax(axis=1)[::30]] == [0, 1, 2]


def test_train_cli_trains_a_fleet_and_names_a_bad_id_column(
    runner: CliRunner, tmp_path: Path
) -> None:
    csv = tmp_path / "fleet.csv"
    fleet_frame(n_series=2, rows=400, short=0).to_csv(csv, index=False)
    common = ["train", str(csv), "-t", "temp", "--window", "24", "--horizon", "6", "--units", "4"]
    bad = runner.invoke(app, [*common, "--id-col", "station", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1
    assert "id column 'station' not found" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x").exists()
    done = runner.invoke(
        app, [*common, "--id-col", "sensor", "--epochs", "1", "--out", str(tmp_path / "run")]
    )
    assert done.exit_code == 0, done.output
    assert "on 2 series" in done.output and "median" in done.output
    record = json.loads((tmp_path / "run" / "training_file.json").read_text())
    assert record["id_col"] == "sensor"


def test_a_fleet_run_exports_with_per_series_intervals(fleet_run: tuple[Path, Path]) -> None:
    from forecaster.export.ship import export

    _, run = fleet_run
    outcome = export(run, quantize="float16", out=run / "bundle")
    bundle = Bundle.load(run / "bundle")
    assert bundle.fleet is not None and bundle.export is not None
    trained = Bundle.load(run).fleet
    assert trained is not None
    for shipped, keras in zip(bundle.fleet.series, trained.series, strict=True):
        assert shipped.scaler == keras.scaler
        assert shipped.intervals is not None
        assert shipped.intervals.source.startswith("the float16 LiteRT file")
    # Compared in MASE units pooled over the series: float16 barely moves them.
    assert abs(outcome.results[0].mae_change) < 0.02


def test_evaluate_scores_a_fleet_run_again_as_training_did(
    runner: CliRunner, fleet_run: tuple[Path, Path]
) -> None:
    from forecaster.evaluation.fleet import FleetEvaluation

    _, run = fleet_run
    trained = FleetEvaluation.read(run)
    (run / "fleet_metrics.json").unlink()
    done = runner.invoke(app, ["evaluate", str(run)])
    assert done.exit_code == 0, done.output
    again = FleetEvaluation.read(run)
    for before, after in zip(trained.series, again.series, strict=True):
        assert after.mase == pytest.approx(before.mase, rel=1e-6)
    refused = runner.invoke(app, ["evaluate", str(run), str(run / "x.csv")])
    assert refused.exit_code == 2 and "each series' own test part" in refused.output


def test_a_fleet_model_with_series_ids_corrects_each_series_decomposition(
    tmp_path: Path,
) -> None:
    from forecaster.device.predictor import Predictor
    from forecaster.export.ship import export
    from forecaster.runs.fleet import train_fleet
    from forecaster.runs.load import load_keras_model, load_training_fleet

    csv = tmp_path / "fleet.csv"
    fleet_frame(short=0).to_csv(csv, index=False)
    fleet = load_fleet(csv, DataConfig(targets=("temp",), id_col="sensor"))
    run = tmp_path / "run"
    train_fleet(
        fleet,
        window=WindowConfig(24, 6, series_ids=True),
        model=ModelConfig(units=4, residual="decomposition"),
        training=TrainConfig(epochs=1, windows_per_epoch=256),
        out=run,
    )
    bundle = Bundle.load(run)
    assert bundle.fleet is not None and bundle.fleet.id_inputs
    seasonal = [s.seasonal for s in bundle.fleet.series]
    assert all(s is not None for s in seasonal)
    # One smoothing in the model for all; each series' own profiles as its inputs.
    assert len({s.smoothing for s in seasonal if s}) == 1
    assert len({s.profiles for s in seasonal if s}) == 3

    export(run, quantize="none", out=run / "bundle")
    predictor = Predictor.load(run / "bundle")
    member = load_training_fleet(bundle, fleet).members[1]
    test = member.windows["test"]
    keras = member.scaler.inverse(load_keras_model(run).predict(test.x[:5], verbose=0), ("temp",))
    device = predictor.forecast(
        member.data.values(),
        test.origins[:5],
        times=member.data.frame.index.to_numpy(),
        series="s1",
    )
    np.testing.assert_allclose(device, keras, rtol=1e-4, atol=1e-3)
    # The one-hot id is an input: the same rows read as another series forecast otherwise.
    other = predictor.forecast(
        member.data.values(),
        test.origins[:5],
        times=member.data.frame.index.to_numpy(),
        series="s0",
    )
    assert not np.allclose(other, device)
