"""On-device prediction from an exported bundle, with numpy and a LiteRT interpreter only.

Nothing here may import TensorFlow, Keras or scikit-learn at module level: a device installs
forecaster without the training extra. The interpreter comes from `ai_edge_litert`, falling back
to `tflite_runtime`, then to `tensorflow.lite` where TensorFlow happens to be installed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.bundle import Bundle
from forecaster.calendar import calendar_features
from forecaster.errors import BundleError
from forecaster.files import sha256_of

# Windows per interpreter call when the model's batch can be resized: large enough to amortise
# the call, small enough to keep the activations in cache.
DEFAULT_CHUNK = 256


def interpreter_class() -> Any:
    """The first LiteRT interpreter class that imports on this machine."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tensorflow.lite import Interpreter

        return Interpreter
    except ImportError:
        raise BundleError(
            "no LiteRT interpreter is installed; pip install ai-edge-litert"
        ) from None


@dataclass(frozen=True)
class _Quant:
    """Affine int8 quantization of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray, dtype: Any) -> np.ndarray:
        info = np.iinfo(dtype)
        q = np.rint(x / self.scale + self.zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * self.scale


class Predictor:
    """Runs an exported model: scale, window, invoke in batches, inverse-scale."""

    def __init__(self, bundle: Bundle, model_path: Path, *, num_threads: int | None = None):
        self.bundle = bundle
        self.model_path = model_path
        self.num_threads = num_threads or os.cpu_count() or 1
        try:
            self._interpreter = interpreter_class()(
                model_path=str(model_path), num_threads=self.num_threads
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(
                f"{model_path} cannot be loaded by LiteRT ({exc}); re-export the bundle"
            ) from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._in_quant = _quant_of(self._input)
        self._out_quant = _quant_of(self._output)
        self._resizable = bool(self._input["shape_signature"][0] == -1)
        self._batch = int(self._input["shape"][0])

    @classmethod
    def load(cls, directory: str | Path, *, num_threads: int | None = None) -> Predictor:
        """Open a bundle directory: check its schema and the model file's checksum."""
        directory = Path(directory)
        bundle = Bundle.load(directory)
        if bundle.export is None:
            raise BundleError(
                f"{directory} is a training run, not an exported bundle; run "
                f"`forecaster export {directory}` first"
            )
        model_path = directory / bundle.export.file
        if not model_path.exists():
            raise BundleError(f"{model_path} is missing; re-export the bundle")
        if sha256_of(model_path) != bundle.export.sha256:
            raise BundleError(
                f"{model_path} does not match the checksum in bundle.json (the file was changed "
                "or damaged); re-export the bundle or copy it again"
            )
        return cls(bundle, model_path, num_threads=num_threads)

    @property
    def window(self) -> int:
        """Input steps per window."""
        return self.bundle.model.window

    @property
    def horizon(self) -> int:
        """Steps forecast per window."""
        return self.bundle.model.horizon

    def predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """Forecasts in scaled units for windows `x` of shape (n, window, features)."""
        n = len(x)
        out = np.empty((n, *self._output["shape"][1:]), dtype=np.float32)
        if n == 0:
            return out
        chunk = min(n, DEFAULT_CHUNK) if self._resizable else self._batch
        if self._resizable and chunk != self._batch:
            self._resize(chunk)
        for start in range(0, n, chunk):
            part = x[start : start + chunk]
            if len(part) < chunk:
                # Padding the last chunk is cheaper than resizing the tensors for it.
                part = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), axis=0)])
            out[start : start + chunk] = self._invoke(part)[: n - start]
        return out

    def forecast_windows(self, x: np.ndarray, last_times: np.ndarray | None = None) -> np.ndarray:
        """Forecasts (n, horizon, targets) in original units for windows (n, window, features).

        `last_times` (datetime64, one per window: the time of its last row) is needed when the
        model uses calendar features.
        """
        inputs = self.model_inputs(x, last_times)
        return self.bundle.scaler.inverse(self.predict_scaled(inputs), self.bundle.data.targets)

    def model_inputs(self, x: np.ndarray, last_times: np.ndarray | None = None) -> np.ndarray:
        """Scaled windows with the calendar channels the model was trained with appended."""
        scaled = self.bundle.scaler.transform(x)
        parts = self.bundle.data.calendar
        if not parts:
            return scaled
        if last_times is None or self.bundle.data.step_seconds is None:
            raise BundleError(
                "this model uses calendar features: pass the time of each window's last row"
            )
        step = round(self.bundle.data.step_seconds * 1e9)
        offsets = (np.arange(self.window) - (self.window - 1)) * step
        stamps = np.asarray(last_times, "datetime64[ns]").astype(np.int64)[:, None] + offsets
        return np.concatenate([scaled, calendar_features(stamps, parts)], axis=-1)

    def forecast(
        self, values: np.ndarray, origins: np.ndarray | None = None, times: np.ndarray | None = None
    ) -> np.ndarray:
        """Forecasts in original units from feature rows `values` (rows, features).

        `origins` are row indices of the first forecast step (default: one origin after the last
        row); each needs `window` rows before it. `times` (datetime64 per row) is needed by
        models with calendar features.
        """
        if origins is None:
            origins = np.array([len(values)])
        windows = np.stack([values[o - self.window : o] for o in origins])
        last_times = None if times is None else np.asarray(times)[np.asarray(origins) - 1]
        return self.forecast_windows(windows, last_times)

    def _resize(self, batch: int) -> None:
        shape = [batch, *self._input["shape"][1:]]
        self._interpreter.resize_tensor_input(self._input["index"], shape)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = batch

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if self._in_quant is not None:
            x = self._in_quant.quantize(x, self._input["dtype"])
        self._interpreter.set_tensor(self._input["index"], x.astype(self._input["dtype"]))
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(self._output["index"])
        return self._out_quant.dequantize(y) if self._out_quant is not None else y

    def ops(self) -> dict[str, int]:
        """How many times each operator appears in the model's main graph, by name.

        Read with a second interpreter that applies no delegate, which would hide the ops.
        """
        kind = type(self._interpreter)
        resolver = getattr(sys.modules[kind.__module__], "OpResolverType", None)
        options = (
            {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
            if resolver is not None
            else {}
        )
        plain = kind(model_path=str(self.model_path), **options)
        counts: dict[str, int] = {}
        for op in plain._get_ops_details():
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        return counts

    def describe(self) -> dict[str, Any]:
        """Input/output tensors and interpreter settings, for `forecaster inspect`."""
        return {
            "input": _tensor_summary(self._input),
            "output": _tensor_summary(self._output),
            "resizable_batch": self._resizable,
            "num_threads": self.num_threads,
        }


def _quant_of(detail: dict[str, Any]) -> _Quant | None:
    if np.dtype(detail["dtype"]).kind not in "iu":
        return None
    scale, zero_point = detail["quantization"]
    return _Quant(float(scale), int(zero_point))


def _tensor_summary(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [int(v) for v in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }
