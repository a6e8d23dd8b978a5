"""The names of the files and folders forecaster writes, in one place.

A run directory (`forecaster train`), a search directory (`forecaster tune`), a bundle
(`forecaster export`) and the main job's output directory (`forecaster run`) are read back by
later stages and by the report, so every stage spells a name the same way by importing it here.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODELS_DIR = Path("models")

# A run directory: one trained model, evaluated on its test part.
KERAS_MODEL = "model.keras"
METRICS = "metrics.json"
HISTORY = "history.csv"
LOSS_PNG = "loss.png"
FORECAST_PNG = "forecast.png"
ERROR_BY_STEP_PNG = "error_by_step.png"
# A run over a fleet of series: per-series and pooled scores, their picture and a short report.
FLEET_METRICS = "fleet_metrics.json"
FLEET_MASE_PNG = "fleet_mase.png"
FLEET_REPORT_MD = "fleet.md"
# Where the training CSV is on this machine: kept beside the run, so that `evaluate` and `export`
# can read it again, and never copied into a bundle (bundle.json holds its name and SHA-256).
TRAINING_FILE = "training_file.json"

# A bundle: what ships to the device (bundle.json itself is named in forecaster.bundle).
BUNDLE_DIR = "bundle"
TFLITE_MODEL = "model.tflite"

# A search directory: Keras Tuner's files, the retrained best of each cell, the comparison.
SEARCH_FILE = "search.json"
TUNER_DIR = "tuner"
WINNER_DIR = "winner"
RUNNER_UP_DIR = "runner_up"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"

# The main job's output directory.
JOB_STATE = "run.json"
SEARCH_DIR = "search"
DATA_SUMMARY = "data_summary.json"
DEVICE_CHECK = "device_check.json"
TEST_PREDICTIONS = "test_predictions.csv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def suffixed(name: str, suffix: str) -> str:
    """`metrics.json` with suffix `_july` is `metrics_july.json`: an evaluation on another file."""
    stem, dot, extension = name.rpartition(".")
    return f"{stem}{suffix}{dot}{extension}"
