"""Every command has help with an example, a section in docs/cli.md, and a link in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from forecaster.cli import docs
from forecaster.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_MD = ROOT / "docs" / "cli.md"


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
    assert {"run", "data inspect", "train", "evaluate", "tune", "export"} <= names
    assert {"predict", "inspect", "bench"} <= names


def test_the_reference_walks_every_command():
    assert sorted(docs.command_paths()) == sorted(COMMANDS)


def test_docs_cli_md_is_up_to_date():
    assert CLI_MD.exists(), "docs/cli.md is missing; run `make docs` to write it"
    assert CLI_MD.read_text(encoding="utf-8") == docs.render(), (
        "docs/cli.md differs from the commands' help; run `make docs` and commit docs/cli.md"
    )


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_an_example_and_docs_a_section(runner, path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    example = "Example: forecaster " + " ".join(path)
    assert example in " ".join(result.stdout.split())
    reference = CLI_MD.read_text(encoding="utf-8")
    assert f"\n### `forecaster {' '.join(path)}`\n" in reference
    assert f"\nforecaster {' '.join(path)} " in reference  # the example, in a console block


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_readme_command_table_links_every_command(path):
    assert f"](docs/cli.md#{docs.anchor(path)})" in README


def test_the_reference_lists_every_option_with_its_default():
    reference = docs.render()
    assert "| `--window N` | `48` | Input steps per window, as in train. |" in reference
    assert "| `--budget DURATION` | `10m` |" in reference
    assert "| `--calendar` | off |" in reference
    assert "| `FILE` | required |" in reference
    assert "**Search space**" in reference  # tune's options, grouped by their help panels


def test_make_docs_writes_the_reference(tmp_path):
    target = tmp_path / "cli.md"
    docs.main([str(target)])
    assert target.read_text(encoding="utf-8") == docs.render()
