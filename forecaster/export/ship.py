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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.bundle import Bundle, ExportSpec
from forecaster.errors import ConfigError, ExportError
from forecaster.export.convert import RECIPES, conversions
from forecaster.export.gate import (
    ExportRecord,
    GateUnits,
    ModeResult,
    choose,
    judge,
    measure,
    measure_micro,
    refusal,
)
from forecaster.files import sha256_of, staged_dir
from forecaster.layout import KERAS_MODEL, TFLITE_MODEL
from forecaster.model.pooled import PooledPrepared
from forecaster.quiet import is_tensorflow_line, verbose
from forecaster.records import to_plain

if TYPE_CHECKING:
    from forecaster.data.fleet import Fleet
    from forecaster.data.load import SensorData
    from forecaster.device.predictor import Predictor
    from forecaster.intervals import Intervals
    from forecaster.model.windows import Prepared
    from forecaster.scaling import MinMaxParams

QUANTIZE_CHOICES = ("none", "dynamic", "float16", "int8", "int16", "all")
# CLI name -> conversion mode
MODE_OF = {
    "none": "float32",
    "dynamic": "dynamic",
    "float16": "float16",
    "int8": "int8",
    "int16": "int16x8",
}
# litert: LiteRT on a CPU, any mode; micro: TensorFlow Lite Micro, one full-integer batch-1 file.
RUNTIMES = ("litert", "micro")
CALIBRATION_WINDOWS = 300
CONVERSION_TIMEOUT_S = 900


@dataclass
class ExportOutcome:
    """The bundle written, the mode shipped and why, and every mode's measurements."""

    bundle_dir: Path
    bundle: Bundle
    shipped: str
    reason: str
    results: list[ModeResult]
    keras_mae: float


def export(
    run_dir: str | Path,
    *,
    quantize: str = "all",
    out: Path | None = None,
    max_accuracy_loss: float = 0.02,
    force: bool = False,
    overwrite: bool = False,
    on_stage: Any = None,
    data: SensorData | Fleet | None = None,
    runtime: str = "litert",
) -> ExportOutcome:
    """Convert a run's model, measure every mode, and write the bundle of the one to ship.

    `data` is the run's training file already loaded with its options (else it is read again).
    A fleet's modes are compared in each series' MASE units, pooled over every series.
    """
    from forecaster.data.fleet import Fleet
    from forecaster.evaluation.metrics import score
    from forecaster.runs.load import (
        check_out_dir,
        load_keras_model,
        load_training_data,
        load_training_fleet,
    )

    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(
            f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize!r}"
        )
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    if runtime == "micro" and quantize != "all":
        raise ConfigError(
            "--runtime micro exports one full-integer model (int8 weights, int16 activations); "
            "leave out --quantize"
        )
    run_dir = Path(run_dir)
    bundle = Bundle.load(run_dir)
    out = out or run_dir / "bundle"
    check_out_dir(out, overwrite=overwrite)
    keras_model = load_keras_model(run_dir)
    targets = bundle.data.targets
    prepared: Prepared | PooledPrepared
    if bundle.fleet is not None:
        fleet = data if isinstance(data, Fleet) else None
        prepared = load_training_fleet(bundle, fleet, run_dir=run_dir)
        units = GateUnits.of_fleet(bundle.fleet, prepared.series_index["test"], targets)
        mase_scale = np.ones(len(targets))
    else:
        series = data if not isinstance(data, Fleet) else None
        prepared = load_training_data(bundle, series, run_dir=run_dir)
        units = GateUnits.of_series(bundle.scaler, targets)
        mase_scale = np.asarray(bundle.data.mase_scale)
    test = prepared.windows["test"]
    truth = units(test.y)
    keras_forecast = units(keras_model.predict(test.x, batch_size=1024, verbose=0))
    keras_scores = score(truth, keras_forecast, mase_scale)
    keras_mae = float(keras_scores["mae"])
    # The worst-origin bound per target: the Keras model's own test MAE, in the target's units.
    bounds = [float(np.mean(steps)) for steps in keras_scores["per_step"]["mae"]]

    if runtime == "micro":
        modes, quantize = ["micro"], "micro"
    elif quantize == "all":
        modes = [MODE_OF[q] for q in QUANTIZE_CHOICES[:-1]]
    else:
        modes = [MODE_OF[quantize]]
    train = prepared.windows["train"]
    picks = np.linspace(0, len(train) - 1, num=min(CALIBRATION_WINDOWS, len(train))).astype(int)
    cell = bundle.model.cell
    calibration = train.x[picks]
    with tempfile.TemporaryDirectory(prefix="forecaster-export-") as tmp:
        work = Path(tmp)
        # Each mode's first conversion now; a fallback recipe only if the first is refused.
        first = [conversions(mode, cell)[0] for mode in modes]
        files = _convert_all(run_dir / KERAS_MODEL, work, first, calibration, on_stage)
        results = []
        shipped_files: dict[str, Path | str] = {}
        for mode in modes:
            refused: list[str] = []
            for name in conversions(mode, cell):
                if name not in files:
                    files |= _convert_all(
                        run_dir / KERAS_MODEL, work, [name], calibration, on_stage
                    )
                if on_stage is not None:
                    on_stage(f"checking {_label(name)} in LiteRT")
                result = ModeResult(mode, recipe=RECIPES[name], refused_recipes=list(refused))
                converted = files[name]
                if isinstance(converted, str):
                    result.error = converted
                else:
                    measure(
                        result, converted, bundle, test.x, keras_forecast, truth, mase_scale, units
                    )
                    try:
                        if mode == "micro":
                            if on_stage is not None:
                                on_stage(f"checking {_label(name)} in TensorFlow Lite Micro")
                            measure_micro(result, converted, test.x, keras_forecast, units)
                    except ExportError as exc:
                        if name == conversions(mode, cell)[-1]:
                            raise
                        result.error = str(exc)  # the next recipe may load
                    judge(result, keras_mae, bounds, max_accuracy_loss)
                shipped_files[mode] = converted
                if result.passed:
                    break
                refused.append(f"{result.recipe}: {refusal(result, targets)}")
            results.append(result)
        float_size = next(
            (r.size_bytes for r in results if r.mode == "float32" and r.size_bytes), 0
        )
        for result in results:
            if float_size and result.size_bytes:
                result.ratio_to_float32 = result.size_bytes / float_size
        shipped, reason = choose(results, quantize, max_accuracy_loss, force, targets)
        chosen = next(r for r in results if r.mode == shipped)
        bundle_out = _write_bundle(
            out,
            overwrite,
            bundle,
            shipped_files[shipped],
            chosen,
            results,
            reason,
            keras_mae,
            prepared,
        )
    return ExportOutcome(out, bundle_out, shipped, reason, results, keras_mae)


def _convert_all(
    model_path: Path, work: Path, modes: list[str], calibration: np.ndarray, on_stage: Any
) -> dict[str, Path | str]:
    """Convert every mode in one child; modes lost to a crash are retried one child each."""
    representative = work / "representative.npy"
    np.save(representative, calibration.astype(np.float32))
    if on_stage is not None:
        on_stage(f"converting {', '.join(_label(m) for m in modes)}")
    crash = _run_child(model_path, work, modes, representative)
    missing = [m for m in modes if not _outcome_exists(work, m)]
    if crash and len(missing) > 1:
        for mode in missing:
            if on_stage is not None:
                on_stage(f"converting {_label(mode)} alone after a converter crash")
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


def _label(conversion: str) -> str:
    """A conversion as the progress line names it: `int16x8@fused` -> `int16x8 (fused LSTM)`."""
    mode, _, recipe = conversion.partition("@")
    return f"{mode} ({recipe} LSTM)" if recipe else mode


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
    if verbose():
        sys.stderr.write(done.stderr)  # the converter's own lines, asked for with --verbose
    if done.returncode == 0:
        return ""
    if done.returncode < 0:
        return f"signal {-done.returncode}"
    # The child's last line of its own says why, not TensorFlow's log lines around it.
    lines = [s for s in done.stderr.splitlines() if s.strip() and not is_tensorflow_line(s)]
    return f"exit code {done.returncode}: {lines[-1] if lines else 'no message'}"


