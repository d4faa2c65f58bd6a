"""Rows for people and for tools: terminal tables, Markdown, JSON, JSON lines and CSV.

Every writer takes an iterator and writes as it goes, so a ten-million-event export holds
one row at a time. Terminal tables use fixed column widths for the same reason: measuring
the widest cell first would mean holding the whole log.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import msgspec

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
    for row in rows:
        out.write(_ENCODER.encode(row).decode() + "\n")


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
    """One column per field; objects (payloads, answers) as their JSON text.

    A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, some
    also after a leading TAB or CR, and N-central's ticket IDs, request IDs and the like
    are text a stranger chose. So such cells get a leading `'`, which spreadsheets show
    as plain text, unless `raw` asks for the log's values byte for byte (an audit copy).
    Rows end in CRLF (RFC 4180) because Python's writer quotes a cell only for the line
    end it writes: with LF alone, a CR inside a cell went out bare and split the row.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_value(getattr(row, f), raw=raw) for f in fields])


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


def _csv_value(value: Any, *, raw: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _ENCODER.encode(value).decode()
    if not raw and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


_ENCODER = msgspec.json.Encoder()
#: What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
