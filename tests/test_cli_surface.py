"""What a newcomer meets first: the package name, help, versions and errors, through the CLI."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from forecaster import DISTRIBUTION, WHEEL, __version__
from forecaster.cli.app import app
from tests.test_cli_data import one_line_error

ROOT = Path(__file__).resolve().parent.parent


def test_the_distribution_name_is_not_the_taken_one():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "sensor-forecaster"
    assert project["version"] == __version__
    assert project["scripts"] == {"forecaster": "forecaster.cli:main"}
    assert f"sensor_forecaster-{__version__}-py3-none-any.whl" == WHEEL
    readme = (ROOT / "README.md").read_text()
    assert "pip install forecaster " not in readme and "pip install forecaster\n" not in readme
    assert f"pip install {WHEEL}" in readme


def test_training_without_the_training_extra_names_the_install(runner, sensor_csv, monkeypatch):
    for name in ("tensorflow", "keras", "keras_tuner", "sklearn", "statsmodels", "matplotlib"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails as on a device
    result = runner.invoke(app, ["train", str(sensor_csv(rows=400)), "-t", "temp"])
    line = one_line_error(result)
    assert line.startswith("Error: this command needs ")
    assert line.endswith(
        f'part of the training extra, which is not installed here; install it: pip install "'
        f'{WHEEL}[train]" (or, in a checkout, pip install ".[train]")'
    )


def usage_error(result) -> str:
    """The one line a usage error prints: exit code 2, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in lines[0]
    return lines[0]


def help_at_80(runner, *path: str) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


def command_paths() -> list[tuple[str, ...]]:
    import typer

    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = [()]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append((name,))
        paths += [(name, sub) for sub in getattr(command, "commands", {})]
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "forecaster")
def test_help_fits_80_columns_without_cutting_anything(runner, path):
    import typer

    text = help_at_80(runner, *path)
    widths = {len(line) for line in text.splitlines()}
    assert max(widths) == 80  # the panels fill the width asked for: 80 columns were used
    assert "…" not in text
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    words = set(text.replace("│", " ").split())
    for param in command.params:
        for opt in param.opts:
            assert opt in words or not opt.startswith("-"), f"{opt} is cut"
    for pythonic in ("<bool>", "<list", "<str>", "<int", "<float>", "<path>", "{file}", "[x>="):
        assert pythonic not in text


@pytest.mark.parametrize("path", [p for p in command_paths() if p and p != ("data",)], ids=" ".join)
def test_help_examples_are_whole_commands_on_their_own_line(runner, path):
    lines = [line.strip() for line in help_at_80(runner, *path).splitlines()]
    at = lines.index("Example:")
    assert lines[at + 1] == ""
    example = lines[at + 2]
    assert example.startswith("forecaster " + " ".join(path) + " ")
    assert lines[at + 3] == ""  # not continued on the next line


def test_help_groups_options_and_lists_the_main_job_first(runner):
    text = help_at_80(runner)
    assert text.index(" run ") < text.index(" train ") < text.index(" predict ")
    assert "The main job" in text and "On the device" in text
    panels = [line for line in help_at_80(runner, "run").splitlines() if line.startswith("╭─")]
    assert [p.split()[1] for p in panels] == [
        "Arguments",
        "Data",
        "Search",
        "Export",
        "Output",
    ]
    assert "Usage: forecaster run [OPTIONS] FILE" in help_at_80(runner, "run")
    assert "Usage: forecaster predict [OPTIONS] BUNDLE FILE..." in help_at_80(runner, "predict")


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"forecaster {__version__}\n")


@pytest.mark.parametrize("path", [[], ["data"], ["train"], ["predict"]], ids=str)
def test_a_bare_command_shows_its_help(runner, path):
    result = runner.invoke(app, path, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith(f"Usage: forecaster {' '.join(path)}".rstrip())
    assert result.stdout == help_at_80(runner, *path)
    assert result.stderr == ""


def test_a_bad_choice_is_one_plain_line(runner, sensor_csv):
    line = usage_error(
        runner.invoke(app, ["data", "inspect", str(sensor_csv()), "--dedupe", "first"])
    )
    assert line == (
        "Error: Invalid value for '--dedupe': 'first' is not one of 'error', 'mean', 'last'; "
        "see `forecaster data inspect --help`"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--epochs", "0"], "Invalid value for '--epochs': must be at least 1, not 0"),
        (["--layers", "5"], "Invalid value for '--layers': must be between 1 and 4, not 5"),
        (["--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_options_are_one_line_usage_errors(runner, sensor_csv, args, expected):
    line = usage_error(runner.invoke(app, ["train", str(sensor_csv()), "-t", "temp", *args]))
    assert line.startswith(f"Error: {expected}")
    assert line.endswith("see `forecaster train --help`")


def test_an_unknown_command_suggests_the_right_one(runner):
    assert usage_error(runner.invoke(app, ["trian"])) == (
        "Error: No such command 'trian'. Did you mean 'train'? See `forecaster --help`."
    )


@pytest.mark.parametrize("command", ["train", "tune", "run"])
def test_a_missing_target_is_a_usage_error_naming_the_columns(runner, sensor_csv, command):
    path = sensor_csv()
    assert usage_error(runner.invoke(app, [command, str(path)])) == (
        f"Error: no target column chosen for {path}; its numeric columns are: temp, humidity, "
        "load. Pass --target with one of them, e.g. --target temp"
    )


def test_a_missing_target_in_a_missing_file_reports_the_file(runner, tmp_path):
    path = tmp_path / "absent.csv"
    assert one_line_error(runner.invoke(app, ["train", str(path)])) == (
        f"Error: {path} does not exist; check the path"
    )


def test_predict_on_a_directory_that_does_not_exist(runner, sensor_csv, tmp_path):
    missing = tmp_path / "bundel"
    assert one_line_error(runner.invoke(app, ["predict", str(missing), str(sensor_csv())])) == (
        f"Error: {missing} does not exist; pass the bundle directory written by "
        "`forecaster export` (check the path)"
    )
    assert one_line_error(runner.invoke(app, ["evaluate", str(missing)])) == (
        f"Error: {missing} does not exist; check the path (pass the directory written by "
        "`forecaster train` or `forecaster export`)"
    )


def test_a_file_shorter_than_a_window_says_so_with_the_numbers(runner, sensor_csv, tmp_path):
    path = sensor_csv(rows=19)
    result = runner.invoke(app, ["train", str(path), "-t", "temp", "--out", str(tmp_path / "r")])
    assert one_line_error(result) == (
        f"Error: {path} has 19 rows, fewer than the window + horizon = 48 + 12 = 60 rows one "
        "training example needs; pass a file with at least 400 rows (each part of --split "
        "0.7,0.15,0.15 needs one), or a smaller --window or --horizon"
    )
