"""The accuracy gate: every converted file measured as the device runs it, and the mode to ship."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecaster.bundle import Bundle
from forecaster.errors import BundleError, ExportError
from forecaster.records import from_plain


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
    builtin_only: bool = False
    ops: dict[str, int] = field(default_factory=dict)
    latency_ms: float = float("nan")  # one window, batch 1
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


def measure(
    result: ModeResult,
    path: Path,
    bundle: Bundle,
    x: np.ndarray,
    keras_forecast: np.ndarray,
    truth: np.ndarray,
    mase_scale: np.ndarray,
) -> None:
    """Run a converted file with the device's predictor; fill in its size, errors and speed."""
    from forecaster.device.predictor import Predictor
    from forecaster.evaluation.metrics import first_step, score

    result.size_bytes = path.stat().st_size
    predictor = Predictor(bundle, path, num_threads=1)
    forecast = bundle.scaler.inverse(predictor.predict_scaled(x), bundle.data.targets)
    difference = np.abs(forecast - keras_forecast)
    result.max_abs_vs_keras = float(difference.max())
    result.mean_abs_vs_keras = float(difference.mean())
    scores = score(truth, forecast, mase_scale)
    result.mae, result.rmse, result.mase = scores["mae"], scores["rmse"], scores["mase"]
    result.mase_1step = first_step(scores)
    result.ops = predictor.ops()
    result.builtin_only = not any(n.startswith("Flex") or n == "CUSTOM" for n in result.ops)
    one = x[:1]
    predictor.predict_scaled(one)  # warm up: first call allocates
    started = time.perf_counter()
    repeats = 50
    for _ in range(repeats):
        predictor.predict_scaled(one)
    result.latency_ms = (time.perf_counter() - started) / repeats * 1000


def choose(
    results: list[ModeResult], quantize: str, max_loss: float, force: bool
) -> tuple[str, str]:
    """The mode to ship and a sentence saying why."""
    if quantize != "all":
        result = results[0]
        if result.error:
            raise ExportError(f"{result.mode} conversion failed: {result.error}")
        if not result.builtin_only:
            raise ExportError(
                f"the {result.mode} model needs non-builtin ops ({', '.join(result.ops)}) that "
                "LiteRT cannot run on a device; choose another --quantize"
            )
        if not result.passed and not force:
            raise ExportError(
                f"{result.mode} loses {result.mae_change:.1%} MAE against the Keras model, more "
                f"than --max-accuracy-loss {max_loss:.1%}; pass --force to export it anyway or "
                "choose another --quantize"
            )
        return result.mode, f"{result.mode} was asked for" + (
            " (accuracy gate overridden with --force)" if not result.passed else ""
        )
    passing = [r for r in results if r.passed]
    if not passing:
        problems = "; ".join(f"{r.mode}: {r.error or f'MAE {r.mae_change:+.1%}'}" for r in results)
        raise ExportError(f"no quantization mode passed the accuracy gate ({problems})")
    best = min(passing, key=lambda r: (r.size_bytes, r.latency_ms))
    refused = [r.mode for r in results if not r.passed]
    why = (
        f"{best.mode} is the smallest file ({best.size_bytes:,} bytes"
        + (f", {best.ratio_to_float32:.0%} of float32" if best.ratio_to_float32 else "")
        + f") within the {max_loss:.1%} accuracy gate (MAE {best.mae_change:+.2%} vs Keras)"
    )
    if refused:
        why += f"; refused: {', '.join(refused)}"
    return best.mode, why
