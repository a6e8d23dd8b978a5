"""The main job in one command: inspect, tune GRU vs LSTM, export, check on the device, report.

Each stage records itself in OUT/run.json when it finishes, so a failed or interrupted run keeps
what earlier stages produced and `--resume` picks up at the first unfinished stage. The report is
built from the files the stages wrote, never from memory, so a resumed run reports the same.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.bundle import Bundle
from forecaster.config import DataConfig, SplitConfig
from forecaster.errors import ConfigError, ForecasterError
from forecaster.files import sha256_of, write_text_atomic

STAGES = ("inspect", "search", "export", "device_check", "report")
STATE_FILE = "run.json"
SEARCH_DIR = "search"

StageCallback = Callable[[str, str], None]  # (stage, message)


class StageError(ForecasterError):
    """A stage failed; earlier stages' results stay in the output directory."""


@dataclass
class JobOutcome:
    """Where the main job left its results."""

    out: Path
    bundle_dir: Path
    report_html: Path
    report_md: Path
    winner: str
    reason: str
    skipped: list[str]  # stages already done before this call (resume)


def run_job(
    file: str | Path,
    data_config: DataConfig,
    *,
    split: SplitConfig | None = None,
    horizon: int = 12,
    season: int | None = None,
    space: Any = None,
    tune_config: Any = None,
    quantize: str = "all",
    max_accuracy_loss: float = 0.02,
    out: Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    on_stage: StageCallback | None = None,
    on_status: Any = None,
) -> JobOutcome:
    """Run every stage from CSV to shipped bundle and report; see the module docstring."""
    from forecaster.runs.train import DEFAULT_MODELS_DIR

    file = Path(file)
    split = split or SplitConfig()
    if not data_config.targets:
        raise ConfigError("no target column chosen; pass --target COLUMN")
    out = out or DEFAULT_MODELS_DIR / f"{file.stem}-run"
    identity = {
        "file": str(file.resolve()),
        "file_sha256": sha256_of(file) if file.exists() else "",
        "targets": list(data_config.targets),
        "horizon": horizon,
        "split": [split.train, split.val, split.test],
    }
    state = _open_state(out, identity, resume=resume, overwrite=overwrite, command=command)
    done_before = [s for s in STAGES if state["stages"].get(s)]

    def stage(name: str, work: Callable[[], None]) -> None:
        if state["stages"].get(name):
            return
        if on_stage is not None:
            on_stage(name, "started")
        try:
            work()
        except ForecasterError as exc:
            raise StageError(
                f"stage '{name}' failed: {exc} (results of earlier stages are kept in {out}; "
                "rerun with --resume after fixing it)"
            ) from None
        state["stages"][name] = True
        write_text_atomic(out / STATE_FILE, json.dumps(state, indent=2) + "\n")
        if on_stage is not None:
            on_stage(name, "done")

    stage("inspect", lambda: _inspect(file, data_config, out))
    stage(
        "search",
        lambda: _search(
            file, data_config, split, horizon, season, space, tune_config, out, on_status
        ),
    )
    stage("export", lambda: _export(out, quantize, max_accuracy_loss))
    stage("device_check", lambda: _device_check(out))

    def write_report() -> None:
        from forecaster.report.job import build_report

        build_report(out, state).write(out)

    stage("report", write_report)
    comparison = _read_json(out / SEARCH_DIR / "comparison.json")
    return JobOutcome(
        out=out,
        bundle_dir=out / "bundle",
        report_html=out / "report.html",
        report_md=out / "report.md",
        winner=comparison["winner"],
        reason=comparison["reason"],
        skipped=done_before,
    )


def _open_state(
    out: Path, identity: dict[str, Any], *, resume: bool, overwrite: bool, command: str
) -> dict[str, Any]:
    path = out / STATE_FILE
    if out.exists() and resume and path.exists():
        state: dict[str, Any] = _read_json(path)
        if state.get("identity") != identity:
            changed = [k for k in identity if state.get("identity", {}).get(k) != identity[k]]
            raise ConfigError(
                f"--resume: {out} holds a run of different data or options ({', '.join(changed)}"
                " changed); rerun with the original options, or --overwrite to start again"
            )
        return state
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{out} already exists; pass --resume to continue that run, --overwrite to "
                "replace it, or choose --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {"identity": identity, "command": command, "stages": {}}
    write_text_atomic(path, json.dumps(state, indent=2) + "\n")
    return state


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _inspect(file: Path, data_config: DataConfig, out: Path) -> None:
    from forecaster.data.inspect import summarize
    from forecaster.data.load import load_csv

    data = load_csv(file, data_config)
    summary = summarize(data) | {"warnings": data.report.warnings}
    write_text_atomic(out / "data_summary.json", json.dumps(summary, indent=2, default=str) + "\n")


