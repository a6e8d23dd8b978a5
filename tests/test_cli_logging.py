"""TensorFlow's own log lines stay off the terminal unless asked for: the real CLI, in processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TENSORFLOW_TEXT = ("absl", "oneDNN", "retracing", "tensorflow/", "cpu_feature_guard", "I0000")


def forecaster(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A terminal's environment: no TensorFlow log settings of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "FORECASTER_"))}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "forecaster", *(str(a) for a in args)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done


def only_forecasters_lines(stderr: str) -> None:
    for text in TENSORFLOW_TEXT:
        assert text not in stderr, stderr
    for line in filter(str.strip, stderr.splitlines()):
        # What forecaster itself writes on stderr: its warnings (the model vs the baselines).
        assert line.startswith(("Warning: ", "WARNING: the model does not beat")), line


def test_train_evaluate_and_export_show_no_tensorflow_lines(tmp_path):
    from forecaster.data.synthetic import make_series, write_csv

    csv = write_csv(make_series(rows=300, seed=4), tmp_path / "sensors.csv")
    tiny = ["--window", "12", "--horizon", "3", "--units", "4", "--epochs", "1"]
    trained = forecaster("train", csv, "-t", "temp", *tiny, "--out", "run", cwd=tmp_path)
    only_forecasters_lines(trained.stderr)
    assert "Trained GRU" in trained.stdout
    only_forecasters_lines(forecaster("evaluate", "run", cwd=tmp_path).stderr)
    exported = forecaster("export", "run", "--quantize", "dynamic", cwd=tmp_path)
    only_forecasters_lines(exported.stderr)  # the converter child's lines included
    assert "shipped" in exported.stdout.lower()

    # Asked for, they are there (this TensorFlow build writes some at start-up): it is forecaster
    # that keeps them away, in the converter child too.
    verbose = forecaster("--verbose", "evaluate", "run", cwd=tmp_path)
    started = tensorflow_lines(verbose.stderr)
    if not started:
        pytest.skip("this TensorFlow writes nothing at start-up")
    child = forecaster(
        "--verbose", "export", "run", "--quantize", "none", "--out", "again", cwd=tmp_path
    )
    assert tensorflow_lines(child.stderr) > started  # the parent's and the child's


def tensorflow_lines(stderr: str) -> int:
    from forecaster.quiet import is_tensorflow_line

    return sum(map(is_tensorflow_line, stderr.splitlines()))


RETRACING = """
import sys
from forecaster.quiet import quiet_tensorflow
if sys.argv[1] == "quiet":
    quiet_tensorflow()  # what the command line does before any command runs
import tensorflow as tf
f = tf.function(lambda x: x * 2)
for n in range(1, 8):
    f(tf.constant([1.0] * n))  # a new shape each call: tf.function warns about retracing
print("done")
"""


def test_retracing_warnings_are_kept_off_stderr(tmp_path):
    script = tmp_path / "retrace.py"
    script.write_text(RETRACING)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "FORECASTER_"))}
    env["PYTHONPATH"] = str(ROOT)
    runs = {
        mode: subprocess.run(
            [sys.executable, str(script), mode], capture_output=True, text=True, env=env, check=True
        )
        for mode in ("quiet", "loud")
    }
    assert "triggered tf.function retracing" in runs["loud"].stderr  # TensorFlow does warn
    assert runs["quiet"].stdout == "done\n"
    assert runs["quiet"].stderr == ""
