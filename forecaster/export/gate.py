"""The accuracy gate: every converted file measured as the device runs it, and the mode to ship."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecaster.bundle import Bundle, FleetSpec
from forecaster.errors import BundleError, ExportError
from forecaster.records import from_plain
from forecaster.scaling import MinMaxParams


@dataclass
class ModeResult:
    """One quantization mode, converted and measured on the test windows."""

    mode: str
    size_bytes: int = 0
    ratio_to_float32: float | None = None
    max_abs_vs_keras: float = float("nan")  # original units
    mean_abs_vs_keras: float = float("nan")
    mae: float = float("nan")  # vs the truth, original units
    rmse: float = float("nan")
    mase: float = float("nan")
    mase_1step: float = float("nan")  # the first horizon step, mean over targets
    mae_change: float = float("nan")  # relative to the Keras model's MAE (+0.01 = 1% worse)
    # Per target, in its units: the largest change of any forecast against Keras, and the bound
    # it must stay within (the Keras model's own test MAE on that target).
    worst_vs_keras: list[float] = field(default_factory=list)
    worst_bound: list[float] = field(default_factory=list)
    builtin_only: bool = False
    ops: dict[str, int] = field(default_factory=dict)
    latency_ms: float = float("nan")  # one window, batch 1
    resizable: bool = True  # takes any batch; the fused LSTM's file takes one window per call
    recipe: str = ""  # how the file was made (export.convert.RECIPES)
    # Recipes of this mode the gate refused before this one, each with why.
    refused_recipes: list[str] = field(default_factory=list)
    runs_on: list[str] = field(default_factory=list)  # LiteRT CPU, integer-only, TFLite Micro
    arena_bytes: int | None = None  # TFLite Micro's tensor arena: the RAM a microcontroller needs
    passed: bool = False
    error: str | None = None


@dataclass
class ExportRecord:
    """What an export measured and shipped; bundle.json keeps it under metrics["export"]."""

    shipped: str
    reason: str
    keras_mae: float
    modes: list[ModeResult]
    exported: str = ""

    @classmethod
    def of(cls, bundle: Bundle) -> ExportRecord:
        """The record in an exported bundle."""
        if "export" not in bundle.metrics:
            raise BundleError(
                "the bundle has no export measurements; pass a bundle written by forecaster export"
            )
        try:
            return from_plain(cls, bundle.metrics["export"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"the bundle's export measurements are corrupt ({exc})") from None

    def shipped_result(self) -> ModeResult:
        """The measurements of the shipped mode."""
        return next(m for m in self.modes if m.mode == self.shipped)


@dataclass(frozen=True)
class GateUnits:
    """The units the gate compares forecasts in, from the model's scaled output.

    One series: its targets' own units. A fleet: each window's series' MASE units (its own
    units divided by its MASE scale), so that errors of series of different sizes add up.
    """

    offset: np.ndarray  # (windows or 1, targets)
    divisor: np.ndarray  # (windows or 1, targets)

    @classmethod
    def of_series(cls, scaler: MinMaxParams, targets: tuple[str, ...]) -> GateUnits:
        """A single series' original units."""
        index = [scaler.columns.index(t) for t in targets]
        return cls(np.asarray(scaler.min)[index][None], np.asarray(scaler.scale)[index][None])

    @classmethod
    def of_fleet(cls, fleet: FleetSpec, series: np.ndarray, targets: tuple[str, ...]) -> GateUnits:
        """MASE units of the series each window (`series`: member index per window) comes from."""
        index = [fleet.series[0].scaler.columns.index(t) for t in targets]
        offset = np.array([np.asarray(s.scaler.min)[index] for s in fleet.series])
        divisor = np.array(
            [np.asarray(s.scaler.scale)[index] * np.asarray(s.mase_scale) for s in fleet.series]
        )
        return cls(offset[series], divisor[series])

    def __call__(self, scaled: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """`scaled` (windows, horizon, targets) in these units; `rows` picks the windows."""
        offset, divisor = self.offset, self.divisor
        if rows is not None and len(offset) > 1:
            offset, divisor = offset[rows], divisor[rows]
        return (np.asarray(scaled, np.float64) - offset[:, None, :]) / divisor[:, None, :]


def measure(
    result: ModeResult,
    path: Path,
    bundle: Bundle,
    x: np.ndarray,
    keras_forecast: np.ndarray,
    truth: np.ndarray,
    mase_scale: np.ndarray,
    units: GateUnits,
) -> None:
    """Run a converted file with the device's predictor; fill in its size, errors and speed."""
    from forecaster.device.predictor import Predictor
    from forecaster.evaluation.metrics import first_step, score

    result.size_bytes = path.stat().st_size
    predictor = Predictor(bundle, path, num_threads=1)
    forecast = units(predictor.predict_scaled(x))
    difference = np.abs(forecast - keras_forecast)
    result.max_abs_vs_keras = float(difference.max())
    result.worst_vs_keras = [float(v) for v in difference.reshape(-1, difference.shape[-1]).max(0)]
    result.mean_abs_vs_keras = float(difference.mean())
    scores = score(truth, forecast, mase_scale)
    result.mae, result.rmse, result.mase = scores["mae"], scores["rmse"], scores["mase"]
    result.mase_1step = first_step(scores)
    result.ops = predictor.ops()
    result.resizable = bool(predictor.describe()["resizable_batch"])
    result.builtin_only = not any(n.startswith("Flex") or n == "CUSTOM" for n in result.ops)
    result.runs_on = (["LiteRT CPU"] if result.builtin_only else []) + (
        ["integer-only"] if _integer_only(path) else []
    )
    one = x[:1]
    predictor.predict_scaled(one)  # warm up: first call allocates
    started = time.perf_counter()
    repeats = 50
    for _ in range(repeats):
        predictor.predict_scaled(one)
    result.latency_ms = (time.perf_counter() - started) / repeats * 1000


# Test windows TFLite Micro forecasts one at a time (its reference kernels are slow).
MICRO_WINDOWS = 200


def measure_micro(
    result: ModeResult, path: Path, x: np.ndarray, keras_forecast: np.ndarray, units: GateUnits
) -> None:
    """Run the file in TFLite Micro on test windows: its arena, and its worst change vs Keras
    joins the LiteRT one the gate bounds."""
    from forecaster.export.micro import run_micro

    picks = np.linspace(0, len(x) - 1, num=min(MICRO_WINDOWS, len(x))).astype(int)
    run = run_micro(path, x[picks])
    forecast = units(run.forecast, picks)
    difference = np.abs(forecast - keras_forecast[picks])
    worst = difference.reshape(-1, difference.shape[-1]).max(0)
    result.worst_vs_keras = [
        max(a, float(b)) for a, b in zip(result.worst_vs_keras, worst, strict=True)
    ]
    result.max_abs_vs_keras = max(result.max_abs_vs_keras, float(difference.max()))
    result.arena_bytes = run.arena_bytes
    result.runs_on.append("TFLite Micro")


def _integer_only(path: Path) -> bool:
    """Every tensor of the main graph is an integer: no float kernel runs, input and output
    included, so an integer-only accelerator can take the whole model. Empty tensors hold no
    data (the fused LSTM's unused gate intermediates are float and of size 0)."""
    from forecaster.device.predictor import interpreter_class

    interpreter = interpreter_class()(model_path=str(path))
    return all(
        np.dtype(t["dtype"]).kind in "iu" or 0 in t["shape"]
        for t in interpreter.get_tensor_details()
    )


def judge(result: ModeResult, keras_mae: float, bounds: list[float], max_loss: float) -> None:
    """Fill in the MAE change and the verdict: builtin ops, the mean within `max_loss` and
    every target's worst origin within its bound."""
    result.mae_change = result.mae / keras_mae - 1 if keras_mae else 0.0
    result.worst_bound = list(bounds)
    result.passed = (
        result.error is None
        and result.builtin_only
        and result.mae_change <= max_loss
        and not worst_beyond(result)
    )


def worst_beyond(result: ModeResult) -> list[int]:
    """The targets whose worst forecast change against Keras exceeds its bound."""
    return [
        j
        for j, (worst, bound) in enumerate(
            zip(result.worst_vs_keras, result.worst_bound, strict=True)
        )
        if worst > bound
    ]


def worst_text(result: ModeResult) -> str:
    """Each target's worst forecast change against Keras and its bound, e.g. `0.41 of 0.95`."""
    return ", ".join(
        f"{w:.3g} of {b:.3g}"
        for w, b in zip(result.worst_vs_keras, result.worst_bound, strict=True)
    )


def refusal(result: ModeResult, targets: tuple[str, ...] | list[str] = ()) -> str:
    """Why the gate refused a mode, in a few words."""
    if result.error:
        return result.error
    why = [f"MAE {result.mae_change:+.1%}"]
    for j in worst_beyond(result):
        name = targets[j] if j < len(targets) else f"target {j}"
        why.append(
            f"worst origin off by {result.worst_vs_keras[j]:.3g} on {name}, more than its "
            f"test MAE {result.worst_bound[j]:.3g}"
        )
    return ", ".join(why)


def choose(
    results: list[ModeResult],
    quantize: str,
    max_loss: float,
    force: bool,
    targets: tuple[str, ...] | list[str] = (),
) -> tuple[str, str]:
    """The mode to ship and a sentence saying why."""
    if quantize != "all":
        result = results[0]
        micro = result.mode == "micro"
        other = "export with --runtime litert" if micro else "choose another --quantize"
        if result.error:
            raise ExportError(f"{result.mode} conversion failed: {result.error}")
        if not result.builtin_only:
            raise ExportError(
                f"the {result.mode} model needs non-builtin ops ({', '.join(result.ops)}) that "
                "LiteRT cannot run on a device; choose another --quantize"
            )
        if not result.passed and not force:
            raise ExportError(
                f"{result.mode} fails the accuracy gate ({refusal(result, targets)}; the gate: "
                f"MAE at most --max-accuracy-loss {max_loss:.1%} worse, every forecast within "
                f"the test MAE of Keras'); pass --force to export it anyway or {other}"
            )
        asked = "--runtime micro" if micro else result.mode
        return result.mode, f"{asked} was asked for" + (
            " (accuracy gate overridden with --force)" if not result.passed else ""
        )
    passing = [r for r in results if r.passed]
    if not passing:
        problems = "; ".join(f"{r.mode}: {refusal(r, targets)}" for r in results)
        raise ExportError(f"no quantization mode passed the accuracy gate ({problems})")
    # A file that forecasts one window per call (the fused full-integer LSTM's, 10x slower per
    # window and ~30x in batches) is a poor trade for a few KB on the phones, gateways and boards
    # `all` ships to; integer-only chips and microcontrollers ask for it by name.
    batched = [r for r in passing if r.resizable] or passing
    best = min(batched, key=lambda r: (r.size_bytes, r.latency_ms))
    single = [r for r in passing if r not in batched and r.size_bytes < best.size_bytes]
    refused = [r.mode for r in results if not r.passed]
    why = (
        f"{best.mode} is the smallest file ({best.size_bytes:,} bytes"
        + (f", {best.ratio_to_float32:.0%} of float32" if best.ratio_to_float32 else "")
        + f") within the {max_loss:.1%} accuracy gate (MAE {best.mae_change:+.2%} vs Keras, "
        + "worst origin "
        + ", ".join(
            f"{w:.3g} of {b:.3g}"
            for w, b in zip(best.worst_vs_keras, best.worst_bound, strict=True)
        )
        + ")"
    )
    if single:
        why += "; smaller but one window per call, shipped only when asked for: " + ", ".join(
            f"{r.mode} ({r.size_bytes:,} bytes)" for r in single
        )
    if refused:
        why += f"; refused: {', '.join(refused)}"
    return best.mode, why
