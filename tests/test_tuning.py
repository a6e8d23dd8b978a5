"""`forecaster tune`: search space and options, the winner rule, a tiny real search, kill -9 and
--resume, the time budget, and one-line errors for bad input."""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecaster.cli.app import app
from forecaster.config import DataConfig, parse_fraction
from forecaster.errors import ConfigError
from forecaster.records import from_plain
from forecaster.tune.comparison import CellResult, choose_winner
from forecaster.tune.config import TuneConfig, parse_budget, parse_duration
from forecaster.tune.directory import compare_identity
from forecaster.tune.hyperparameters import clean_values, hyperband_trials, trial_seed
from forecaster.tune.space import (
    SearchSpace,
    SpaceOverrides,
    default_space,
    load_space_file,
    resolve_windows,
)
from tests.test_cli_data import one_line_error
from tests.test_imports import heavy_in, modules_loaded_after

# 2 trials per cell of 1-2 epochs on 4-8 units: the whole search, retraining and comparison of
# both cells takes well under a minute on two cores.
TINY = [
    "--target", "temp", "--horizon", "6", "--windows", "6,12", "--units", "4:8", "--layers", "1",
    "--tuner", "random", "--max-trials", "2", "--max-epochs", "2", "--final-epochs", "2",
    "--seed", "1",
]  # fmt: skip

