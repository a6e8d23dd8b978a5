"""What a benchmark section reports (tables, targets, notes) and how results.md shows it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

Cell = str | int | float | None


@dataclass
class Table:
    """Columns and rows of plain values; floats are formatted when rendered."""

    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    title: str = ""

    def add(self, *values: Cell) -> None:
        """Append one row."""
        self.rows.append(list(values))


@dataclass
class Target:
    """A goal from the issue, what was measured against it, and whether it was met."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: could not be measured


@dataclass
class Section:
    """One benchmark section's results."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw samples, for results.json
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain values for results.json."""
        return _finite(asdict(self))

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Section:
        """Read what `to_json` wrote."""
        return cls(
            key=raw["key"],
            title=raw["title"],
            tables=[Table(**t) for t in raw.get("tables", [])],
            targets=[Target(**t) for t in raw.get("targets", [])],
            notes=list(raw.get("notes", [])),
            data=dict(raw.get("data", {})),
            seconds=float(raw.get("seconds", 0.0)),
            error=raw.get("error"),
        )


def _finite(value: Any) -> Any:
    """NaN and infinity become None: results.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def fmt(value: Cell) -> str:
    """A table cell as text: integers with thousands separators, floats to 3 significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    return str(value)


def met_text(met: bool | None) -> str:
    """yes / **no** / n/a, so a miss stands out in the table."""
    return "n/a" if met is None else ("yes" if met else "**NO**")


def markdown_table(table: Table) -> str:
    """A GitHub markdown table."""
    lines = []
    if table.title:
        lines += [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(fmt(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines)


def targets_table(sections: list[Section]) -> Table:
    """Every target of every section in one table."""
    table = Table(["section", "target", "goal", "measured", "met"])
    for section in sections:
        for target in section.targets:
            table.add(
                section.title, target.name, target.target, target.measured, met_text(target.met)
            )
        if section.error:
            table.add(section.title, "section failed", "", section.error.splitlines()[0], "n/a")
    return table


def section_markdown(number: int, section: Section) -> str:
    """One section: heading, tables, targets and notes."""
    parts = [f"## {number}. {section.title}", ""]
    if section.error:
        parts += ["**The section failed:**", "", "```", section.error.strip(), "```", ""]
    for table in section.tables:
        parts += [markdown_table(table), ""]
    if section.targets:
        targets = Table(["target", "goal", "measured", "met"])
        for target in section.targets:
            targets.add(target.name, target.target, target.measured, met_text(target.met))
        parts += [markdown_table(targets), ""]
    for note in section.notes:
        parts += [f"- {note}"]
    if section.notes:
        parts.append("")
    parts += [f"_Section time: {section.seconds:.0f} s._", ""]
    return "\n".join(parts)