def _write_bundle(
    out: Path,
    overwrite: bool,
    bundle: Bundle,
    model_file: Path | str,
    chosen: ModeResult,
    results: list[ModeResult],
    reason: str,
    keras_mae: float,
    prepared: Prepared | PooledPrepared,
) -> Bundle:
    from forecaster.device.predictor import Predictor

    assert isinstance(model_file, Path)
    predictor = Predictor(bundle, model_file, num_threads=1)
    io = predictor.describe()
    what = f"{chosen.mode} LiteRT file"
    fleet = bundle.fleet
    intervals = None
    if fleet is None:
        assert not isinstance(prepared, PooledPrepared)
        intervals = shipped_intervals(predictor, prepared, what)
    else:
        assert isinstance(prepared, PooledPrepared)
        members = tuple(
            dataclasses.replace(
                spec,
                intervals=shipped_intervals(predictor, member, what, scaler=spec.scaler),
            )
            for spec, member in zip(fleet.series, prepared.members, strict=True)
        )
        fleet = dataclasses.replace(fleet, series=members)
    spec = ExportSpec(
        file=TFLITE_MODEL,
        sha256=sha256_of(model_file),
        size_bytes=model_file.stat().st_size,
        quantization=chosen.mode,
        recipe=chosen.recipe,
        runtime="micro" if chosen.mode == "micro" else "litert",
        arena_bytes=chosen.arena_bytes,
        batch=None if io["resizable_batch"] else int(io["input"]["shape"][0]),
        input_scale=_quant(io["input"], "scale"),
        input_zero_point=_quant(io["input"], "zero_point"),
        output_scale=_quant(io["output"], "scale"),
        output_zero_point=_quant(io["output"], "zero_point"),
    )
    exported = _without_paths(bundle).replace(
        export=spec,
        metrics=bundle.metrics
        | {
            "export": to_plain(
                ExportRecord(
                    shipped=chosen.mode,
                    reason=reason,
                    keras_mae=keras_mae,
                    modes=results,
                    exported=datetime.now(UTC).isoformat(timespec="seconds"),
                )
            )
        },
        versions=bundle.versions | _converter_versions(),
        intervals=intervals,
        fleet=fleet,
    )
    with staged_dir(out, overwrite=overwrite) as stage:
        (stage / TFLITE_MODEL).write_bytes(model_file.read_bytes())
        exported.save(stage)
    return exported


def shipped_intervals(
    predictor: Predictor, prepared: Prepared, what: str, *, scaler: MinMaxParams | None = None
) -> Intervals:
    """Conformal intervals of the file that ships, from its own errors on the validation part.

    Early stopping chose the epoch on that part, so they are a little narrow; the test part's
    coverage (evaluate, the run report) is the honest check.
    """
    from forecaster.data.inspect import position_label
    from forecaster.intervals import calibrate

    val = prepared.windows["val"]
    targets = predictor.bundle.data.targets
    scaler = scaler or predictor.bundle.scaler
    return calibrate(
        scaler.inverse(predictor.predict_scaled(val.x), targets),
        scaler.inverse(val.y, targets),
        first_origin=position_label(prepared.data, int(val.origins[0])),
        last_origin=position_label(prepared.data, int(val.origins[-1])),
        source=f"the {what} on the validation part",
    )


def _without_paths(bundle: Bundle) -> Bundle:
    """The bundle to ship names files without the directories they have on this machine."""
    data = dataclasses.replace(bundle.data, source=Path(bundle.data.source).name)
    training = bundle.training
    if training is not None and training.initial_weights:
        training = dataclasses.replace(
            training, initial_weights=Path(training.initial_weights).name
        )
    return bundle.replace(data=data, training=training)


def _quant(detail: dict[str, Any], key: str) -> Any:
    quantization = detail["quantization"]
    return None if quantization is None else quantization[key]


def _converter_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "ai-edge-litert",
        "ai-edge-quantizer",
        "tflite-micro",
        "tensorflow-cpu",
        "tensorflow",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
