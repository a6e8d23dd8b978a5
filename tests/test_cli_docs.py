"""Every command has help with an example and a section in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from forecaster.cli.app import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [
        (*prefix, c.name or getattr(c.callback, "__name__", "")) for c in group.registered_commands
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name is not None
        paths += command_paths(sub.typer_instance, (*prefix, sub.name))
    return paths


COMMANDS = command_paths(app)


def test_the_expected_commands_exist():
    names = {" ".join(p) for p in COMMANDS}
    assert {"data inspect", "train", "evaluate", "export", "predict", "inspect", "bench"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_an_example_and_readme_a_section(runner, path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example: forecaster " + " ".join(path) in " ".join(result.stdout.split())
    assert f"### `forecaster {' '.join(path)}" in README
