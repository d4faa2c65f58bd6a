"""The log as CSV and JSON lines, a line at a time: one definition for every download.

`psa-ledger export` writes these lines to its standard output and the console's review
page streams them as downloads, so a window saved from the browser is the same bytes as
the same window exported in a shell.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec

__all__ = ["csv_lines", "jsonl_lines"]


def jsonl_lines(rows: Iterable[Any]) -> Iterator[str]:
    for row in rows:
        yield _ENCODER.encode(row).decode() + "\n"


def csv_lines(fields: Sequence[str], rows: Iterable[Any], *, raw: bool = False) -> Iterator[str]:
    """A header, then one line per row, a column per field; objects as their JSON text.

    A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula, some
    also after a leading TAB or CR, and N-central's ticket IDs, request IDs and the like
    are text a stranger chose. So such cells get a leading `'`, which spreadsheets show
    as plain text, unless `raw` asks for the log's values byte for byte (an audit copy).
    Rows end in CRLF (RFC 4180) because Python's writer quotes a cell only for the line
    end it writes: with LF alone, a CR inside a cell went out bare and split the row.
    """
    line = _LastWrite()
    writer = csv.writer(line, lineterminator="\r\n")
    writer.writerow(fields)
    yield line.text
    for row in rows:
        writer.writerow([_csv_value(getattr(row, f), raw=raw) for f in fields])
        yield line.text


class _LastWrite:
    """A file for csv.writer that keeps only the row it was last given."""

    text = ""

    def write(self, text: str) -> None:
        self.text = text


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
