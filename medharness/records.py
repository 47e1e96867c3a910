"""Reading records someone else wrote (JSON Lines datasets and predictions, release pickles)
without trusting them.

A file that cannot be JSON Lines at all (UTF-16, not UTF-8, empty or blank, no line of JSON)
stops with one line. A line that is not usable is handed to the caller as a `BadLine`
naming what is wrong, so a dataset can skip that record and keep the rest. Values are checked,
never coerced: callers ask `text_problem` and `sample_id` instead of calling str().
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional

from medharness.errors import UserError

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


class BadLine(NamedTuple):
    reason: str


class RecordError(Exception):
    """One record breaks a rule: that sample is a data error with this reason."""


def json_lines(path: Path, raw: bytes, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, value or BadLine) for every non-blank line of `raw`, the file at `path`."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[:1000].count(b"\x00") * 4 > len(raw[:1000]):
        raise UserError(f"{path}: the file is UTF-16; save the {what} as UTF-8 JSON Lines")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    usable = seen = 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        seen += 1
        if len(line) > MAX_LINE_BYTES:
            yield number, BadLine(f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}:{number}: not valid UTF-8 (byte {line[exc.start]:#04x} at column {exc.start + 1}); "
                            f"save the {what} as UTF-8") from None
        value = parse_line(text)
        usable += not isinstance(value, BadLine)
        yield number, value
    if not seen:
        raise UserError(f"{path}: the file is empty; it must hold the {what}, one JSON object per line")
    if not usable:
        raise UserError(f"{path}: no line is valid JSON; it must hold the {what}, one JSON object per line")


def parse_line(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadLine(f"not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return BadLine(f"nested deeper than {MAX_DEPTH} levels")
    problem = value_problem(value)
    return BadLine(problem) if problem else value


def value_problem(value: Any) -> Optional[str]:
    """Nesting too deep, or a string that is not valid Unicode (a lone surrogate such as
    "\\ud800", which JSON allows and UTF-8 cannot store), anywhere in the value."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            if not is_unicode(item):
                return f"the text {ascii(item[:40])} holds a lone surrogate, which is not valid Unicode"
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def text_problem(value: Any) -> Optional[str]:
    """None when `value` is text; else what is wrong with it."""
    return None if isinstance(value, str) else f"must be a string, got {json_kind(value)}"


def sample_id(value: Any) -> Optional[str]:
    """A sample id as text: a non-empty string or a whole number, else None."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
