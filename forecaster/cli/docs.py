"""docs/cli.md, the command reference, rendered from the Typer app's own command objects.

`make docs` (`python -m forecaster.cli.docs docs/cli.md`) writes it; tests/test_cli_docs.py
renders it again and fails when the file differs, so the reference cannot drift from `--help`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer

from forecaster.cli.app import app

_EXTRAS = re.compile(r"\s*\[(default: [^\]]*|required)\]")
_HEADER = """\
# Command reference

<!-- Generated from the command line's own help by `make docs`; do not edit by hand. -->

Every command also takes `--help` (a command given nothing shows it too). `forecaster --version`
prints the version, and `python -m forecaster` works like `forecaster`. Errors are one
`Error: ...` line on stderr: exit code 2 for a usage error, 1 for a problem with the data or files.
TensorFlow's own log lines are kept off the terminal; `forecaster --verbose COMMAND ...` (or
`FORECASTER_VERBOSE=1`) shows them.
"""


def anchor(path: tuple[str, ...]) -> str:
    """GitHub's anchor of a command's heading: ('data', 'inspect') -> 'forecaster-data-inspect'."""
    return "-".join(("forecaster", *path))


def command_paths() -> list[tuple[str, ...]]:
    """Every command that runs something (not the groups), as its words after `forecaster`."""
    return [path for path, _, _ in _walk()]


def render() -> str:
    """The whole reference as Markdown, commands grouped by the panels `forecaster --help` shows."""
    root = typer.main.get_command(app)
    root_ctx = root.context_class(root, info_name="forecaster")
    commands = _walk()
    contents = [
        f"- [`forecaster {' '.join(path)}`](#{anchor(path)}): {_short_help(command)}"
        for path, command, _ in commands
    ]
    parts = [_HEADER, "\n".join(contents) + "\n", _section(root, root_ctx, "##")]
    panels: dict[str, list[str]] = {}
    for path, command, ctx in commands:
        panel = _panel_of(root, root_ctx, path[0])
        panels.setdefault(panel, []).append(_section(command, ctx, "###"))
    for panel, sections in panels.items():
        parts.append(f"## {panel}\n")
        parts += sections
    return "\n".join(parts).rstrip() + "\n"


def _walk() -> list[tuple[tuple[str, ...], Any, Any]]:
    """(path, command, context) of every leaf command, in the order the app registers them."""
    root = typer.main.get_command(app)
    found: list[tuple[tuple[str, ...], Any, Any]] = []

    def visit(group: Any, ctx: Any, prefix: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            sub_ctx = command.context_class(command, info_name=name, parent=ctx)
            if hasattr(command, "list_commands"):
                visit(command, sub_ctx, (*prefix, name))
            else:
                found.append(((*prefix, name), command, sub_ctx))

    visit(root, root.context_class(root, info_name="forecaster"), ())
    return found


def _panel_of(root: Any, ctx: Any, name: str) -> str:
    command = root.get_command(ctx, name)
    return str(getattr(command, "rich_help_panel", None) or "Commands")


def _section(command: Any, ctx: Any, level: str) -> str:
    """One command: its heading, usage, description with its example, and options by panel."""
    heading = f"{level} `{ctx.command_path}`\n"
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines = [heading, "```console", usage, "```", "", _description(command.help or "")]
    panels: dict[str, list[str]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or "--help" in getattr(param, "opts", ()):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        extras = _EXTRAS.findall(text)
        text = _EXTRAS.sub("", text).strip()
        default = next((e.removeprefix("default: ") for e in extras if e != "required"), "")
        if "required" in extras:
            default = "required"
        elif default:
            default = f"`{default}`"
        elif getattr(param, "is_flag", False) and param.default is False:
            default = "off"
        is_argument = param.param_type_name == "argument"
        panel = getattr(param, "rich_help_panel", None) or (
            "Arguments" if is_argument else "Options"
        )
        panels.setdefault(panel, []).append(f"| `{names}` | {_cell(default)} | {_cell(text)} |")
    for panel, rows in panels.items():
        kind = "argument" if panel == "Arguments" else "option"
        lines += [f"**{panel}**", "", f"| {kind} | default | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def _short_help(command: Any) -> str:
    """The first line of a command's help."""
    return str(command.help or "").strip().splitlines()[0]


def _description(text: str) -> str:
    """A docstring's paragraphs; its indented example lines become a console block."""
    out: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        lines = paragraph.splitlines()
        if all(line.startswith("    ") for line in lines):
            out.append("```console\n" + "\n".join(line[4:] for line in lines) + "\n```")
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> None:
    """`python -m forecaster.cli.docs [PATH]`: write the reference to PATH, or print it."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if not args:
        sys.stdout.write(text)
        return
    from forecaster.files import write_text_atomic

    write_text_atomic(Path(args[0]), text)


if __name__ == "__main__":
    main()
