"""Export a run to a LiteRT bundle: convert each quantization mode, gate on accuracy, ship one.

Conversions run in a child process (`python -m forecaster.export.convert`), so a converter crash
becomes a clear error instead of killing the command. Every converted file is then run by the
same `Predictor` the device uses and compared with the Keras model and with the truth.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.bundle import Bundle, ExportSpec
from forecaster.errors import ConfigError, ExportError
from forecaster.files import sha256_of, staged_dir

QUANTIZE_CHOICES = ("none", "dynamic", "float16", "int8", "all")
# CLI name -> conversion mode
MODE_OF = {"none": "float32", "dynamic": "dynamic", "float16": "float16", "int8": "int8"}
MODEL_FILE = "model.tflite"
CALIBRATION_WINDOWS = 300
CONVERSION_TIMEOUT_S = 900


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
    ops: dict[str, int] = dataclasses.field(default_factory=dict)
    latency_ms: float = float("nan")  # one window, batch 1
    passed: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain values for bundle.json."""
        return dataclasses.asdict(self)


@dataclass
class ExportOutcome:
    """The bundle written, the mode shipped and why, and every mode's measurements."""

    bundle_dir: Path
    bundle: Bundle
    shipped: str
    reason: str
    results: list[ModeResult]
    keras_mae: float


def parse_accuracy_loss(text: str) -> float:
    """'2%' or '0.02' as a fraction."""
    value = text.strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < 10:
        raise ConfigError(f"--max-accuracy-loss takes a share such as 2% or 0.02, not {text!r}")
    return number


def export(
    run_dir: str | Path,
    *,
    quantize: str = "all",
    out: Path | None = None,
    max_accuracy_loss: float = 0.02,
    force: bool = False,
    overwrite: bool = False,
    on_stage: Any = None,
) -> ExportOutcome:
    """Convert a run's model, measure every mode, and write the bundle of the one to ship."""
    from forecaster.evaluation.metrics import score
    from forecaster.runs.train import check_out_dir, load_keras_model, load_training_data

    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(
            f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}"
        )
    run_dir = Path(run_dir)
    bundle = Bundle.load(run_dir)
    out = out or run_dir / "bundle"
    check_out_dir(out, overwrite=overwrite)
    keras_model = load_keras_model(run_dir)
    prepared = load_training_data(bundle)
    test = prepared.windows["test"]
    targets = bundle.data.targets
    truth = bundle.scaler.inverse(test.y, targets)
    keras_forecast = bundle.scaler.inverse(
        keras_model.predict(test.x, batch_size=1024, verbose=0), targets
    )
    mase_scale = np.asarray(bundle.data.mase_scale)
    keras_mae = float(score(truth, keras_forecast, mase_scale)["mae"])

    modes = (
        [MODE_OF[q] for q in QUANTIZE_CHOICES[:-1]] if quantize == "all" else [MODE_OF[quantize]]
    )
    train = prepared.windows["train"]
    picks = np.linspace(0, len(train) - 1, num=min(CALIBRATION_WINDOWS, len(train))).astype(int)
    with tempfile.TemporaryDirectory(prefix="forecaster-export-") as tmp:
        work = Path(tmp)
        files = _convert_all(run_dir / "model.keras", work, modes, train.x[picks], on_stage)
        results = []
        for mode in modes:
            if on_stage is not None:
                on_stage(f"checking {mode} in LiteRT")
            result = ModeResult(mode)
            converted = files[mode]
            if isinstance(converted, str):
                result.error = converted
            else:
                _measure(result, converted, bundle, test.x, keras_forecast, truth, mase_scale)
                result.mae_change = result.mae / keras_mae - 1 if keras_mae else 0.0
                result.passed = result.builtin_only and result.mae_change <= max_accuracy_loss
            results.append(result)
        float_size = next(
            (r.size_bytes for r in results if r.mode == "float32" and r.size_bytes), 0
        )
        for result in results:
            if float_size and result.size_bytes:
                result.ratio_to_float32 = result.size_bytes / float_size
        shipped, reason = _choose(results, quantize, max_accuracy_loss, force)
        chosen = next(r for r in results if r.mode == shipped)
        bundle_out = _write_bundle(
            out, overwrite, bundle, files[shipped], chosen, results, reason, keras_mae
        )
    return ExportOutcome(out, bundle_out, shipped, reason, results, keras_mae)


