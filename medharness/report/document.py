"""A report as a list of blocks (headings, text, tables, figures), rendered to Markdown here and
to HTML in `html.py`, so both files always say the same thing.

Metric values are kept in the units of run.json (fractions) and shown x100, as papers print
them (accuracy 0.774 -> 77.4; CIDEr 1.799 -> 179.9).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from medharness.schema import MetricValue

RowKind = Literal["measured", "random", "reference"]


@dataclass(frozen=True)
class Score:
    value: Optional[float]
    n: Optional[int] = None
    low: Optional[float] = None
    high: Optional[float] = None
    small: bool = False
    note: Optional[str] = None
    href: Optional[str] = None  # the samples behind the number (an explorer page, pre-filtered)

    @classmethod
    def of(cls, metric: Optional[MetricValue], href: Optional[str] = None) -> "Score":
        if metric is None:
            return cls(None, href=href)
        low, high = metric.ci if metric.ci else (None, None)
        return cls(metric.value, metric.n, low, high, metric.small, metric.note, href)

    def text(self) -> str:
        if self.value is None:
            shown = "n/a"
        else:
            shown = points(self.value)
            if self.low is not None and self.high is not None:
                shown += f" [{points(self.low)}, {points(self.high)}]"
        if self.n is not None:
            shown += f" n={self.n}"
        if self.small:
            shown += " (small group)"
        if self.note:
            shown += f" ({self.note})"
        return shown


@dataclass(frozen=True)
class Link:
    """Text that links to a relative page (shown as plain text in Markdown)."""

    text: str
    href: str


Cell = Union[str, Score, Link]


@dataclass
class Row:
    cells: list[Cell]
    kind: RowKind = "measured"


@dataclass
class Table:
    headers: list[str]
    rows: list[Row]
    caption: str = ""


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: Literal["plain", "note", "warning"] = "plain"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Figure:
    png: bytes
    alt: str
    caption: str = ""


Block = Union[Heading, Paragraph, Bullets, Table, Figure]


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def points(value: float) -> str:
    return f"{value * 100:.1f}"


KIND_MARK = {"measured": "", "random": " [random weights]", "reference": " [published]"}


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Link):
        return cell.text
    return cell.text() if isinstance(cell, Score) else cell


# Characters that are invisible or reorder text (bidirectional overrides, zero-width space, byte
# order mark), and U+FFFD, which stands where a decoder met bytes that were not valid text;
# shown escaped so a model's output cannot hide or disguise what it says.
INVISIBLE = frozenset("\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\ufffd")


def visible(text: str) -> str:
    """Control characters, lone surrogates and replacement characters (text that was not valid
    Unicode) and invisible characters written as escapes (\\x00, \\ud800, \\u202e); newlines and tabs are kept."""
    out = []
    for char in text:
        if char in "\n\t":
            out.append(char)
        elif char in INVISIBLE or unicodedata.category(char) in ("Cc", "Cs"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def md_escape(text: str) -> str:
    """Untrusted text as literal Markdown table/paragraph text."""
    text = visible(text).replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "`*|":
        text = text.replace(char, "\\" + char)
    text = " ".join(text.replace("](", "]\\(").split())
    return "\\" + text if text.startswith(("#", "-", "+", ">")) else text


def render_markdown(doc: Document) -> str:
    lines = [f"# {md_escape(doc.title)}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + md_escape(block.text), ""]
        elif isinstance(block, Paragraph):
            prefix = {"plain": "", "note": "> Note: ", "warning": "> **Warning:** "}[block.kind]
            lines += [prefix + md_escape(block.text), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {md_escape(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [md_escape(block.caption), ""]
            lines.append("| " + " | ".join(md_escape(h) for h in block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            for row in block.rows:
                cells = [md_escape(cell_text(c)) for c in row.cells]
                cells[0] += KIND_MARK[row.kind]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(block, Figure):
            lines += [f"*Figure: {md_escape(block.caption or block.alt)} (see the HTML report).*", ""]
    return "\n".join(lines)
