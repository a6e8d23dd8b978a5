"""The README's Python API example runs as written (with one epoch, to stay quick)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_api_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert found, "the README's Python API section has no python example"
    return found.group(1)


@pytest.mark.slow
def test_the_python_api_example_runs(tmp_path):
    code = python_api_example()
    assert "epochs=" in code
    (tmp_path / "data").mkdir()
    for sample in (ROOT / "data").glob("*.csv"):
        shutil.copy(sample, tmp_path / "data" / sample.name)
    quick = re.sub(r"epochs=\d+", "epochs=1", code)
    done = subprocess.run(
        [sys.executable, "-c", quick], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dirs = list((tmp_path / "models").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "bundle.json").exists()
    assert (run_dirs[0] / "metrics.json").exists()
