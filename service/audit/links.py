"""The chain's links, checked by the parts of `verify` that read the rows anyway.

Each row carries the hash of the row before it as `prev_hash`, and the rows follow one
another by position from 1. A part of the tickets reads its rows in position order: where
its row before is at the position just before, it checks the link itself. Every other link
crosses to a row of another part, so the part notes it in position order, as a pair of
(position, hash), on one of two sides:

- it *expects* the row before each of its rows that follows a position it does not hold:
  (that position, the row's `prev_hash`);
- it *provides* each of its rows whose next position it does not hold, short of the log's
  last: (its position, its hash).

With one part, nothing may cross. With two, every position from 1 to the last is held, and
every link holds, exactly when each part's expected pairs are the other's provided ones:
a missing position is expected by the part holding the position after it, and provided by
nobody. So on a sound log the database need not walk the chain a second time; when the
sides disagree, `verify` asks it where (`events.links_to_check`). With three parts or more,
a part cannot tell which of the others holds the row before its own, and the database
checks the links while the parts replay.

The sides are compared by digest: msgpack, whose encoding tells a str from bytes and an int
from a float and needs no separator that a value could hold, fed to SHA-256 a chunk at a
time so that a part holds no more than a chunk of them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from statemachine.events import GENESIS_HASH

__all__ = ["Links", "PartLinks", "linked"]


class PartLinks(msgspec.Struct, frozen=True):
    """What a part found of the links: whether one of its own broke, and the digests of the
    pairs it expects and provides."""

    broken: bool
    expects: bytes
    provides: bytes


class Links:
    """A part's side of the links, fed its rows in position order (`follow`)."""

    __slots__ = ("_broken", "_expects", "_previous", "_previous_hash", "_provides")

    def __init__(self) -> None:
        self._broken = False
        self._previous = 0
        self._previous_hash: Any = GENESIS_HASH
        self._expects = _Pairs()
        self._provides = _Pairs()

    def follow(self, position: int, prev_hash: Any, hash: Any) -> None:
        previous = self._previous
        if position == previous + 1:
            if prev_hash != self._previous_hash:
                self._broken = True
        else:
            self._expects.add(position - 1, prev_hash)
            if previous:
                self._provides.add(previous, self._previous_hash)
        self._previous, self._previous_hash = position, hash

    def ended(self, last: int) -> PartLinks:
        """The part's findings, once it has followed its rows through position `last`."""
        if self._previous and self._previous != last:
            self._provides.add(self._previous, self._previous_hash)
        return PartLinks(self._broken, self._expects.digest(), self._provides.digest())


def linked(parts: list[PartLinks]) -> bool:
    """Whether the parts' findings prove every link of the log, each row held once among
    them; False when the database must say which links broke, or when there are more than
    two parts to pair."""
    if any(part.broken for part in parts):
        return False
    if len(parts) == 1:
        return parts[0].expects == parts[0].provides == _NOTHING
    if len(parts) == 2:
        first, second = parts
        return first.expects == second.provides and second.expects == first.provides
    return False


class _Pairs:
    """A sequence of (position, hash) pairs, kept as the digest of its chunks."""

    __slots__ = ("_digest", "_pending")

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: list[Any] = []

    def add(self, position: int, hash: Any) -> None:
        pending = self._pending
        pending += (position, hash)
        # Two values at a time to an even size: equal sequences break into equal chunks.
        if len(pending) == _CHUNK:
            self._flush()

    def digest(self) -> bytes:
        self._flush()
        return self._digest.digest()

    def _flush(self) -> None:
        if self._pending:
            self._digest.update(msgspec.msgpack.encode(self._pending))
            self._pending = []


_CHUNK = 20_000
_NOTHING = hashlib.sha256().digest()