_ROOT = Path(tempfile.mkdtemp(prefix="forecaster-tune-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def tiny_csv() -> Path:
    """The ~400-row synthetic series every search test uses."""
    from forecaster.data.synthetic import make_series, write_csv

    path = _ROOT / "sensors.csv"
    if not path.exists():
        write_csv(make_series(rows=400, seed=5), path)
    return path


@functools.cache
def reference_search() -> tuple[Path, str]:
    """One tiny search, shared by the tests that check it or compare another search with it."""
    out = _ROOT / "reference"
    result = CliRunner().invoke(app, ["tune", str(tiny_csv()), *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout


def trials_of(out: Path) -> dict[str, tuple[str, float | None, dict[str, object]]]:
    """'cell/trial id' -> (status, score, hyperparameters) from Keras Tuner's trial files."""
    found = {}
    for path in sorted((out / "tuner").glob("*/trial_*/trial.json")):
        trial = json.loads(path.read_text())
        values = clean_values(trial["hyperparameters"]["values"])
        found[f"{path.parent.parent.name}/{trial['trial_id']}"] = (
            trial["status"],
            trial["score"],
            values,
        )
    return found


def assert_same_result(out: Path, reference: Path) -> None:
    """Same trials, same scores, same retrained models and the same winner."""
    assert trials_of(out) == trials_of(reference)
    ours = json.loads((out / "comparison.json").read_text())
    theirs = json.loads((reference / "comparison.json").read_text())
    assert ours["winner"] == theirs["winner"]
    for cell, expected in theirs["cells"].items():
        got = ours["cells"][cell]
        assert got["hyperparameters"] == expected["hyperparameters"]
        assert got["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-6)
        assert got["test"]["mae"] == pytest.approx(expected["test"]["mae"], rel=1e-6)


# --- options and search space (no TensorFlow) ---------------------------------------------


def test_windows_as_steps_or_multiples():
    assert resolve_windows("24,48", horizon=6, season=24) == (24, 48)
    assert resolve_windows("horizon:1,2,4", horizon=6, season=24) == (6, 12, 24)
    assert resolve_windows("season:1,2", horizon=6, season=24) == (24, 48)
    assert resolve_windows((48, 24, 24), horizon=6, season=24) == (24, 48)
    with pytest.raises(ConfigError, match="names 'days'"):
        resolve_windows("days:1", horizon=6, season=24)
    with pytest.raises(ConfigError, match="not a whole number"):
        resolve_windows("horizon:0.25", horizon=6, season=24)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"units": "64:8"}, "units: the minimum 64 is above the maximum 8"),
        ({"lr": "1e-2:1e-4"}, "learning_rate: the minimum 0.01 is above the maximum 0.0001"),
        ({"layers": "0:2"}, "layers: 0:2 is out of range; values must be between 1 and 4"),
        ({"dropout": "0:1.5"}, "dropout: 0:1.5 is out of range"),
        ({"units": "a:b"}, "--units takes MIN:MAX such as 8:64"),
        ({"cells": "gru,rnn"}, "--cells takes a comma-separated list of gru, lstm"),
        ({"residual": "none,both"}, "--residual takes a comma-separated list"),
    ],
)
def test_inconsistent_ranges_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        SpaceOverrides.from_options(**options)


def test_windows_are_checked_against_horizon_and_season():
    base = SearchSpace(windows=(24,))
    with pytest.raises(ConfigError, match=r"windows: 3 shorter than the horizon \(6 steps\)"):
        SpaceOverrides(windows="3,12").apply(base, horizon=6, season=24)
    seasonal = SpaceOverrides(windows="12", residual=("seasonal",))
    with pytest.raises(ConfigError, match="seasonal needs windows of at least 24 steps"):
        seasonal.apply(base, horizon=6, season=24)
    with pytest.raises(ConfigError, match="needs a season of 2 or more steps"):
        seasonal.apply(base, horizon=6, season=1)
    # The default space drops the seasonal residuals a window is too short for.
    space = SpaceOverrides(windows="12").apply(
        SearchSpace(residual=("none", "seasonal")), horizon=6, season=24
    )
    assert space.residual == ("none",)
    anchors = SearchSpace(residual=("last", "seasonal", "last_seasonal"))
    space = SpaceOverrides(windows="24").apply(anchors, horizon=6, season=24)
    assert space.residual == ("last", "seasonal")  # last_seasonal needs 25 steps
    with pytest.raises(ConfigError, match="last_seasonal needs windows of at least 25 steps"):
        SpaceOverrides(windows="24", residual=("last_seasonal",)).apply(
            anchors, horizon=6, season=24
        )


def test_default_space_grows_with_the_data():
    small = default_space(train_rows=280, longest_eval_rows=60, horizon=6, season=24)
    # Of 1, 2, 4 horizons, 1, 2 seasons and a season plus the horizon that fit, those long
    # enough for the seasonal anchors (a season and a step).
    assert small.windows == (30, 48)
    assert small.units == (8, 16) and small.layers == (1, 1)
    big = default_space(train_rows=50_000, longest_eval_rows=10_000, horizon=12, season=24)
    assert big.windows == (36, 48) and big.units == (32, 128) and big.layers == (1, 3)
    both = default_space(
        train_rows=50_000,
        longest_eval_rows=10_000,
        horizon=12,
        season=24,
        residual_supported=True,
        normalize_supported=True,
    )
    assert both.residual == ("last", "last_seasonal")
    assert both.normalize == ("none", "last", "mean")
    # No window spans the season: the short windows stay, without the seasonal anchor.
    short = default_space(
        train_rows=400, longest_eval_rows=40, horizon=6, season=48, residual_supported=True
    )
    assert short.windows == (6, 12, 24) and short.residual == ("last",)


def test_the_decomposition_reference_joins_the_space_with_timestamps_and_a_season(tmp_path):
    from forecaster.config import DataConfig, SplitConfig
    from forecaster.data.load import load_csv
    from forecaster.data.synthetic import make_series, write_csv
    from forecaster.model.windows import split_rows
    from forecaster.tune.hyperparameters import resolve_space

    space = default_space(
        train_rows=50_000,
        longest_eval_rows=10_000,
        horizon=12,
        season=24,
        residual_supported=True,
        decomposition_supported=True,
    )
    assert space.residual == ("last", "last_seasonal", "decomposition")
    frame = make_series(rows=24 * 7 * 4, seed=1)
    timed = write_csv(frame, tmp_path / "timed.csv")
    untimed = write_csv(frame.drop(columns="time"), tmp_path / "untimed.csv")
    for path, season, offered in ((timed, 24, True), (timed, 1, False), (untimed, 24, False)):
        data = load_csv(path, DataConfig(targets=("temp",)))
        split = split_rows(data.n_rows, SplitConfig())
        resolved = resolve_space(data, split, 12, season, SpaceOverrides())
        assert ("decomposition" in resolved.residual) == offered, (path.name, season)
    # Asked for, it needs windows as long as the horizon, as every window does.
    with pytest.raises(ConfigError, match="shorter than the horizon"):
        SpaceOverrides(windows="6,24", residual=("decomposition",)).apply(
            SearchSpace(), horizon=12, season=24
        )


def test_space_json_round_trip():
    space = SearchSpace(windows=(12, 24), units=(8, 32), residual=("none", "last"))
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space
    assert space.unit_choices == (8, 16, 32)
    assert SearchSpace(units=(12, 64)).unit_choices == (12, 24, 48, 64)


def test_the_starting_point_is_the_train_recipe_moved_into_the_space():
    from forecaster.config import ModelConfig, WindowConfig

    model = ModelConfig()
    recipe = {
        "window": WindowConfig().window,
        "units": model.units,
        "layers": model.layers,
        "dropout": model.dropout,
        "learning_rate": model.learning_rate,
        "residual": model.residual,
        "normalize": model.normalize,
    }
    roomy = SearchSpace(windows=(24, 48), units=(16, 64), residual=("none", "last"))
    assert roomy.starting_point() == recipe | {"normalize": "none"}
    # The decomposition reference, when offered, is tried first whatever train's default.
    offered = roomy.replace(residual=("last", "last_seasonal", "decomposition"))
    assert offered.starting_point()["residual"] == "decomposition"
    narrow = SearchSpace(
        windows=(6, 60, 72),
        units=(4, 8),
        layers=(2, 3),
        dropout=(0.1, 0.3),
        learning_rate=(2e-3, 1e-2),
        normalize=("mean", "last"),
    )
    assert narrow.starting_point() == {
        "window": 60,
        "units": 8,
        "layers": 2,
        "dropout": 0.1,
        "learning_rate": 2e-3,
        "residual": "none",
        "normalize": "last",
    }


def test_search_space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        'cells = ["lstm"]\nwindows = "horizon:1,2"\nunits = [8, 32]\nlearning_rate = [1e-4, 1e-3]\n'
        'normalize = ["last"]\n'
    )
    overrides = load_space_file(path)
    assert overrides.cells == ("lstm",) and overrides.units == (8, 32)
    assert SpaceOverrides.from_options(cells="lstm,gru").cells == ("gru", "lstm")
    options = SpaceOverrides.from_options(units="16:64")
    space = overrides.merged(options).apply(SearchSpace(), horizon=6, season=24)
    assert space.units == (16, 64)  # the option wins over the file
    assert space.windows == (6, 12) and space.learning_rate == (1e-4, 1e-3)
    path.write_text("unit = [8, 32]\n")
    with pytest.raises(ConfigError, match="unknown key 'unit'; known keys are cells, windows"):
        load_space_file(path)
    path.write_text("units = [64, 8]\n")
    with pytest.raises(ConfigError, match="units: the minimum 64 is above the maximum 8"):
        load_space_file(path)
    path.write_text("cells = []\n")
    with pytest.raises(ConfigError, match="comma-separated list of gru, lstm"):
        load_space_file(path)
    path.write_text("units = [8, \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_space_file(path)


def test_durations_and_fractions():
    assert parse_duration("90") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2.5s") == 2.5
    for bad in ("0s", "soon", "10 parsecs", "-5"):
        with pytest.raises(ConfigError, match="--budget"):
            parse_duration(bad)
    assert parse_budget("none") is None and parse_budget("8m") == 480
    assert parse_fraction("2%", "x") == pytest.approx(0.02)
    assert parse_fraction("0.05", "x") == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="between 0% and 100%"):
        parse_fraction("150%", "--prefer-smaller-within")


