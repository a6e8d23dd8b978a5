"""What a newcomer meets first: the package name, help, versions and errors, through the CLI."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

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
    result = runner.invoke(app, ["train", str(sensor_csv(rows=200)), "-t", "temp"])
    line = one_line_error(result)
    assert line.startswith("Error: this command needs ")
    assert line.endswith(
        f'part of the training extra, which is not installed here; install it: pip install "'
        f'{WHEEL}[train]" (or, in a checkout, pip install ".[train]")'
    )
