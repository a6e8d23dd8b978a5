"""Progress on stderr while a command works: epoch and byte bars, the live search panel."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from forecaster.cli.render import err_console, note

if TYPE_CHECKING:
    from forecaster.tune.progress import SearchStatus


@contextmanager
def epoch_progress(epochs: int) -> Iterator[Callable[[int, int, dict[str, float]], None]]:
    """An epoch bar on stderr, shown from the first finished epoch so that errors before
    training leave the terminal untouched."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("train", total=epochs, stats="")

    def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
        if not progress.live.is_started:
            progress.start()
        stats = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if "loss" in k)
        progress.update(task, completed=epoch, stats=stats)

    try:
        yield on_epoch
    finally:
        if progress.live.is_started:
            progress.stop()


@contextmanager
def predict_progress(files: list[Path]) -> Iterator[Callable[[Path, int], None]]:
    """A bar of the bytes read, shown only for inputs large enough to take a while."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    sizes = {path: path.stat().st_size if path.exists() else 0 for path in files}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err_console,
        transient=True,
        disable=sum(sizes.values()) < 20_000_000,
    ) as progress:
        task = progress.add_task("predict", total=sum(sizes.values()))
        done: dict[Path, int] = {}

        def on_chunk(path: Path, rows: int) -> None:
            done[path] = rows
            read = sum(
                sizes[p] * min(1.0, r / max(_estimated_rows(p, sizes[p]), 1))
                for p, r in done.items()
            )
            progress.update(task, completed=read, description=path.name)

        yield on_chunk


def _estimated_rows(path: Path, size: int) -> int:
    """Rows in a CSV estimated from its size and the length of its first lines."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    lines = head.count(b"\n")
    return int(size / (len(head) / lines)) if lines else 1


def print_stage(stage: str, state: str) -> None:
    """`run`'s stages as they start, one bold line each on stderr."""
    if state == "started":
        err_console.print(f"[bold]stage {stage}[/bold]", highlight=False)


@contextmanager
def tune_progress() -> Iterator[Callable[[SearchStatus], None]]:
    """The search on stderr: a live panel on a terminal, one line per finished trial otherwise."""
    from rich.live import Live

    panel = _StatusPanel()
    live = Live(panel, console=err_console, transient=True, refresh_per_second=2)
    interactive = err_console.is_terminal

    def on_status(status: SearchStatus) -> None:
        if not interactive:
            if status.message:
                note(status.message)
            return
        panel.update(status)
        if not live.is_started:
            live.start()
        if status.message:
            live.console.print(status.message, markup=False, highlight=False, soft_wrap=True)

    try:
        yield on_status
    finally:
        if live.is_started:
            live.stop()


class _StatusPanel:
    """The latest search status, with its clock advanced at every refresh of the live display."""

    def __init__(self) -> None:
        self.status: Any = None
        self.received = 0.0

    def update(self, status: SearchStatus) -> None:
        self.status, self.received = status, time.monotonic()

    def __rich__(self) -> Table:
        since = time.monotonic() - self.received
        status = self.status
        remaining = None if status.remaining is None else max(0.0, status.remaining - since)
        return _status_table(
            dataclasses.replace(status, elapsed=status.elapsed + since, remaining=remaining)
        )


def _status_table(status: SearchStatus) -> Table:
    from forecaster.tune.config import format_duration
    from forecaster.tune.hyperparameters import describe

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    epoch = f", {status.cell.upper()} epoch {status.epoch}/{status.epochs}" if status.epochs else ""
    if status.phase == "search":
        total = f" of {status.total}" if status.total else ""
        table.add_row(
            "search",
            f"{status.tuner}: trial {status.done + status.running}{total}, "
            f"{status.done} done, {status.running} running{epoch}",
        )
        if status.current:
            table.add_row("current", f"{status.cell.upper()} {describe(status.current)}")
    else:
        table.add_row(status.phase, f"{status.cell.upper()}{epoch}")
    for cell, (score, values) in sorted(status.best.items()):
        table.add_row(f"best {cell.upper()}", f"val_loss {score:.5g}  {describe(values)}")
    clock = f"{format_duration(status.elapsed)} elapsed"
    if status.remaining is not None:
        clock += f", {format_duration(status.remaining)} of the time budget left"
    table.add_row("time", clock)
    return table