def _search(
    file: Path,
    data_config: DataConfig,
    split: SplitConfig,
    horizon: int,
    season: int | None,
    space: Any,
    tune_config: Any,
    out: Path,
    on_status: Any,
) -> None:
    from forecaster.tune.run import tune

    tune(
        file,
        data_config,
        split=split,
        horizon=horizon,
        season=season,
        space=space,
        config=tune_config,
        out=out / SEARCH_DIR,
        resume=(out / SEARCH_DIR).exists(),
        on_status=on_status,
    )


def _export(out: Path, quantize: str, max_accuracy_loss: float) -> None:
    """Export the winner (the bundle to ship) and the runner-up (for the comparison)."""
    from forecaster.export.ship import export
    from forecaster.report.comparison import write_comparison

    search = out / SEARCH_DIR
    comparison = _read_json(search / "comparison.json")
    for cell, entry in comparison["cells"].items():
        run_dir = search / entry["run_dir"]
        target = out / "bundle" if entry["run_dir"] == "winner" else run_dir / "bundle"
        outcome = export(
            run_dir,
            quantize=quantize,
            out=target,
            max_accuracy_loss=max_accuracy_loss,
            overwrite=True,
        )
        shipped = next(r for r in outcome.results if r.mode == outcome.shipped)
        comparison["cells"][cell]["device"] = {
            "quantization": outcome.shipped,
            "tflite_bytes": shipped.size_bytes,
            "latency_ms": shipped.latency_ms,
            "bundle": str(target.relative_to(out)),
        }
    write_comparison(search, comparison)


def _device_check(out: Path) -> None:
    """Run the shipped bundle through the device path on the input CSV; compare with Keras."""
    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor
    from forecaster.runs.train import load_keras_model, load_training_data

    bundle = Bundle.load(out / "bundle")
    run_dir = out / SEARCH_DIR / "winner"
    predictor = Predictor.load(out / "bundle")
    predictions = out / "test_predictions.csv"
    predict_files(predictor, [Path(bundle.data.source)], predictions, mode="rolling")

    import pandas as pd

    prepared = load_training_data(bundle)
    test = prepared.windows["test"]
    keras_forecast = bundle.scaler.inverse(
        load_keras_model(run_dir).predict(test.x, batch_size=1024, verbose=0), bundle.data.targets
    )
    frame = pd.read_csv(predictions)
    index = prepared.data.frame.index
    last_rows = [str(index[o - 1]) for o in test.origins]
    device = frame[frame["origin"].isin(set(last_rows))]
    device = device.set_index(["origin", "step"])[list(bundle.data.targets)]
    ordered = np.stack(
        [
            device.loc[[(t, s) for s in range(1, bundle.model.horizon + 1)]].to_numpy()
            for t in last_rows
        ]
    )
    difference = np.abs(ordered - keras_forecast)
    export_info = bundle.metrics.get("export", {})
    shipped: dict[str, Any] = next(
        (m for m in export_info.get("modes", []) if m["mode"] == export_info.get("shipped")), {}
    )
    # The CSV holds 6 significant digits; allow for that beside the exported model's own error.
    tolerance = float(shipped.get("max_abs_vs_keras", 0.0)) * 1.01 + 1e-5 * float(
        np.abs(keras_forecast).max() + 1
    )
    check = {
        "origins": len(last_rows),
        "max_abs_vs_keras": float(difference.max()),
        "mean_abs_vs_keras": float(difference.mean()),
        "tolerance": tolerance,
        "passed": bool(difference.max() <= tolerance),
        "predictions_csv": predictions.name,
    }
    write_text_atomic(out / "device_check.json", json.dumps(check, indent=2) + "\n")
    if not check["passed"]:
        raise ForecasterError(
            f"the bundle run through `forecaster predict` differs from Keras by up to "
            f"{check['max_abs_vs_keras']:.4g}, more than the {tolerance:.4g} measured at export"
        )