def test_the_budget_is_split_between_the_search_and_the_retraining():
    whole = TuneConfig(time_budget=480, retrain_share=0.25)
    assert (whole.search_budget, whole.retrain_budget) == (360, 120)
    search_only = TuneConfig(time_budget=480)  # no share kept for retraining
    assert (search_only.search_budget, search_only.retrain_budget) == (480, None)
    assert TuneConfig().search_budget is None and TuneConfig().retrain_budget is None
    with pytest.raises(ConfigError, match="share of the budget"):
        TuneConfig(time_budget=60, retrain_share=1.0)


def test_a_run_budget_covers_the_stages_after_the_search(tmp_path):
    from forecaster.job import JobRequest

    def request(budget: float | None) -> JobRequest:
        return JobRequest(tmp_path / "s.csv", DataConfig(targets=("temp",)), budget=budget)

    # Export, the device check and the report get a fifth (at least a minute); the search and
    # retraining share the rest as `tune` does.
    config = request(600).tune_config
    assert (config.time_budget, config.search_budget, config.retrain_budget) == (480, 360, 120)
    assert request(200).tune_config.time_budget == 140
    # Advice on the budget names the run's --budget, not the search's share of it.
    for budget in (200, 300, 600, 3600):
        config = request(budget).tune_config
        assert config.time_budget is not None
        assert config.stated_budget(config.time_budget) == pytest.approx(budget)
    assert request(None).tune_config == TuneConfig()
    with pytest.raises(ConfigError, match=r"--budget 1m30s leaves no time .* at least --budget 2m"):
        request(90)


