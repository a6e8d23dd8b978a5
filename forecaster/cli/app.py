"""The `forecaster` Typer app: its commands, help a person reads, and where errors are shown.

Every error is one `Error: ...` line on stderr with no traceback: a usage error (a missing or bad
option) exits with code 2, a problem with the data or files with code 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from forecaster import WHEEL, __version__
from forecaster.cli import data, device, train, tune
from forecaster.cli.render import note
from forecaster.errors import ForecasterError, UsageError

# What the training extra installs: a device install has none of them.
_TRAINING_MODULES = ("tensorflow", "keras", "keras_tuner", "sklearn", "statsmodels", "matplotlib")


def _fail(message: str, code: int) -> typer.Exit:
    note(f"Error: {message}")
    return typer.Exit(code)


def _usage_error(exc: typer.TyperException) -> typer.Exit:
    """One of Typer's usage errors (a bad or missing option) as one plain line."""
    # Typer checks choices with pydantic, which puts "Value error, " before the reason.
    message = exc.format_message().replace(": Value error, ", ": ").rstrip()
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        see = f"`{ctx.command_path} --help`"
        message = (
            f"{message} See {see}."
            if message.endswith("?")
            else f"{message.rstrip('.')}; see {see}"
        )
    return _fail(message, exc.exit_code)


def _show_help_when_bare(ctx: Any, args: list[str], command: Any) -> None:
    """A command given nothing shows its help and succeeds, as `--help` does."""
    if not args and command.no_args_is_help and not ctx.resilient_parsing:
        typer.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: `FILE`, not `{file}` or `<path>`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or self.name or ""
        return [name if self.required else f"[{name}]"]


def _help_option(command: Any, option: Any) -> Any:
    """`--help` at the end of the last panel rather than alone in a first one."""
    if option is not None:
        _readable([option])
        panels = [getattr(p, "rich_help_panel", None) for p in command.params]
        option.rich_help_panel = next((p for p in reversed(panels) if p), None)
    return option


def _readable(params: list[Any]) -> None:
    # Typer builds its own parameter classes; this is all that changes in them.
    for param in params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument
        elif getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no `<bool>`


class _Readable:
    """Help that reads well at 80 columns, shown when a command or group is given nothing."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _readable(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(self, super().get_help_option(ctx))  # type: ignore[misc]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _show_help_when_bare(ctx, args, self)
        parsed: list[str] = super().parse_args(ctx, args)  # type: ignore[misc]
        return parsed


class _Command(_Readable, TyperCommand):
    """A command of the app."""


class _Group(_Readable, TyperGroup):
    """The app and `data`: library errors become one `Error: ...` line, and so do usage errors."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except typer.TyperException as exc:  # options given before the command
            raise _usage_error(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise _fail(str(exc), 2) from None
        except ForecasterError as exc:
            raise _fail(str(exc), 1) from None
        except typer.TyperException as exc:  # the command's own options
            raise _usage_error(exc) from None
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in _TRAINING_MODULES:
                raise
            raise _fail(
                f"this command needs {exc.name}, part of the training extra, which is not "
                f'installed here; install it: pip install "{WHEEL}[train]" (or, in a checkout, '
                'pip install ".[train]")',
                1,
            ) from None


app = typer.Typer(
    cls=_Group,
    name="forecaster",
    help="Forecast sensor time series with GRU/LSTM models and ship them to small devices.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"forecaster {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            envvar="FORECASTER_VERBOSE",
            show_envvar=False,
            help="Also show TensorFlow's own log lines.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    from forecaster.quiet import quiet_tensorflow

    # Before any command loads TensorFlow, and for the processes it starts.
    quiet_tensorflow(show=verbose)


MAIN, STEPS, DEVICE = "The main job", "Step by step", "On the device"
data_app = typer.Typer(
    cls=_Group, help="Look at sensor CSV files before training.", no_args_is_help=True
)
data_app.command("inspect", cls=_Command, no_args_is_help=True)(data.data_inspect)

app.command(cls=_Command, no_args_is_help=True, rich_help_panel=MAIN)(tune.run)
app.add_typer(data_app, name="data", rich_help_panel=STEPS)
for step in (train.train, train.evaluate, tune.tune, device.export):
    app.command(cls=_Command, no_args_is_help=True, rich_help_panel=STEPS)(step)
for command in (device.predict, device.inspect, device.bench):
    app.command(cls=_Command, no_args_is_help=True, rich_help_panel=DEVICE)(command)


def main() -> None:
    """Entry point of the `forecaster` console script."""
    app()
