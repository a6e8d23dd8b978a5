"""On-device prediction from an exported bundle, with numpy and a LiteRT interpreter only.

Nothing here may import TensorFlow, Keras or scikit-learn at module level: a device installs
forecaster without the training extra. The interpreter comes from `ai_edge_litert`, falling back
to `tflite_runtime`, then to `tensorflow.lite` where TensorFlow happens to be installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.bundle import Bundle
from forecaster.cpus import usable_cpus
from forecaster.data.calendar import calendar_features
from forecaster.data.fleet import series_channels
from forecaster.data.lags import history_rows, lag_channels
from forecaster.device.fleet import FleetTables
from forecaster.errors import BundleError
from forecaster.files import sha256_of
from forecaster.intervals import IntervalForecast, with_intervals
from forecaster.quiet import filtered_stderr

# Windows per interpreter call when the model's batch can be resized: large enough to amortise
# the call, small enough to keep the activations in cache.
DEFAULT_CHUNK = 256
# Fewest windows worth handing to another thread: below this the hand-off costs more than it saves.
MIN_WINDOWS_PER_THREAD = 32
# Windows scaled and forecast at a time: the model's inputs are several copies of the windows,
# which for a large batch would cost more memory than everything else predict holds.
WINDOWS_AT_ONCE = 4096
# A fleet bundle's series: one id for every window, or an id per window.
SeriesArg = str | Sequence[str] | np.ndarray | None


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


class _Runner:
    """A single-threaded interpreter and its tensors; one thread uses it at a time."""

    def __init__(self, model_path: Path):
        try:
            # LiteRT's C++ logger writes "INFO: Created TensorFlow Lite XNNPACK delegate" straight
            # to file descriptor 2, with no Python switch.
            with filtered_stderr(lambda line: not line.startswith("INFO: ")):
                self.interpreter = interpreter_class()(model_path=str(model_path), num_threads=1)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(
                f"{model_path} cannot be loaded by LiteRT ({exc}); re-export the bundle"
            ) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.in_quant = _quant_of(self.input)
        self.out_quant = _quant_of(self.output)
        self.resizable = bool(self.input["shape_signature"][0] == -1)
        self.batch = int(self.input["shape"][0])

    def run(self, x: np.ndarray, out: np.ndarray) -> None:
        """Forecast windows `x` into `out`, in chunks of the interpreter's batch."""
        n = len(x)
        chunk = min(n, DEFAULT_CHUNK) if self.resizable else self.batch
        if self.resizable and chunk != self.batch:
            self._resize(chunk)
        for start in range(0, n, chunk):
            part = x[start : start + chunk]
            if len(part) < chunk:
                # Padding the last chunk is cheaper than resizing the tensors for it.
                part = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), axis=0)])
            out[start : start + chunk] = self._invoke(part)[: n - start]

    def _resize(self, batch: int) -> None:
        shape = [batch, *self.input["shape"][1:]]
        self.interpreter.resize_tensor_input(self.input["index"], shape)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = batch

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if self.in_quant is not None:
            x = self.in_quant.quantize(x, self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"]))
        self.interpreter.invoke()  # releases the GIL, so runners on other threads overlap
        y = self.interpreter.get_tensor(self.output["index"])
        return self.out_quant.dequantize(y) if self.out_quant is not None else y


class Predictor:
    """Runs an exported model: scale, window, invoke in batches, inverse-scale.

    `num_threads` (default: every core) splits large batches across that many single-threaded
    interpreters. Measured on a 2-core CPU, one interpreter with two threads was slower than one
    with a single thread at every batch size (the recurrent loop's ops are too small to share),
    so the cores share the windows instead.
    """

    def __init__(self, bundle: Bundle, model_path: Path, *, num_threads: int | None = None):
        self.bundle = bundle
        self.model_path = model_path
        self.num_threads = num_threads or usable_cpus()
        self._runners = [_Runner(model_path)]
        self._pool: ThreadPoolExecutor | None = None
        first = self._runners[0]
        self._input, self._output = first.input, first.output
        self.fleet = (
            FleetTables(bundle.fleet, bundle.data.features, bundle.data.targets)
            if bundle.fleet is not None
            else None
        )

    @classmethod
    def load(cls, directory: str | Path, *, num_threads: int | None = None) -> Predictor:
        """Open a bundle directory: check its schema, its checksum and the model file's checksum."""
        directory = Path(directory)
        if not directory.exists():
            raise BundleError(
                f"{directory} does not exist; pass the bundle directory written by "
                "`forecaster export` (check the path)"
            )
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
    def history(self) -> int:
        """Rows each forecast reads: the window, and with seasonal lags a season before the
        horizon's steps (windows passed to `forecast_windows` have this many rows)."""
        return history_rows(self.window, self.horizon, self.bundle.data.lags)

    @property
    def channels(self) -> int:
        """Input channels per window row: sensors, then calendar and seasonal channels."""
        return int(self._input["shape"][-1])

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
        parts = min(self.num_threads, n // MIN_WINDOWS_PER_THREAD)
        if parts < 2 or not self._runners[0].resizable:
            self._runners[0].run(x, out)
            return out
        while len(self._runners) < parts:
            self._runners.append(_Runner(self.model_path))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="litert")
        bounds = np.linspace(0, n, parts + 1).astype(int)
        jobs = [
            self._pool.submit(runner.run, x[a:b], out[a:b])
            for runner, a, b in zip(self._runners, bounds[:-1], bounds[1:], strict=False)
        ]
        for job in jobs:
            job.result()
        return out

    def forecast_windows(
        self,
        x: np.ndarray,
        last_times: np.ndarray | None = None,
        series: SeriesArg = None,
    ) -> np.ndarray:
        """Forecasts (n, horizon, targets) in original units for windows (n, history, features).

        `last_times` (datetime64, one per window: the time of its last row) is needed when the
        model uses calendar features. `series` names each window's series for a fleet bundle:
        one id for all, or one id per window.
        """
        return self._forecast(x, last_times, self._series_index(series, len(x)))

    def _forecast(
        self, x: np.ndarray, last_times: np.ndarray | None, index: np.ndarray | None
    ) -> np.ndarray:
        if len(x) <= WINDOWS_AT_ONCE:
            return self._forecast_slice(x, last_times, index)
        parts = []
        for a in range(0, len(x), WINDOWS_AT_ONCE):
            part = slice(a, a + WINDOWS_AT_ONCE)
            times = None if last_times is None else np.asarray(last_times)[part]
            parts.append(
                self._forecast_slice(x[part], times, None if index is None else index[part])
            )
        return np.concatenate(parts)

    def _forecast_slice(
        self, x: np.ndarray, last_times: np.ndarray | None, index: np.ndarray | None
    ) -> np.ndarray:
        scaled = self.predict_scaled(self._inputs(x, last_times, index))
        if self.fleet is not None and index is not None:
            return self.fleet.inverse(scaled, index)
        return self.bundle.scaler.inverse(scaled, self.bundle.data.targets)

    def forecast_intervals(
        self,
        x: np.ndarray,
        last_times: np.ndarray | None = None,
        levels: tuple[float, ...] | None = None,
        series: SeriesArg = None,
    ) -> IntervalForecast:
        """Point forecasts of windows `x` with the bundle's conformal intervals at `levels`.

        `levels` (default: every level the bundle calibrated) are fractions, e.g. (0.8, 0.95).
        For a fleet bundle each window gets its own series' intervals (`series` as in
        `forecast_windows`).
        """
        index = self._series_index(series, len(x))
        if self.fleet is not None and index is not None:
            levels = self.fleet.levels() if levels is None else levels
            point = self._forecast(x, last_times, index)
            widths = self.fleet.widths(levels)[index]  # (n, levels, horizon, targets)
            return with_intervals(point, np.moveaxis(widths, 1, 0), levels)
        intervals = self.bundle.intervals
        if intervals is None:
            raise BundleError(
                "this bundle has no prediction intervals (exported before forecaster had them); "
                "re-export it, or predict with --level none"
            )
        levels = intervals.levels if levels is None else levels
        point = self.forecast_windows(x, last_times)
        return with_intervals(point, intervals.widths(levels), levels)

    @property
    def has_intervals(self) -> bool:
        """Whether the bundle carries calibrated intervals (for a fleet: for every series)."""
        if self.fleet is not None:
            return self.fleet.has_intervals
        return self.bundle.intervals is not None

    def interval_notes(self, levels: tuple[float, ...]) -> list[str]:
        """Check that the bundle has intervals at `levels`; what to know before trusting them.

        BundleError without intervals, UsageError for a level the bundle did not calibrate.
        """
        if not self.has_intervals:
            raise BundleError(
                "this bundle has no prediction intervals (exported before forecaster had "
                "them); re-export it, or pass --level none"
            )
        if self.fleet is not None:
            self.fleet.widths(levels)
            return self.fleet.notes(levels)
        assert self.bundle.intervals is not None
        self.bundle.intervals.widths(levels)  # refuses a level the bundle was not calibrated for
        return self.bundle.intervals.notes(levels)

    def model_inputs(
        self,
        x: np.ndarray,
        last_times: np.ndarray | None = None,
        series: SeriesArg = None,
    ) -> np.ndarray:
        """Scaled windows with the lag, calendar and seasonal channels the model was trained with.

        The lags come from the rows before the window (`history` rows in all); calendar and
        seasonal channels from the time of each window's last row, as in training.
        """
        return self._inputs(x, last_times, self._series_index(series, len(x)))

    def _inputs(
        self, x: np.ndarray, last_times: np.ndarray | None, index: np.ndarray | None
    ) -> np.ndarray:
        spec = self.bundle.data
        if self.fleet is not None and index is not None:
            scaled = self.fleet.transform(np.asarray(x), index)
        else:
            scaled = self.bundle.scaler.transform(x)
        if spec.lags:
            targets = [spec.features.index(t) for t in spec.targets]
            lags = lag_channels(scaled[..., targets], spec.lags, self.horizon)
            scaled = np.concatenate([scaled, lags], axis=-1)[:, -self.window :]
        if self.fleet is not None and index is not None and self.fleet.spec.id_inputs:
            # The series as one-hot channels right after the sensors and lags, as in training.
            ids = series_channels(index, len(self.fleet.spec.series), self.window)
            scaled = np.concatenate([scaled, ids], axis=-1)
        return self._timed(scaled, last_times, index)

    def _timed(
        self, scaled: np.ndarray, last_times: np.ndarray | None, index: np.ndarray | None
    ) -> np.ndarray:
        """`scaled` with the calendar and seasonal channels, which depend on each row's time."""
        spec = self.bundle.data
        per_series = self.fleet is not None and self.fleet.spec.series[0].seasonal is not None
        if not spec.calendar and spec.seasonal is None and not per_series:
            return scaled
        if last_times is None or spec.step_seconds is None:
            uses = "calendar features" if spec.calendar else "seasonal profiles"
            raise BundleError(f"this model uses {uses}: pass the time of each window's last row")
        step = round(spec.step_seconds * 1e9)
        offsets = (np.arange(self.window) - (self.window - 1)) * step
        stamps = np.asarray(last_times, "datetime64[ns]").astype(np.int64)[:, None] + offsets
        parts = [scaled]
        if spec.calendar:
            parts.append(calendar_features(stamps, spec.calendar))
        if spec.seasonal is not None:
            rows = spec.grid_rows(stamps)
            parts.append(spec.seasonal.channels(rows, self.bundle.scaler.scales(spec.targets)))
        if per_series and index is not None:
            parts.append(self._series_seasonal(stamps, index))
        return np.concatenate(parts, axis=-1)

    def _series_seasonal(self, stamps: np.ndarray, index: np.ndarray) -> np.ndarray:
        """A fleet's decomposition channels: each window's from its own series' profiles, placed
        on that series' own grid (a loop over the series in the batch, not the windows)."""
        assert self.fleet is not None
        spec, members = self.bundle.data, self.fleet.spec.series
        out = np.empty((*stamps.shape, 2 * len(spec.targets)), np.float32)
        for position in np.unique(index):
            member = members[position]
            assert member.seasonal is not None
            picked = index == position
            rows = spec.grid_rows(stamps[picked], member.train_start)
            out[picked] = member.seasonal.channels(rows, member.scaler.scales(spec.targets))
        return out

    def forecast(
        self,
        values: np.ndarray,
        origins: np.ndarray | None = None,
        times: np.ndarray | None = None,
        series: str | None = None,
    ) -> np.ndarray:
        """Forecasts in original units from feature rows `values` (rows, features).

        `origins` are row indices of the first forecast step (default: one origin after the last
        row); each needs `history` rows before it. `times` (datetime64 per row) is needed by
        models with calendar features; `series` is the rows' series id for a fleet bundle.
        """
        if origins is None:
            origins = np.array([len(values)])
        windows = np.stack([values[o - self.history : o] for o in origins])
        last_times = None if times is None else np.asarray(times)[np.asarray(origins) - 1]
        return self.forecast_windows(windows, last_times, series)

    def _series_index(self, series: SeriesArg, n: int) -> np.ndarray | None:
        """Each window's series position for a fleet bundle; None for a one-series bundle."""
        fleet = self.bundle.fleet
        if fleet is None:
            if series is not None:
                raise BundleError(
                    "this bundle's model was trained on one series, so it takes no series ids; "
                    "leave series out"
                )
            return None
        if series is None:
            raise BundleError(
                f"this model was trained on {len(fleet.series)} series (id column "
                f"'{fleet.id_col}'), each scaled on its own: pass series= with each window's id"
            )
        assert self.fleet is not None
        return self.fleet.index(series, n)

    def ops(self) -> dict[str, int]:
        """How many times each operator appears in the model's main graph, by name.

        Read with a second interpreter that applies no delegate, which would hide the ops.
        """
        kind = type(self._runners[0].interpreter)
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
            "resizable_batch": self._runners[0].resizable,
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
