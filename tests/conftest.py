"""Shared fixtures: seeded randomness, generated sensor CSVs and a CLI runner."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from typer.testing import CliRunner

from forecaster.data.synthetic import make_series, write_csv

# No timing limits in unit tests: these machines are noisy and first calls import heavy modules.
settings.register_profile("forecaster", deadline=None, derandomize=True)
settings.load_profile("forecaster")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def sensor_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write a generated sensor CSV; keyword arguments go to `make_series`."""

    def make(name: str = "sensors.csv", **kwargs: object) -> Path:
        return write_csv(make_series(**kwargs), tmp_path / name)  # type: ignore[arg-type]

    return make


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a small CSV from literal text."""

    def make(text: str, name: str = "input.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make
