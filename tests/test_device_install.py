"""The device install: the wheel, without the training extra, runs `predict` on a real bundle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forecaster import DISTRIBUTION, WHEEL, __version__
from forecaster.config import DataConfig, ModelConfig, TrainConfig, WindowConfig

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    # Nothing of the checkout on the path: the device has only what the wheel installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=False, env=env, **kwargs
    )


def test_core_install_predicts_without_tensorflow(tmp_path):
    from forecaster.data.synthetic import make_series, write_csv
    from forecaster.export.ship import export
    from forecaster.runs.train import train

    csv = write_csv(make_series(rows=400, seed=7), tmp_path / "sensors.csv")
    outcome = train(
        csv,
        DataConfig(targets=("temp",)),
        window=WindowConfig(24, 6),
        model=ModelConfig("gru", units=4),
        training=TrainConfig(epochs=1),
        out=tmp_path / "run",
    )
    bundle = export(outcome.run_dir, quantize="int8").bundle_dir

    # What `make wheel` does, from a copy of the sources (a build writes into the tree it builds):
    # the device gets this one file, not the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "forecaster", source / "forecaster", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    built = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, source)
    assert built.returncode == 0, built.stderr[-2000:]
    assert [p.name for p in dist.iterdir()] == [WHEEL]

    venv = tmp_path / "device"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    pip = run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", dist / WHEEL)
    assert pip.returncode == 0, pip.stderr[-2000:]
    shown = run(venv / "bin" / "python", "-m", "pip", "show", DISTRIBUTION)
    assert f"Name: {DISTRIBUTION}" in shown.stdout and f"Version: {__version__}" in shown.stdout
    version = run(venv / "bin" / "forecaster", "--version")
    assert version.stdout == f"forecaster {__version__}\n", version.stderr
    assert run(venv / "bin" / "python", "-c", "import tensorflow").returncode != 0
    assert run(venv / "bin" / "python", "-c", "import sklearn").returncode != 0

    out = tmp_path / "preds.csv"
    done = run(venv / "bin" / "forecaster", "predict", bundle, csv, "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "XNNPACK" not in done.stderr  # LiteRT's start-up line is not for users
    lines = out.read_text().splitlines()
    intervals = "temp_lower_80,temp_upper_80,temp_lower_95,temp_upper_95"
    assert lines[0] == f"origin,timestamp,step,temp,{intervals}"
    assert len(lines) == 1 + 6
    shown = run(venv / "bin" / "forecaster", "inspect", bundle)
    assert shown.returncode == 0, shown.stderr
    assert "int8" in shown.stdout
