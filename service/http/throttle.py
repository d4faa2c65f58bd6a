"""Failed logins per client address: past ten in a minute, that address waits.

Ten guesses a minute make a 16-character random password out of reach, and only the address
that guesses waits: N-central, on another address, keeps being served. Memory is bounded:
at most `capacity` addresses are remembered, and the one that failed least recently is
forgotten first, so an attacker rotating addresses cannot grow the table.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Remembers the last `limit` failures of each address, for `window` seconds."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._clock = clock
        self._failures: OrderedDict[str, tuple[float, ...]] = OrderedDict()

    def wait(self, address: str) -> int | None:
        """Whole seconds `address` must wait before trying again, or None if it may try."""
        if not self._failures:
            return None  # no failure anywhere: no need to parse the address of each request
        failures = self._failures.get(_key(address), ())
        if len(failures) < self.limit:
            return None
        left = failures[0] + self.window - self._clock()
        return math.ceil(left) if left > 0 else None

    def failed(self, address: str) -> None:
        key = _key(address)
        # Only the last `limit` failures matter: the oldest of them says when the wait ends.
        earlier = self._failures.pop(key, ())
        kept = earlier[max(0, len(earlier) - self.limit + 1) :]
        self._failures[key] = (*kept, self._clock())
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)


def _key(address: str) -> str:
    """One key per client: an IPv6 client owns a whole /64, so it counts as one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
