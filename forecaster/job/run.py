"""The main job in one command: inspect, tune GRU vs LSTM, export, check on the device, report.

Each stage records itself in OUT/run.json when it finishes, so a failed or interrupted run keeps
what earlier stages produced and `--resume` picks up at the first unfinished stage. The report is
built from the files the stages wrote, never from memory, so a resumed run reports the same.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.config import DataConfig, Quantize, Runtime, SplitConfig
from forecaster.errors import ConfigError, ForecasterError
from forecaster.files import sha256_of, write_text_atomic
from forecaster.layout import (
    BUNDLE_DIR,
    DATA_SUMMARY,
    DEFAULT_MODELS_DIR,
    JOB_STATE,
    REPORT_HTML,
    REPORT_MD,
    SEARCH_DIR,
    WINNER_DIR,
)
from forecaster.tune.config import (
    TUNE_RETRAIN_SHARE,
    BudgetReserve,
    TuneConfig,
    format_duration,
)
from forecaster.tune.space import SpaceOverrides

if TYPE_CHECKING:
    from forecaster.data.fleet import Fleet
    from forecaster.data.load import SensorData
    from forecaster.tune.progress import StatusCallback

STAGES = ("inspect", "search", "export", "device_check", "report")
# Of a run's --budget, what export, the device check and the report get (measured on the weather
# sample: about a minute for both cells' four modes, the check and the report).
# Export, the device check and the report get a fifth of --budget, at least a minute.
AFTER_SEARCH = BudgetReserve(share=0.2, minimum=60.0)

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


@dataclass(frozen=True)
class JobRequest:
    """What one `forecaster run` is asked: the data, the search, the export, where to write."""

    file: Path
    data: DataConfig
    split: SplitConfig = field(default_factory=SplitConfig)
    horizon: int = 12
    seasons: tuple[int, ...] | None = None  # default: the seasons the training part shows
    space: SpaceOverrides = field(default_factory=SpaceOverrides)
    tune: TuneConfig = field(default_factory=TuneConfig)
    budget: float | None = None  # seconds for the whole run; None: the search's own settings
    quantize: Quantize = "all"
    runtime: Runtime = "litert"
    max_accuracy_loss: float = 0.02
    out: Path | None = None  # default models/<file stem>-run
    command: str = ""  # the command line the report quotes to reproduce the run

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", Path(self.file))
        if not self.data.targets:
            raise ConfigError("no target column chosen; pass --target COLUMN")
        self.tune_config  # noqa: B018  # a budget too small for the stages is refused at once

    @property
    def tune_config(self) -> TuneConfig:
        """The search's settings, its time budget the run's less what the stages after it need.

        Export, the device check and the report get `AFTER_SEARCH` of the budget; the search
        and retraining share the rest as in `tune`.
        """
        if self.budget is None:
            return self.tune
        after = AFTER_SEARCH.kept(self.budget)
        if self.budget - after < AFTER_SEARCH.minimum:
            raise ConfigError(
                f"--budget {format_duration(self.budget)} leaves no time to search after the "
                f"{format_duration(after)} that export and the report need; pass at least "
                f"--budget {format_duration(2 * after)}"
            )
        return dataclasses.replace(
            self.tune,
            time_budget=self.budget - after,
            retrain_share=TUNE_RETRAIN_SHARE,
            reserve=AFTER_SEARCH,
        )

    @property
    def out_dir(self) -> Path:
        """Where the run writes."""
        return self.out or DEFAULT_MODELS_DIR / f"{self.file.stem}-run"


def run_job(
    request: JobRequest,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_stage: StageCallback | None = None,
    on_status: StatusCallback | None = None,
) -> JobOutcome:
    """Run every stage from CSV to shipped bundle and report; see the module docstring."""
    file, split, out = request.file, request.split, request.out_dir
    data_config = request.data
    identity = {
        "file": str(file.resolve()),
        "file_sha256": sha256_of(file) if file.exists() else "",
        "targets": list(data_config.targets),
        "horizon": request.horizon,
        "split": [split.train, split.val, split.test],
    }
    if data_config.id_col is not None:
        identity["id_col"] = data_config.id_col
    state = _open_state(out, identity, resume=resume, overwrite=overwrite, command=request.command)
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
        write_text_atomic(out / JOB_STATE, json.dumps(state, indent=2) + "\n")
        if on_stage is not None:
            on_stage(name, "done")

    data = _LoadedOnce(file, data_config)
    stage("inspect", lambda: _inspect(data.get(), split, out, request.horizon))
    stage(
        "search",
        lambda: _search(data.get(), request, on_status),
    )
    stage("export", lambda: _export(out, request, data.get()))
    stage("device_check", lambda: _device_check(out, data.get()))

    def write_report() -> None:
        from forecaster.job.report import build_report

        build_report(out, state).write(out)

    stage("report", write_report)
    from forecaster.tune.comparison import Comparison

    comparison = Comparison.read(out / SEARCH_DIR)
    return JobOutcome(
        out=out,
        bundle_dir=out / BUNDLE_DIR,
        report_html=out / REPORT_HTML,
        report_md=out / REPORT_MD,
        winner=comparison.winner,
        reason=comparison.reason,
        skipped=done_before,
    )


def _open_state(
    out: Path, identity: dict[str, Any], *, resume: bool, overwrite: bool, command: str
) -> dict[str, Any]:
    path = out / JOB_STATE
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


class _LoadedOnce:
    """The job's CSV, read on first use and shared by every later stage of this process: one
    series, or with an id column a fleet of them."""

    def __init__(self, file: Path, config: DataConfig) -> None:
        self.file, self.config = file, config
        self.data: SensorData | Fleet | None = None

    def get(self) -> SensorData | Fleet:
        if self.data is None:
            from forecaster.data.fleet import load_fleet
            from forecaster.data.load import load_csv

            if self.config.id_col is not None:
                self.data = load_fleet(self.file, self.config)
            else:
                self.data = load_csv(self.file, self.config)
        return self.data


def _inspect(data: SensorData | Fleet, split: SplitConfig, out: Path, horizon: int) -> None:
    from forecaster.data.fleet import Fleet
    from forecaster.data.inspect import summarize, summarize_fleet
    from forecaster.model.windows import PARTS, split_rows
    from forecaster.records import to_plain

    if isinstance(data, Fleet):
        # The window is the search's to choose; a series is too short here if it cannot hold
        # even the shortest one the search tries (a horizon's length) per part.
        fleet = summarize_fleet(
            data, 2 * horizon, lambda rows: [split_rows(rows, split).part(p) for p in PARTS]
        )
        text = json.dumps(to_plain(fleet), indent=2, default=str)
        write_text_atomic(out / DATA_SUMMARY, text + "\n")
        return
    train_rows = split_rows(data.n_rows, split).train
    summary = summarize(data, train_rows) | {"warnings": data.report.warnings}
    write_text_atomic(out / DATA_SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")


def _search(
    data: SensorData | Fleet, request: JobRequest, on_status: StatusCallback | None
) -> None:
    from forecaster.tune.run import tune

    out = request.out_dir / SEARCH_DIR
    tune(
        data,
        split=request.split,
        horizon=request.horizon,
        seasons=request.seasons,
        space=request.space,
        config=request.tune_config,
        out=out,
        resume=out.exists(),
        on_status=on_status,
    )


def _export(out: Path, request: JobRequest, data: SensorData | Fleet) -> None:
    """Export the winner (the bundle to ship) and the runner-up (for the comparison)."""
    from forecaster.export.ship import export
    from forecaster.tune.comparison import Comparison, DeviceSummary

    search = out / SEARCH_DIR
    comparison = Comparison.read(search)
    for cell in comparison.cells.values():
        run_dir = search / cell.run_dir
        target = out / BUNDLE_DIR if cell.run_dir == WINNER_DIR else run_dir / BUNDLE_DIR
        outcome = export(
            run_dir,
            quantize=request.quantize,
            runtime=request.runtime,
            out=target,
            max_accuracy_loss=request.max_accuracy_loss,
            overwrite=True,
            data=data,
        )
        shipped = next(r for r in outcome.results if r.mode == outcome.shipped)
        cell.device = DeviceSummary(
            tflite_bytes=shipped.size_bytes,
            latency_ms=shipped.latency_ms,
            quantization=outcome.shipped,
            bundle=str(target.relative_to(out)),
        )
    comparison.write(search)


def _device_check(out: Path, data: SensorData | Fleet) -> None:
    from forecaster.data.fleet import Fleet
    from forecaster.job.device_check import check_fleet_on_device, check_on_device

    if isinstance(data, Fleet):
        check_fleet_on_device(out, data)
    else:
        check_on_device(out, data)
