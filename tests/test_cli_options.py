"""Options several commands share, and the policy behind them that the library owns."""

from __future__ import annotations

import pytest
import typer

from forecaster.cli.app import app
from forecaster.errors import ConfigError
from forecaster.tune.config import Distributed, OptionUsageError, TuneConfig
from forecaster.tune.space import SpaceOverrides, format_hyperparameter, load_space
from tests.test_cli_data import one_line_error

DATA_OPTIONS = ["target", "features", "time_col", "dedupe", "max_gap", "bad_rows", "id_col"]


@pytest.mark.parametrize("path", [["data", "inspect"], ["train"], ["tune"], ["run"]], ids=" ".join)
def test_the_data_options_follow_the_file_in_every_command_that_reads_one(path):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    names = [p.name for p in command.params]
    assert names[:8] == ["file", *DATA_OPTIONS]
    dedupe = next(p for p in command.params if p.name == "dedupe")
    assert dedupe.default == "error"


def test_data_options_reach_the_command_as_one_data_config(runner, write_text):
    path = write_text("time,x\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n")
    result = runner.invoke(app, ["data", "inspect", str(path), "--dedupe", "last", "-t", "x"])
    assert result.exit_code == 0, result.output
    assert "rows on time grid" in result.stdout


def test_max_accuracy_loss_takes_up_to_1000_percent(runner, tmp_path):
    missing = tmp_path / "absent"
    assert one_line_error(
        runner.invoke(app, ["export", str(missing), "--max-accuracy-loss", "1500%"]), code=2
    ) == ("Error: --max-accuracy-loss must be between 0% and 1000%, not '1500%'")
    assert one_line_error(
        runner.invoke(app, ["export", str(missing), "--max-accuracy-loss", "150%"])
    ).startswith(f"Error: {missing} does not exist")


def test_a_whole_tune_keeps_a_quarter_of_its_budget_for_retraining():
    config = TuneConfig.within(480, tuner="random", seed=3)
    assert (config.search_budget, config.retrain_budget) == (360, 120)
    assert (config.tuner, config.seed) == ("random", 3)
    unlimited = TuneConfig.within(None)
    assert unlimited.search_budget is None and unlimited.retrain_budget is None


def test_options_override_the_space_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("units = [4, 8]\nlayers = [1, 2]\n")
    options = SpaceOverrides.from_options(units="16:32")
    assert load_space(None, options) is options
    merged = load_space(path, options)
    assert (merged.units, merged.layers) == ((16, 32), (1, 2))


def test_oracle_needs_a_role():
    assert Distributed.from_options(None, None) is None
    with pytest.raises(OptionUsageError, match="--oracle needs --distributed") as caught:
        Distributed.from_options(None, "127.0.0.1:9000")
    assert isinstance(caught.value, ConfigError) and caught.value.option == "--oracle"
    worker = Distributed.from_options("worker", "127.0.0.1:9000", "90s")
    assert worker == Distributed("worker", "127.0.0.1", 9000, 90.0)


def test_hyperparameters_print_floats_to_three_digits():
    assert [format_hyperparameter(v) for v in (0.00123456, 8, "last", 0.0)] == [
        "0.00123",
        "8",
        "last",
        "0",
    ]
