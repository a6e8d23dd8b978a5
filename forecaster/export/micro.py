"""TensorFlow Lite Micro: run an exported file in its interpreter and measure its tensor arena.

`tflite-micro`'s Python package wraps the same C++ interpreter a microcontroller runs (reference
kernels, one arena allocated up front), so a file that loads and forecasts here has only ops and
tensor shapes TFLite Micro supports, and the arena it records is the RAM the device must set aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecaster.errors import ExportError
from forecaster.quiet import filtered_stderr

# Generous: a file the recording allocator cannot fit in this is far beyond a microcontroller.
_ARENA_LIMIT = 16 << 20
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass
class MicroRun:
    """The arena TFLite Micro allocated and its forecasts (scaled units) for the windows given."""

    arena_bytes: int
    forecast: np.ndarray


def run_micro(path: Path, windows: np.ndarray) -> MicroRun:
    """Forecast `windows` (n, window, features; scaled) one at a time in TFLite Micro."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise ExportError(
            "--runtime micro needs the tflite-micro package (wheels for Linux x86_64, Python "
            "3.11): pip install tflite-micro"
        ) from None
    lines: list[str] = []

    def keep(line: str) -> bool:
        lines.append(line)  # the interpreter's own lines: read here, not shown
        return False

    with filtered_stderr(keep):
        try:
            interpreter = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=_ARENA_LIMIT)
        except RuntimeError as exc:
            detail = next((s.strip() for s in lines if "failed" in s.lower()), str(exc))
            raise ExportError(f"TFLite Micro cannot load {path.name}: {detail}") from None
        given, taken = interpreter.get_input_details(0), interpreter.get_output_details(0)
        forecast = np.stack(
            [_invoke(interpreter, given, taken, window[None])[0] for window in windows]
        )
        interpreter.print_allocations()
    found = [int(m.group(1)) for line in lines if (m := _TOTAL.search(line))]
    if not found:
        raise ExportError("TFLite Micro did not report its arena; upgrade tflite-micro")
    return MicroRun(arena_bytes=found[-1], forecast=forecast)


def _invoke(interpreter: object, given: dict, taken: dict, x: np.ndarray) -> np.ndarray:
    dtype = np.dtype(given["dtype"])
    if dtype.kind in "iu":
        scale, zero = _scale(given)
        info = np.iinfo(dtype)
        x = np.clip(np.rint(x / scale + zero), info.min, info.max)
    interpreter.set_input(x.astype(dtype), 0)  # type: ignore[attr-defined]
    interpreter.invoke()  # type: ignore[attr-defined]
    y = interpreter.get_output(0)  # type: ignore[attr-defined]
    if np.dtype(taken["dtype"]).kind in "iu":
        scale, zero = _scale(taken)
        return (y.astype(np.float32) - zero) * scale
    return np.asarray(y, np.float32)


def _scale(detail: dict) -> tuple[float, int]:
    quantization = detail["quantization_parameters"]
    return float(quantization["scales"][0]), int(quantization["zero_points"][0])
