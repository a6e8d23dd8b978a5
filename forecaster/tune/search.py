"""The search: one sub-search per cell, run here, served (chief) or worked on (worker), in time."""

from __future__ import annotations

import functools
import importlib.util
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from forecaster import WHEEL
from forecaster.tune.config import Distributed, TuneConfig, TuningError, format_duration
from forecaster.tune.data import SearchData
from forecaster.tune.directory import TUNER_DIR
from forecaster.tune.progress import SearchProgress
from forecaster.tune.space import SearchSpace

if TYPE_CHECKING:
    from keras_tuner.src.engine.trial import Trial

    from forecaster.tune.distributed import OracleServer
    from forecaster.tune.keras_tuner import ForecastTuner


class Search:
    """One sub-search per cell, run here, served to workers (chief), or worked on (worker)."""

    def __init__(
        self,
        *,
        out: Path,
        data: SearchData,
        space: SearchSpace,
        config: TuneConfig,
        season: int,
        distributed: Distributed | None,
        progress: SearchProgress,
    ) -> None:
        self.out, self.data, self.space, self.config = out, data, space, config
        self.season, self.distributed, self.progress = season, distributed, progress
        self.role = distributed.role if distributed is not None else "local"
        self.tuners: dict[str, ForecastTuner] = {}
        self.servers: list[OracleServer] = []

    def tuner(self, cell: str) -> ForecastTuner:
        """Build (or reload from the output directory) one cell's tuner."""
        from forecaster.tune.keras_tuner import TrialSettings, make_tuner

        config = self.config
        settings = TrialSettings(
            data=self.data,
            space=self.space,
            cell=cell,
            season=self.season,
            seed=config.seed,
            loss=config.loss,
            max_epochs=config.max_epochs,
            patience=config.patience,
            batch_size=config.batch_size,
            deadline=functools.partial(self._oracle_deadline, cell),
            progress=self.progress if self.role != "chief" else None,
        )
        return make_tuner(
            settings,
            tuner=config.tuner,
            max_trials=config.trials_per_cell,
            hyperband_factor=config.hyperband_factor,
            directory=self.out / TUNER_DIR,
        )

    def deadline(self, index: int) -> float | None:
        """Cell i may start trials until (i + 1) / cells of the budget is spent."""
        if self.config.search_budget is None:
            return None
        share = self.config.search_budget * (index + 1) / len(self.space.cells)
        return self.progress.start + share

    def _oracle_deadline(self, cell: str) -> float | None:
        # A worker keeps no tuner here: the chief's oracle holds the deadline.
        tuner = self.tuners.get(cell)
        return tuner.oracle.deadline if tuner is not None else None

    def run(self) -> None:
        """Run the search in this process's role."""
        if importlib.util.find_spec("tensorboard") is None:
            # keras-tuner imports tensorboard in every trial.
            raise TuningError(
                "keras-tuner needs tensorboard, which is not installed; install the training "
                f'extra: pip install "{WHEEL}[train]" (in a checkout: make install)'
            )
        if self.role == "worker":
            self._run_worker()
        elif self.role == "chief":
            self._run_chief()
        else:
            self._run_local()

    def _run_local(self) -> None:
        from forecaster.tune.distributed import environment

        with environment(None, 0):
            for cell in self.space.cells:
                self.tuners[cell] = self.tuner(cell)
                self.progress.resumed(cell, list(self.tuners[cell].oracle.trials.values()))
            self.progress.restart_clock()
            for index, cell in enumerate(self.space.cells):
                tuner = self.tuners[cell]
                tuner.progress = self.progress
                tuner.oracle.deadline = self.deadline(index)
                self._search(tuner, cell)

    def _run_chief(self) -> None:
        from forecaster.tune.distributed import (
            OracleServer,
            environment,
            serve_until_finished,
        )

        assert self.distributed is not None
        with environment(self.distributed, 0):
            for cell in self.space.cells:
                self.tuners[cell] = self.tuner(cell)
                self.progress.resumed(cell, list(self.tuners[cell].oracle.trials.values()))
            self.progress.restart_clock()
            for index, cell in enumerate(self.space.cells):
                oracle = self.tuners[cell].oracle
                oracle.deadline = self.deadline(index)
                oracle.progress = self.progress
                self.tuners[cell].save()
                self.servers.append(OracleServer(oracle, self.distributed, index))
            try:
                serve_until_finished(self.servers)
            except KeyboardInterrupt:
                self.close()
                raise self._interrupted() from None
        self._check_failures()

    def _run_worker(self) -> None:
        import grpc

        from forecaster.tune.distributed import (
            environment,
            rpc_error,
            set_call_timeout,
            wait_for_oracle,
        )

        assert self.distributed is not None
        set_call_timeout(self.distributed.timeout)
        for index, cell in enumerate(self.space.cells):
            with environment(self.distributed, index):
                wait_for_oracle(self.distributed, index, cell)
                tuner = self.tuner(cell)
                tuner.progress = self.progress
                _pace_idle(tuner)
                try:
                    self._search(tuner, cell)
                except grpc.RpcError as exc:
                    raise rpc_error(exc, self.distributed, index) from None

    def _search(self, tuner: ForecastTuner, cell: str) -> None:
        from forecaster.tune.keras_tuner import FatalForecasterError

        try:
            tuner.search(verbose=0)
        except KeyboardInterrupt:
            raise self._interrupted() from None
        except FatalForecasterError as exc:
            raise exc.error from None
        except RuntimeError as exc:
            if "consecutive failures" not in str(exc):
                raise
            last = [line for line in str(exc).splitlines() if line.strip()][-1]
            raise TuningError(
                f"{cell.upper()} trials failed {tuner.oracle.max_consecutive_failed_trials} times "
                f"in a row; the last error: {last.strip()}"
            ) from None

    def _interrupted(self) -> TuningError:
        return TuningError(
            f"search interrupted after {self.progress.done} finished trial(s); rerun the same "
            "command with --resume to continue (finished trials are kept)"
        )

    def _check_failures(self) -> None:
        failed = {
            cell: [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
            for cell, tuner in self.tuners.items()
        }
        for cell, trials in failed.items():
            if trials and not self.completed(cell):
                last = (trials[-1].message or "").strip().splitlines()
                raise TuningError(
                    f"every {cell.upper()} trial failed; the last error: "
                    f"{last[-1] if last else 'unknown'}"
                )

    def completed(self, cell: str) -> int:
        """How many of the cell's trials completed."""
        return sum(t.status == "COMPLETED" for t in self.tuners[cell].oracle.trials.values())

    def best_trials(self) -> dict[str, Trial]:
        """The best completed trial of each cell; an error names why a cell has none."""
        best: dict[str, Trial] = {}
        for cell, tuner in self.tuners.items():
            completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
            if completed:
                best[cell] = min(completed, key=lambda t: (t.score, t.trial_id))
                continue
            if tuner.oracle.budget_spent and self.config.time_budget is not None:
                took = [s for durations in self.progress.durations.values() for s in durations]
                longest = max((s for s in took if math.isfinite(s)), default=0.0)
                budget = format_duration(self.config.stated_budget(self.config.time_budget))
                if not longest:
                    raise TuningError(
                        f"--budget {budget} ran out before any {cell.upper()} trial ran; "
                        "pass a budget long enough to train a few models, such as 10m"
                    )
                search_share = 1 - self.config.retrain_share
                needed = format_duration(
                    self.config.stated_budget(longest * len(self.space.cells) * 1.2 / search_share)
                )
                raise TuningError(
                    f"--budget {budget} ran out before any {cell.upper()} trial ran (a "
                    f"trial took {longest:.1f} s); pass at least --budget {needed}, or "
                    "fewer --cells. Finished trials are kept: rerun with --resume"
                )
            self._check_failures()
            raise TuningError(
                f"no {cell.upper()} trial finished; rerun with --resume or a larger --max-trials"
            )
        return best

    def close(self) -> None:
        """Stop serving (chief)."""
        for server in self.servers:
            server.stop()
        self.servers = []


def _pace_idle(tuner: ForecastTuner) -> None:
    """A Hyperband worker waiting for a bracket asks again at once; make it wait a little."""
    create = tuner.oracle.create_trial

    def create_trial(tuner_id: str) -> Trial:
        trial = create(tuner_id)
        if trial.status == "IDLE":
            time.sleep(0.5)
        return trial

    tuner.oracle.create_trial = create_trial
