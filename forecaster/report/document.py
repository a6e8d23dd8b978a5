"""The run report as Markdown and as one self-contained HTML file (images inlined, no scripts)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from forecaster.files import write_text_atomic


@dataclass(frozen=True)
class Heading:
    """A section title."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Plain text; `note` paragraphs are shown as a highlighted box."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class TableBlock:
    """A table with a header row; `bold_row` marks one row (e.g. the shipped model)."""

    headers: list[str]
    rows: list[list[str]]
    bold_row: int | None = None


@dataclass(frozen=True)
class Image:
    """A PNG file, inlined into the HTML and linked from the Markdown."""

    path: Path
    caption: str


@dataclass(frozen=True)
class Code:
    """Commands to copy."""

    text: str


Block = Heading | Paragraph | TableBlock | Image | Code


@dataclass
class Report:
    """An ordered list of blocks with a title."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        """Append blocks in order."""
        self.blocks.extend(blocks)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write report.md and report.html into `directory` (each atomically)."""
        md, page = directory / "report.md", directory / "report.html"
        write_text_atomic(md, self.markdown(directory))
        write_text_atomic(page, self.html())
        return md, page

    def markdown(self, directory: Path) -> str:
        """The report as Markdown, with image paths relative to `directory`."""
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if isinstance(block, Heading):
                out += ["#" * block.level + " " + block.text, ""]
            elif isinstance(block, Paragraph):
                out += [("> " if block.note else "") + block.text, ""]
            elif isinstance(block, TableBlock):
                out.append("| " + " | ".join(block.headers) + " |")
                out.append("|" + "|".join("---" for _ in block.headers) + "|")
                for i, row in enumerate(block.rows):
                    cells = [f"**{c}**" if i == block.bold_row and c else c for c in row]
                    out.append("| " + " | ".join(cells) + " |")
                out.append("")
            elif isinstance(block, Image):
                target = _relative(block.path, directory)
                out += [f"![{block.caption}]({target})", f"*{block.caption}*", ""]
            else:
                out += ["```console", block.text, "```", ""]
        return "\n".join(out)

    def html(self) -> str:
        """The report as one HTML page: inline CSS, images as data URIs, nothing fetched."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            if isinstance(block, Heading):
                level = min(max(block.level, 2), 4)
                body.append(f"<h{level}>{html.escape(block.text)}</h{level}>")
            elif isinstance(block, Paragraph):
                css = ' class="note"' if block.note else ""
                body.append(f"<p{css}>{html.escape(block.text)}</p>")
            elif isinstance(block, TableBlock):
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
                thead = f"<thead><tr>{head}</tr></thead>" if any(block.headers) else ""
                rows = []
                for i, row in enumerate(block.rows):
                    css = ' class="shipped"' if i == block.bold_row else ""
                    cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
                    rows.append(f"<tr{css}>{cells}</tr>")
                body.append(f"<table>{thead}<tbody>{''.join(rows)}</tbody></table>")
            elif isinstance(block, Image):
                data = base64.b64encode(block.path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" '
                    f'alt="{html.escape(block.caption)}"><figcaption>{html.escape(block.caption)}'
                    "</figcaption></figure>"
                )
            else:
                body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
        return _PAGE.format(title=html.escape(self.title), body="\n".join(body))


def _relative(path: Path, directory: Path) -> str:
    try:
        return str(path.resolve().relative_to(directory.resolve()))
    except ValueError:
        return str(path)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #1f77b4; padding-bottom: .3rem; }}
h2 {{ margin-top: 2.2rem; color: #1f4e79; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
thead th {{ background: #eef3f8; }}
tr.shipped td {{ font-weight: 600; background: #f3f9ee; }}
p.note {{ background: #fff7e0; border-left: 4px solid #f0b400; padding: .6rem .8rem; }}
figure {{ margin: 1rem 0; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #555; font-size: .9rem; }}
pre {{ background: #f6f8fa; padding: .8rem; white-space: pre-wrap; overflow-wrap: anywhere; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
