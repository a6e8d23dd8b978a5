"""Fitting the baselines of many series at once, spread over child processes.

Holt-Winters' fit takes about a second a series and holds the interpreter lock, so a fleet of
1,000 series would spend a quarter of an hour on one core. Each child is
`python -m forecaster.evaluation.fit_many IN OUT SEASONS`: it reads its series' training values
from an .npz (no pickled objects allowed) and writes the fitted numbers as JSON, the form
bundle.json keeps them in, so nothing but numbers crosses between processes and a caller's
script needs no `if __name__ == "__main__"` guard.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from forecaster.errors import DataError, ForecasterError
from forecaster.evaluation.rolling import FittedBaselines
from forecaster.records import from_plain, to_plain

# Below this many series a child's start (importing statsmodels, ~2 s) costs more than it saves.
MIN_SERIES_PER_CHILD = 8


def fit_many(
    inputs: list[np.ndarray], seasons: tuple[int, ...], workers: int = 1
) -> list[FittedBaselines | str]:
    """Each series' baselines fitted on its training values (rows, targets), or why not."""
    workers = max(1, min(workers, len(inputs) // MIN_SERIES_PER_CHILD))
    if workers == 1:
        return [_fit(values, seasons) for values in inputs]
    bounds = np.linspace(0, len(inputs), workers + 1).astype(int)
    with tempfile.TemporaryDirectory(prefix="forecaster-baselines-") as tmp:
        work = Path(tmp)
        children = []
        for k, (start, stop) in enumerate(itertools.pairwise(bounds)):
            source, result = work / f"in-{k}.npz", work / f"out-{k}.json"
            np.savez(source, *inputs[start:stop])
            command = [
                sys.executable,
                "-m",
                "forecaster.evaluation.fit_many",
                str(source),
                str(result),
                ",".join(map(str, seasons)),
            ]
            children.append((subprocess.Popen(command, stderr=subprocess.PIPE, text=True), result))
        found: list[FittedBaselines | str] = []
        for child, result in children:
            _, stderr = child.communicate()
            if child.returncode != 0:
                last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
                raise ForecasterError(f"fitting the baselines failed in a child process: {last}")
            for plain in json.loads(result.read_text(encoding="utf-8")):
                found.append(
                    plain if isinstance(plain, str) else from_plain(FittedBaselines, plain)
                )
    return found


def _fit(values: np.ndarray, seasons: tuple[int, ...]) -> FittedBaselines | str:
    try:
        return FittedBaselines.fit(values, seasons)
    except DataError as exc:
        return str(exc)


def _main(source: str, result: str, seasons: str) -> None:
    steps = tuple(int(s) for s in seasons.split(","))
    with np.load(source, allow_pickle=False) as arrays:
        inputs = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    fitted = [_fit(values, steps) for values in inputs]
    Path(result).write_text(json.dumps(to_plain(fitted)), encoding="utf-8")


if __name__ == "__main__":
    _main(*sys.argv[1:4])
