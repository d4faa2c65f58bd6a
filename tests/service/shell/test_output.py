"""The shell's output formats, on rows a person could not mistake."""

from __future__ import annotations

import csv
import io
import json

import msgspec

from service.shell.output import (
    Column,
    write_csv,
    write_json,
    write_jsonl,
    write_markdown,
    write_table,
)


class Row(msgspec.Struct):
    ticket: str
    note: str | None
    tags: dict[str, str]


ROWS = [
    Row("1001", "disk full\nreally", {"site": "HQ"}),
    Row("1002", None, {}),
    Row("1003", "a | pipe \x1b[31mred", {}),
]
COLUMNS = [Column("TICKET", "ticket", 6), Column("NOTE", "note", 12), Column("TAGS", "tags", 8)]


def _written(write, *args) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    write(out, *args)
    return out.getvalue()


def test_a_table_keeps_one_line_a_row_and_escapes_the_terminal() -> None:
    lines = _written(write_table, COLUMNS, ROWS).splitlines()
    assert lines[0].split() == ["TICKET", "NOTE", "TAGS"]
    assert len(lines) == 2 + len(ROWS)
    assert "disk full really" in lines[2] and "site=HQ" in lines[2]
    assert lines[3].split()[1] == "-"
    assert "\x1b" not in lines[4] and "\\x1b" in lines[4]


def test_markdown_escapes_pipes() -> None:
    text = _written(write_markdown, COLUMNS, ROWS)
    assert "a \\| pipe" in text
    assert text.splitlines()[1] == "| --- | --- | --- |"


def test_json_is_one_array_and_jsonl_one_object_a_line() -> None:
    assert json.loads(_written(write_json, ROWS))[0]["tags"] == {"site": "HQ"}
    assert json.loads(_written(write_json, [])) == []
    lines = _written(write_jsonl, ROWS).splitlines()
    assert [json.loads(line)["ticket"] for line in lines] == ["1001", "1002", "1003"]


def test_csv_has_a_header_and_objects_as_json_text() -> None:
    rows = list(csv.reader(io.StringIO(_written(write_csv, ["ticket", "note", "tags"], ROWS))))
    assert rows[0] == ["ticket", "note", "tags"]
    assert rows[1] == ["1001", "disk full\nreally", '{"site":"HQ"}']
    assert rows[2] == ["1002", "", "{}"]
