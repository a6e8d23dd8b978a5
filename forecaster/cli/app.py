"""The `forecaster` Typer app: its commands, and the one place library errors become `Error:`."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from forecaster import WHEEL
from forecaster.cli import data, device, train, tune
from forecaster.cli.render import note
from forecaster.errors import ForecasterError

# What the training extra installs: a device install has none of them.
_TRAINING_MODULES = ("tensorflow", "keras", "keras_tuner", "sklearn", "statsmodels", "matplotlib")


class _Group(TyperGroup):
    """Turns the library's errors into one `Error: ...` line and exit code 1, with no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ForecasterError as exc:
            note(f"Error: {exc}")
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in _TRAINING_MODULES:
                raise
            note(
                f"Error: this command needs {exc.name}, part of the training extra, which is not "
                f'installed here; install it: pip install "{WHEEL}[train]" (or, in a checkout, '
                'pip install ".[train]")'
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="forecaster",
    help="Forecast sensor time series with GRU/LSTM models and ship them to small devices.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
data_app = typer.Typer(
    cls=_Group, help="Look at sensor CSV files before training.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

data_app.command("inspect")(data.data_inspect)
app.command()(train.train)
app.command()(tune.tune)
app.command()(tune.run)
app.command()(train.evaluate)
app.command()(device.export)
app.command()(device.predict)
app.command()(device.inspect)
app.command()(device.bench)


def main() -> None:
    """Entry point of the `forecaster` console script."""
    app()
