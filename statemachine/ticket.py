"""The rules of a ticket's life, written once as a `transitions` Machine.

The Machine is the single definition of what each action does in each state. Folding a
long log through `Machine` triggers would cost ~16 µs an event, so at import we read the
Machine's own transition list into a plain table; every decision, live or on replay, and
the state table in the docs are taken from that table, so they cannot drift from the
Machine.
"""

from __future__ import annotations

from enum import StrEnum

from transitions import Machine

__all__ = [
    "MACHINE",
    "State",
    "Trigger",
    "allowed_triggers",
    "next_state",
    "state_table",
]


class State(StrEnum):
    NEW = "new"
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    REOPENED = "reopened"


class Trigger(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    #: The ticket's identity reached N-central: in the CREATE answer (sync mode) or in an
    #: acknowledged callback (async mode).
    DELIVER = "deliver"


_EXISTING = ["pending", "open", "closed", "reopened"]
_LIVE = ["pending", "open", "reopened"]

#: `dest=None` is an internal transition: allowed, the state stays. Plain strings, because
#: `transitions` reads an Enum member by its name, not its value.
MACHINE = Machine(
    model=None,
    states=[s.value for s in State],
    initial="new",
    auto_transitions=False,
    transitions=[
        {"trigger": "create", "source": "new", "dest": "pending"},
        {"trigger": "create", "source": _EXISTING, "dest": None},
        {"trigger": "deliver", "source": "pending", "dest": "open"},
        {"trigger": "deliver", "source": ["open", "closed", "reopened"], "dest": None},
        {"trigger": "update", "source": _LIVE, "dest": None},
        {"trigger": "resolve", "source": _LIVE, "dest": "closed"},
        {"trigger": "reopen", "source": "closed", "dest": "reopened"},
    ],
)


def next_state(state: State, trigger: Trigger) -> State | None:
    """The state after `trigger` fires in `state`, or None when the Machine forbids it."""
    return _TABLE.get((state, trigger))


def allowed_triggers(state: State) -> list[Trigger]:
    """Triggers the Machine accepts in `state`, in definition order."""
    return [t for t in Trigger if (state, t) in _TABLE]


def state_table() -> dict[tuple[State, Trigger], State | None]:
    """Every (state, trigger) cell: the state after it, or None when it is refused."""
    return {(s, t): _TABLE.get((s, t)) for s in State for t in Trigger}


def _read_machine(machine: Machine) -> dict[tuple[State, Trigger], State]:
    table: dict[tuple[State, Trigger], State] = {}
    for name, event in machine.events.items():
        for source, transitions in event.transitions.items():
            dest = transitions[0].dest
            table[State(source), Trigger(name)] = State(dest if dest is not None else source)
    return table


_TABLE = _read_machine(MACHINE)
