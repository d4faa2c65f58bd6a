"""Rows for people and for tools: terminal tables, Markdown, JSON, JSON lines and CSV.

Every writer takes an iterator and writes as it goes, so a ten-million-event export holds
one row at a time. Terminal tables use fixed column widths for the same reason: measuring
the widest cell first would mean holding the whole log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import msgspec

from service.audit.export import csv_lines, jsonl_lines

__all__ = ["Column", "write_csv", "write_json", "write_jsonl", "write_markdown", "write_table"]


class Column(msgspec.Struct, frozen=True):
    title: str
    field: str
    width: int


def write_table(out: TextIO, columns: Sequence[Column], rows: Iterable[Any]) -> None:
    """An aligned table."""
    out.write(_line(columns, [c.title for c in columns]))
    out.write(_line(columns, ["-" * c.width for c in columns]))
    for row in rows:
        out.write(_line(columns, [_cell(getattr(row, c.field)) for c in columns]))


def write_markdown(out: TextIO, columns: Sequence[Column], rows: Iterable[Any]) -> None:
    out.write("| " + " | ".join(c.title for c in columns) + " |\n")
    out.write("|" + " --- |" * len(columns) + "\n")
    for row in rows:
        cells = [_cell(getattr(row, c.field)).replace("|", "\\|") for c in columns]
        out.write("| " + " | ".join(cells) + " |\n")


def write_jsonl(out: TextIO, rows: Iterable[Any]) -> None:
    for line in jsonl_lines(rows):
        out.write(line)


def write_json(out: TextIO, rows: Iterable[Any]) -> None:
    """A JSON array, written element by element."""
    first = True
    for row in rows:
        out.write(("[\n" if first else ",\n") + _ENCODER.encode(row).decode())
        first = False
    out.write("[]\n" if first else "\n]\n")


def write_csv(
    out: TextIO, fields: Sequence[str], rows: Iterable[Any], *, raw: bool = False
) -> None:
    """One column per field, formulas neutralised unless `raw` (see `audit.export`)."""
    for line in csv_lines(fields, rows, raw=raw):
        out.write(line)


def _line(columns: Sequence[Column], cells: Iterator[str] | list[str]) -> str:
    padded = [cell.ljust(c.width) for c, cell in zip(columns, cells, strict=True)]
    return "  ".join(padded).rstrip() + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return _printable(" ".join(str(value).split()))


def _printable(text: str) -> str:
    """Text from N-central must not drive the auditor's terminal: ESC and friends shown as \\xNN."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


_ENCODER = msgspec.json.Encoder()