def test_trial_seed_is_stable_and_matched_across_cells():
    values = {"cell": "gru", "window": 12, "units": 8, "learning_rate": 0.001}
    seed = trial_seed(7, values)
    assert seed == trial_seed(7, dict(reversed(values.items())))  # order does not matter
    assert seed == trial_seed(7, {**values, "cell": "lstm"})  # matched GRU/LSTM comparison
    assert seed == trial_seed(7, {**values, "tuner/epochs": 3, "tuner/round": 1})
    assert seed != trial_seed(7, {**values, "units": 16})
    assert seed != trial_seed(8, values)
    assert 0 <= seed < 2**31 - 1


def result(cell: str, val_loss: float, params: int) -> CellResult:
    return CellResult(
        cell=cell,
        run_dir=cell,
        hyperparameters={},
        trial_id="0",
        trials=1,
        search_val_loss=val_loss,
        val_loss=val_loss,
        params=params,
        test={},
        test_skill={},
        seconds_per_epoch=0.0,
        epochs_run=1,
        best_epoch=1,
        seconds_to_best=0.0,
        keras_ms_per_window={},
    )


def test_winner_rule():
    gru, lstm = result("gru", 0.100, 1000), result("lstm", 0.090, 1300)
    assert choose_winner([gru, lstm], 0.02) == (
        "lstm",
        "LSTM wins: lower validation loss 0.09 vs GRU's 0.1 (11.1% higher)",
    )
    close = result("gru", 0.0915, 1000)  # 1.7% above LSTM, and smaller
    assert choose_winner([close, lstm], 0.02) == (
        "gru",
        "GRU wins: its validation loss 0.0915 is within 2% of LSTM's 0.09 (1.7% apart) and it "
        "has fewer parameters (1,000 vs 1,300)",
    )
    assert choose_winner([close, lstm], 0.01)[0] == "lstm"  # not within 1%
    bigger = result("gru", 0.0915, 2000)
    winner, reason = choose_winner([bigger, lstm], 0.02)
    assert winner == "lstm" and reason.endswith("within 2% but GRU is not smaller")
    assert choose_winner([gru], 0.02) == (
        "gru",
        "GRU is the only cell searched (validation loss 0.1)",
    )


def test_identity_differences_are_named():
    stored = {"file_sha256": "a" * 64, "space": {"units": [4, 8], "cells": ["gru"]}, "seed": 1}
    assert compare_identity(stored, dict(stored)) is None
    assert compare_identity(stored, {**stored, "file_sha256": "b" * 64}) == (
        "data file (its SHA-256 checksum) (aaaaaaaaaaaa... then, bbbbbbbbbbbb... now)"
    )
    changed = {**stored, "space": {"units": [4, 16], "cells": ["gru"]}}
    assert compare_identity(stored, changed) == "search space: units (4,8 then, 4,16 now)"
    assert compare_identity(stored, {**stored, "seed": 2}) == "--seed (1 then, 2 now)"
    with_loss = {**stored, "loss": "mae"}
    assert compare_identity(with_loss, {**stored, "loss": "mse"}) == "--loss (mae then, mse now)"


def test_every_window_is_scored_on_the_same_validation_targets():
    from forecaster.config import DataConfig, SplitConfig
    from forecaster.data.load import load_csv
    from forecaster.model.windows import split_rows
    from forecaster.tune.data import prepare_tuning_data

    data = load_csv(tiny_csv(), DataConfig(targets=("humidity",)))
    split = split_rows(data.n_rows, SplitConfig())
    tuning = prepare_tuning_data(data, split, horizon=6, max_window=24)
    short, long = tuning.val(6), tuning.val(24)
    assert list(short.origins) == list(long.origins) == list(range(280, 335))
    assert (short.y == long.y).all()
    assert short.x.shape == (55, 6, 3) and long.x.shape == (55, 24, 3)
    assert (short.x == long.x[:, -6:]).all()  # the same past, shorter
    target = data.features.index("humidity")
    assert (short.y[0, :, 0] == tuning.scaled[280:286, target].astype("float32")).all()
    assert tuning.train(24).origins.max() + 6 <= 280  # training windows stay in the training part


def panel_text(total: int | None) -> str:
    from rich.console import Console

    from forecaster.cli.progress import _StatusPanel
    from forecaster.tune.progress import SearchStatus

    panel = _StatusPanel()
    panel.update(
        SearchStatus(
            phase="search",
            role="local",
            tuner="hyperband",
            cell="lstm",
            done=3,
            running=1,
            total=total,
            current={"cell": "lstm", "window": 24, "units": 16, "learning_rate": 0.00123},
            epoch=2,
            epochs=10,
            best={"gru": (0.0123, {"window": 12, "units": 8})},
            elapsed=65.0,
            remaining=535.0,
        )
    )
    console = Console(record=True, width=100)
    console.print(panel)
    return console.export_text()


