"""Progress of a search: trial and epoch events gathered into snapshots for a display."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from forecaster.tune.hyperparameters import clean_values, describe


@dataclass(frozen=True)
class SearchStatus:
    """A snapshot of the search for a progress display; `message` is set when a line is due."""

    phase: str  # "search", "retrain" or "done"
    role: str  # "local", "chief" or "worker"
    tuner: str
    cell: str  # the cell of the latest event
    done: int  # finished trials, all cells, including those before a resume
    running: int
    total: int | None  # planned trials, all cells (None on a worker)
    current: dict[str, Any]  # hyperparameters of the latest trial started
    epoch: int
    epochs: int
    best: dict[str, tuple[float, dict[str, Any]]]  # cell -> (validation loss, values)
    elapsed: float
    remaining: float | None  # seconds of the search's time budget left
    message: str = ""


StatusCallback = Callable[[SearchStatus], None]


class SearchProgress:
    """Collects trial events (from the tuner, or from the oracle on a chief) into `SearchStatus`."""

    def __init__(
        self,
        *,
        role: str,
        tuner: str,
        total: int | None,
        budget: float | None,
        on_status: StatusCallback | None,
    ) -> None:
        self.role, self.tuner, self.total, self.budget = role, tuner, total, budget
        self.on_status = on_status
        self.start = time.monotonic()
        self.lock = threading.RLock()
        self.done = 0
        self.running: dict[tuple[str, str], float] = {}  # (cell, trial id) -> start time
        self.durations: dict[str, list[float]] = {}
        self.best: dict[str, tuple[float, dict[str, Any]]] = {}
        self.finished: dict[str, int] = {}
        self.phase, self.cell = "search", ""
        self.current: dict[str, Any] = {}
        self.epoch = self.epochs = 0

    def restart_clock(self) -> None:
        """Start the elapsed time and the budget now."""
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the search started."""
        return time.monotonic() - self.start

    def resumed(self, cell: str, trials: list[Any]) -> None:
        """Count the trials a previous run finished."""
        with self.lock:
            ended = [t for t in trials if t.status in ("COMPLETED", "FAILED")]
            self.done += len(ended)
            self.finished[cell] = sum(t.status == "COMPLETED" for t in ended)
            for trial in ended:
                if trial.status == "COMPLETED" and trial.score is not None:
                    self._record_best(cell, float(trial.score), trial.hyperparameters.values)

    def trial_started(self, cell: str, trial_id: str, values: Mapping[str, Any]) -> None:
        """A trial was handed out (chief) or began (local, worker)."""
        with self.lock:
            if (cell, trial_id) in self.running:
                return
            self.running[(cell, trial_id)] = time.monotonic()
            self.cell, self.current = cell, clean_values(values)
            self.epoch, self.epochs = 0, 0
            self._emit()

    def epoch_ended(self, cell: str, epoch: int, epochs: int) -> None:
        """An epoch of the trial running in this process finished."""
        with self.lock:
            self.cell, self.epoch, self.epochs = cell, epoch, epochs
            self._emit()

    def trial_ended(
        self,
        cell: str,
        trial_id: str,
        values: Mapping[str, Any],
        status: str,
        score: float | None,
    ) -> None:
        """A trial finished (or failed)."""
        with self.lock:
            started = self.running.pop((cell, trial_id), None)
            seconds = time.monotonic() - started if started is not None else float("nan")
            self.durations.setdefault(cell, []).append(seconds)
            self.done += 1
            values = clean_values(values)
            if status == "COMPLETED" and score is not None and math.isfinite(score):
                self.finished[cell] = self.finished.get(cell, 0) + 1
                self._record_best(cell, float(score), values)
                outcome = f"val_loss {score:.5g}"
            else:
                outcome = f"{status.lower()}"
            total = f"/{self.total}" if self.total else ""
            self.cell = cell
            self._emit(
                f"trial {self.done}{total} {cell.upper()} {describe(values)}: {outcome} "
                f"({seconds:.1f} s)"
            )

    def set_phase(self, phase: str, cell: str, message: str) -> None:
        """Retraining, done."""
        with self.lock:
            self.phase, self.cell, self.epoch, self.epochs = phase, cell, 0, 0
            self._emit(message)

    def retrain_epoch(self, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        """An epoch of a retrain (an `EpochCallback` of forecaster.model.fit)."""
        with self.lock:
            self.epoch, self.epochs = epoch, epochs
            self._emit()

    def _record_best(self, cell: str, score: float, values: Mapping[str, Any]) -> None:
        if cell not in self.best or score < self.best[cell][0]:
            self.best[cell] = (score, clean_values(values))

    def status(self, message: str = "") -> SearchStatus:
        """The current snapshot."""
        remaining = None if self.budget is None else max(0.0, self.budget - self.elapsed)
        return SearchStatus(
            phase=self.phase,
            role=self.role,
            tuner=self.tuner,
            cell=self.cell,
            done=self.done,
            running=len(self.running),
            total=self.total,
            current=dict(self.current),
            epoch=self.epoch,
            epochs=self.epochs,
            best=dict(self.best),
            elapsed=self.elapsed,
            remaining=remaining,
            message=message,
        )

    def _emit(self, message: str = "") -> None:
        if self.on_status is not None:
            self.on_status(self.status(message))
