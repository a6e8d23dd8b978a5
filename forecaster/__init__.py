"""Forecast sensor time series with GRU/LSTM models and ship them to small devices.

The Python API mirrors the command line; names are imported on first use so that
`import forecaster` stays light.
"""

from __future__ import annotations

import os
from typing import Any

from forecaster import quiet as _quiet

__version__ = "0.1.0"
# The name on the package index and of the wheel: `forecaster` is taken on PyPI by an unrelated
# project. The import package and the command stay `forecaster`.
DISTRIBUTION = "sensor-forecaster"
# The file `make wheel` builds, and a device installs.
WHEEL = f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"

# TensorFlow's C++ log lines are not actionable for users (real errors still raise); this must be
# set before TensorFlow first loads. forecaster.quiet says what else the command line silences.
_quiet.set_defaults()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_API = {
    "load_csv": "forecaster.data.load",
    "DataConfig": "forecaster.config",
    "SplitConfig": "forecaster.config",
    "WindowConfig": "forecaster.config",
    "ModelConfig": "forecaster.config",
    "TrainConfig": "forecaster.config",
    "prepare": "forecaster.model.windows",
    "train": "forecaster.runs.train",
    "evaluate": "forecaster.runs.evaluate",
    "Bundle": "forecaster.bundle",
    "ForecasterError": "forecaster.errors",
}

__all__ = [
    "Bundle",
    "DataConfig",
    "ForecasterError",
    "ModelConfig",
    "SplitConfig",
    "TrainConfig",
    "WindowConfig",
    "evaluate",
    "load_csv",
    "prepare",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'forecaster' has no attribute {name!r}")