def test_live_panel_renders_with_a_running_clock():
    text = panel_text(total=12)
    assert "hyperband: trial 4 of 12, 3 done, 1 running, LSTM epoch 2/10" in text
    assert "LSTM window 24, units 16, lr 0.00123" in text
    assert "best GRU  val_loss 0.0123  window 12, units 8" in text
    assert "1m05s elapsed, 8m55s of the time budget left" in text


def test_live_panel_without_a_plan_counts_trials_done():
    text = panel_text(total=None)
    assert "hyperband: trial 4, 3 done, 1 running" in text


def test_hyperbands_schedule_is_the_plan_only_without_a_budget():
    from forecaster.tune.run import planned_trials

    assert planned_trials(TuneConfig(tuner="hyperband", max_epochs=30)) == 90  # per cell
    assert planned_trials(TuneConfig(tuner="hyperband", max_epochs=30, time_budget=480)) is None
    capped = TuneConfig(tuner="hyperband", max_epochs=30, max_trials=5, time_budget=480)
    assert planned_trials(capped) == 5
    assert planned_trials(TuneConfig(tuner="random", time_budget=480)) == 10


# --- bad input through the command line: one line, exit 2 for an option, 1 otherwise --------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--units", "64:8"], 2, "Error: units: the minimum 64 is above the maximum 8; pass "
         "MIN:MAX with MIN <= MAX"),
        (["--windows", "3,12"], 2, "Error: windows: 3 shorter than the horizon (6 steps); a "
         "window must see at least as many steps as it forecasts, e.g. --windows horizon:1,2,4 or "
         "--windows 6,12"),
        (["--windows", "200"], 1, "Error: window 200 is too long for {csv}: the validation part "
         "has at most 60 consecutive rows, fewer than window + horizon = 206; drop it from "
         "--windows or use a longer file"),
        (["--budget", "soon"], 2, "Error: --budget takes a duration such as 90s, 10m or "
         "1h30m, not 'soon'"),
        (["--prefer-smaller-within", "300%"], 2, "Error: --prefer-smaller-within must be between "
         "0% and 100%, not '300%'"),
        (["--resume"], 1, "Error: nothing to resume in {out}: search.json is missing; run without "
         "--resume to start a search there"),
        (["--resume", "--overwrite"], 2, "Error: --resume and --overwrite contradict each other; "
         "pass one of them"),
        (["--distributed", "worker", "--oracle", "127.0.0.1:9", "--overwrite"], 2, "Error: a "
         "worker never overwrites the shared search directory; pass --overwrite to the chief only"),
        (["--distributed", "worker"], 2, "Error: --distributed worker needs --oracle HOST:PORT, "
         "the chief's address"),
        (["--distributed", "chief", "--oracle", "here"], 2, "Error: --oracle takes HOST:PORT such "
         "as 127.0.0.1:8000, not 'here'"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors(runner, tmp_path, args, code, message):
    out = tmp_path / "search"
    argv = ["tune", str(tiny_csv()), "--target", "temp", "--horizon", "6", "--out", str(out)]
    result = runner.invoke(app, [*argv, *args])
    assert one_line_error(result, code) == message.format(csv=tiny_csv(), out=out)
    assert not out.exists()


def test_other_bad_inputs(runner, tmp_path):
    csv = str(tiny_csv())
    result = runner.invoke(app, ["tune", csv, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and result.stderr.startswith(
        f"Error: no target column chosen for {csv}; its numeric columns are: "
    )
    space = tmp_path / "space.toml"
    space.write_text("layer = [1, 2]\n")
    result = runner.invoke(app, ["tune", csv, "-t", "temp", "--space", str(space)])
    assert one_line_error(result).startswith(
        f"Error: search space file {space}: unknown key 'layer'"
    )
    existing = tmp_path / "existing"
    existing.mkdir()
    result = runner.invoke(app, ["tune", csv, "-t", "temp", "--out", str(existing)])
    assert one_line_error(result) == (
        f"Error: {existing} already exists; pass --resume to continue its search, --overwrite "
        "to start again, or choose another --out"
    )
    (existing / "keep.txt").write_text("not a search")
    result = runner.invoke(app, ["tune", csv, "-t", "temp", "--out", str(existing), "--overwrite"])
    assert "--overwrite will not delete it" in one_line_error(result)
    assert (existing / "keep.txt").exists()
    result = runner.invoke(app, ["tune", csv, "-t", "temp", "--oracle", "127.0.0.1:9"])
    assert result.exit_code == 2 and "--oracle needs --distributed" in result.stderr


def test_bad_space_fails_before_tensorflow_loads(tmp_path):
    loaded = modules_loaded_after(
        "from typer.testing import CliRunner\n"
        "from forecaster.cli.app import app\n"
        f"args = ['tune', {str(tiny_csv())!r}, '-t', 'temp', '--horizon', '6',"
        f" '--windows', '2,4', '--out', {str(tmp_path / 'x')!r}]\n"
        "result = CliRunner().invoke(app, args)\n"
        "assert result.exit_code == 2 and 'shorter than the horizon' in result.stderr\n"
    )
    assert "forecaster.tune.run" in loaded
    assert heavy_in(loaded) == set()


# --- Keras Tuner internals, without training ---------------------------------------------------


@pytest.mark.slow
def test_hyperband_trial_count_matches_keras_tuner():
    import keras_tuner as kt

    for max_epochs, factor in ((2, 3), (3, 3), (30, 3), (100, 3), (27, 2)):
        oracle = kt.oracles.HyperbandOracle(
            objective=kt.Objective("val_loss", "min"), max_epochs=max_epochs, factor=factor
        )
        expected = sum(
            oracle._get_size(b, r) for b in range(oracle._get_num_brackets()) for r in range(b + 1)
        )
        assert hyperband_trials(max_epochs, factor) == expected


def drive(oracle, trials: int) -> list[dict[str, object]]:
    """Run `trials` fake trials through an oracle, scored by a fixed function of the values."""
    proposed = []
    for _ in range(trials):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values = trial.hyperparameters.values
        score = (math.log10(values["learning_rate"]) + 3) ** 2 + values["units"] / 100
        oracle.update_trial(trial.trial_id, {"val_loss": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        proposed.append(dict(values))
    return proposed


@pytest.mark.parametrize("tuner", ["random", "hyperband", "bayesian"])
def test_every_tuner_tries_the_starting_point_first_then_its_own_draws(tmp_path, tuner):
    import keras_tuner as kt

    from forecaster.tune.hyperparameters import declare
    from forecaster.tune.keras_tuner import BayesianOracle, HyperbandOracle, RandomOracle

    space = SearchSpace(windows=(24, 48), units=(16, 64), residual=("none", "last"))
    options = {
        "random": {"max_trials": 4},
        "hyperband": {"max_epochs": 9},
        "bayesian": {"max_trials": 4, "num_initial_points": 4},
    }[tuner]
    our_oracles = {"random": RandomOracle, "hyperband": HyperbandOracle, "bayesian": BayesianOracle}
    plain_oracles = {
        "random": kt.oracles.RandomSearchOracle,
        "hyperband": kt.oracles.HyperbandOracle,
        "bayesian": kt.oracles.BayesianOptimizationOracle,
    }

    def proposals(oracle_class, directory: Path, trials: int) -> list[dict[str, object]]:
        hp = kt.HyperParameters()
        declare(hp, space, "gru")
        oracle = oracle_class(
            objective=kt.Objective("val_loss", "min"), seed=5, hyperparameters=hp, **options
        )
        oracle.verbose = 0
        oracle._set_project_dir(str(directory), "gru")
        return drive(oracle, trials)

    raw = proposals(our_oracles[tuner], tmp_path / "ours", 3)
    ours = [clean_values(v) for v in raw]
    assert ours[0] == {"cell": "gru", **space.starting_point()}
    if tuner == "hyperband":  # the starting point trains as long as a random-search trial
        assert [v["tuner/epochs"] for v in raw] == [9, 1, 1]
    plain = [clean_values(v) for v in proposals(plain_oracles[tuner], tmp_path / "plain", 2)]
    assert len(plain) == len(ours[1:])
    for got, want in zip(ours[1:], plain, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():  # ours rounds Bayesian draws to 3 significant digits
            expected = pytest.approx(value, rel=5e-3) if isinstance(value, float) else value
            assert got[key] == expected


@pytest.mark.slow
def test_bayesian_resume_proposes_what_an_uninterrupted_search_would(tmp_path):
    """Keras Tuner's Bayesian oracle does not save its random state, so a reloaded search
    re-proposed a configuration it had already run; ours derives it from (seed, trials)."""
    import keras_tuner as kt

    from forecaster.tune.hyperparameters import declare
    from forecaster.tune.keras_tuner import BayesianOracle

    # Two searched dimensions: Keras Tuner's 50 optimiser restarts take seconds per proposal.
    space = SearchSpace(windows=(6,), units=(4, 32), layers=(1, 1), dropout=(0.0, 0.0))

    def oracle(directory: Path):
        hp = kt.HyperParameters()
        declare(hp, space, "gru")
        made = BayesianOracle(
            objective=kt.Objective("val_loss", "min"),
            max_trials=5,
            num_initial_points=3,
            seed=5,
            hyperparameters=hp,
        )
        made.verbose = 0
        made._set_project_dir(str(directory), "gru")
        return made

    straight = drive(oracle(tmp_path / "straight"), 5)
    first = drive(oracle(tmp_path / "resumed"), 4)  # 3 random, 1 from the Gaussian process
    reloaded = oracle(tmp_path / "resumed")
    reloaded.reload()
    assert len(reloaded.trials) == 4
    assert first + drive(reloaded, 1) == straight
    keys = [json.dumps(v, sort_keys=True) for v in straight]
    assert len(set(keys)) == len(keys), "a configuration was tried twice"
    state = json.loads((tmp_path / "resumed" / "gru" / "oracle.json").read_text())
    assert len(state["end_order"]) == 5  # the state on disk is plain JSON


# --- real searches ------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_search_compares_both_cells():
    out, stdout = reference_search()
    names = {p.name for p in out.iterdir()}
    assert names == {
        "winner",
        "runner_up",
        "tuner",
        "search.json",
        "comparison.json",
        "comparison.md",
        "comparison.png",
    }
    assert {p.name for p in (out / "tuner").iterdir()} == {"gru", "lstm"}
    report = json.loads((out / "comparison.json").read_text())
    assert set(report["cells"]) == {"gru", "lstm"}
    for cell in report["cells"].values():
        assert cell["trials"] == 2 and cell["params"] > 0
        assert set(cell["test"]) == {"mae", "rmse", "mase"}
        assert cell["seconds_per_epoch"] > 0 and cell["keras_ms_per_window"]["batch1"] > 0
        assert 1 <= cell["best_epoch"] <= cell["epochs_run"] <= 2
        assert cell["device"] == {
            "tflite_bytes": None,
            "latency_ms": None,
            "quantization": None,
            "bundle": None,
        }
        assert "tuner/epochs" not in cell["hyperparameters"]
    # The winner follows the rule on validation loss, and the runs sit where the report says.
    cells = [from_plain(CellResult, c) for c in report["cells"].values()]
    assert (report["winner"], report["reason"]) == choose_winner(cells, 0.02)
    winner = report["cells"][report["winner"]]
    assert winner["run_dir"] == "winner"
    from forecaster.bundle import Bundle

    bundle = Bundle.load(out / "winner")
    assert bundle.model.cell == report["winner"]
    assert bundle.model.window == winner["hyperparameters"]["window"]
    assert bundle.model.units == winner["hyperparameters"]["units"]
    # Retraining went on from the best trial's checkpoint instead of starting again.
    trial_dir = out / "tuner" / report["winner"] / f"trial_{winner['trial_id']}"
    assert bundle.training is not None
    assert bundle.training.initial_weights == str(trial_dir / "checkpoint.weights.h5")
    # Matched comparison: both cells drew the same values for every other hyperparameter.
    trials = trials_of(out)
    for trial_id in ("0", "1"):
        gru, lstm = trials[f"gru/{trial_id}"][2], trials[f"lstm/{trial_id}"][2]
        assert {**gru, "cell": "lstm"} == lstm
    identity = json.loads((out / "search.json").read_text())["identity"]
    assert identity["tuner"] == "random" and identity["seed"] == 1 and identity["loss"] == "mae"
    assert report["rule"]["selected_by"].startswith("validation loss (MAE, scaled)")
    assert bundle.model.loss == "mae"
    assert identity["space"]["windows"] == [6, 12] and identity["space"]["units"] == [4, 8]
    assert len(identity["file_sha256"]) == 64
    assert f"Winner: {report['reason']}" in " ".join(stdout.split())
    markdown = (out / "comparison.md").read_text()
    assert f"**Winner: {report['winner'].upper()}.**" in markdown
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_the_winner_is_a_normal_run(runner):
    out, _ = reference_search()
    report = json.loads((out / "comparison.json").read_text())
    result = runner.invoke(app, ["evaluate", str(out / "winner")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "winner" / "metrics.json").read_text())
    mae = report["cells"][report["winner"]]["test"]["mae"]
    assert metrics["scores"]["model"]["mae"] == pytest.approx(mae, rel=1e-6)


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_result(tmp_path, runner):
    reference, _ = reference_search()
    out = tmp_path / "search"
    argv = ["tune", str(tiny_csv()), *TINY, "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "forecaster", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    second = out / "tuner" / "gru" / "trial_1"
    try:
        deadline = time.monotonic() + 180
        while not second.exists():  # the first trial finished and the second started
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the search never started a second trial"
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: no cleanup at all
        process.wait()
    first = out / "tuner" / "gru" / "trial_0" / "trial.json"
    assert json.loads(first.read_text())["status"] == "COMPLETED"
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    assert not (out / "comparison.json").exists()

    result = runner.invoke(app, [*argv, "--resume"])
    assert result.exit_code == 0, result.output
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before  # not redone
    ran = [line for line in result.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split()[1] for line in ran] == ["2/4", "3/4", "4/4"]
    assert_same_result(out, reference)


@pytest.mark.slow
def test_resume_refuses_another_dataset_or_space(tmp_path, runner):
    from forecaster.data.synthetic import make_series, write_csv

    reference, _ = reference_search()
    out = tmp_path / "search"
    out.mkdir()
    shutil.copy(reference / "search.json", out / "search.json")
    base = ["tune", str(tiny_csv()), *TINY, "--out", str(out), "--resume"]
    other = write_csv(make_series(rows=400, seed=6), tmp_path / "other.csv")
    result = runner.invoke(app, [*base[:1], str(other), *base[2:]])
    assert one_line_error(result).startswith(
        f"Error: cannot resume {out}: it was searched with a different data file (its SHA-256 "
        "checksum) ("
    )
    result = runner.invoke(app, [*base, "--units", "4:16"])
    assert one_line_error(result) == (
        f"Error: cannot resume {out}: it was searched with a different search space: units "
        "(4,8 then, 4,16 now); rerun with the original options, or start a new search with "
        "another --out"
    )
    result = runner.invoke(app, [*base, "--seed", "2"])
    assert "different --seed (1 then, 2 now)" in one_line_error(result)
    assert sorted(p.name for p in out.iterdir()) == ["search.json"]  # nothing run


@pytest.mark.slow
def test_time_budget_too_small_for_a_trial_of_each_cell(tmp_path, runner):
    out = tmp_path / "search"
    argv = ["tune", str(tiny_csv()), *TINY, "--out", str(out), "--budget", "1s"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1 and result.stdout == ""
    *progress, line = result.stderr.splitlines()
    assert [p.split()[:3] for p in progress] == [["trial", "1/4", "GRU"]]
    assert line.startswith("Error: --budget 1s ran out before any LSTM trial ran (a trial took ")
    assert line.endswith("or fewer --cells. Finished trials are kept: rerun with --resume")
    assert [k for k, v in trials_of(out).items() if v[0] == "COMPLETED"] == ["gru/0"]


@pytest.mark.slow
def test_time_budget_stops_new_trials_and_still_finishes(tmp_path, runner):
    out = tmp_path / "search"
    argv = ["tune", str(tiny_csv()), *TINY, "--cells", "gru", "--max-trials", "5"]
    result = runner.invoke(app, [*argv, "--out", str(out), "--budget", "1s"])
    assert result.exit_code == 0, result.output
    assert "The time budget ended the search after 1 trial(s) in " in result.stderr
    report = json.loads((out / "comparison.json").read_text())
    assert report["search"]["budget_spent"] is True
    assert report["search"]["trials"] == {"gru": 1}
    assert report["winner"] == "gru" and (out / "winner" / "model.keras").exists()


@pytest.mark.slow
def test_a_trial_running_into_the_deadline_stops_after_its_epoch(tmp_path):
    from forecaster.config import DataConfig
    from forecaster.tune.progress import SearchStatus
    from forecaster.tune.run import tune

    seen: list[SearchStatus] = []
    tune(
        tiny_csv(),
        DataConfig(targets=("temp",)),
        horizon=6,
        space=SpaceOverrides.from_options(cells="gru", windows="6", units="4", layers="1"),
        # The first trial starts at once; its first epoch (with tracing) outlasts half a second.
        config=TuneConfig(
            tuner="random", max_trials=1, max_epochs=5, patience=9, final_epochs=1, time_budget=0.5
        ),
        out=tmp_path / "search",
        on_status=seen.append,
    )
    assert {(s.epoch, s.epochs) for s in seen if s.phase == "search" and s.epoch} == {(1, 5)}
