"""Heavy libraries stay out of `forecaster --help` and of the data commands."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "keras_tuner", "sklearn", "matplotlib", "statsmodels")


def modules_loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def heavy_in(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def test_help_imports_no_heavy_module():
    loaded = modules_loaded_after(
        "from typer.testing import CliRunner\n"
        "from forecaster.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output"
    )
    assert "forecaster.cli.app" in loaded
    assert heavy_in(loaded) == set()


def test_help_does_not_even_import_pandas():
    loaded = modules_loaded_after("import forecaster.cli.app")
    assert "pandas" not in loaded


def test_data_inspect_imports_no_heavy_module(tmp_path):
    from forecaster.data.synthetic import make_series, write_csv

    path = write_csv(make_series(rows=50), tmp_path / "s.csv")
    loaded = modules_loaded_after(
        "from typer.testing import CliRunner\n"
        "from forecaster.cli.app import app\n"
        f"result = CliRunner().invoke(app, ['data', 'inspect', {str(path)!r}])\n"
        "assert result.exit_code == 0, result.output"
    )
    assert "pandas" in loaded  # the probe really ran the command
    assert heavy_in(loaded) == set()
