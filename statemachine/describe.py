"""The state table and diagram of the docs, generated from the Machine so they cannot drift."""

from __future__ import annotations

from statemachine.ticket import State, Trigger, state_table

__all__ = ["markdown_table", "mermaid"]

_COLUMNS = {
    Trigger.CREATE: "CREATE",
    Trigger.UPDATE: "UPDATE",
    Trigger.RESOLVE: "RESOLVE",
    Trigger.REOPEN: "REOPEN",
    Trigger.DELIVER: "identity delivered",
}
_STAYS = {
    Trigger.CREATE: "existing identity",
    Trigger.UPDATE: "stays, note kept",
    Trigger.RESOLVE: "stays",
    Trigger.REOPEN: "stays",
    Trigger.DELIVER: "stays",
}


def markdown_table() -> str:
    """Rows are states, columns are actions; each cell is what the action does there."""
    table = state_table()
    header = "| state \\ action | " + " | ".join(_COLUMNS.values()) + " |"
    lines = [header, "|" + " --- |" * (len(_COLUMNS) + 1)]
    for state in State:
        cells = [_cell(state, trigger, table) for trigger in _COLUMNS]
        name = "new (unknown)" if state is State.NEW else state.value
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mermaid() -> str:
    """A Mermaid state diagram of every transition that changes the state."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.NEW.value}"]
    for (source, trigger), dest in state_table().items():
        if dest is not None and dest is not source:
            lines.append(f"    {source.value} --> {dest.value}: {_COLUMNS[trigger]}")
    return "\n".join(lines)


def _cell(state: State, trigger: Trigger, table: dict[tuple[State, Trigger], State | None]) -> str:
    dest = table[state, trigger]
    if dest is None:
        if state is State.NEW:
            return "404" if trigger is not Trigger.DELIVER else "-"
        # A retry of the request that brought the ticket here gets its original answer.
        arrived_by = any(table[s, trigger] is state for s in State if s is not state)
        return "409 (unless a retry)" if arrived_by else "409"
    return _STAYS[trigger] if dest is state else f"→ {dest.value}"