def _convert_all(
    model_path: Path, work: Path, modes: list[str], calibration: np.ndarray, on_stage: Any
) -> dict[str, Path | str]:
    """Convert every mode in one child; modes lost to a crash are retried one child each."""
    representative = work / "representative.npy"
    np.save(representative, calibration.astype(np.float32))
    if on_stage is not None:
        on_stage(f"converting {', '.join(modes)}")
    crash = _run_child(model_path, work, modes, representative)
    missing = [m for m in modes if not _outcome_exists(work, m)]
    if crash and len(missing) > 1:
        for mode in missing:
            if on_stage is not None:
                on_stage(f"converting {mode} alone after a converter crash")
            _run_child(model_path, work, [mode], representative)
    found: dict[str, Path | str] = {}
    for mode in modes:
        path, error = work / f"{mode}.tflite", work / f"{mode}.error"
        if path.exists():
            found[mode] = path
        elif error.exists():
            found[mode] = error.read_text().splitlines()[0]
        else:
            found[mode] = f"the converter crashed ({crash or 'no output'})"
    return found


def _outcome_exists(work: Path, mode: str) -> bool:
    return (work / f"{mode}.tflite").exists() or (work / f"{mode}.error").exists()


def _run_child(model_path: Path, work: Path, modes: list[str], representative: Path) -> str:
    """Run the converter child; return '' on a clean exit, else what killed it."""
    command = [
        sys.executable,
        "-m",
        "forecaster.export.convert",
        str(model_path),
        str(work),
        ",".join(modes),
        str(representative),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CONVERSION_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {CONVERSION_TIMEOUT_S} s"
    if done.returncode == 0:
        return ""
    if done.returncode < 0:
        return f"signal {-done.returncode}"
    tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
    return f"exit code {done.returncode}: {tail[0]}"


def _measure(
    result: ModeResult,
    path: Path,
    bundle: Bundle,
    x: np.ndarray,
    keras_forecast: np.ndarray,
    truth: np.ndarray,
    mase_scale: np.ndarray,
) -> None:
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


def _choose(
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


def _write_bundle(
    out: Path,
    overwrite: bool,
    bundle: Bundle,
    model_file: Path | str,
    chosen: ModeResult,
    results: list[ModeResult],
    reason: str,
    keras_mae: float,
) -> Bundle:
    from forecaster.device.predictor import Predictor

    assert isinstance(model_file, Path)
    predictor = Predictor(bundle, model_file, num_threads=1)
    io = predictor.describe()
    spec = ExportSpec(
        file=MODEL_FILE,
        sha256=sha256_of(model_file),
        size_bytes=model_file.stat().st_size,
        quantization=chosen.mode,
        batch=None if io["resizable_batch"] else int(io["input"]["shape"][0]),
        input_scale=_quant(io["input"], "scale"),
        input_zero_point=_quant(io["input"], "zero_point"),
        output_scale=_quant(io["output"], "scale"),
        output_zero_point=_quant(io["output"], "zero_point"),
    )
    exported = bundle.replace(
        export=spec,
        metrics=bundle.metrics
        | {
            "export": {
                "shipped": chosen.mode,
                "reason": reason,
                "keras_mae": keras_mae,
                "modes": [r.to_json() for r in results],
                "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        },
        versions=bundle.versions | _converter_versions(),
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        (stage / MODEL_FILE).write_bytes(model_file.read_bytes())
        exported.save(stage)
    return exported


def _quant(detail: dict[str, Any], key: str) -> Any:
    quantization = detail["quantization"]
    return None if quantization is None else quantization[key]


def _converter_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("ai-edge-litert", "tensorflow-cpu", "tensorflow"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
